"""The raw-to-OATH conversion: how a raw THEMIS frame (16-bit counts) becomes an OATH-like
8-bit image, as classify and calibrate both run it, in one leaf module.

From raw frame to OATH-like image (:func:`frame_to_oath`)
---------------------------------------------------------
1. Crop (:class:`Crop`): the square of side ``2 * radius`` around ``(center_row, center_col)``
   (pixel centres at whole numbers; parts outside the frame are padded), and every pixel whose
   centre lies farther than ``radius`` from that centre set to black, as in the OATH images.
   The default, centre (127.5, 127.5) and radius 128, keeps the circle inscribed in the
   256 x 256 frame and the frame size. Per-site overrides fit imagers whose optical centre is off.
2. Scale (:class:`Scaling`) counts to 0-255: ``255 * (counts - low) / (high - low)``, clipped,
   rounded to the nearest integer (``numpy.rint``). ``mode="linear"`` takes ``low`` and ``high``
   in counts, the same for every frame, so brightness stays comparable between frames;
   ``mode="percentile"`` takes them as percentiles of the frame's own pixels inside the circle
   (e.g. 1 and 99.5), which adapts to sites with other gains but stretches a dark clear sky as
   much as a bright auroral one.
3. Rotate by the site's angle (degrees, default 0) with the same ImageMagick ``-distort SRT``
   the OATH images got (:func:`oath.imaging.rotate.rotate_image` for PNG files; for streamed
   frames its exact linear map, :mod:`oath.imaging.rotation_map`): same size, black brought in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from oath.archive.frames import ThemisError


@dataclass(frozen=True)
class Crop:
    """Circular field of view in pixels: centre (row, column) and radius."""

    center_row: float = 127.5
    center_col: float = 127.5
    radius: float = 128.0

    def __post_init__(self) -> None:
        if not self.radius > 0:
            raise ThemisError(f"crop radius must be positive, not {self.radius}.")


@dataclass(frozen=True)
class Scaling:
    """Counts to gray levels: linear between ``low`` and ``high`` (counts, or percentiles)."""

    mode: str = "linear"
    low: float = 3500.0
    high: float = 15000.0

    def __post_init__(self) -> None:
        if self.mode not in ("linear", "percentile"):
            raise ThemisError(f"scaling mode must be 'linear' or 'percentile', not {self.mode!r}.")
        if not self.high > self.low:
            raise ThemisError(
                f"scaling high ({self.high}) must be above low ({self.low}) for mode {self.mode}."
            )
        if self.mode == "percentile" and not (0 <= self.low and self.high <= 100):
            raise ThemisError(
                f"percentile scaling takes percentiles 0-100, not {self.low}-{self.high}."
            )


# Turns and mirrors of a raw frame before it is cropped (classify.orientation_per_site): the
# eight ways a square picture can lie, by name. "flip_rows" reverses the row order (top to
# bottom), "flip_cols" the columns; "rot90" turns a quarter counter-clockwise (numpy.rot90).
ORIENTATIONS: dict[str, Any] = {
    "none": lambda a: a,
    "flip_rows": lambda a: a[::-1, :],
    "flip_cols": lambda a: a[:, ::-1],
    "rot90": lambda a: np.rot90(a, 1),
    "rot180": lambda a: np.rot90(a, 2),
    "rot270": lambda a: np.rot90(a, 3),
    "transpose": lambda a: a.T,
    "antitranspose": lambda a: np.rot90(a, 2).T,
}
_INVERSE_ORIENTATION = {"rot90": "rot270", "rot270": "rot90"}


def orient(image: np.ndarray, orientation: str = "none", inverse: bool = False) -> np.ndarray:
    """``image`` turned or mirrored as named in :data:`ORIENTATIONS` (or undone: ``inverse``)."""
    if orientation not in ORIENTATIONS:
        raise ThemisError(
            f"orientation {orientation!r} unknown; use one of {', '.join(ORIENTATIONS)}."
        )
    if inverse:
        orientation = _INVERSE_ORIENTATION.get(orientation, orientation)
    return np.ascontiguousarray(ORIENTATIONS[orientation](np.asarray(image)))


def _from_config(cls: type, value: Any, what: str) -> Any:
    """A Crop/Scaling from itself, None (defaults) or a config mapping; unknown keys refused."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        raise ThemisError(f"{what} must be a mapping, not {value!r}.")
    allowed = {f.name for f in fields(cls)}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ThemisError(f"{what}: unknown key(s) {unknown}; allowed: {sorted(allowed)}.")
    return cls(**dict(value))


def as_crop(value: Crop | Mapping[str, float] | None) -> Crop:
    """A :class:`Crop` from a config mapping (``center_row``, ``center_col``, ``radius``)."""
    return _from_config(Crop, value, "crop")


def as_scaling(value: Scaling | Mapping[str, Any] | None) -> Scaling:
    """A :class:`Scaling` from a config mapping (``mode``, ``low``, ``high``)."""
    return _from_config(Scaling, value, "scaling")


def frame_to_oath(
    image: np.ndarray,
    crop: Crop | Mapping[str, float] | None = None,
    scaling: Scaling | Mapping[str, Any] | None = None,
) -> np.ndarray:
    """Crop to the circular field of view, black outside, and scale counts to uint8.

    See the module docstring for the exact rule; the result is ``round(2 * radius)`` pixels
    square.
    """
    crop, scaling = as_crop(crop), as_scaling(scaling)
    image = np.asarray(image)
    if image.ndim != 2:
        raise ThemisError(f"expected a 2-d frame, got shape {image.shape}.")
    side = int(round(2 * crop.radius))
    top = int(np.floor(crop.center_row - crop.radius + 0.5))
    left = int(np.floor(crop.center_col - crop.radius + 0.5))
    rows = top + np.arange(side)
    cols = left + np.arange(side)
    in_frame = ((rows >= 0) & (rows < image.shape[0]))[:, None] & (
        (cols >= 0) & (cols < image.shape[1])
    )[None, :]
    inside = (rows[:, None] - crop.center_row) ** 2 + (
        cols[None, :] - crop.center_col
    ) ** 2 <= crop.radius**2
    sky = inside & in_frame
    if not sky.any():
        raise ThemisError(
            f"crop centre ({crop.center_row}, {crop.center_col}) radius {crop.radius} lies "
            f"outside the {image.shape[0]} x {image.shape[1]} frame."
        )
    counts = np.zeros((side, side), dtype=np.float64)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + side, image.shape[0]), min(left + side, image.shape[1])
    counts[r0 - top : r1 - top, c0 - left : c1 - left] = image[r0:r1, c0:c1]
    if scaling.mode == "linear":
        low, high = float(scaling.low), float(scaling.high)
    else:
        low, high = (float(v) for v in np.percentile(counts[sky], [scaling.low, scaling.high]))
        if not high > low:  # a flat frame: everything at low becomes black
            high = low + 1.0
    gray = np.clip(np.rint((counts - low) * (255.0 / (high - low))), 0, 255).astype(np.uint8)
    gray[~sky] = 0
    return gray


@dataclasses.dataclass(frozen=True)
class Conversion:
    """How raw frames become OATH-like images (see this module's docstring)."""

    crop: Crop = Crop()
    scaling: Scaling = Scaling()
    site_crops: Mapping[str, Crop] = dataclasses.field(default_factory=dict)
    site_angles: Mapping[str, float] = dataclasses.field(default_factory=dict)
    site_scalings: Mapping[str, Scaling] = dataclasses.field(default_factory=dict)
    site_orientations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_config(cls, settings: Mapping[str, Any] | None = None) -> Conversion:
        """From the config's ``classify`` keys ``crop``, ``scaling``, ``crop_per_site``,
        ``angle_per_site``, ``scaling_per_site`` and ``orientation_per_site`` (any may be
        absent: defaults)."""
        settings = dict(settings or {})
        orientations = {s: str(v) for s, v in (settings.get("orientation_per_site") or {}).items()}
        for name in orientations.values():
            orient(np.zeros((1, 1)), name)  # an unknown name stops here, with the known ones
        return cls(
            crop=as_crop(settings.get("crop")),
            scaling=as_scaling(settings.get("scaling")),
            site_crops={s: as_crop(v) for s, v in (settings.get("crop_per_site") or {}).items()},
            site_angles={s: float(v) for s, v in (settings.get("angle_per_site") or {}).items()},
            site_scalings={
                s: as_scaling(v) for s, v in (settings.get("scaling_per_site") or {}).items()
            },
            site_orientations=orientations,
        )

    def to_config(self) -> dict[str, Any]:
        """The config's ``classify`` keys that give this conversion (plain values, YAML-ready)."""
        return {
            "crop": dataclasses.asdict(self.crop),
            "scaling": dataclasses.asdict(self.scaling),
            "crop_per_site": {s: dataclasses.asdict(c) for s, c in sorted(self.site_crops.items())},
            "scaling_per_site": {
                s: dataclasses.asdict(v) for s, v in sorted(self.site_scalings.items())
            },
            "orientation_per_site": dict(sorted(self.site_orientations.items())),
            "angle_per_site": dict(sorted(self.site_angles.items())),
        }

    def to_gray(self, image: np.ndarray, site: str) -> np.ndarray:
        """A raw frame (counts) of ``site`` as an OATH-like uint8 image, before the angle:
        the site's orientation, then its crop and scaling
        (:func:`oath.archive.conversion.frame_to_oath`)."""
        orientation = self.site_orientations.get(site, "none")
        return frame_to_oath(
            orient(image, orientation) if orientation != "none" else image,
            self.site_crops.get(site, self.crop),
            self.site_scalings.get(site, self.scaling),
        )
