"""Calibration, step 1: each OATH image's raw frame. Station and time from ``files_origin.csv``
(rows that cannot be read are listed, not raised), the raw stream0 or L1 CDF files of that
station and minute (given, or fetched with pyucalgarysrs), the frame nearest in time within
the tolerance; the matched frames into one HDF5 file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.archive.frames import Frame, ThemisError, input_kind, parse_archive_name
from oath.archive.themis import read_frames
from oath.atomic import atomic_path, write_bytes
from oath.dataset.origins import (
    THEMIS_LONGITUDES,
    ProtocolInputError,
    _find_columns,
    _read_table,
    _stations_and_times,
    _whole_numbers,
)

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
