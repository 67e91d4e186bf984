"""Fit the raw-frame -> OATH-image conversion against the data set's own images, and check it.

``classify`` turns raw THEMIS frames into OATH-like images by a crop, a counts -> 0-255 scaling
and a site angle (:class:`oath.archive.conversion.Conversion`); OATH's ``cropped_scaled`` PNGs were
made
from raw frames by a procedure that is not published. ``images/files_origin.csv`` names the
station and time of every image, so each image can be put beside its raw frame and the
conversion fitted, per site, and checked:

1. :func:`match_frames`: every image of the data set to the raw frame of its station nearest in
   time (within ``tolerance_s``, the imager's 3-s cadence), read with the readers classify uses
   (stream0 ``*_full.pgm.gz`` through pyucalgarysrs, L1 ASF CDF through cdflib). An image
   without a frame is listed with the reason (bad files_origin.csv row, unknown station, no
   raw file, unreadable raw file, no frame within the tolerance), never a crash.
2. :func:`fit_conversion`: per site, on split 0's training images only: the orientation (the
   eight turns and mirrors of the square frame), the crop window (to the pixel, by the
   correlation of the raw frame with the PNG over the PNG's unclipped sky pixels; the crop
   radius is half the PNG's side, as :func:`oath.archive.conversion.frame_to_oath` makes it), then
   the
   scaling, chosen between the families classify has, a fixed linear counts window (least
   squares over all training pixels of the site that are not clipped) and a per-frame
   percentile stretch (each frame's window by least squares, then the median percentile rank
   of its ends), by the mean absolute grey-level residual on a validation part of the training
   images (every fourth); sites that chose one family share one scaling fitted on all of them
   (:func:`pool_scalings`). The residual reported is that of split 0's held-out images.
3. :func:`measure_agreement`: the ridge model fitted on the PNG features of split 0's training
   part labels the held-out images from OATH's PNGs and from their raw frames through the
   fitted and the default conversion (classify's streamed extraction, the same checkpoint).

Where the user has no raw files, :func:`fetch_raw_files` downloads exactly the stream0 minute
files the images need with pyucalgarysrs. No step reads how the demo made its PNGs
(:mod:`oath.demo.dataset` keeps that); tests compare.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from oath.archive.conversion import ORIENTATIONS, Crop, Scaling, orient
from oath.archive.frames import Frame, ThemisError, input_kind, parse_archive_name
from oath.archive.themis import read_frames, read_gray8
from oath.atomic import atomic_path, write_bytes
from oath.dataset.origins import (
    THEMIS_LONGITUDES,
    ProtocolInputError,
    _find_columns,
    _read_table,
    _stations_and_times,
    _whole_numbers,
)
from oath.dataset.splits import load_split, train_test_rows
from oath.dataset.table import image_name, load_classifications

log = logging.getLogger(__name__)

MATCHED = "matched"
MATCH_COLUMNS = (
    "picNum",
    "station",
    "time",
    "status",
    "reason",
    "file",
    "frame",
    "frame_time",
    "dt_s",
    "line",
)
TOLERANCE_S = 3.0  # THEMIS ASI cadence: one frame every 3 s
MAX_SHIFT = 16  # pixels the crop centre is searched around the frame's centre
FAMILIES = ("linear", "percentile")
FIT_IMAGES = 8  # training images per site used to find the crop window and orientation
REFINE_PIXELS = 200_000  # pixels that choose a linear window's whole-count ends
VALIDATION_EVERY = 4  # every 4th training image of a site chooses the scaling family


RAW_IMAGES_NEEDED = (
    "calibrate needs the raw THEMIS frames behind the data set's images: set raw_images to a "
    "folder (or a text listing) of the stream0 *_full.pgm.gz or L1 thg_l1_asf_*.cdf files "
    "that images/files_origin.csv names, e.g. snakemake --cores 4 calibrate --config "
    "raw_images=/data/themis. Fetch them with pyucalgarysrs, one call per station and time "
    "(see the README, section 'Calibrate'): PyUCalgarySRS(download_output_root_path=DIR)"
    ".data.download('THEMIS_ASI_RAW', start, end, site_uid=STATION); or let calibrate fetch "
    "exactly those files: --config calibrate='{fetch: true}'."
)


class CalibrationError(ValueError):
    """The calibration cannot run at all (no files_origin.csv, no raw files); names the fix."""


# --------------------------------------------------------------------------------------------
# files_origin.csv, row by row
# --------------------------------------------------------------------------------------------
def origin_rows(path: str | Path, pic_nums: Sequence[int]) -> pd.DataFrame:
    """Station and time of every picNum, one row per image, with the reason where unusable.

    Columns ``picNum``, ``station``, ``time`` (naive UTC, NaT when unusable), ``line`` (of
    ``path``, 0 when the image has no row) and ``problem`` ("" when usable). A row whose time
    does not parse, has no time of day, or names no or an unknown station (not a THEMIS ASI
    site) makes its image unusable, as does a picNum without a row or with two; the other
    images are kept. Raises :class:`CalibrationError` when the file is missing or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(
            f"{path}: no files_origin.csv, so the station and time of the images are unknown "
            "and no image can be matched to a raw frame. calibrate needs the data set's "
            "images/files_origin.csv (columns picNum,station,time, or picNum and the original "
            "file name such as 20110201_0612_fsmi_themis14_full.pgm.gz)."
        )
    try:
        table, lines = _read_table(path)
        columns = _find_columns(table, str(path))
    except ProtocolInputError as exc:
        raise CalibrationError(str(exc)) from exc
    table = table.fillna("").astype(str)
    lines_arr = np.asarray(lines)
    pics = _whole_numbers(table[columns.pic])
    station, when, has_time, _ = _stations_and_times(table, columns)
    rows_of: dict[int, list[int]] = {}
    for i, pic in enumerate(pics):
        if pd.notna(pic):
            rows_of.setdefault(int(pic), []).append(i)
    bad_pics = [int(lines_arr[i]) for i in np.flatnonzero(pics.isna().to_numpy())]
    if bad_pics:
        log.warning("%s: line(s) %s: picNum is not a whole number; rows skipped", path, bad_pics)
    out = []
    for pic in pic_nums:
        pic = int(pic)
        found = rows_of.get(pic, [])
        if len(found) != 1:
            problem = (
                f"no row for picNum {pic} in {path.name}"
                if not found
                else f"picNum {pic} on {len(found)} rows of {path.name} (lines "
                f"{', '.join(str(lines_arr[i]) for i in found)})"
            )
            out.append((pic, "", pd.NaT, int(lines_arr[found[0]]) if found else 0, problem))
            continue
        i = found[0]
        line = int(lines_arr[i])
        text = ",".join(table.iloc[i].tolist())
        name = str(station[i])
        problem = ""
        if pd.isna(when.iloc[i]):
            problem = f"{path.name} line {line}: time cannot be parsed ({text})"
        elif not has_time[i]:
            problem = f"{path.name} line {line}: a date without a time of day ({text})"
        elif not name:
            problem = f"{path.name} line {line}: no station ({text})"
        elif name not in THEMIS_LONGITUDES:
            problem = (
                f"{path.name} line {line}: unknown station {name!r}, not a THEMIS ASI site ({text})"
            )
        stamp = pd.NaT if problem else when.iloc[i].tz_convert("UTC").tz_localize(None)
        out.append((pic, name, stamp, line, problem))
    return pd.DataFrame(out, columns=["picNum", "station", "time", "line", "problem"])


def origin_problems(path: str | Path, pic_nums: Sequence[int]) -> list[dict[str, Any]]:
    """The files_origin.csv rows :func:`origin_rows` leaves out: ``file``, ``line`` (0: the
    picNum has no row), ``picNum`` and ``reason``, in line order."""
    rows = origin_rows(path, pic_nums)
    bad = rows[rows["problem"] != ""].sort_values(["line", "picNum"], kind="stable")
    return [
        {"file": str(path), "line": int(r.line), "picNum": int(r.picNum), "reason": r.problem}
        for r in bad.itertuples(index=False)
    ]


# --------------------------------------------------------------------------------------------
# Matching images to raw frames
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _RawIndex:
    """Raw files by site and start: stream0 by minute, L1 CDF by hour (from their names)."""

    minutes: dict[tuple[str, dt.datetime], list[Path]]
    hours: dict[tuple[str, dt.datetime], list[Path]]

    @classmethod
    def of(cls, files: Sequence[str | Path]) -> _RawIndex:
        minutes: dict[tuple[str, dt.datetime], list[Path]] = {}
        hours: dict[tuple[str, dt.datetime], list[Path]] = {}
        skipped = 0
        for item in files:
            path = Path(item)
            kind = input_kind(path)
            start, site = parse_archive_name(path)
            if kind not in ("raw", "cdf") or start is None or site is None:
                skipped += 1
                continue
            index = minutes if kind == "raw" else hours
            index.setdefault((site, start), []).append(path)
        if skipped:
            log.info("%d file(s) without a raw THEMIS archive name were not used", skipped)
        return cls(minutes, hours)

    def candidates(self, site: str, when: dt.datetime, tolerance: float) -> list[Path]:
        """The files that may hold a frame of ``site`` within ``tolerance`` s of ``when``."""
        early = when - dt.timedelta(seconds=tolerance)
        late = when + dt.timedelta(seconds=tolerance)
        found: list[Path] = []
        minute = early.replace(second=0, microsecond=0)
        while minute <= late:
            found += self.minutes.get((site, minute), [])
            minute += dt.timedelta(minutes=1)
        hour = early.replace(minute=0, second=0, microsecond=0)
        while hour <= late:
            found += self.hours.get((site, hour), [])
            hour += dt.timedelta(hours=1)
        return found


class _FileCache:
    """The last few raw files read (frames or the reason they could not be read)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self.files: OrderedDict[Path, list[Frame] | str] = OrderedDict()
        self.n_read = 0

    def get(self, path: Path) -> list[Frame] | str:
        if path in self.files:
            self.files.move_to_end(path)
            return self.files[path]
        try:
            value: list[Frame] | str = read_frames(path)
        except ThemisError as exc:
            value = str(exc).removeprefix(f"{path}: ")
        except Exception as exc:  # the reader on a damaged file
            value = f"{type(exc).__name__}: {exc}"
        if isinstance(value, str):
            log.warning("%s: unreadable raw file: %s", path, value)
        self.n_read += 1
        self.files[path] = value
        if len(self.files) > self.size:
            self.files.popitem(last=False)
        return value


def list_raw_files(raw_images: str | Path) -> list[Path]:
    """The files of ``raw_images`` (a folder, searched recursively, one file, or a listing)."""
    from oath.archive.inventory import InventoryError, list_inputs

    try:
        return list_inputs(raw_images)
    except InventoryError as exc:
        raise CalibrationError(f"raw_images: {exc}") from exc


RAW_DATASET = "THEMIS_ASI_RAW"  # the UCalgary data set of stream0 minute files


def needed_minutes(
    origins: pd.DataFrame, tolerance_s: float = TOLERANCE_S
) -> list[tuple[str, dt.datetime]]:
    """(station, minute) of every raw minute file a usable image of ``origins`` may need."""
    needed = set()
    for item in origins[origins["problem"] == ""].itertuples(index=False):
        moment = item.time.to_pydatetime()
        minute = (moment - dt.timedelta(seconds=tolerance_s)).replace(second=0, microsecond=0)
        while minute <= moment + dt.timedelta(seconds=tolerance_s):
            needed.add((item.station, minute))
            minute += dt.timedelta(minutes=1)
    return sorted(needed)


def fetch_raw_files(
    origins: pd.DataFrame,
    out_dir: str | Path,
    listing: str | Path,
    *,
    api_base_url: str = "",
    tolerance_s: float = TOLERANCE_S,
) -> list[Path]:
    """Download exactly the stream0 minute files ``origins`` needs, with pyucalgarysrs.

    One ``PyUCalgarySRS.data.download("THEMIS_ASI_RAW", minute, minute + 59 s, site_uid=...)``
    per station-minute (already present files are not fetched again), into ``out_dir`` (the
    UCalgary tree below ``THEMIS_ASI_RAW/``); ``api_base_url`` points the client at another
    API ("" = UCalgary's). A minute the API has no file for, or a failed download, is logged
    and skipped: its images are listed as unmatched later. Writes ``listing`` (paths relative
    to it, one a line) and returns the files.
    """
    import warnings

    import pyucalgarysrs
    from pyucalgarysrs.exceptions import SRSError

    srs = pyucalgarysrs.PyUCalgarySRS(
        download_output_root_path=str(out_dir), api_base_url=api_base_url or None
    )
    files: list[Path] = []
    missing = 0
    for station, minute in needed_minutes(origins, tolerance_s):
        try:
            with warnings.catch_warnings(record=True):  # "No data found": counted below
                result = srs.data.download(
                    RAW_DATASET,
                    minute,
                    minute + dt.timedelta(seconds=59),
                    site_uid=station,
                    progress_bar_disable=True,
                )
        except SRSError as exc:
            log.warning("%s %s: download failed: %s", station, minute, exc)
            missing += 1
            continue
        if not result.filenames:
            log.warning("%s %s: no raw file on the server", station, minute)
            missing += 1
        files += [Path(f) for f in result.filenames]
    listing = Path(listing)
    text = "".join(f"{os.path.relpath(f, listing.parent)}\n" for f in sorted(set(files)))
    write_bytes(listing, ("# raw files fetched by calibrate (pyucalgarysrs)\n" + text).encode())
    log.info(
        "%d raw file(s) fetched into %s, %d station-minute(s) without one",
        len(files),
        out_dir,
        missing,
    )
    return files


def match_frames(
    origins: pd.DataFrame,
    raw_files: Sequence[str | Path],
    out_csv: str | Path,
    out_frames: str | Path,
    tolerance_s: float = TOLERANCE_S,
) -> pd.DataFrame:
    """Match every image of ``origins`` (:func:`origin_rows`) to its raw frame.

    Writes the table (``MATCH_COLUMNS``, one row per image: ``status`` matched or unmatched
    with its ``reason``) to ``out_csv`` and every matched frame (uint16 counts, as the reader
    returns them) to the HDF5 file ``out_frames`` (dataset ``frames/<picNum>``), so that the
    fit and the agreement need not read the raw archive again. Images are visited by station
    and time, so the frames of one raw file are read once.
    """
    import h5py

    index = _RawIndex.of(raw_files)
    cache = _FileCache()
    rows = []
    started = time.perf_counter()
    order = origins.assign(_t=origins["time"]).sort_values(
        ["station", "_t"], kind="stable", na_position="last"
    )
    with atomic_path(out_frames, suffix=".h5") as tmp, h5py.File(tmp, "w") as h5:
        group = h5.create_group("frames")
        for item in order.itertuples(index=False):
            row = {
                "picNum": int(item.picNum),
                "station": item.station,
                "time": "" if pd.isna(item.time) else item.time.isoformat(),
                "status": "unmatched",
                "reason": item.problem,
                "file": "",
                "frame": pd.NA,
                "frame_time": "",
                "dt_s": np.nan,
                "line": int(item.line),
            }
            if not item.problem:
                found = _nearest_frame(index, cache, item.station, item.time, tolerance_s)
                if isinstance(found, str):
                    row["reason"] = found
                else:
                    path, frame, delta = found
                    row.update(
                        status=MATCHED,
                        reason="",
                        file=str(path),
                        frame=frame.index,
                        frame_time=frame.timestamp.isoformat() if frame.timestamp else "",
                        dt_s=round(delta, 3),
                    )
                    group.create_dataset(
                        str(row["picNum"]), data=frame.image, compression="gzip", compression_opts=1
                    )
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(MATCH_COLUMNS)).sort_values("picNum", ignore_index=True)
    table["frame"] = table["frame"].astype("Int64")
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    n_matched = int((table["status"] == MATCHED).sum())
    log.info(
        "matched %d of %d image(s) to raw frames (%d raw file(s) read, %.1f s); unmatched: %s",
        n_matched,
        len(table),
        cache.n_read,
        time.perf_counter() - started,
        table.loc[table["status"] != MATCHED, "reason"]
        .str.split(":")
        .str[0]
        .value_counts()
        .to_dict(),
    )
    return table


def _nearest_frame(
    index: _RawIndex, cache: _FileCache, site: str, when: pd.Timestamp, tolerance: float
) -> tuple[Path, Frame, float] | str:
    """The frame of ``site`` nearest ``when`` within ``tolerance`` s, or why there is none."""
    moment = when.to_pydatetime()
    files = index.candidates(site, moment, tolerance)
    if not files:
        return (
            f"raw file missing: no {site} file for {moment:%Y-%m-%d %H:%M} UT "
            f"(stream0 {moment:%Y%m%d_%H%M}_{site}_themisNN_full.pgm.gz or L1 "
            f"thg_l1_asf_{site}_{moment:%Y%m%d%H}_v01.cdf)"
        )
    best: tuple[Path, Frame, float] | None = None
    unreadable = []
    for path in files:
        frames = cache.get(path)
        if isinstance(frames, str):
            unreadable.append(f"{path}: {frames}")
            continue
        for frame in frames:
            if frame.timestamp is None or (frame.site and frame.site != site):
                continue
            delta = abs((frame.timestamp - moment).total_seconds())
            if best is None or delta < best[2]:
                best = (path, frame, delta)
    if best is not None and best[2] <= tolerance:
        return best
    if unreadable and best is None:
        return f"unreadable raw file: {'; '.join(unreadable)}"
    nearest = "no timed frame" if best is None else f"nearest {best[2]:.1f} s, in {best[0]}"
    extra = f"; unreadable: {'; '.join(unreadable)}" if unreadable else ""
    return f"no frame within {tolerance:g} s ({nearest}){extra}"


def read_matches(path: str | Path) -> pd.DataFrame:
    """The table :func:`match_frames` wrote."""
    table = pd.read_csv(
        path, dtype={"reason": str, "file": str, "station": str}, keep_default_na=False
    )
    table["frame"] = pd.to_numeric(table["frame"], errors="coerce").astype("Int64")
    table["dt_s"] = pd.to_numeric(table["dt_s"], errors="coerce")
    return table


def read_matched_frames(path: str | Path, pic_nums: Sequence[int]) -> dict[int, np.ndarray]:
    """Raw frames of ``pic_nums`` from the HDF5 file :func:`match_frames` wrote."""
    import h5py

    with h5py.File(path, "r") as h5:
        return {int(p): h5["frames"][str(int(p))][()] for p in pic_nums}


# --------------------------------------------------------------------------------------------
# Fitting the conversion of one site
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# The data set: every site, conversion.yaml and the fit's JSON
# --------------------------------------------------------------------------------------------
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
    images_dir = Path(images_dir)
    fits: dict[str, SiteFit] = {}
    problems: dict[str, str] = {}
    pairs_of: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
    for site, group in matched.groupby("station"):
        pairs = pairs_of[site] = {}
        for pic in group["picNum"].astype(int):
            pairs[pic] = (frames[pic], read_gray8(images_dir / image_name(pic)))
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
    base_conversion = Conversion.from_config(base)
    angles, angle_notes = _site_angles(table, matches)
    conversion = _dataset_conversion(fits, base_conversion, angles)
    sites = {}
    for site in sorted(set(matches.loc[matches["station"] != "", "station"]) | set(fits)):
        rows = matches[matches["station"] == site]
        entry: dict[str, Any] = {
            "matched": int((rows["status"] == MATCHED).sum()),
            "unmatched": int((rows["status"] != MATCHED).sum()),
        }
        fit = fits.get(site)
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
        sites[site] = entry
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


# --------------------------------------------------------------------------------------------
# Agreement: the labels from OATH's PNGs and from raw frames
# --------------------------------------------------------------------------------------------
ROUTES = ("png", "raw_fitted", "raw_default")


def route_records(
    pics: Sequence[int],
    frames: Mapping[int, np.ndarray],
    sites: Mapping[int, str],
    angles: Mapping[int, float],
    conversion: Any,
) -> list[Any]:
    """classify's stream records for raw frames: converted, then turned by each image's own
    angle from classifications.csv (as the rotation rule turned its PNG)."""
    from oath.archive.stream import FrameRecord, rotate_png
    from oath.archive.themis import STATUS_OK
    from oath.imaging.png import encode_png

    records = []
    for pic in pics:
        gray = conversion.to_gray(frames[pic], sites[pic])
        angle = angles[pic]
        png = rotate_png(gray, angle) if angle else encode_png(gray)
        records.append(FrameRecord(str(pic), 0, None, sites[pic], STATUS_OK, png))
    return records


def _relative_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=1) / np.maximum(np.linalg.norm(b, axis=1), 1e-30)


def measure_agreement(
    matches_csv: str | Path,
    frames_h5: str | Path,
    fit_json: str | Path,
    features: str | Path,
    classifications: str | Path,
    split_file: str | Path,
    checkpoint: str | Path,
    out_json: str | Path,
    out_model: str | Path,
    *,
    default: Mapping[str, Any] | None = None,
    labels: Sequence[str] = ("class6", "class2"),
    alpha: float = 0.03,
    train_fraction: float = 0.7,
    layer: str = "Logits",
    provenance: Mapping[str, Any] | None = None,
    batch_size: int = 16,
    threads: int = 2,
    precision: str = "float32",
    files_origin: str | Path | None = None,
) -> dict[str, Any]:
    """calibration.json: the fit's sites, the unmatched images, the files_origin.csv rows left
    out (``files_origin_left_out``: file, line, picNum, reason; read again from
    ``files_origin``) and the route agreement.

    The ridge model (``alpha``, feature set ``layer``) is fitted on the PNG features of split
    0's training part (saved to ``out_model``) and labels split 0's held-out images that have a
    raw frame three ways: ``png``, the data set's PNG features (what the model was trained on);
    ``raw_fitted``, their raw frames through the fitted conversion (``fit_json``); and
    ``raw_default``, through ``default`` (the config's classify conversion, today's guess).
    Both raw routes go through classify's streamed extraction with ``checkpoint``.
    """
    from oath.archive.conversion import Conversion
    from oath.archive.stream import StreamingExtractor, check_model_weights
    from oath.fit.model import load_model, predict, train_model
    from oath.network.featurefile import aligned_features, read_features

    started = time.perf_counter()
    fit = json.loads(Path(fit_json).read_text())
    matches = read_matches(matches_csv)
    table, _, test_pics = split_parts(classifications, split_file, train_fraction)
    train_model(
        str(features),
        str(classifications),
        list(labels),
        alpha,
        str(out_model),
        split_file=str(split_file),
        split=0,
        train_fraction=train_fraction,
        provenance=dict(provenance or {}),
        layer=layer,
    )
    model = load_model(out_model)
    matched = matches[(matches["status"] == MATCHED) & matches["picNum"].isin(test_pics)]
    pics = sorted(int(p) for p in matched["picNum"])
    if not pics:
        raise CalibrationError(
            f"{matches_csv}: no held-out image of split 0 has a raw frame; nothing to compare. "
            "Give raw_images covering more of files_origin.csv."
        )
    sites = dict(zip(matched["picNum"].astype(int), matched["station"], strict=True))
    angle_of = dict(zip(table["picNum"].astype(int), table["angle"].astype(float), strict=True))
    frames = read_matched_frames(frames_h5, pics)
    pic_nums = table["picNum"].to_numpy(dtype=np.int64)
    feats = read_features(features)
    every = aligned_features(features, feats, pic_nums, classifications, layer)
    logits_all = aligned_features(features, feats, pic_nums, classifications, "Logits")
    row_of = {int(p): i for i, p in enumerate(pic_nums)}
    rows = [row_of[p] for p in pics]
    layers = {"png": {"model": every[rows], "Logits": logits_all[rows]}}
    conversions = {
        "raw_fitted": Conversion.from_config(fit["conversion"]),
        "raw_default": Conversion.from_config(default),
    }
    extract_started = time.perf_counter()
    with StreamingExtractor(
        checkpoint, batch_size=batch_size, threads=threads, precision=precision
    ) as extractor:
        from oath.network.checkpoint import checkpoint_sha256

        check_model_weights(model, checkpoint_sha256(checkpoint), checkpoint)
        for route, conversion in conversions.items():
            records = route_records(pics, frames, sites, angle_of, conversion)
            seen, out = extractor.run(records, layer)
            layers[route] = {"model": out[layer], "Logits": out["Logits"]}
    extract_seconds = time.perf_counter() - extract_started
    truth = {name: table[name].to_numpy(dtype=np.int64)[rows] for name in labels}
    predicted = {
        route: {name: p.classes for name, p in predict(model, v["model"], layer).items()}
        for route, v in layers.items()
    }
    agreement = _agreement_figures(predicted, truth, layers, labels, [sites[p] for p in pics])
    agreement.update(
        n_images=len(pics),
        images="split 0's held-out images with a raw frame",
        model=f"RidgeClassifier(alpha={alpha}) on {layer} of split 0's training part",
        extraction_seconds=round(extract_seconds, 2),
        extraction_seconds_per_frame=round(extract_seconds / (2 * len(pics)), 4),
    )
    unmatched = matches[matches["status"] != MATCHED]
    result = {
        "sites": fit["sites"],
        "agreement": agreement,
        "conversion": fit["conversion"],
        "default_conversion": Conversion.from_config(default).to_config(),
        "residual_rule": fit["residual_rule"],
        "matched": int((matches["status"] == MATCHED).sum()),
        "unmatched": [
            {"picNum": int(r.picNum), "station": r.station, "time": r.time, "reason": r.reason}
            for r in unmatched.itertuples(index=False)
        ],
        "files_origin_left_out": (
            origin_problems(files_origin, pic_nums) if files_origin is not None else []
        ),
        "predictions": {
            "picNum": pics,
            "truth": {k: v.tolist() for k, v in truth.items()},
            **{route: {k: v.tolist() for k, v in p.items()} for route, p in predicted.items()},
        },
        "seconds": {
            "fit": fit.get("fit_seconds"),
            "agreement": round(time.perf_counter() - started, 2),
        },
    }
    with atomic_path(out_json) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1, sort_keys=True))
    return result


def _agreement_figures(
    predicted: Mapping[str, Mapping[str, np.ndarray]],
    truth: Mapping[str, np.ndarray],
    layers: Mapping[str, Mapping[str, np.ndarray]],
    labels: Sequence[str],
    sites: Sequence[str],
) -> dict[str, Any]:
    """Accuracy per route, agreement with the PNG route (overall, per true class, per site),
    and the Logits' relative L2 to the PNG route's; the headline keys are the first label set's."""
    from oath.dataset.table import LABEL_NAMES

    out: dict[str, Any] = {"label_sets": {}}
    site_arr = np.asarray(sites)
    for name in labels:
        y = truth[name]
        entry: dict[str, Any] = {}
        for route in ROUTES:
            entry[f"{route}_accuracy"] = float(np.mean(predicted[route][name] == y))
        for route in ROUTES[1:]:
            same = predicted[route][name] == predicted["png"][name]
            entry[f"{route}_agreement"] = float(np.mean(same))
            entry[f"{route}_agreement_per_class"] = {
                LABEL_NAMES[name][k]: {
                    "n": int((y == k).sum()),
                    "agreement": float(same[y == k].mean()),
                }
                for k in range(len(LABEL_NAMES[name]))
                if (y == k).any()
            }
            entry[f"{route}_agreement_per_site"] = {
                s: float(same[site_arr == s].mean()) for s in sorted(set(sites))
            }
        out["label_sets"][name] = entry
    head = out["label_sets"][labels[0]]
    out.update(
        labels=labels[0],
        png_accuracy=head["png_accuracy"],
        raw_fitted_accuracy=head["raw_fitted_accuracy"],
        raw_default_accuracy=head["raw_default_accuracy"],
        route_agreement=head["raw_fitted_agreement"],
        route_agreement_default=head["raw_default_agreement"],
    )
    for route in ROUTES[1:]:
        rel = _relative_l2(layers[route]["Logits"], layers["png"]["Logits"])
        out[f"{route}_logits_rel_l2"] = {
            "median": float(np.median(rel)),
            "max": float(np.max(rel)),
        }
    return out


def summary_line(result: Mapping[str, Any]) -> str:
    """The one line the terminal gets."""
    a = result["agreement"]
    sites = result["sites"]
    residuals = [
        s["residual_mean_abs"] for s in sites.values() if s["residual_mean_abs"] is not None
    ]
    worst = f"{max(residuals):.2f}" if residuals else "n/a"
    return (
        f"calibrate: {result['matched']} image(s) matched, {len(result['unmatched'])} unmatched"
        f" ({len(result.get('files_origin_left_out', []))} files_origin.csv row(s) left out); "
        f"{sum(1 for s in sites.values() if s['conversion'])} site(s) fitted, held-out residual "
        f"<= {worst} grey levels; {a['labels']} accuracy png {a['png_accuracy']:.3f}, raw fitted "
        f"{a['raw_fitted_accuracy']:.3f}, raw default {a['raw_default_accuracy']:.3f}; labels "
        f"agree with the PNGs' on {a['route_agreement']:.1%} (fitted), "
        f"{a['route_agreement_default']:.1%} (default) of {a['n_images']} held-out image(s)"
    )
