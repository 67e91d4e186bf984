"""Gather per-shard predictions: a partitioned Parquet dataset, the CSV, and summary pictures.

Each classify shard writes one Parquet file (:mod:`oath.archive.stream`). :func:`merge_predictions`
gathers them into

* a Parquet dataset folder partitioned by site and UT date (hive layout,
  ``site=gill/date=2014-03-10/part-0.parquet``), readable lazily with
  ``pandas.read_parquet(folder)``, ``pyarrow.dataset.dataset(folder, partitioning="hive")`` or
  ``polars.scan_parquet(folder + "/**/*.parquet", hive_partitioning=True)``; rows without a site
  or time go to ``site=unknown`` / ``date=unknown``;
* ``predictions.csv`` as the PNG path wrote it (timestamps as ISO 8601 text ending in ``Z``).

The dataset's schema metadata (``oath.classify``, JSON) gathers what the shards recorded
(:func:`run_provenance`): how many shards, and each distinct provenance (weights, checkpoint,
precision in use, device, conversion) with its number of shards.

:func:`plot_nights` draws, per UT date, a class timeline strip per site over 0-24 UT and the class
counts of each site that night. :func:`contact_sheet_from_frames` makes the contact sheet from
the few frames it shows, converting just those again (no per-frame PNGs needed).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from oath.archive.conversion import Conversion
from oath.archive.feed import iter_frames, record_pixels
from oath.archive.frames import parse_archive_name
from oath.archive.keogram import KEOGRAM_COLUMN
from oath.archive.stream import PROVENANCE_KEY, shard_provenance
from oath.archive.themis import STATUS_OK
from oath.atomic import atomic_path
from oath.dataset.table import LABEL_NAMES
from oath.fit.model import contact_sheet, score_column
from oath.imaging.png import encode_png

log = logging.getLogger(__name__)

UNKNOWN = "unknown"


def read_shards(shards: Sequence[str | Path]) -> pd.DataFrame:
    """The rows of every shard Parquet file, in the order given."""
    if not shards:
        raise ValueError("no shard predictions to gather")
    return pd.concat([pd.read_parquet(p) for p in shards], ignore_index=True)


def _partition_keys(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Site and UT date per row; a failed file's date comes from its archive name."""
    site = table["site"].fillna("").astype(str).replace("", UNKNOWN)
    date = table["timestamp"].dt.strftime("%Y-%m-%d")
    from_name = table["file"].map(
        lambda f: (lambda m: m.strftime("%Y-%m-%d") if m else None)(parse_archive_name(f)[0])
    )
    return site, date.fillna(from_name).fillna(UNKNOWN)


def run_provenance(shards: Sequence[str | Path]) -> dict[str, Any]:
    """The shards' recorded provenance: ``{"shards": n, "runs": [{"shards": k, ...}, ...],
    "unrecorded": m}``, one entry per distinct provenance (a cluster whose nodes differ shows
    more than one); ``unrecorded`` counts shards written before shards recorded it."""
    runs: dict[str, int] = {}
    unrecorded = 0
    for path in shards:
        found = shard_provenance(path)
        if found is None:
            unrecorded += 1
        else:
            key = json.dumps(found, sort_keys=True)
            runs[key] = runs.get(key, 0) + 1
    return {
        "shards": len(shards),
        "runs": [{"shards": n, **json.loads(key)} for key, n in runs.items()],
        "unrecorded": unrecorded,
    }


def write_dataset(
    table: pd.DataFrame, folder: str | Path, provenance: dict[str, Any] | None = None
) -> None:
    """Write ``table`` as a site/date-partitioned Parquet folder, replacing any old one whole;
    ``provenance`` (see :func:`run_provenance`) goes into every file's schema metadata."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    out = table.drop(columns=["site"]).copy()
    out["site"], out["date"] = _partition_keys(table)
    arrow = pa.Table.from_pandas(out, preserve_index=False)
    if provenance is not None:
        metadata = {**(arrow.schema.metadata or {}), PROVENANCE_KEY: json.dumps(provenance)}
        arrow = arrow.replace_schema_metadata(metadata)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        ds.write_dataset(
            arrow,
            tmp / "data",
            format="parquet",
            partitioning=ds.partitioning(
                pa.schema([("site", pa.string()), ("date", pa.string())]), flavor="hive"
            ),
            basename_template="part-{i}.parquet",
        )
        shutil.rmtree(folder, ignore_errors=True)
        (tmp / "data").rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def to_csv_table(table: pd.DataFrame) -> pd.DataFrame:
    """The CSV form: timestamps as ``2014-03-10T06:00:00.063119Z``, empty when unknown; without
    the frames' keogram slices (in the dataset only)."""
    out = table.drop(columns=[KEOGRAM_COLUMN], errors="ignore")  # counts stay in the dataset
    text = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out["timestamp"] = text.fillna("")
    return out


def merge_predictions(
    shards: Sequence[str | Path], dataset: str | Path, csv: str | Path
) -> pd.DataFrame:
    """Gather shard predictions into the partitioned ``dataset`` folder and ``csv``."""
    table = read_shards(shards)
    write_dataset(table, dataset, run_provenance(shards))
    with atomic_path(csv, suffix=".csv") as tmp:
        to_csv_table(table).to_csv(tmp, index=False)
    n_ok = int((table["status"] == STATUS_OK).sum())
    log.info(
        "%d shard(s): %d frame(s) classified, %d failed row(s) -> %s, %s",
        len(shards),
        n_ok,
        len(table) - n_ok,
        dataset,
        csv,
    )
    return table


def _label_set(table: pd.DataFrame) -> str:
    for name in LABEL_NAMES:
        if f"{name}_name" in table.columns:
            return name
    raise ValueError("no prediction columns (class6_name or class2_name)")


def plot_night(table: pd.DataFrame, date: str, out_png: str | Path) -> None:
    """One UT date: a class strip per site over 0-24 UT, and each site's class counts."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    name = _label_set(table)
    classes = list(LABEL_NAMES[name])
    colours = colormaps["tab10"]
    sites = sorted(table["site"].unique())
    fig = Figure(figsize=(12, 0.9 * len(sites) + 1.6), layout="constrained")
    strips, bars = fig.subplots(1, 2, width_ratios=[4, 1.3], squeeze=True)
    for row, site in enumerate(sites):
        part = table[table["site"] == site]
        hours = (part["timestamp"] - pd.Timestamp(date, tz="UTC")).dt.total_seconds() / 3600
        for k, class_name in enumerate(classes):
            chosen = hours[part[f"{name}_name"] == class_name]
            strips.vlines(chosen, row - 0.4, row + 0.4, color=colours(k), linewidth=0.6)
        counts = part[f"{name}_name"].value_counts().reindex(classes, fill_value=0)
        left = 0
        for k, class_name in enumerate(classes):
            bars.barh(row, counts[class_name], left=left, color=colours(k), label=class_name)
            left += counts[class_name]
    for ax in (strips, bars):
        ax.set_yticks(range(len(sites)), sites)
        ax.set_ylim(len(sites) - 0.5, -0.5)
    strips.set_xlim(0, 24)
    strips.set_xticks(range(0, 25, 2))
    strips.set_xlabel("UT (hours)")
    strips.set_title(f"{date}: predicted {name} per frame", fontsize=10)
    bars.set_xlabel("frames")
    bars.set_title("class counts", fontsize=10)
    handles, labels = bars.get_legend_handles_labels()
    bars.legend(
        handles[: len(classes)],
        labels[: len(classes)],
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    with atomic_path(out_png, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")


def plot_nights(table: pd.DataFrame, folder: str | Path) -> list[Path]:
    """``folder/<YYYY-MM-DD>.png`` for every UT date with classified, timed frames."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ok = table[(table["status"] == STATUS_OK) & table["timestamp"].notna()].copy()
    ok["site"] = ok["site"].fillna("").replace("", UNKNOWN)
    written = []
    for date, part in ok.groupby(ok["timestamp"].dt.strftime("%Y-%m-%d"), sort=True):
        target = folder / f"{date}.png"
        plot_night(part, str(date), target)
        written.append(target)
    log.info("%d night picture(s) in %s", len(written), folder)
    return written


def _most_confident(table: pd.DataFrame, per_class: int) -> pd.DataFrame:
    """The rows a contact sheet shows: the ``per_class`` highest scores of each class."""
    name = _label_set(table)
    ok = table[table["status"] == STATUS_OK]
    picks = []
    for class_name in LABEL_NAMES[name]:
        chosen = ok[ok[f"{name}_name"] == class_name]
        picks.append(
            chosen.sort_values(score_column(name, class_name), ascending=False, kind="stable").head(
                per_class
            )
        )
    return pd.concat(picks)


def contact_sheet_from_frames(
    table: pd.DataFrame, conversion: Conversion, out_png: str | Path, per_class: int = 4
) -> None:
    """:func:`oath.fit.model.contact_sheet` of ``table``, converting only the frames it shows."""
    chosen = _most_confident(table, per_class).copy()
    with tempfile.TemporaryDirectory(prefix="oath_sheet_") as tmp:
        wanted = {(f, int(k)) for f, k in zip(chosen["file"], chosen["frame"], strict=True)}
        paths = {}
        for record in iter_frames(sorted({f for f, _ in wanted}), conversion):
            pixels = record_pixels(record)
            if (record.file, record.frame) in wanted and pixels is not None:
                target = Path(tmp) / f"{len(paths)}.png"
                target.write_bytes(encode_png(pixels))
                paths[(record.file, record.frame)] = str(target)
        chosen["png"] = [
            paths.get((f, int(k)), "") for f, k in zip(chosen["file"], chosen["frame"], strict=True)
        ]
        csv = Path(tmp) / "chosen.csv"
        to_csv_table(chosen).to_csv(csv, index=False)
        with atomic_path(out_png, suffix=".png") as target:
            contact_sheet(str(csv), str(target), per_class=per_class)
    log.info("contact sheet of %d frame(s) -> %s", len(chosen), out_png)


def summarise(
    csv: str | Path,
    table: pd.DataFrame,
    conversion: Conversion,
    *,
    counts_png: str | Path,
    sheet_png: str | Path,
    nights: str | Path,
) -> None:
    """Every summary picture of a classify run (class counts, contact sheet, nights)."""
    from oath.fit.model import plot_class_counts

    with atomic_path(counts_png, suffix=".png") as tmp:
        plot_class_counts(str(csv), str(tmp))
    contact_sheet_from_frames(table, conversion, sheet_png)
    shutil.rmtree(nights, ignore_errors=True)
    plot_nights(table, nights)
