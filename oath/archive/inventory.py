"""The list of new input files, made once per run, and their stable shard keys.

Classifying an archive starts from a listing: a folder (the UCalgary archive layout
``YYYY/MM/DD/SITE_themisNN/utHH/YYYYMMDD_HHMM_SITE_themisNN_full.pgm.gz``, or any flat or nested
folder, walked once), a single image or raw file, or a text file listing paths one a line (for
archives on slow filesystems: nothing is walked). The result is an inventory table, one row per
file: ``file`` (path as listed), ``kind`` (``raw``, ``image`` or ``other``) and ``shard``.

Shard keys say what the data is, so they do not move when files are added elsewhere:

* a file with a THEMIS archive name (raw, or a PNG/JPEG named like one) belongs to
  ``<site>/<YYYY-MM-DDTHH>`` (``unit="hour"``, the default) or ``<site>/<YYYY-MM-DD>``
  (``unit="day"``), from the minute and site in its name;
* any other file (a PNG/JPEG without a THEMIS name, or a file of an unsupported type, which its
  shard lists as failed) belongs to ``images/h<NNN>``, a hash bucket of its file name (CRC-32
  modulo ``image_buckets``): adding or changing one such file touches one bucket only, and a
  file keeps its bucket when its folder moves.

The workflow writes the inventory once per run (in the main Snakemake process) and its jobs,
on a cluster too, read it instead of walking the archive again.
"""

from __future__ import annotations

import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from oath.archive.frames import (
    CDF_SUFFIXES,
    IMAGE_SUFFIXES,
    RAW_SUFFIXES,
    archive_of,
    input_kind,
    parse_archive_name,
)
from oath.atomic import atomic_path

log = logging.getLogger(__name__)

UNITS = ("hour", "day")
COLUMNS = ("file", "archive", "shard")
IMAGE_SHARD_PREFIX = "images"


class InventoryError(ValueError):
    """The input listing is missing, empty or names missing files; the message says which."""


def _walk(folder: Path) -> Iterator[Path]:
    """Every non-hidden file under ``folder`` (hidden folders skipped), in no particular order."""
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                yield Path(parent) / name


def _read_listing(listing: Path) -> list[Path]:
    """Paths of a text listing, one a line (blank and ``#`` lines skipped; relative to it)."""
    paths = []
    for line in listing.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            path = Path(line)
            paths.append(path if path.is_absolute() else listing.parent / path)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InventoryError(
            f"{listing}: lists file(s) that do not exist: {', '.join(missing[:5])}{more}. "
            "Fix the listing or the paths in it."
        )
    return paths


def list_inputs(source: str | Path) -> list[Path]:
    """The input files of ``source`` (folder, image/raw file, or text listing), sorted.

    Raises :class:`InventoryError` naming ``source`` when it does not exist or lists nothing.
    """
    source = Path(source)
    if source.is_dir():
        files = list(_walk(source))
    elif source.is_file():
        files = [source] if input_kind(source) else _read_listing(source)
    else:
        raise InventoryError(
            f"{source}: no such folder or file (new_images). Give a folder of raw THEMIS files "
            "or images, or a text file listing their paths."
        )
    if not files:
        raise InventoryError(
            f"no input files in {source}: expected raw THEMIS files "
            f"({', '.join(RAW_SUFFIXES)}), THEMIS L1 CDF files ({', '.join(CDF_SUFFIXES)}) "
            f"or images ({', '.join(IMAGE_SUFFIXES)})."
        )
    return sorted(files, key=str)


def shard_key(path: str | Path, unit: str = "hour", image_buckets: int = 8) -> str:
    """The stable shard of one file: ``gill/2014-03-10T06`` (hour), ``gill/2014-03-10`` (day),
    or ``images/h003`` for files without a THEMIS name (see the module docstring).

    >>> shard_key("2014/03/10/gill_themis19/ut06/20140310_0612_gill_themis19_full.pgm.gz")
    'gill/2014-03-10T06'
    >>> shard_key("20140310_0612_gill_themis19_full.pgm.gz", unit="day")
    'gill/2014-03-10'
    """
    if unit not in UNITS:
        raise InventoryError(f"shard unit must be one of {UNITS}, not {unit!r}.")
    minute, site = parse_archive_name(path)
    if minute is not None and site is not None:
        return f"{site}/{minute:%Y-%m-%dT%H}" if unit == "hour" else f"{site}/{minute:%Y-%m-%d}"
    if image_buckets < 1:
        raise InventoryError(f"image_buckets must be at least 1, not {image_buckets}.")
    bucket = zlib.crc32(Path(path).name.encode("utf-8")) % image_buckets
    return f"{IMAGE_SHARD_PREFIX}/h{bucket:03d}"


def make_inventory(source: str | Path, unit: str = "hour", image_buckets: int = 8) -> pd.DataFrame:
    """One row per input file of ``source`` (``file``, ``kind``, ``shard``), by shard and file."""
    files = list_inputs(source)
    table = pd.DataFrame(
        {
            "file": [str(p) for p in files],
            "archive": [archive_of(p) or "other" for p in files],
            "shard": [shard_key(p, unit, image_buckets) for p in files],
        },
        columns=list(COLUMNS),
    )
    table = table.sort_values(["shard", "file"], kind="stable", ignore_index=True)
    log.info(
        "%s: %d file(s) in %d shard(s) of one %s",
        source,
        len(table),
        table["shard"].nunique(),
        unit,
    )
    return table


def write_inventory(table: pd.DataFrame, path: str | Path) -> bool:
    """Store the inventory as Parquet (atomically); leave an equal stored one untouched.

    Returns whether the file was (re)written, so an unchanged listing keeps its date.
    """
    path = Path(path)
    if path.is_file():
        try:
            if read_inventory(path).equals(table[list(COLUMNS)]):
                return False
        except InventoryError:
            pass  # unreadable: write it again
    with atomic_path(path, suffix=".parquet") as tmp:
        table[list(COLUMNS)].to_parquet(tmp, index=False)
    return True


def read_inventory(path: str | Path) -> pd.DataFrame:
    """An inventory written by :func:`write_inventory`."""
    path = Path(path)
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InventoryError(f"{path}: not a readable inventory ({exc}); delete it.") from exc
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InventoryError(f"{path}: lacks column(s) {missing}; delete it to list again.")
    return table[list(COLUMNS)].astype(str).reset_index(drop=True)


def shard_files(table: pd.DataFrame) -> dict[str, list[str]]:
    """Shard key -> its files (sorted), shards sorted by key."""
    return {
        shard: sorted(group["file"].tolist()) for shard, group in table.groupby("shard", sort=True)
    }
