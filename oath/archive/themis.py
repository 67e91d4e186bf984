"""New all-sky images for classification: raw THEMIS ASI files and PNG/JPEG, as OATH-like PNGs.

Clausen & Nickisch (2018) meant their classifier to label the THEMIS all-sky archive. This module
turns what a user has into images the OATH pipeline can read: one 8-bit grayscale PNG per image,
and a manifest that says where each came from.

Inputs
------
* Raw THEMIS ASI stream0 files, ``*_full.pgm.gz`` (also ``.pgm`` and ``.pgm.bz2``), read with the
  field's own reader, ``pyucalgarysrs`` (University of Calgary; ``PyUCalgarySRS().data.readers
  .read_themis``). A file holds a sequence of 256 x 256 16-bit big-endian PGM frames, typically
  20 a minute (one every 3 s), each preceded by comment lines ``#"<key>" <value>``; the reader
  takes the frame time from ``#"Image request start" 2014-03-10 06:00:00.063119 UTC`` and the
  site from ``#"Site unique ID" gill``. It returns the frames flipped top to bottom (its
  authors' display convention, origin at the top); we keep its orientation. Its file type
  comes from the name's ending, and it wants the archive's file name
  (``YYYYMMDD_HHMM_site_imagerNN_full.pgm.gz``): a renamed file is read through a temporary
  link with such a name. A file it cannot read completely (truncated, corrupt) is refused as a
  whole, as the reader does: we list it as failed with the reader's message.
* THEMIS L1 ASF CDF files, ``thg_l1_asf_SITE_YYYYMMDDHH_v01.cdf`` (one site-hour), read by
  :mod:`oath.archive.cdf` with ``cdflib``; their frames are turned to the stream0 orientation
  above and converted like raw frames.
* PNG and JPEG images are taken as they are: converted to 8-bit grayscale (alpha flattened on
  black) by ImageMagick through Wand, no crop, scaling or rotation. A THEMIS-style name
  (``20140310_0600_gill_...``) gives them a timestamp (to the minute) and a site.

From raw frame to OATH-like image: :mod:`oath.archive.conversion`.


How the defaults were chosen
----------------------------
What we relied on, and what we did not check:

* The reader's source (pyucalgarysrs 1.28.0, ``data/read/_themis.py``) for the format above.
* One real hour-file sample, the test data of ``ucalgary-srs/themis-imager-readfile``
  (Gillam, ``20140310_0600_gill_themis19_full.pgm.gz`` and ``..._0605_...full.pgm``, 40 frames,
  a quiet sky): the header says ``#"Ccd background" 3300``; pixels outside the field of view
  read 3450-3590 counts (median 3500); the sky inside has a median near 6,000, a 99th
  percentile of 9,300-9,700 and a 99.9th of 10,000-11,300 counts; a bright point source
  saturates at 65535. The sky disk of that imager is centred near row 127, column 131 and
  reaches the frame edge on most sides (radius about 125-128 pixels).
* For aurora we have no sample: the figure we were given is that typical aurora reaches
  roughly 15,000-20,000 counts. So ``low=3500`` puts the dark floor at black and ``high=15000``
  keeps auroral structure below saturation, a quiet sky landing around 50-130 of 255.
* We did not find the exact crop and scaling that made OATH's ``images/cropped_scaled``; these
  defaults are not the published preprocessing. Check a contact sheet of converted frames
  against OATH images before trusting class counts, and set per-site crops and angles.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.archive.cdf import read_asf_cdf
from oath.archive.conversion import Crop, Scaling, as_crop, as_scaling, frame_to_oath
from oath.archive.frames import (
    CDF_SUFFIXES,
    IMAGE_SUFFIXES,
    RAW_SUFFIXES,
    Frame,
    ThemisError,
    input_kind,
    parse_themis_name,
)
from oath.atomic import atomic_path, write_bytes
from oath.imaging.png import encode_png
from oath.imaging.rotate import RotationError, import_wand, rotate_image

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("file", "frame", "timestamp", "site", "png", "status")
STATUS_OK = "ok"
READER_NAME_PREFIX = "19700101_0000_"  # stand-in minute for renamed raw files (never filtered on)


class NoImagesError(ThemisError):
    """No input files at all; the message names the folder(s) looked in."""


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def name_stem(path: str | Path) -> str:
    """File name without its image suffix (``x_full.pgm.gz`` -> ``x_full``)."""
    name = Path(path).name
    for suffix in sorted(RAW_SUFFIXES + IMAGE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


@functools.lru_cache(maxsize=1)
def _themis_reader() -> Any:
    """pyucalgarysrs' THEMIS reader (imported on first use; it makes no folders or requests)."""
    import pyucalgarysrs

    return pyucalgarysrs.PyUCalgarySRS().data.readers.read_themis


def _read_with_reader(path: Path) -> Any:
    """Call the reader; a name it cannot take a minute from goes through a well-named link."""
    read_themis = _themis_reader()
    try:
        dt.datetime.strptime(path.name[:13], "%Y%m%d_%H%M")
    except ValueError:
        pass
    else:
        return read_themis(str(path), quiet=True)
    with tempfile.TemporaryDirectory(prefix="oath_themis_") as tmp:
        alias = Path(tmp) / (READER_NAME_PREFIX + path.name)
        try:
            os.symlink(path.resolve(), alias)
        except OSError:
            shutil.copyfile(path, alias)
        log.info("%s: not an archive file name; read as %s", path, alias.name)
        return read_themis(str(alias), quiet=True)


def _read_raw(path: Path) -> list[Frame]:
    data = _read_with_reader(path)
    if data.problematic_files:
        reason = "; ".join(p.error_message for p in data.problematic_files)
        raise ThemisError(f"{path}: pyucalgarysrs could not read it ({reason}).")
    images = np.asarray(data.data)
    if images.ndim != 3 or images.shape[2] == 0:
        raise ThemisError(f"{path}: no image frames found.")
    n_frames = images.shape[2]
    name_minute, name_site = parse_themis_name(path)
    timestamps: list[dt.datetime | None] = list(data.timestamp)
    metadata: list[dict[str, str]] = list(data.metadata)
    if len(timestamps) != n_frames or len(metadata) != n_frames:
        log.warning(
            "%s: %d frames but %d metadata blocks; frame times left empty",
            path,
            n_frames,
            len(metadata),
        )
        timestamps = [None] * n_frames
        metadata = [{}] * n_frames
    frames = []
    for k in range(n_frames):
        site = (metadata[k].get("Site unique ID") or "").strip() or name_site
        frames.append(
            Frame(
                image=np.ascontiguousarray(images[:, :, k], dtype=np.uint16),
                index=k,
                timestamp=timestamps[k],
                site=site,
            )
        )
    return frames


def read_gray8(path: str | Path) -> np.ndarray:
    """An image file as 8-bit grayscale (ImageMagick via Wand; alpha flattened on black)."""
    wand = import_wand()
    try:
        with wand.Image(filename=str(path)) as img:
            if len(img.sequence) > 1:
                log.info("%s: %d frames, the first is used", path, len(img.sequence))
            with img.sequence[0].clone() as first:
                first.background_color = wand.Color("black")
                first.alpha_channel = "remove"
                first.transform_colorspace("gray")
                first.depth = 8
                pixels = first.export_pixels(channel_map="R", storage="char")
                height, width = first.height, first.width
    except wand.WandException as exc:
        raise ThemisError(f"{path}: cannot read as an image ({exc}).") from exc
    return np.frombuffer(bytes(pixels), dtype=np.uint8).reshape(height, width).copy()


def read_frames(path: str | Path) -> list[Frame]:
    """The frames of one input: every frame of a raw THEMIS file, or the one image of a PNG/JPEG.

    Raw frames are uint16 counts as pyucalgarysrs returns them; PNG/JPEG images uint8 gray.
    Raises :class:`ThemisError` naming the file when it is unreadable, truncated or of another
    type.
    """
    path = Path(path)
    kind = input_kind(path)
    if kind is None:
        raise ThemisError(
            f"{path}: unsupported file type; give raw THEMIS files "
            f"({', '.join(RAW_SUFFIXES + CDF_SUFFIXES)}) or images ({', '.join(IMAGE_SUFFIXES)})."
        )
    if not path.is_file():
        raise ThemisError(f"{path}: no such file.")
    if kind == "raw":
        return _read_raw(path)
    if kind == "cdf":
        return read_asf_cdf(path)
    minute, site = parse_themis_name(path)
    return [Frame(image=read_gray8(path), index=0, timestamp=minute, site=site)]


def _write_png(gray: np.ndarray, target: Path, angle: float = 0.0) -> None:
    """Write an 8-bit PNG atomically; rotate it by ``angle`` with oath.imaging.rotate when
    non-zero."""
    if not angle:
        write_bytes(target, encode_png(gray))
        return
    unrotated = target.with_name(f".{target.stem}.unrotated.png")
    try:
        unrotated.write_bytes(encode_png(gray))
        rotate_image(unrotated, target, angle)  # writes the target atomically itself
    finally:
        unrotated.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# A folder of inputs -> PNGs + manifest
# --------------------------------------------------------------------------------------------
def collect_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """Files named, plus every non-hidden file under folders named (recursively, sorted).

    Raises :class:`NoImagesError` naming the folder(s) when nothing is found, and
    :class:`ThemisError` for a path that does not exist.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise NoImagesError("no new images given: set new_images to a folder of images.")
    found: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found.extend(
                sorted(
                    (
                        p
                        for p in path.rglob("*")
                        if p.is_file()
                        and not any(part.startswith(".") for part in p.relative_to(path).parts)
                    ),
                    key=lambda p: str(p),
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ThemisError(f"{path}: no such file or folder (new_images).")
    if not found:
        where = ", ".join(str(p) for p in inputs)
        raise NoImagesError(
            f"no image files found in {where}: expected raw THEMIS files "
            f"({', '.join(RAW_SUFFIXES + CDF_SUFFIXES)}) or images ({', '.join(IMAGE_SUFFIXES)})."
        )
    return found


def _timestamp_text(value: dt.datetime | None) -> str:
    return "" if value is None else value.isoformat(timespec="microseconds") + "Z"


def _unique_name(stem: str, used: set[str]) -> str:
    name, k = f"{stem}.png", 2
    while name in used:
        name, k = f"{stem}_{k}.png", k + 1
    used.add(name)
    return name


def _manifest_row(path: Path, frame: Frame | None, png: str, status: str) -> dict[str, Any]:
    """One manifest row: an input file, its frame (None when the whole file failed), the PNG."""
    return {
        "file": str(path),
        "frame": None if frame is None else frame.index,
        "timestamp": _timestamp_text(None if frame is None else frame.timestamp),
        "site": "" if frame is None else (frame.site or ""),
        "png": png,
        "status": status,
    }


def prepare_images(
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    crop: Crop | Mapping[str, float] | None = None,
    scaling: Scaling | Mapping[str, Any] | None = None,
    site_crops: Mapping[str, Crop | Mapping[str, float]] | None = None,
    site_angles: Mapping[str, float] | None = None,
    manifest: str | Path | None = None,
) -> pd.DataFrame:
    """Write one OATH-like PNG per raw frame or image under ``out_dir``; return the manifest.

    ``inputs`` are files and/or folders (searched recursively). Raw frames are converted with
    :func:`frame_to_oath` (``site_crops`` overrides ``crop`` for a site) and rotated by
    ``site_angles[site]`` (degrees, default 0); PNG/JPEG inputs are only made 8-bit grayscale.
    PNG names: ``<stem>_fNN.png`` for raw frames, ``<stem>.png`` for images (``_2``... on clashes).

    The manifest has one row per written PNG and one per input that failed, columns
    ``file`` (input path), ``frame`` (0-based, empty for a failed file), ``timestamp`` (UTC,
    ISO 8601, empty when unknown), ``site``, ``png`` (output path, empty when failed) and
    ``status`` (``ok`` or ``failed: <reason>``); also written as CSV to ``manifest`` if given.
    Raises :class:`NoImagesError` when there are no input files at all.
    """
    crop = as_crop(crop)
    scaling = as_scaling(scaling)
    crops = {site: as_crop(value) for site, value in (site_crops or {}).items()}
    angles = {site: float(value) for site, value in (site_angles or {}).items()}
    files = collect_inputs(inputs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    used: set[str] = set()

    def failed(path: Path, reason: str, frame: Frame | None = None) -> None:
        log.warning(
            "%s%s: failed: %s", path, "" if frame is None else f" frame {frame.index}", reason
        )
        rows.append(_manifest_row(path, frame, "", f"failed: {reason}"))

    for path in files:
        kind = input_kind(path)
        try:
            frames = read_frames(path)
        except ThemisError as exc:
            failed(path, str(exc).removeprefix(f"{path}: "))
            continue
        except Exception as exc:  # the reader or ImageMagick on a damaged file
            failed(path, f"{type(exc).__name__}: {exc}")
            continue
        for frame in frames:
            stem = name_stem(path) + (f"_f{frame.index:02d}" if kind != "image" else "")
            target = out_dir / _unique_name(stem, used)
            try:
                if kind != "image":  # counts: stream0 or L1 CDF frames
                    gray = frame_to_oath(frame.image, crops.get(frame.site or "", crop), scaling)
                    angle = angles.get(frame.site or "", 0.0)
                else:
                    gray, angle = frame.image, 0.0
                _write_png(gray, target, angle)
            except (ThemisError, RotationError, OSError) as exc:
                failed(path, str(exc), frame)
                continue
            rows.append(_manifest_row(path, frame, str(target), STATUS_OK))
    table = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    table["frame"] = table["frame"].astype("Int64")
    n_ok = int((table["status"] == STATUS_OK).sum())
    n_failed_files = table.loc[table["status"] != STATUS_OK, "file"].nunique()
    log.info(
        "%d input file(s): %d image(s) written to %s, %d file(s) with failures",
        len(files),
        n_ok,
        out_dir,
        n_failed_files,
    )
    if manifest is not None:
        write_prepared_table(table, manifest)
    return table


def write_prepared_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write the table of prepared frames (one row per input frame, ``MANIFEST_COLUMNS``) as
    the shard's manifest CSV, atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def read_prepared_table(path: str | Path) -> pd.DataFrame:
    """Read the table of prepared frames that :func:`prepare_images` wrote as a shard's
    manifest CSV (empty cells as empty strings)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ThemisError(f"{path}: not a readable manifest CSV ({exc}).") from exc
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise ThemisError(f"{path}: manifest lacks column(s) {', '.join(missing)}.")
    table["frame"] = pd.to_numeric(table["frame"], errors="coerce").astype("Int64")
    return table


def ok_images(manifest: str | Path) -> list[str]:
    """The PNGs of a manifest that were written (status ``ok``), in manifest order."""
    table = read_prepared_table(manifest)
    return table.loc[table["status"] == STATUS_OK, "png"].tolist()
