"""What every reader of new all-sky input hands back: :class:`Frame` lists, or a
:class:`ThemisError` naming the file.

The readers live in :mod:`oath.themis` (raw stream0 files, PNG/JPEG) and
:mod:`oath.themis_cdf` (L1 ASF CDF files); both import this module and neither imports the
other at module level, so the two have no import cycle.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

RAW_SUFFIXES = (".pgm", ".pgm.gz", ".pgm.bz2")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CDF_SUFFIXES = (".cdf",)  # THEMIS L1 ASF hour files, read by oath.themis_cdf


class ThemisError(ValueError):
    """An input could not be read or converted; the message names the file."""


@dataclass(frozen=True)
class Frame:
    """One image of an input file: counts (uint16, raw) or gray levels (uint8, PNG/JPEG)."""

    image: np.ndarray
    index: int  # 0-based position in its file
    timestamp: dt.datetime | None  # UTC, naive
    site: str | None  # THEMIS site code, e.g. "gill"
