"""Calibration, step 2 for the data set: every site fitted on split 0's training images, then
``conversion.yaml`` in classify's config keys, the fit's JSON, and the triplet sheet (OATH
image, converted raw frame, difference, default conversion) per site.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from oath.archive.frames import ThemisError
from oath.archive.themis import read_gray8
from oath.atomic import atomic_path, write_bytes
from oath.calibration.fit import MAX_SHIFT, SiteFit, fit_site, pool_scalings, residual
from oath.calibration.match import MATCHED, CalibrationError, read_matched_frames, read_matches
from oath.dataset.splits import load_split, train_test_rows
from oath.dataset.table import image_name, load_classifications

log = logging.getLogger(__name__)


def split_parts(
    classifications: str | Path, split_file: str | Path, train_fraction: float, split: int = 0
) -> tuple[pd.DataFrame, set[int], set[int]]:
    """The labelled table and the picNums of split ``split``'s training and held-out parts."""
    table = load_classifications(classifications)
    rows = load_split(split_file, len(table))
    train, test = train_test_rows(rows, split, train_fraction, str(split_file))
    pics = table["picNum"].to_numpy(dtype=np.int64)
    return table, {int(p) for p in pics[train]}, {int(p) for p in pics[test]}


def _site_angles(table: pd.DataFrame, matches: pd.DataFrame) -> tuple[dict[str, float], dict]:
    """classify's angle_per_site from classifications.csv: a site's angle where all its images
    share one; else none, with a note (classify turns all frames of a site alike)."""
    angle_of = dict(zip(table["picNum"].astype(int), table["angle"].astype(float), strict=True))
    angles, notes = {}, {}
    for site, group in matches[matches["station"] != ""].groupby("station"):
        values = sorted({angle_of[int(p)] for p in group["picNum"] if int(p) in angle_of})
        if len(values) == 1:
            if values[0]:
                angles[site] = values[0]
        elif values:
            notes[site] = (
                f"classifications.csv turns this site's images by {len(values)} different angles "
                f"({values[0]:g}..{values[-1]:g}); classify turns a site's frames by one angle, so "
                "none is written: set angle_per_site yourself"
            )
    return angles, notes


def fit_conversion(
    matches_csv: str | Path,
    frames_h5: str | Path,
    classifications: str | Path,
    split_file: str | Path,
    images_dir: str | Path,
    out_yaml: str | Path,
    out_json: str | Path,
    *,
    train_fraction: float = 0.7,
    base: Mapping[str, Any] | None = None,
    max_shift: int = MAX_SHIFT,
    out_triplets: str | Path | None = None,
) -> dict[str, Any]:
    """Fit every site with matched training images of split 0; write conversion.yaml and JSON.

    ``base`` is the config's ``classify`` conversion keys (crop, scaling, ...): sites without a
    fit keep them. conversion.yaml holds ``classify:`` with ``crop``, ``scaling`` (the fitted
    scaling of the site with most training images), ``crop_per_site``, ``scaling_per_site``
    (sites whose scaling differs from that), ``orientation_per_site`` and ``angle_per_site``
    (see :func:`_site_angles`), so ``snakemake classify --configfile conversion.yaml`` uses it.
    ``out_triplets``: a PNG with, per site, a held-out image, its raw frame converted by the fit,
    their difference and the frame through ``base`` (:func:`triplet_sheet`).
    """
    from oath.archive.conversion import Conversion

    started = time.perf_counter()
    matches = read_matches(matches_csv)
    table, train_pics, test_pics = split_parts(classifications, split_file, train_fraction)
    matched = matches[matches["status"] == MATCHED]
    frames = read_matched_frames(frames_h5, matched["picNum"].tolist())
    pairs_of = _site_pairs(matched, frames, Path(images_dir))
    fits, problems = _fit_sites(pairs_of, train_pics, test_pics, max_shift)
    base_conversion = Conversion.from_config(base)
    angles, angle_notes = _site_angles(table, matches)
    conversion = _dataset_conversion(fits, base_conversion, angles)
    sites = {
        site: _site_entry(site, matches, fits.get(site), problems, angles, angle_notes)
        for site in sorted(set(matches.loc[matches["station"] != "", "station"]) | set(fits))
    }
    result = {
        "sites": sites,
        "conversion": conversion.to_config(),
        "split": 0,
        "train_fraction": train_fraction,
        "residual_rule": (
            "mean absolute difference in grey levels (0-255) between the OATH image and the "
            "converted raw frame, over the crop circle's pixels, per image; averaged over the "
            "site's matched images of split 0's held-out part"
        ),
        "fit_seconds": round(time.perf_counter() - started, 2),
    }
    write_conversion_yaml(conversion, out_yaml, fits)
    if out_triplets is not None:
        examples = {
            site: (p, *pairs_of[site][p])
            for site, fit in fits.items()
            for p in [_example(fit)]
            if p is not None
        }
        write_bytes(out_triplets, triplet_sheet(examples, conversion, base_conversion))
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True))
    return result


Pairs = dict[int, tuple[np.ndarray, np.ndarray]]  # picNum -> (raw frame, OATH image)


def _site_pairs(
    matched: pd.DataFrame, frames: Mapping[int, np.ndarray], images_dir: Path
) -> dict[str, Pairs]:
    """Per site, each matched image's raw frame beside the data set's PNG."""
    return {
        site: {
            pic: (frames[pic], read_gray8(images_dir / image_name(pic)))
            for pic in group["picNum"].astype(int)
        }
        for site, group in matched.groupby("station")
    }


def _fit_sites(
    pairs_of: Mapping[str, Pairs], train_pics: set[int], test_pics: set[int], max_shift: int
) -> tuple[dict[str, SiteFit], dict[str, str]]:
    """Fit every site on its training pairs (pooled scalings); the sites left unfitted, why."""
    fits: dict[str, SiteFit] = {}
    problems: dict[str, str] = {}
    for site, pairs in pairs_of.items():
        train = {p: v for p, v in pairs.items() if p in train_pics}
        test = {p: v for p, v in pairs.items() if p in test_pics}
        if not train:
            problems[site] = "no matched image in split 0's training part: not fitted"
            log.warning("%s: %s", site, problems[site])
            continue
        try:
            fits[site] = fit_site(site, train, test, max_shift)
        except CalibrationError as exc:
            problems[site] = str(exc)
            log.warning("%s: not fitted: %s", site, exc)
    pool_scalings(fits)
    return fits, problems


def _site_entry(
    site: str,
    matches: pd.DataFrame,
    fit: SiteFit | None,
    problems: Mapping[str, str],
    angles: Mapping[str, float],
    angle_notes: Mapping[str, str],
) -> dict[str, Any]:
    """One site's entry of the fit's JSON: matches, family, residuals, conversion."""
    rows = matches[matches["station"] == site]
    entry: dict[str, Any] = {
        "matched": int((rows["status"] == MATCHED).sum()),
        "unmatched": int((rows["status"] != MATCHED).sum()),
    }
    if fit is None:
        entry.update(family="not fitted", residual_mean_abs=None, conversion=None)
        entry["problem"] = problems.get(site, "no matched image")
    else:
        entry.update(
            family=fit.scaling.mode,
            residual_mean_abs=fit.residual_test,
            residual_train_mean_abs=fit.residual_train,
            family_validation_residuals=fit.family_residuals,
            n_train=fit.n_train,
            n_validation=fit.n_validation,
            n_test=fit.n_test,
            crop_correlation=round(fit.geometry.correlation, 5),
            conversion={
                "crop": dataclasses.asdict(fit.geometry.crop),
                "scaling": dataclasses.asdict(fit.scaling),
                "orientation": fit.geometry.orientation,
                "angle": angles.get(site, 0.0),
            },
            test_residuals={str(p): round(v, 4) for p, v in fit.test_residuals.items()},
        )
    if site in angle_notes:
        entry["angle_note"] = angle_notes[site]
    return entry


def _example(fit: SiteFit) -> int | None:
    """The held-out image of a site whose residual is the median one (else a training one)."""
    if fit.test_residuals:
        ordered = sorted(fit.test_residuals, key=lambda p: (fit.test_residuals[p], p))
        return ordered[len(ordered) // 2]
    return None


def triplet_sheet(
    examples: Mapping[str, tuple[int, np.ndarray, np.ndarray]], fitted: Any, default: Any
) -> bytes:
    """Per site (picNum, raw frame, OATH PNG): the PNG, the frame through the fitted
    conversion, their absolute difference (x8, white = 32 grey levels or more) and the frame
    through the default conversion, as one contact sheet (PNG bytes)."""
    from oath.imaging import figures

    rows = []
    for site, (pic, raw, png) in sorted(examples.items()):
        cells = [figures.SheetCell(png / 255.0, f"OATH {image_name(pic)}")]
        for name, conversion in (("fitted", fitted), ("default", default)):
            try:
                gray = conversion.to_gray(raw, site)
            except ThemisError as exc:
                log.warning("%s: %s conversion not shown: %s", site, name, exc)
                cells.append(figures.SheetCell(None, f"{name}: {exc}"[:40]))
                continue
            if gray.shape == png.shape:
                caption = f"raw, {name} ({residual(conversion, raw, png, site)[0]:.2f})"
            else:
                caption = f"raw, {name} ({gray.shape[0]} px)"
            cells.append(figures.SheetCell(gray / 255.0, caption))
            if name == "fitted":
                diff = np.abs(gray.astype(np.int16) - png.astype(np.int16))
                cells.append(
                    figures.SheetCell(np.minimum(diff * 8, 255) / 255.0, "|difference| x8")
                )
        rows.append(figures.SheetRow(site, cells))
    if not rows:
        rows = [figures.SheetRow("", [], empty_text="no held-out image with a raw frame")]
    title = "OATH image, raw frame converted (mean abs residual), difference, default conversion"
    return figures.contact_sheet(rows, title, columns=4, caption_size=7)


def _dataset_conversion(fits: Mapping[str, SiteFit], base: Any, angles: Mapping[str, float]) -> Any:
    """One :class:`oath.archive.conversion.Conversion` from the site fits (see
    :func:`fit_conversion`)."""
    from oath.archive.conversion import Conversion

    if not fits:
        return dataclasses.replace(base, site_angles={**base.site_angles, **angles})
    main = max(fits.values(), key=lambda f: (f.n_train, f.site))
    return Conversion(
        crop=base.crop,
        scaling=main.scaling,
        site_crops={**base.site_crops, **{s: f.geometry.crop for s, f in fits.items()}},
        site_angles={**base.site_angles, **angles},
        site_scalings={
            **base.site_scalings,
            **{s: f.scaling for s, f in fits.items() if f.scaling != main.scaling},
        },
        site_orientations={
            **{s: o for s, o in base.site_orientations.items() if s not in fits},
            **{
                s: f.geometry.orientation
                for s, f in fits.items()
                if f.geometry.orientation != "none"
            },
        },
    )


def write_conversion_yaml(conversion: Any, path: str | Path, fits: Mapping[str, SiteFit]) -> None:
    """conversion.yaml: classify's keys, with a comment saying where they came from."""
    fitted = ", ".join(sorted(fits)) or "none"
    header = (
        "# The raw-frame -> OATH-image conversion fitted by `snakemake calibrate` against the\n"
        "# data set's own images (split 0's training part; residuals in calibration.json).\n"
        f"# Sites fitted: {fitted}. Use it: snakemake classify --configfile {path}\n"
    )
    body = yaml.safe_dump({"classify": conversion.to_config()}, sort_keys=False)
    write_bytes(path, (header + body).encode())
