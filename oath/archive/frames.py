"""What every reader of new all-sky input hands back: :class:`Frame` lists, or a
:class:`ThemisError` naming the file.

The readers live in :mod:`oath.archive.themis` (raw stream0 files, PNG/JPEG) and
:mod:`oath.archive.cdf` (L1 ASF CDF files); both import this module and neither imports the
other at module level, so the two have no import cycle.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RAW_SUFFIXES = (".pgm", ".pgm.gz", ".pgm.bz2")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CDF_SUFFIXES = (".cdf",)  # THEMIS L1 ASF hour files, read by oath.archive.cdf
# Which archive a file comes from, by its input kind (see input_kind): the column `archive` of
# the inventory and of the predictions.
ARCHIVES = {"raw": "ucalgary_stream0", "cdf": "themis_l1_cdf", "image": "image"}
# UCalgary stream0 names start with the minute: 20140310_0600_gill_themis19_full.pgm.gz
THEMIS_NAME = re.compile(r"^(?P<date>\d{8})_(?P<time>\d{4})_(?P<site>[a-z]{4})_")
# THEMIS L1 ASF files hold one site-hour: thg_l1_asf_gako_2011010617_v01.cdf
L1_ASF_NAME = re.compile(r"^thg_l1_asf_(?P<site>[a-z0-9]{4})_(?P<hour>\d{10})_v\d+\.cdf$", re.I)


class ThemisError(ValueError):
    """An input could not be read or converted; the message names the file."""


@dataclass(frozen=True)
class Frame:
    """One image of an input file: counts (uint16, raw) or gray levels (uint8, PNG/JPEG)."""

    image: np.ndarray
    index: int  # 0-based position in its file
    timestamp: dt.datetime | None  # UTC, naive
    site: str | None  # THEMIS site code, e.g. "gill"


def input_kind(path: str | Path) -> str | None:
    """'raw' for THEMIS PGM files, 'cdf' for L1 ASF CDFs, 'image' for PNG/JPEG, else None."""
    name = Path(path).name.lower()
    if name.endswith(RAW_SUFFIXES):
        return "raw"
    if name.endswith(CDF_SUFFIXES):
        return "cdf"
    if name.endswith(IMAGE_SUFFIXES):
        return "image"
    return None


def archive_of(path: str | Path) -> str:
    """The archive a file comes from: ucalgary_stream0, themis_l1_cdf or image ("" if none)."""
    return ARCHIVES.get(input_kind(path) or "", "")


def parse_themis_name(path: str | Path) -> tuple[dt.datetime | None, str | None]:
    """Minute and site from a stream0 archive file name, or (None, None)."""
    match = THEMIS_NAME.match(Path(path).name)
    if not match:
        return None, None
    try:
        minute = dt.datetime.strptime(match["date"] + match["time"], "%Y%m%d%H%M")
    except ValueError:
        return None, match["site"]
    return minute, match["site"]


def parse_asf_name(path: str | Path) -> tuple[dt.datetime | None, str | None]:
    """UT hour and site from an L1 ASF file name, or (None, None)."""
    match = L1_ASF_NAME.match(Path(path).name)
    if not match:
        return None, None
    try:
        hour = dt.datetime.strptime(match["hour"], "%Y%m%d%H")
    except ValueError:
        return None, match["site"].lower()
    return hour, match["site"].lower()


def parse_archive_name(path: str | Path) -> tuple[dt.datetime | None, str | None]:
    """Start time and site from a stream0 or L1 CDF archive file name, or (None, None)."""
    if input_kind(path) == "cdf":
        return parse_asf_name(path)
    return parse_themis_name(path)
