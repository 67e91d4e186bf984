"""THEMIS Level-1 ASF CDF files (``thg_l1_asf_SITE_YYYYMMDDHH_v01.cdf``) as :class:`Frame` lists.

The other THEMIS all-sky archive: one file per site and UT hour (THEMIS GBO, UC Berkeley; the
CDFs themisasi and SPEDAS read), read with ``cdflib`` (pure Python).

Layout (checked on a real file, ``thg_l1_asf_gako_2011010617_v01.cdf`` from themisasi's tests)
---------------------------------------------------------------------------------------------
* ``thg_asf_<site>``: CDF_UINT2, record-varying, dims [256, 256] (row-major), one record per
  frame, counts; gzip-compressed; ``DEPEND_0`` is ``thg_asf_<site>_epoch``.
* ``thg_asf_<site>_epoch``: CDF_EPOCH (ms since 0000-01-01), start of exposure, one per frame.
  It is a virtual variable (``FUNCT comp_themis_epoch``: ``_epoch0`` plus ``_time``); files
  that store no records for it are read from ``thg_asf_<site>_epoch0`` (CDF_EPOCH of
  1970-01-01) plus ``thg_asf_<site>_time`` (CDF_REAL8, UTC seconds since 1970, unleaped).
* The site is the file name's, else the one ``thg_asf_<site>`` variable in the file.

Orientation (see README, "THEMIS L1 CDF files")
-----------------------------------------------
``oath.archive.themis`` keeps stream0 frames as pyucalgarysrs returns them: the PGM file's rows in
reverse order (``np.flip(axis=0)``). A CDF frame as cdflib returns it is the PGM frame in file
order mirrored left-right (``cdf = pgm_file_order[:, ::-1]``), so the reader turns it by 180
degrees (``cdf[::-1, ::-1]``) and both archives give the same array. Evidence: SPEDAS
``thm_mosaic_array.pro`` pairs CDF images with the calibration arrays as they are but, for PGM
frames, reverses the calibration along its first IDL dimension ("same orientation as images");
asilib and SPEDAS pair file-order PGM frames with the UCalgary skymaps as they are; and the
real gako CDF's sky disk lines up with the gako skymap's field of view only after the
left-right mirror. No hour exists here in both archives, so this is not checked pixel by pixel.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from oath.archive.frames import CDF_SUFFIXES, Frame, ThemisError, parse_asf_name
from oath.atomic import atomic_path

log = logging.getLogger(__name__)

FRAMES_VARIABLE = re.compile(r"^thg_asf_(?P<site>[a-z0-9]{4})$")
EPOCH_1970_MS = 62167219200000.0  # CDF_EPOCH of 1970-01-01T00:00:00
FRAME_SHAPE = (256, 256)
CDF_MAGIC_STARTS = (b"\xcd\xf3", b"\xcd\xf2", b"\x00\x00")  # CDF 3, CDF 2.6+, older
GDR_RECORD_TYPE = 2  # the global descriptor record, whose EOF field is the file size


def is_asf_cdf(path: str | Path) -> bool:
    """True for a file name ending in ``.cdf`` (any case)."""
    return Path(path).name.lower().endswith(CDF_SUFFIXES)


def to_stream0_orientation(cdf_frame: np.ndarray) -> np.ndarray:
    """A frame as stored in an L1 CDF, turned the way oath.archive.themis holds stream0 frames."""
    return np.ascontiguousarray(np.asarray(cdf_frame)[::-1, ::-1])


def from_stream0_orientation(frame: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_stream0_orientation` (a 180-degree turn is its own inverse)."""
    return to_stream0_orientation(frame)


def _recorded_size(header: bytes, handle: Any) -> int | None:
    """The file size a CDF 3 file recorded when it was closed (its GDR's EOF), or None."""
    if header[:4] != b"\xcd\xf3\x00\x01" or header[4:8] != b"\x00\x00\xff\xff":
        return None  # CDF 2.x or a whole-file-compressed CDF: no cheap check
    gdr_offset = struct.unpack(">q", header[20:28])[0]
    handle.seek(gdr_offset)
    gdr = handle.read(44)
    if len(gdr) < 44 or struct.unpack(">i", gdr[8:12])[0] != GDR_RECORD_TYPE:
        return -1  # the header points past the end: cut off before its first records
    return struct.unpack(">q", gdr[36:44])[0]


def _open(path: Path) -> Any:
    """cdflib's reader for a CDF file, after checking the magic number and the file size."""
    import cdflib

    try:
        with path.open("rb") as handle:
            header = handle.read(28)
            if not header:
                raise ThemisError(f"{path}: empty file; download it again.")
            if header[:2] not in CDF_MAGIC_STARTS:
                raise ThemisError(
                    f"{path}: not a CDF file (it does not start with the CDF magic number); "
                    "give THEMIS L1 ASF files as downloaded (thg_l1_asf_SITE_YYYYMMDDHH_v01.cdf)."
                )
            recorded = _recorded_size(header, handle) if len(header) == 28 else -1
    except OSError as exc:
        raise ThemisError(f"{path}: cannot open ({exc}).") from exc
    size = path.stat().st_size
    if recorded is not None and (recorded < 0 or size < recorded):
        held = "cut off inside its header" if recorded < 0 else f"of the {recorded} it holds"
        raise ThemisError(f"{path}: truncated ({size} bytes, {held}); download it again.")
    try:
        return cdflib.CDF(str(path))
    except Exception as exc:  # cdflib raises OSError, ValueError, struct/zlib errors
        raise ThemisError(
            f"{path}: cdflib cannot read it, truncated or corrupt? ({type(exc).__name__}: {exc})"
        ) from exc


def _site(path: Path, variables: Sequence[str]) -> str:
    _, name_site = parse_asf_name(path)
    if name_site is not None:
        if f"thg_asf_{name_site}" not in variables:
            raise ThemisError(
                f"{path}: no variable thg_asf_{name_site} (the frames of site {name_site!r} "
                f"named in the file name); variables found: {', '.join(variables) or 'none'}."
            )
        return name_site
    sites = sorted({m["site"] for v in variables if (m := FRAMES_VARIABLE.match(v))})
    if len(sites) != 1:
        raise ThemisError(
            f"{path}: expected one THEMIS ASF frame variable thg_asf_<site>, found "
            f"{sites or 'none'}; variables: {', '.join(variables) or 'none'}."
        )
    return sites[0]


def _records(cdf: Any, name: str) -> int:
    """Records stored for a variable (0 for a virtual one with none)."""
    return int(cdf.varinq(name).Last_Rec) + 1


def _epochs_ms(path: Path, cdf: Any, site: str, variables: Sequence[str]) -> np.ndarray:
    """CDF_EPOCH milliseconds of each frame: ``_epoch`` records, else ``_epoch0 + _time``."""
    epoch, epoch0, seconds = (f"thg_asf_{site}{s}" for s in ("_epoch", "_epoch0", "_time"))
    if epoch in variables and _records(cdf, epoch) > 0:
        return np.atleast_1d(np.asarray(cdf.varget(epoch), dtype=np.float64))
    if epoch0 in variables and seconds in variables and _records(cdf, seconds) > 0:
        base = float(np.asarray(cdf.varget(epoch0), dtype=np.float64).ravel()[0])
        offsets = np.atleast_1d(np.asarray(cdf.varget(seconds), dtype=np.float64))
        return base + 1000.0 * offsets
    raise ThemisError(
        f"{path}: no frame times: neither {epoch} with records nor {epoch0} and {seconds}; "
        f"variables found: {', '.join(variables)}."
    )


def _as_datetimes(epochs_ms: np.ndarray) -> list[dt.datetime | None]:
    """Naive UTC datetimes, rounded to CDF_EPOCH's millisecond; fill values become None."""
    out: list[dt.datetime | None] = []
    for value in epochs_ms:
        if not np.isfinite(value) or value <= 0:
            out.append(None)
            continue
        out.append(
            dt.datetime(1970, 1, 1)
            + dt.timedelta(milliseconds=float(np.rint(value) - EPOCH_1970_MS))
        )
    return out


def _frame_layout(path: Path, cdf: Any) -> tuple[str, list[dt.datetime | None], int]:
    """Site, frame times and frame count, checked against each other; no frame is read."""
    variables = list(cdf.cdf_info().zVariables) + list(cdf.cdf_info().rVariables)
    site = _site(path, variables)
    name = f"thg_asf_{site}"
    info = cdf.varinq(name)
    if list(info.Dim_Sizes) != list(FRAME_SHAPE) or "INT" not in info.Data_Type_Description:
        raise ThemisError(
            f"{path}: {name} holds {info.Data_Type_Description} {info.Dim_Sizes}, not "
            "256 x 256 integer counts."
        )
    n_frames = _records(cdf, name)
    if n_frames == 0:
        raise ThemisError(f"{path}: no image frames in {name}.")
    epochs = _epochs_ms(path, cdf, site, variables)
    if len(epochs) != n_frames:
        raise ThemisError(
            f"{path}: {n_frames} frames in {name} but {len(epochs)} frame times; the file "
            "is inconsistent (download it again)."
        )
    times = _as_datetimes(epochs)
    if any(t is None for t in times):
        log.warning("%s: %d frame time(s) are fill values", path, sum(t is None for t in times))
    return site, times, n_frames


def iter_asf_cdf(path: str | Path, chunk: int = 100) -> Iterator[Frame]:
    """The frames of a THEMIS L1 ASF CDF file, ``chunk`` records read at a time.

    Frames are uint16 counts turned as :func:`to_stream0_orientation` says, with their UTC
    exposure start (to the millisecond), the site and their 0-based index. Raises
    :class:`ThemisError` naming the file for a file that is not a CDF, is truncated or
    corrupt, lacks the frame or time variables, or holds a different number of frames and
    times; all of these are checked before the first frame is yielded.
    """
    path = Path(path)
    if not path.is_file():
        raise ThemisError(f"{path}: no such file.")
    cdf = _open(path)
    try:
        site, times, n_frames = _frame_layout(path, cdf)
    except ThemisError:
        raise
    except Exception as exc:  # damaged records surface as zlib/struct/numpy errors
        raise ThemisError(f"{path}: cdflib cannot read it ({type(exc).__name__}: {exc}).") from exc
    for start in range(0, n_frames, chunk):
        end = min(start + chunk, n_frames) - 1
        try:
            block = np.asarray(cdf.varget(f"thg_asf_{site}", startrec=start, endrec=end))
        except Exception as exc:
            raise ThemisError(
                f"{path}: cdflib cannot read frames {start}-{end}, truncated or corrupt? "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        block = block.reshape(-1, *FRAME_SHAPE)
        for offset, stored in enumerate(block):
            k = start + offset
            image = to_stream0_orientation(stored).astype(np.uint16, copy=False)
            yield Frame(image=image, index=k, timestamp=times[k], site=site)


def read_asf_cdf(path: str | Path) -> list[Frame]:
    """Every frame of a THEMIS L1 ASF CDF file (see :func:`iter_asf_cdf`)."""
    return list(iter_asf_cdf(path))


# --------------------------------------------------------------------------------------------
# Synthetic L1 ASF files (tests and benchmarks; no download)
# --------------------------------------------------------------------------------------------
CDF_UINT2, CDF_REAL8, CDF_EPOCH = 12, 22, 31  # cdflib's data type codes
EPOCH_FILL = -1e31


def _global_attributes(site: str, hour: dt.datetime) -> dict[str, dict[int, str]]:
    """The global attributes of a real L1 ASF file, for ``site`` and ``hour``."""
    file_id = f"thg_l1_asf_{site}_{hour:%Y%m%d%H}_v01"
    values = {
        "Project": "THEMIS",
        "Source_name": "THG_L1>THEMIS Ground Based Observatory",
        "Discipline": "Space Physics>Magnetospheric Science",
        "Data_type": "ASF>All Sky Imager, Full resolution images, High resolution",
        "Descriptor": f"{site.upper()}>THEMIS GBO site {site}",
        "Data_version": "1",
        "Instrument_type": "Ground-Based VLF/ELF/ULF, Photometrics",
        "Mission_group": "THEMIS",
        "Logical_source": f"thg_l1_asf_{site}",
        "Logical_file_id": file_id,
        "Logical_source_description": (
            "Ground-based All Sky Imager, 3sec Level-1, THEMIS GBO network"
        ),
        "Time_resolution": "3s",
        "Generated_by": "oath.archive.cdf.write_synthetic_asf_cdf (synthetic test data)",
        "File_naming_convention": "source_datatype_descriptor",
    }
    return {key: {0: value} for key, value in values.items()}


def _variables(
    site: str, stack: np.ndarray, seconds: np.ndarray, epoch_records: bool
) -> list[tuple[str, int, list[int], bool, Any, dict[str, Any]]]:
    """(name, type, dims, record-varying, data, attributes) of each variable of an L1 file."""
    name = f"thg_asf_{site}"
    epoch = {"FILLVAL": [EPOCH_FILL, "CDF_EPOCH"], "LABLAXIS": "UT", "VAR_TYPE": "support_data"}
    frames_attrs = {
        "CATDESC": "Images of 256x256 pixels",
        "DEPEND_0": f"{name}_epoch",
        "DEPEND_1": f"{name}_column",
        "DEPEND_2": f"{name}_row",
        "DISPLAY_TYPE": "image",
        "FILLVAL": [65535, "CDF_UINT2"],
        "FORMAT": "I5",
        "UNITS": "counts",
        "VALIDMIN": [0, "CDF_UINT2"],
        "VALIDMAX": [65535, "CDF_UINT2"],
        "VAR_TYPE": "data",
        "DEPEND_TIME": f"{name}_time",
        "DEPEND_EPOCH0": f"{name}_epoch0",
    }
    pixels = np.arange(256, dtype=np.uint16)

    def axis(what: str, dim: str) -> dict[str, Any]:
        return {"CATDESC": f"Number of {what} ({dim}) in image", "VAR_TYPE": "support_data"}

    def unix(what: str) -> dict[str, Any]:
        return {
            "CATDESC": f"{name}_{what}, UTC, in seconds since 01-Jan-1970 00:00:00",
            "UNITS": "sec",
            "VAR_TYPE": "support_data",
            "VAR_NOTES": "Unleaped seconds",
        }

    epochs = EPOCH_1970_MS + 1000.0 * seconds
    return [
        (name, CDF_UINT2, list(FRAME_SHAPE), True, stack, frames_attrs),
        (f"{name}_column", CDF_UINT2, [256], False, pixels, axis("column", "x-dim, Width")),
        (f"{name}_row", CDF_UINT2, [256], False, pixels, axis("row", "y-dim, Height")),
        (f"{name}_time", CDF_REAL8, [], True, seconds, unix("time")),
        (f"{name}_tend", CDF_REAL8, [], True, seconds + 1.0, unix("tend")),
        (
            f"{name}_epoch",
            CDF_EPOCH,
            [],
            True,
            epochs if epoch_records else None,
            {
                "CATDESC": "Epoch of start of image exposure",
                **epoch,
                "VIRTUAL": "TRUE",
                "FUNCT": "comp_themis_epoch",
                "COMPONENT_0": f"{name}_epoch0",
                "COMPONENT_1": f"{name}_time",
            },
        ),
        (
            f"{name}_epoch0",
            CDF_EPOCH,
            [],
            False,
            np.array([EPOCH_1970_MS]),
            {"CATDESC": "EPOCH0 of THEMIS TIME BASE", **epoch, "UNITS": "msec"},
        ),
    ]


def write_synthetic_asf_cdf(
    path: str | Path,
    frames: Sequence[np.ndarray],
    times: Sequence[dt.datetime],
    site: str,
    *,
    epoch_records: bool = True,
) -> Path:
    """Write frames as a THEMIS L1 ASF CDF with the real variables, types and attributes.

    ``frames`` are 256 x 256 counts oriented as oath.archive.themis holds stream0 frames (what
    :func:`read_asf_cdf` returns); they are stored the L1 way (:func:`from_stream0_orientation`).
    ``times`` are naive UTC exposure starts (kept to the millisecond, as CDF_EPOCH does). With
    ``epoch_records=False`` the epoch variable is left virtual with no records, as in files
    that carry only ``_epoch0`` and ``_time``. Written atomically; returns the path.
    """
    from cdflib.cdfwrite import CDF

    path = Path(path)
    if not frames or len(times) != len(frames):
        raise ThemisError(f"{path}: need one time per frame, got {len(frames)} and {len(times)}.")
    stack = np.stack([from_stream0_orientation(np.asarray(f)) for f in frames]).astype(np.uint16)
    if stack.shape[1:] != FRAME_SHAPE:
        raise ThemisError(f"{path}: frames must be 256 x 256, got {stack.shape[1:]}.")
    seconds = np.array([(t - dt.datetime(1970, 1, 1)).total_seconds() for t in times])
    seconds = np.round(seconds * 1000.0) / 1000.0  # CDF_EPOCH keeps milliseconds
    with atomic_path(path, suffix=".cdf") as tmp:  # cdflib wants the .cdf ending
        cdf = CDF(str(tmp), cdf_spec={"Majority": "row_major", "Encoding": 1})  # network, as real
        try:
            cdf.write_globalattrs(_global_attributes(site, times[0]))
            for name, kind, dims, rec_vary, data, attrs in _variables(
                site, stack, seconds, epoch_records
            ):
                spec = {
                    "Variable": name,
                    "Data_Type": kind,
                    "Num_Elements": 1,
                    "Rec_Vary": rec_vary,
                    "Dim_Sizes": dims,
                    "Compress": 6 if kind == CDF_UINT2 and rec_vary else 0,  # gzip, as real
                }
                cdf.write_var(spec, var_attrs={"FIELDNAM": name, **attrs}, var_data=data)
        finally:
            cdf.close()
    return path
