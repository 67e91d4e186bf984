"""Synthetic raw THEMIS ASI files in the real stream0 format, for tests and benchmarks.

A stream0 ``*_full.pgm.gz`` file is a gzip of one-minute's frames (20 at 3 s cadence), each a
binary PGM: ``P5``, comment lines ``#"<key>" <value>`` (the station block on the first frame
only, as in the archive), ``256 256``, ``65535``, then 256 x 256 big-endian uint16 counts. The
header lines are copied from a 2014 Gillam file; the University of Calgary reader
(``pyucalgarysrs``) reads what is written here, frame times and site included (see
:mod:`oath.archive.themis`). The archive lays files out as
``YYYY/MM/DD/SITE_themisNN/ut HH/YYYYMMDD_HHMM_SITE_themisNN_full.pgm.gz``.

The frames are not aurora: a dark floor near 3,500 counts outside a sky disk, a sky near 6,000
counts, and a bright east-west arc whose position drifts from frame to frame, so that converted
frames differ and class scores vary.
"""

from __future__ import annotations

import datetime as dt
import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from oath.atomic import write_bytes

CADENCE = dt.timedelta(seconds=3)
FRAME_SHAPE = (256, 256)


def stream0_bytes(
    frames: Sequence[np.ndarray],
    site: str = "gill",
    start: dt.datetime = dt.datetime(2014, 3, 10, 6, 0, 0, 63119),
    imager: str = "themis19",
    cadence: dt.timedelta = CADENCE,
) -> bytes:
    """The uncompressed stream0 PGM bytes of ``frames`` (uint16, any 2-d shape)."""
    out = []
    for k, frame in enumerate(frames):
        frame = np.asarray(frame)
        request = start + k * cadence
        lines = ["P5"]
        if k == 0:
            lines += [
                '#"Revised" 2006-05-22',
                '#"Project unique ID" themis-gbo',
                f'#"Site unique ID" {site}',
                f'#"Imager unique ID" {imager}',
                '#"Ccd background" 3300',
                '#"Pixel depth" 16 bits',
                f'#"Site unique ID" {site}',
            ]
        readout = request + dt.timedelta(seconds=1)
        lines += [
            '#"Mode unique ID" full',
            f'#"Mode sequence number" {2027380 + k}',
            f'#"Image request start" {request:%Y-%m-%d %H:%M:%S.%f} UTC',
            f'#"Image readout start" {readout:%Y-%m-%d %H:%M:%S.%f} UTC',
            '#"Exposure plus initial readout"    985.07 ms',
            f"{frame.shape[1]} {frame.shape[0]}",
            "65535",
        ]
        out.append(("\n".join(lines) + "\n").encode("ascii"))
        out.append(frame.astype(">u2").tobytes())
    return b"".join(out)


def archive_name(minute: dt.datetime, site: str, imager: str = "themis19") -> str:
    """The archive's file name of one minute: ``20140310_0600_gill_themis19_full.pgm.gz``."""
    return f"{minute:%Y%m%d_%H%M}_{site}_{imager}_full.pgm.gz"


def archive_path(
    root: str | Path, minute: dt.datetime, site: str, imager: str = "themis19"
) -> Path:
    """Where the UCalgary archive keeps one minute's file under ``root``."""
    return (
        Path(root)
        / f"{minute:%Y/%m/%d}"
        / f"{site}_{imager}"
        / f"ut{minute:%H}"
        / archive_name(minute, site, imager)
    )


def synthetic_frames(n_frames: int, rng: np.random.RandomState) -> list[np.ndarray]:
    """``n_frames`` 256 x 256 uint16 frames: dark floor, sky disk, a drifting bright arc."""
    rows, cols = np.mgrid[0 : FRAME_SHAPE[0], 0 : FRAME_SHAPE[1]].astype(np.float32)
    disk = (rows - 127.5) ** 2 + (cols - 127.5) ** 2 <= 125.0**2
    frames = []
    for _ in range(n_frames):
        arc_row = rng.uniform(60, 200)
        brightness = rng.uniform(0, 12000)
        sky = 6000 + brightness * np.exp(-(((rows - arc_row) / rng.uniform(4, 20)) ** 2))
        noise = rng.normal(0, 150, FRAME_SHAPE).astype(np.float32)
        counts = np.where(disk, sky, 3500.0) + noise
        frames.append(np.clip(counts, 0, 65535).astype(np.uint16))
    return frames


def write_stream0(
    path: str | Path,
    frames: Sequence[np.ndarray],
    site: str,
    start: dt.datetime,
    imager: str = "themis19",
) -> Path:
    """Write one raw file (gzip when ``path`` ends in ``.gz``), atomically."""
    path = Path(path)
    data = stream0_bytes(frames, site=site, start=start, imager=imager)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=1, mtime=0)  # mtime 0: the same bytes each time
    write_bytes(path, data)
    return path


def write_synthetic_hour(
    root: str | Path,
    site: str,
    hour: dt.datetime,
    *,
    n_files: int = 60,
    frames_per_file: int = 20,
    seed: int = 0,
) -> list[Path]:
    """One site-hour of raw files in the archive layout under ``root`` (one file a minute)."""
    if not 1 <= n_files <= 60:
        raise ValueError(f"an hour holds 1 to 60 one-minute files, not {n_files}")
    rng = np.random.RandomState(seed)
    hour = hour.replace(minute=0, second=0, microsecond=0)
    paths = []
    for minute in range(n_files):
        start = hour + dt.timedelta(minutes=minute, microseconds=63119)
        frames = synthetic_frames(frames_per_file, rng)
        paths.append(write_stream0(archive_path(root, start, site), frames, site, start))
    return paths
