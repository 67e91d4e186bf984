"""A synthetic classify run: the Parquet dataset rule classify_images writes, with random
scores and chosen failed files, at any size, and site-night keograms of synthetic slices
(tests/test_classify_report.py and bench/bench_classify_report.py); no pixels, no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from oath.archive.keogram import NightKeogram
from oath.archive.themis import STATUS_OK
from oath.dataset.table import LABEL_NAMES
from oath.demo.stream0 import archive_path
from oath.fit.model import LabelModel, score_column

SYNTHETIC_SITES = ("gill", "fsmi", "rank", "snkq", "pina", "tpas", "kapu", "atha", "inuv", "whit")
SYNTHETIC_REASONS = (
    "truncated: the file ends inside frame 7",
    "not a THEMIS stream0 file (bad PGM header)",
    "OSError: Not a gzipped file (b'\\x00\\x00')",
)


def synthetic_predictions(
    site_hours: list[tuple[str, pd.Timestamp]],
    frames_per_hour: int,
    failed_files: set[int],
    rng: np.random.Generator,
    first_file: int = 0,
) -> pd.DataFrame:
    """Rows in the layout of :func:`oath.archive.stream.predictions_table` for ``site_hours`` (site,
    UT hour), with random scores and, for files numbered in ``failed_files``, one failed row.

    Files are one a minute (at most 60 an hour, frames spread over them), numbered from
    ``first_file`` in order; no pixels, no ``png`` (placeholders for rendering tests)."""
    per_file = -(-frames_per_hour // 60)
    files_per_hour = -(-frames_per_hour // per_file)
    names, sites, starts = [], [], []
    for site, hour in site_hours:
        for minute in range(files_per_hour):
            start = hour + pd.Timedelta(minutes=minute)
            names.append(archive_path("archive", start.to_pydatetime(), site).as_posix())
            sites.append(site)
            starts.append(start)
    n_files = len(names)
    numbers = np.arange(first_file, first_file + n_files)
    bad = np.isin(numbers, list(failed_files))
    frames = np.where(bad, 1, per_file)
    index = np.repeat(np.arange(n_files), frames)
    frame = np.concatenate([np.arange(n) for n in frames]) if n_files else np.array([], int)
    n = len(index)
    failed = bad[index]
    start = pd.DatetimeIndex(starts).tz_localize("UTC")[index] if n_files else pd.DatetimeIndex([])
    times = start + pd.to_timedelta(frame * 3, unit="s")
    scores6 = rng.normal(-0.6, 0.35, (n, 6)) + 0.9 * np.eye(6)[rng.integers(0, 6, n)]
    class6 = scores6.argmax(axis=1)
    aurora = scores6[:, :3].max(axis=1) - scores6[:, 3:].max(axis=1)
    d = -aurora / 2 + rng.normal(0, 0.1, n)  # the score of "no aurora"
    class2 = (d > 0).astype(np.int64)
    names6, names2 = np.array(LABEL_NAMES["class6"]), np.array(LABEL_NAMES["class2"])
    table = pd.DataFrame(
        {
            "file": np.array(names, dtype=object)[index],
            "frame": pd.array(np.where(failed, 0, frame), dtype="Int64"),
            "timestamp": pd.Series(times).astype("datetime64[us, UTC]"),
            "site": np.array(sites, dtype=object)[index],
            "archive": "ucalgary_stream0",
            "png": "",
            "class6": pd.array(class6, dtype="Int64"),
            "class6_name": names6[class6].astype(object),
        }
    )
    for k, name in enumerate(LABEL_NAMES["class6"]):
        table[score_column("class6", name)] = scores6[:, k]
    table["class2"] = pd.array(class2, dtype="Int64")
    table["class2_name"] = names2[class2].astype(object)
    table[score_column("class2", "aurora")] = -d
    table[score_column("class2", "no aurora")] = d
    table["status"] = STATUS_OK
    if failed.any():
        table.loc[failed, ["frame", "timestamp", "class6", "class2"]] = None
        table.loc[failed, ["class6_name", "class2_name"]] = ""
        score_cols = [c for c in table.columns if "_score_" in c]
        table.loc[failed, score_cols] = np.nan
        reasons = np.array(SYNTHETIC_REASONS, dtype=object)
        table.loc[failed, "status"] = "failed: " + reasons[numbers[index[failed]] % len(reasons)]
    return table


def write_synthetic_dataset(
    folder: str | Path,
    n_site_hours: int,
    *,
    frames_per_hour: int = 5,
    n_sites: int = 4,
    hours_per_night: int = 10,
    n_failed_files: int = 0,
    seed: int = 0,
    chunk_site_hours: int = 200,
) -> pd.DataFrame:
    """A classify dataset of ``n_site_hours`` site-hours (``hours_per_night`` UT hours from 02
    UT each night per site, nights from 2014-01-01, sites taking turns), partitioned as
    :func:`oath.archive.gather.write_dataset` writes it; written ``chunk_site_hours`` at a time,
    so a station-year of frames needs little memory. Returns the failed rows (file, status)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    folder = Path(folder)
    if folder.exists():
        raise FileExistsError(f"{folder} exists; write the synthetic dataset into a new folder.")
    rng = np.random.default_rng(seed)
    sites = SYNTHETIC_SITES[:n_sites]
    site_hours = []
    for k in range(n_site_hours):
        night, slot = divmod(k, n_sites * hours_per_night)
        site, hour = divmod(slot, hours_per_night)
        start = pd.Timestamp("2014-01-01") + pd.Timedelta(days=night, hours=2 + hour)
        site_hours.append((sites[site], start))
    files_per_hour = -(-frames_per_hour // -(-frames_per_hour // 60))
    n_files = n_site_hours * files_per_hour
    failed_files = set(
        rng.choice(n_files, size=min(n_failed_files, n_files), replace=False).tolist()
    )
    failed = []
    partitioning = ds.partitioning(
        pa.schema([("site", pa.string()), ("date", pa.string())]), flavor="hive"
    )
    for c, begin in enumerate(range(0, n_site_hours, chunk_site_hours)):
        part = site_hours[begin : begin + chunk_site_hours]
        table = synthetic_predictions(
            part, frames_per_hour, failed_files, rng, first_file=begin * files_per_hour
        )
        failed.append(table.loc[table["status"] != STATUS_OK, ["file", "status"]])
        out = table.drop(columns=["site"])
        # what write_dataset's partition keys give (a failed file's date from its name), cheaply
        out["site"] = table["site"]
        out["date"] = table["file"].str.slice(8, 18).str.replace("/", "-")  # archive/YYYY/MM/DD/
        ds.write_dataset(
            pa.Table.from_pandas(out, preserve_index=False),
            folder,
            format="parquet",
            partitioning=partitioning,
            basename_template=f"part-{c}-{{i}}.parquet",
            existing_data_behavior="overwrite_or_ignore",
        )
    return pd.concat(failed, ignore_index=True)


def synthetic_night_keogram(
    site: str,
    date: str,
    frames_per_hour: int,
    rng: np.random.Generator,
    *,
    label_set: str = "class6",
    first_hour: int = 2,
    hours: int = 10,
    rows: int = 256,
) -> NightKeogram:
    """A site-night keogram as :func:`oath.archive.keogram.night_keograms` gives it, from
    synthetic slices: an arc at a random row each minute with a frame (``frames_per_hour``
    spread over the hour, as :func:`write_synthetic_dataset` spreads them) in noise of 150
    counts a frame (a minute's mean of n frames: 150 / sqrt(n)), random classes; the other
    minutes empty (NaN, class -1)."""
    minutes = hours * 60
    data = np.full((rows, minutes), np.nan)
    shown = np.arange(0, minutes, max(60 // max(frames_per_hour, 1), 1))
    arc = rng.uniform(0.25 * rows, 0.8 * rows, len(shown))
    row = np.arange(rows)[:, None]
    data[:, shown] = 6000 + 8000 * np.exp(-(((row - arc) / (rows / 25)) ** 2))
    noise = 150 / np.sqrt(max(frames_per_hour / 60, 1))
    data[:, shown] += rng.normal(0, noise, (rows, len(shown)))
    n_classes = len(LABEL_NAMES[label_set])
    classes = np.where(np.isfinite(data[0]), rng.integers(0, n_classes, minutes), -1)
    start = pd.Timestamp(date, tz="UTC") + pd.Timedelta(hours=first_hour)
    return NightKeogram(site, date, start, data, classes, label_set, len(shown))


def random_label_models(
    rng: np.random.RandomState, n_features: int = 1001, intercept_scale: float = 0.0
) -> dict[str, LabelModel]:
    """Both label sets of a ridge model with random coefficients (and intercepts, where
    ``intercept_scale`` > 0), for tests and benchmarks that need a model, not a trained one.

    >>> models = random_label_models(np.random.RandomState(0))
    >>> models["class6"].coef.shape, models["class2"].coef.shape  # two classes: one row
    ((6, 1001), (1, 1001))
    """
    models = {}
    for name in ("class6", "class2"):
        names = tuple(LABEL_NAMES[name])
        coef = rng.normal(0, 0.05, (len(names) if len(names) > 2 else 1, n_features))
        intercept = (
            rng.normal(0, intercept_scale, coef.shape[0])
            if intercept_scale
            else np.zeros(coef.shape[0])
        )
        models[name] = LabelModel(name, names, np.arange(len(names)), coef, intercept)
    return models
