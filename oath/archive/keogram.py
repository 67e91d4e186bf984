"""Keograms of a classify run: each frame's zenith north-south slice, stacked along UT.

A keogram is what a space physicist reads a night of all-sky data by: one column of pixels
through the zenith of every frame, side by side in time, so that arcs show as bands, breakups
as brightenings and clouds or moon as blotches.

The slice (:func:`keogram_column`) is column ``floor(width / 2 - 1)`` (127 of THEMIS's 256)
of the raw counts *in the orientation the readers return* (:func:`oath.archive.themis.read_frames`:
stream0 frames as pyucalgarysrs gives them, L1 CDF frames turned to match), before any
``orientation_per_site``, crop, scaling or angle: the conversion for the classifier does not
change the keogram. This is the column pyaurorax's ``tools.keogram.create`` takes. The
streamed shard pass (:func:`oath.archive.feed.iter_frames`) keeps it for every frame in the
shard's
``keogram`` column (a list of uint16 counts, row 0 first), so no second read of the archive.

A night's keogram (:func:`night_grid`) has one column per UT minute, the mean of that minute's
frames; minutes without a frame are NaN and drawn white, as pyaurorax's ``inject_nans`` and
UCalgary's keogram products leave them. The gray scale runs from the 1st to the 99th percentile
of the night's values (stated on the picture and on the page). Row 0 is drawn at the bottom,
as pyaurorax draws keograms. With a UCalgary skymap for the site (config
``classify.skymap_per_site``, read with pyucalgarysrs ``read_skymap``, which flips it the way the
frames are flipped) the vertical axis is the geographic latitude of the column's pixel centres
at 110 km; without one it is pixel rows, and the axis says so.

:func:`write_keograms` draws every site-night of a classify dataset (read one partition at a
time) into ``<site>_<date>.png``, with the predicted class per minute as a strip under the
keogram on the same UT axis (the picture for papers), and for the classify page a light
``<site>_<date>_page.png`` (:func:`write_page_keogram`: the keogram array itself, at most
``PAGE_ROWS`` rows by one column a minute, 64 grey levels, the class strip below it, written as
an indexed-colour PNG without matplotlib; the page draws the axes in HTML); it lists them in
``keograms.csv`` (:func:`index_row`, the page reads it).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.atomic import atomic_path
from oath.dataset.table import LABEL_NAMES

log = logging.getLogger(__name__)

KEOGRAM_COLUMN = "keogram"  # the shard and dataset column of the frames' slices
INDEX_NAME = "keograms.csv"  # the folder's list of site-nights
ALTITUDE_KM = 110.0  # the mapping altitude of the latitude axis
PERCENTILES = (1.0, 99.0)  # the gray scale's ends, of the night's values
INDEX_COLUMNS = (
    "site",
    "date",
    "png",  # the picture for papers
    "frames",
    "minutes",
    "low",  # the grey scale's ends (counts)
    "high",
    "axis",  # "pixel rows" or "latitude at 110 km"
    "label_set",  # of the class strip
    "start",  # UT hours of the first minute, from the date's 00 UT
    "page_png",  # the page's light picture
    "bottom",  # the vertical axis at the page picture's bottom and top row
    "top",
)
PAGE_ROWS = 64  # rows of the page's keogram at most (256 rows: means of 4)
PAGE_LEVELS = 64  # grey levels of the page's keogram
STRIP_ROWS = 8  # rows of the class strip under it, after one white row


class KeogramError(ValueError):
    """A keogram input (dataset, skymap) is missing or malformed; the message names the file."""


def slice_index(width: int) -> int:
    """The keogram column of a frame ``width`` pixels wide: ``floor(width / 2 - 1)``."""
    return max(int(math.floor(width / 2 - 1)), 0)


def keogram_column(image: np.ndarray) -> np.ndarray | None:
    """The zenith north-south slice of one raw frame (uint16 counts, row 0 first); None for an
    8-bit PNG/JPEG image, which holds no counts."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype != np.uint16:
        return None
    return image[:, slice_index(image.shape[1])].copy()


# --------------------------------------------------------------------------------------------
# A night's keogram
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class NightKeogram:
    """One site-night on a one-minute UT grid (``start`` the first minute, UTC)."""

    site: str
    date: str
    start: pd.Timestamp
    data: np.ndarray  # (rows, minutes) mean counts, NaN where no frame
    classes: np.ndarray  # (minutes,) most frequent class index of the minute, -1 none
    label_set: str
    frames: int

    @functools.cached_property
    def scale(self) -> tuple[float, float]:
        """The gray scale's ends: the 1st and 99th percentile of the night's values."""
        finite = self.data[np.isfinite(self.data)]
        if not finite.size:
            return (0.0, 1.0)
        low, high = np.percentile(finite, PERCENTILES)
        return float(low), float(max(high, low + 1))


def night_grid(
    timestamps: pd.Series,
    columns: np.ndarray,
    classes: np.ndarray,
    n_classes: int,
) -> tuple[pd.Timestamp, np.ndarray, np.ndarray]:
    """Frames' slices (``columns``, frames x rows) and class indices on a one-minute grid from
    the first frame's whole hour to the last one's: (first minute, mean counts, class/minute)."""
    times = pd.DatetimeIndex(timestamps)
    start = times.min().floor("h")
    end = times.max().floor("h") + pd.Timedelta(hours=1)
    n_minutes = int((end - start) / pd.Timedelta(minutes=1))
    minute = ((times - start) // pd.Timedelta(minutes=1)).to_numpy(dtype=np.int64)
    rows = columns.shape[1]
    sums = np.zeros((n_minutes, rows))
    np.add.at(sums, minute, columns.astype(np.float64))
    count = np.bincount(minute, minlength=n_minutes)
    with np.errstate(invalid="ignore", divide="ignore"):
        data = (sums / count[:, None]).T
    votes = np.zeros((n_minutes, n_classes + 1), dtype=np.int64)
    np.add.at(votes, (minute, classes + 1), 1)
    votes[:, 0] = 0  # frames without a class do not vote
    per_minute = np.where(votes.max(axis=1) > 0, votes.argmax(axis=1) - 1, -1)
    return start, data, per_minute


# --------------------------------------------------------------------------------------------
# Skymaps
# --------------------------------------------------------------------------------------------
def skymap_latitudes(skymap: Any, column: int, altitude_km: float = ALTITUDE_KM) -> np.ndarray:
    """Geographic latitude of each pixel centre of keogram ``column`` at ``altitude_km``, from a
    pyucalgarysrs ``Skymap`` (``full_map_latitude``: altitudes x (rows+1) x (cols+1) corners,
    ``full_map_altitude`` in km or m); NaN where the skymap maps nothing."""
    altitudes = np.asarray(skymap.full_map_altitude, dtype=float)
    in_km = altitudes / 1000.0 if altitudes.max() > 1000 else altitudes
    k = int(np.argmin(np.abs(in_km - altitude_km)))
    if abs(in_km[k] - altitude_km) > 1.0:
        raise KeogramError(
            f"{getattr(skymap, 'filename', 'skymap')}: no mapping at {altitude_km:g} km "
            f"(it has {', '.join(f'{a:g}' for a in in_km)} km)."
        )
    corners = np.asarray(skymap.full_map_latitude, dtype=float)[k]
    if column + 1 >= corners.shape[1]:
        raise KeogramError(
            f"{getattr(skymap, 'filename', 'skymap')}: {corners.shape[1] - 1} columns, "
            f"no column {column}; is it the skymap of this imager?"
        )
    cell = corners[:, column : column + 2]
    return (cell[:-1].sum(axis=1) + cell[1:].sum(axis=1)) / 4.0


def read_skymap_latitudes(
    path: str | Path, column: int, altitude_km: float = ALTITUDE_KM
) -> np.ndarray:
    """:func:`skymap_latitudes` of the UCalgary skymap file ``path`` (IDL ``.sav``)."""
    import pyucalgarysrs

    path = Path(path)
    if not path.is_file():
        raise KeogramError(
            f"{path}: no such skymap file; give a local UCalgary THEMIS skymap (.sav) in "
            "classify.skymap_per_site or remove the site from it."
        )
    reader = pyucalgarysrs.PyUCalgarySRS().data.readers
    try:
        data = reader.read_skymap(str(path), quiet=True)
    except Exception as exc:  # the reader raises its own error type on an unreadable file
        raise KeogramError(
            f"{path}: pyucalgarysrs cannot read it as a skymap ({exc}); give the .sav file "
            "from data.phys.ucalgary.ca (themis/skymaps)."
        ) from exc
    if not data.data:
        raise KeogramError(f"{path}: no skymap in the file.")
    return skymap_latitudes(data.data[0], column, altitude_km)


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------
def plot_night_keogram(
    night: NightKeogram, out_png: str | Path, latitudes: np.ndarray | None = None
) -> tuple[float, float]:
    """The keogram above its class strip, on the same UT axis; returns the gray scale used."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure

    low, high = night.scale
    rows, minutes = night.data.shape
    day = pd.Timestamp(night.date, tz="UTC")
    x0 = (night.start - day) / pd.Timedelta(hours=1)
    x1 = x0 + minutes / 60.0
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    keo, strip = fig.subplots(2, 1, sharex=True, height_ratios=[5, 1.5])
    gray = colormaps["gray"].with_extremes(bad="white")
    if latitudes is not None and np.isfinite(latitudes).sum() >= 2:
        y_edges = _edges(latitudes)
        shown = np.where(np.isfinite(latitudes)[:, None], night.data, np.nan)
        x_edges = np.linspace(x0, x1, minutes + 1)
        image = keo.pcolormesh(x_edges, y_edges, shown, cmap=gray, vmin=low, vmax=high)
        keo.set_ylabel(f"geographic latitude\nat {ALTITUDE_KM:g} km (deg)")
    else:
        image = keo.imshow(
            night.data,
            aspect="auto",
            interpolation="nearest",
            origin="lower",
            extent=(x0, x1, -0.5, rows - 0.5),
            cmap=gray,
            vmin=low,
            vmax=high,
        )
        keo.set_ylabel("pixel row\n(no skymap)")
    fig.colorbar(image, ax=keo, fraction=0.03, pad=0.01, label=f"counts\n{low:,.0f}-{high:,.0f}")
    keo.set_title(
        f"{night.site} {night.date}: keogram (column {slice_index(rows)}; white: no data; "
        f"scale {low:,.0f}-{high:,.0f} counts, 1st-99th percentile)",
        fontsize=9,
    )
    names = list(LABEL_NAMES[night.label_set])
    tab = colormaps["tab10"]
    cmap = ListedColormap([tab(k) for k in range(len(names))]).with_extremes(bad="white")
    norm = BoundaryNorm(np.arange(len(names) + 1) - 0.5, len(names))
    shown = np.where(night.classes >= 0, night.classes, np.nan)[None, :]
    image = strip.imshow(
        shown, aspect="auto", interpolation="nearest", extent=(x0, x1, 0, 1), cmap=cmap, norm=norm
    )
    bar = fig.colorbar(image, ax=strip, fraction=0.03, pad=0.01, ticks=range(len(names)))
    bar.ax.set_yticklabels(names, fontsize=6)
    strip.set_yticks([])
    strip.set_ylabel(night.label_set, fontsize=8)
    strip.set_xlabel("UT (hours)")
    strip.set_xlim(x0, x1)
    from oath.imaging.figures import png_bytes

    with atomic_path(out_png, suffix=".png") as tmp:
        Path(tmp).write_bytes(png_bytes(fig, dpi=80))
    return low, high


def class_colours(label_set: str) -> list[str]:
    """The class strip's colour of each class of ``label_set`` (matplotlib's tab10), as hex."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    tab = colormaps["tab10"]
    return [to_hex(tab(k)) for k in range(len(LABEL_NAMES[label_set]))]


def _page_axis(rows: int, latitudes: np.ndarray | None) -> tuple[np.ndarray, float, float]:
    """How the page's keogram takes ``rows`` pixel rows onto at most ``PAGE_ROWS``: (source
    row of each page row, first row at the bottom; bottom; top). With two or more mapped
    latitudes, the nearest pixel row of a uniform latitude grid from the southernmost to the
    northernmost mapped pixel centre (bottom and top those latitudes); else blocks of whole
    rows (-1 past the last row), averaged, bottom and top pixel rows 0 and the last."""
    if latitudes is not None and np.isfinite(latitudes).sum() >= 2:
        ok = np.flatnonzero(np.isfinite(latitudes))
        order = ok[np.argsort(latitudes[ok])]
        grid = np.linspace(latitudes[order[0]], latitudes[order[-1]], min(PAGE_ROWS, len(ok)))
        nearest = np.rint(np.interp(grid, latitudes[order], np.arange(len(order))))
        return order[nearest.astype(int)][:, None], float(grid[0]), float(grid[-1])
    step = -(-rows // PAGE_ROWS)
    source = np.arange(-(-rows // step) * step).reshape(-1, step)
    return np.where(source < rows, source, -1), 0.0, float(rows - 1)


def _page_rows(night: NightKeogram, latitudes: np.ndarray | None) -> np.ndarray:
    """The keogram on the page's rows (:func:`_page_axis`), first row at the bottom."""
    source, _, _ = _page_axis(night.data.shape[0], latitudes)
    blocks = np.where((source >= 0)[..., None], night.data[source], np.nan)
    count = np.isfinite(blocks).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nansum(blocks, axis=1) / count


def page_keogram(night: NightKeogram, latitudes: np.ndarray | None = None) -> bytes:
    """The page's picture of ``night``: the keogram (row 0 or the southernmost latitude at the
    bottom, white where no frame, grey scale :attr:`NightKeogram.scale`) above a white row and
    the class strip, one column a minute, as an indexed-colour PNG (no matplotlib)."""
    from oath.imaging.png import encode_png

    data = _page_rows(night, latitudes)
    low, high = night.scale
    with np.errstate(invalid="ignore"):
        level = np.rint(np.clip((data - low) / (high - low), 0, 1) * (PAGE_LEVELS - 1))
    white = PAGE_LEVELS
    keogram = np.where(np.isfinite(data), level, white)[::-1]
    strip = np.where(night.classes >= 0, white + 1 + night.classes, white)
    pixels = np.vstack([keogram, np.full((1, len(strip)), white), np.tile(strip, (STRIP_ROWS, 1))])
    greys = np.rint(np.linspace(0, 255, PAGE_LEVELS))
    colours = [[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in class_colours(night.label_set)]
    palette = np.vstack([np.repeat(greys[:, None], 3, axis=1), [[255, 255, 255]], colours])
    return encode_png(pixels.astype(np.uint8), palette.astype(np.uint8))


def index_row(night: NightKeogram, latitudes: np.ndarray | None = None) -> dict[str, Any]:
    """The ``keograms.csv`` row of ``night`` (its pictures' names, scale and axes)."""
    _, bottom, top = _page_axis(night.data.shape[0], latitudes)
    low, high = night.scale
    day = pd.Timestamp(night.date, tz="UTC")
    has_latitudes = latitudes is not None and np.isfinite(latitudes).sum() >= 2
    row = {
        "site": night.site,
        "date": night.date,
        "png": f"{night.site}_{night.date}.png",
        "frames": night.frames,
        "minutes": night.data.shape[1],
        "low": low,
        "high": high,
        "axis": f"latitude at {ALTITUDE_KM:g} km" if has_latitudes else "pixel rows",
        "label_set": night.label_set,
        "start": (night.start - day) / pd.Timedelta(hours=1),
        "page_png": f"{night.site}_{night.date}_page.png",
        "bottom": bottom,
        "top": top,
    }
    return row


def write_page_keogram(
    night: NightKeogram, folder: str | Path, latitudes: np.ndarray | None = None
) -> dict[str, Any]:
    """Write :func:`page_keogram` of ``night`` into ``folder``; returns its :func:`index_row`."""
    row = index_row(night, latitudes)
    with atomic_path(Path(folder) / row["page_png"], suffix=".png") as tmp:
        Path(tmp).write_bytes(page_keogram(night, latitudes))
    return row


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges between ``centres`` (NaN ends filled by the nearest step)."""
    idx = np.arange(len(centres))
    ok = np.isfinite(centres)
    filled = np.interp(idx, idx[ok], centres[ok], left=np.nan, right=np.nan)
    slope = np.polyfit(idx[ok], centres[ok], 1)[0]
    first, last = idx[ok][0], idx[ok][-1]
    filled[:first] = centres[first] + slope * (idx[:first] - first)
    filled[last + 1 :] = centres[last] + slope * (idx[last + 1 :] - last)
    mids = (filled[:-1] + filled[1:]) / 2
    return np.concatenate([[2 * filled[0] - mids[0]], mids, [2 * filled[-1] - mids[-1]]])


# --------------------------------------------------------------------------------------------
# A classify dataset's keograms
# --------------------------------------------------------------------------------------------
def _night_from_batches(table: Any, site: str, date: str, label_set: str) -> NightKeogram | None:
    """A site-night's keogram from its dataset rows (pyarrow table), None without slices."""
    import pyarrow.compute as pc

    ok = pc.and_(
        pc.fill_null(pc.equal(table["status"], "ok"), False),
        pc.is_valid(table[KEOGRAM_COLUMN]),
    )
    ok = pc.and_(ok, pc.is_valid(table["timestamp"]))
    rows = table.filter(ok)
    if not rows.num_rows:
        return None
    slices = rows[KEOGRAM_COLUMN].combine_chunks()
    lengths = pc.list_value_length(slices).to_numpy(zero_copy_only=False)
    if len(set(lengths.tolist())) != 1:
        log.warning("%s %s: frames of different heights; keogram skipped", site, date)
        return None
    values = pc.list_flatten(slices).to_numpy(zero_copy_only=False)
    columns = values.reshape(rows.num_rows, int(lengths[0]))
    names = list(LABEL_NAMES[label_set])
    number = pc.fill_null(rows[label_set], -1).to_numpy(zero_copy_only=False).astype(np.int64)
    number = np.where((number >= 0) & (number < len(names)), number, -1)
    times = rows["timestamp"].to_pandas()
    start, data, per_minute = night_grid(times, columns, number, len(names))
    return NightKeogram(site, date, start, data, per_minute, label_set, rows.num_rows)


def night_keograms(dataset: str | Path) -> Iterator[NightKeogram]:
    """Every dated site-night of the classify ``dataset`` with keogram slices, one partition
    at a time (site, then date order); nothing for a dataset whose shards kept no slices."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    dataset = Path(dataset)
    if not dataset.is_dir() or not any(dataset.rglob("*.parquet")):
        raise KeogramError(f"{dataset}: no predictions dataset here; run snakemake classify.")
    data = ds.dataset(dataset, format="parquet", partitioning="hive")
    label_set = next((ls for ls in LABEL_NAMES if ls in data.schema.names), None)
    if KEOGRAM_COLUMN not in data.schema.names or label_set is None:
        log.warning("%s: no keogram column (shards older than keograms): none drawn", dataset)
        return
    nights: dict[tuple[str, str], list[Any]] = {}
    for fragment in data.get_fragments():
        keys = ds.get_partition_keys(fragment.partition_expression)
        nights.setdefault((str(keys.get("site")), str(keys.get("date"))), []).append(fragment)
    columns = ["timestamp", "status", KEOGRAM_COLUMN, label_set]
    for (site, date), fragments in sorted(nights.items()):
        if date == "unknown":
            continue
        table = pa.concat_tables(f.to_table(columns=columns) for f in fragments)
        night = _night_from_batches(table, site, date, label_set)
        if night is not None:
            yield night


def write_keograms(
    dataset: str | Path,
    folder: str | Path,
    skymaps: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Draw every site-night of the classify ``dataset`` into ``folder/<site>_<date>.png`` and
    their light page pictures (:func:`write_page_keogram`), and list them in
    ``folder/keograms.csv`` (:data:`INDEX_COLUMNS`);
    ``skymaps`` maps site codes to UCalgary skymap files (latitude axis)."""
    folder = Path(folder)
    skymaps = {s: Path(p) for s, p in (skymaps or {}).items()}
    latitudes: dict[str, np.ndarray] = {}
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    listed = []
    for night in night_keograms(dataset):
        if night.site in skymaps and night.site not in latitudes:
            column = slice_index(night.data.shape[0])
            latitudes[night.site] = read_skymap_latitudes(skymaps[night.site], column)
        lat = latitudes.get(night.site)
        row = write_page_keogram(night, tmp, lat)
        plot_night_keogram(night, tmp / row["png"], lat)
        listed.append(row)
    index = pd.DataFrame(listed, columns=list(INDEX_COLUMNS)).sort_values(["date", "site"])
    index.to_csv(tmp / INDEX_NAME, index=False)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    log.info("%d keogram(s) -> %s", len(index), folder)
    return index


def read_index(folder: str | Path) -> pd.DataFrame:
    """The ``keograms.csv`` of ``folder`` (empty when the folder or list is absent)."""
    path = Path(folder) / INDEX_NAME
    if not path.is_file():
        return pd.DataFrame(columns=list(INDEX_COLUMNS))
    text = {c: str for c in ("site", "date", "png", "axis", "label_set", "page_png")}
    return pd.read_csv(path, dtype=text)
