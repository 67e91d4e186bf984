"""Calibration, step 2: the conversion of one site, fitted on its training images.
Orientation and crop window by correlation, then the scaling family and its window; the
residual on the held-out images; sites of one family share a pooled scaling.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from oath.archive.conversion import ORIENTATIONS, Crop, Scaling, orient
from oath.calibration.match import CalibrationError

log = logging.getLogger(__name__)


MAX_SHIFT = 16  # pixels the crop centre is searched around the frame's centre


FAMILIES = ("linear", "percentile")


FIT_IMAGES = 8  # training images per site used to find the crop window and orientation


REFINE_PIXELS = 200_000  # pixels that choose a linear window's whole-count ends


VALIDATION_EVERY = 4  # every 4th training image of a site chooses the scaling family


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Where an OATH image sits in its raw frame: orientation, then the crop window."""

    orientation: str
    crop: Crop
    correlation: float  # mean Pearson r over the frames used, at the chosen window


def _window(image: np.ndarray, top: int, left: int, side: int) -> np.ndarray:
    """``image[top:top+side, left:left+side]`` as float, zeros where it leaves the frame."""
    out = np.zeros((side, side))
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + side, image.shape[0]), min(left + side, image.shape[1])
    if r1 > r0 and c1 > c0:
        out[r0 - top : r1 - top, c0 - left : c1 - left] = image[r0:r1, c0:c1]
    return out


def circle_mask(side: int) -> np.ndarray:
    """Pixels of a ``side`` x ``side`` crop inside its circle (:func:`frame_to_oath`'s rule)."""
    radius = side / 2
    centre = radius - 0.5
    rows = np.arange(side)
    return (rows[:, None] - centre) ** 2 + (rows[None, :] - centre) ** 2 <= radius**2


def fit_geometry(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], max_shift: int = MAX_SHIFT
) -> Geometry:
    """Orientation and crop window that line raw frames up with their PNGs best.

    ``pairs`` are (raw frame as read, PNG grey levels). For each of the eight orientations and
    every window position within ``max_shift`` pixels of the frame's centre, the Pearson
    correlation between the raw counts and the PNG over the PNG's unclipped sky pixels
    (0 < grey < 255) is computed by FFT; the best mean over the pairs wins. The crop's radius is
    half the PNG's side (the conversion does not resample).
    """
    from scipy.signal import fftconvolve

    side = pairs[0][1].shape[0]
    circle = circle_mask(side)
    best: tuple[float, str, int, int] | None = None
    for name in ORIENTATIONS:
        total = None
        for raw, png in pairs:
            frame = orient(raw.astype(np.float64), name)
            height, width = frame.shape
            top0 = int(round((height - side) / 2))
            left0 = int(round((width - side) / 2))
            pad = max_shift + side
            padded = np.pad(frame, pad)
            # the part of the padded frame that windows within max_shift of the centre can see
            r_lo, c_lo = pad + top0 - max_shift, pad + left0 - max_shift
            sub = padded[r_lo : r_lo + side + 2 * max_shift, c_lo : c_lo + side + 2 * max_shift]
            gray = png.astype(np.float64)
            mask = (circle & (png > 0) & (png < 255)).astype(np.float64)
            n = mask.sum()
            if n < 10:
                continue
            flip = (slice(None, None, -1), slice(None, None, -1))
            s_a = fftconvolve(sub, mask[flip], mode="valid")
            s_aa = fftconvolve(sub * sub, mask[flip], mode="valid")
            s_ag = fftconvolve(sub, (mask * gray)[flip], mode="valid")
            s_g = float((mask * gray).sum())
            s_gg = float((mask * gray * gray).sum())
            var_a = np.maximum(s_aa - s_a**2 / n, 1e-9)
            var_g = max(s_gg - s_g**2 / n, 1e-9)
            r = (s_ag - s_a * s_g / n) / np.sqrt(var_a * var_g)
            total = r if total is None else total + r
        if total is None:
            continue
        k = int(np.nanargmax(total))
        i, j = np.unravel_index(k, total.shape)
        score = float(total[i, j]) / len(pairs)
        top = top0 - max_shift + int(i)
        left = left0 - max_shift + int(j)
        if best is None or score > best[0]:
            best = (score, name, top, left)
    if best is None:
        raise CalibrationError("no image with sky pixels to fit the crop window to")
    score, name, top, left = best
    crop = Crop(center_row=top + side / 2 - 0.5, center_col=left + side / 2 - 0.5, radius=side / 2)
    return Geometry(orientation=name, crop=crop, correlation=score)


def _crop_counts(raw: np.ndarray, geometry: Geometry, side: int) -> np.ndarray:
    """The raw counts of the crop window (oriented), as :func:`frame_to_oath` sees them."""
    frame = orient(raw, geometry.orientation)
    crop = geometry.crop
    top = int(np.floor(crop.center_row - crop.radius + 0.5))
    left = int(np.floor(crop.center_col - crop.radius + 0.5))
    return _window(frame, top, left, side)


def _affine(counts: np.ndarray, gray: np.ndarray) -> tuple[float, float] | None:
    """Least-squares ``gray = a * counts + b`` over unclipped pixels; None if too few."""
    use = (gray > 0) & (gray < 255)
    if use.sum() < 20 or np.ptp(counts[use]) == 0:
        return None
    a, b = np.polyfit(counts[use].astype(np.float64), gray[use].astype(np.float64), 1)
    return (float(a), float(b)) if a > 0 else None


def fit_linear(samples: Sequence[tuple[np.ndarray, np.ndarray]]) -> Scaling:
    """One counts window for all frames: least squares over every unclipped sky pixel.

    ``samples`` are (counts of the crop's sky pixels, their PNG grey levels)."""
    counts = np.concatenate([c for c, _ in samples])
    gray = np.concatenate([g for _, g in samples])
    fit = _affine(counts, gray)
    if fit is None:
        raise CalibrationError("too few unclipped pixels to fit a linear window")
    a, b = fit
    low, high = float(np.round(-b / a)), float(np.round((255.0 - b) / a))
    # the least-squares ends to the nearest count, then the whole counts around them that
    # reproduce the images best (the rounding of the grey levels leaves them a count or two off)
    every = max(1, counts.size // REFINE_PIXELS)  # a fixed share of the pixels is enough
    counts, gray = counts[::every].astype(np.float64), gray[::every]

    def error(lo: float, hi: float) -> float:
        gray_of = np.clip(np.rint((counts - lo) * (255.0 / (hi - lo))), 0, 255)
        return float(np.abs(gray_of - gray).mean())

    step = max(1.0, np.round((high - low) / 2000.0))
    grid = [(low + i * step, high + j * step) for i in range(-3, 4) for j in range(-3, 4)]
    low, high = min(grid, key=lambda ends: (error(*ends), abs(ends[0] - low) + abs(ends[1] - high)))
    return Scaling("linear", float(low), float(high))


def fit_percentile(samples: Sequence[tuple[np.ndarray, np.ndarray]]) -> Scaling:
    """A per-frame stretch: each frame's window by least squares, then the median percentile
    rank of its ends among the frame's sky pixels (``numpy.percentile``'s interpolation)."""
    lows, highs = [], []
    for counts, gray in samples:
        fit = _affine(counts, gray)
        if fit is None:
            continue
        a, b = fit
        ordered = np.sort(counts.astype(np.float64))
        ranks = np.arange(len(ordered)) * 100.0 / max(len(ordered) - 1, 1)
        lows.append(float(np.interp(-b / a, ordered, ranks)))
        highs.append(float(np.interp((255.0 - b) / a, ordered, ranks)))
    if not lows:
        raise CalibrationError("too few unclipped pixels to fit a percentile stretch")
    low, high = float(np.median(lows)), float(np.median(highs))
    if not high > low:
        high = min(low + 0.01, 100.0)
    return Scaling("percentile", round(low, 2), round(high, 2))


def residual(
    conversion: Any, raw: np.ndarray, png: np.ndarray, site: str
) -> tuple[float, np.ndarray]:
    """Mean absolute grey-level difference inside the crop circle, and the converted image.

    ``conversion`` is an :class:`oath.archive.conversion.Conversion`: the very code classify
    runs."""
    gray = conversion.to_gray(raw, site)
    if gray.shape != png.shape:
        raise CalibrationError(
            f"converted frame is {gray.shape[0]} px, the OATH image {png.shape[0]} px"
        )
    inside = circle_mask(png.shape[0])
    diff = np.abs(gray.astype(np.int16) - png.astype(np.int16))
    return float(diff[inside].mean()), gray


@dataclasses.dataclass
class SiteFit:
    """The fitted conversion of one site and how well it does."""

    site: str
    geometry: Geometry
    scaling: Scaling
    family_residuals: dict[str, float]  # validation residual of each family
    residual_train: float
    residual_test: float | None
    n_train: int
    n_validation: int
    n_test: int
    test_residuals: dict[int, float]
    train_samples: list[tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        repr=False, default_factory=list
    )
    pairs: dict[int, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        repr=False, default_factory=dict
    )
    test: dict[int, tuple[np.ndarray, np.ndarray]] = dataclasses.field(
        repr=False, default_factory=dict
    )

    def rescore(self, scaling: Scaling) -> None:
        """Use ``scaling`` (e.g. one fitted on several sites) and score it again."""
        conversion = _site_conversion(self.site, self.geometry, scaling)
        self.scaling = scaling
        self.residual_train = float(
            np.mean([residual(conversion, *v, self.site)[0] for v in self.pairs.values()])
        )
        self.test_residuals = {
            p: residual(conversion, *self.test[p], self.site)[0] for p in sorted(self.test)
        }
        values = list(self.test_residuals.values())
        self.residual_test = float(np.mean(values)) if values else None


def _site_conversion(site: str, geometry: Geometry, scaling: Scaling) -> Any:
    from oath.archive.conversion import Conversion

    return Conversion(
        crop=geometry.crop,
        scaling=scaling,
        site_orientations={site: geometry.orientation},
    )


def fit_site(
    site: str,
    train: Mapping[int, tuple[np.ndarray, np.ndarray]],
    test: Mapping[int, tuple[np.ndarray, np.ndarray]],
    max_shift: int = MAX_SHIFT,
) -> SiteFit:
    """Fit one site's conversion on ``train`` (picNum -> (raw frame, PNG)), score on ``test``.

    Geometry from up to :data:`FIT_IMAGES` training images with the most unclipped sky pixels;
    each scaling family fitted on the training images but every fourth and scored on those,
    the better one refitted on all training images.
    """
    pics = sorted(train)
    ranked = sorted(pics, key=lambda p: -int(((train[p][1] > 0) & (train[p][1] < 255)).sum()))
    geometry = fit_geometry([train[p] for p in ranked[:FIT_IMAGES]], max_shift)
    side = train[pics[0]][1].shape[0]
    inside = circle_mask(side)

    def samples(chosen: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for p in chosen:
            counts = _crop_counts(train[p][0], geometry, side)
            out.append((counts[inside], train[p][1][inside]))
        return out

    validation = pics[VALIDATION_EVERY - 1 :: VALIDATION_EVERY] if len(pics) >= 4 else pics
    fitting = [p for p in pics if p not in validation] or pics
    family_residuals = {}
    for family, fitter in FITTERS.items():
        try:
            scaling = fitter(samples(fitting))
        except CalibrationError as exc:
            log.info("%s: %s family not fitted: %s", site, family, exc)
            continue
        conversion = _site_conversion(site, geometry, scaling)
        family_residuals[family] = float(
            np.mean([residual(conversion, *train[p], site)[0] for p in validation])
        )
    if not family_residuals:
        raise CalibrationError(f"{site}: no scaling family could be fitted")
    family = min(family_residuals, key=family_residuals.get)
    scaling = FITTERS[family](samples(pics))
    conversion = _site_conversion(site, geometry, scaling)
    train_res = float(np.mean([residual(conversion, *train[p], site)[0] for p in pics]))
    test_res = {p: residual(conversion, *test[p], site)[0] for p in sorted(test)}
    log.info(
        "%s: %s, crop centre (%.1f, %.1f) radius %.1f, %s %g..%g; residual %.3f train, %s test "
        "(grey levels, %d/%d images)",
        site,
        geometry.orientation,
        geometry.crop.center_row,
        geometry.crop.center_col,
        geometry.crop.radius,
        scaling.mode,
        scaling.low,
        scaling.high,
        train_res,
        f"{np.mean(list(test_res.values())):.3f}" if test_res else "n/a",
        len(pics),
        len(test_res),
    )
    return SiteFit(
        site=site,
        geometry=geometry,
        scaling=scaling,
        family_residuals=family_residuals,
        residual_train=train_res,
        residual_test=float(np.mean(list(test_res.values()))) if test_res else None,
        n_train=len(pics),
        n_validation=len(validation),
        n_test=len(test_res),
        test_residuals=test_res,
        train_samples=samples(pics),
        pairs=dict(train),
        test=dict(test),
    )


FITTERS = {"linear": fit_linear, "percentile": fit_percentile}


def pool_scalings(fits: Mapping[str, SiteFit]) -> None:
    """Sites that chose the same family get one scaling, fitted on all their training images.

    OATH's images were made by one procedure; per-site fits of it differ only by noise (a
    count or two), so they are pooled; sites of another family keep their own.
    """
    for family, fitter in FITTERS.items():
        group = [f for f in fits.values() if f.scaling.mode == family]
        if len(group) < 2:
            continue
        pooled = fitter([sample for f in group for sample in f.train_samples])
        for fit in group:
            fit.rescore(pooled)
        log.info(
            "%s scaling pooled over %d sites: %g..%g", family, len(group), pooled.low, pooled.high
        )
