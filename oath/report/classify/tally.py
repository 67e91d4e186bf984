"""The classify dataset read lazily and reduced to counts (:func:`tally_dataset`).

The partitioned Parquet dataset (:func:`oath.archive.gather.write_dataset`) is read with
``pyarrow.dataset``: only the columns the page needs, batch by batch, each batch reduced to
counts at once, so a station-year of frames never sits in memory as rows.

Confidence: the *winning score* of a frame is the ridge decision score of its predicted class;
its *margin* is the winning score minus the runner-up's (the next highest class score). For two
classes the scores are ``-d`` and ``d``, so the margin is ``2|d|``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.archive.gather import UNKNOWN
from oath.archive.stream import PROVENANCE_KEY
from oath.archive.themis import STATUS_OK
from oath.dataset.table import LABEL_NAMES
from oath.fit.model import score_column

log = logging.getLogger(__name__)

DEFAULT_MARGIN = 0.1  # decision-score units (config classify.report_margin)
SCORE_BIN = 0.02  # width of the winning-score histogram bins
BATCH_ROWS = 131_072  # rows read at a time
FAILED_COLUMNS = ("file", "frame", "site", "date", "status")


class ReportError(ValueError):
    """A classify report input is missing or malformed; the message names the file and fix."""


@dataclass
class ScoreTally:
    """Winning scores of one label set's classified frames, per predicted class."""

    classes: tuple[str, ...]
    frames: np.ndarray  # (k,) frames predicted as each class
    below: np.ndarray  # (k,) of them with a margin below the report's margin
    sum_win: np.ndarray  # (k,) sum of winning scores
    sum_margin: np.ndarray  # (k,) sum of finite margins
    bins: list[Counter[int]]  # per class: floor(score / SCORE_BIN) -> frames

    @classmethod
    def empty(cls, classes: tuple[str, ...]) -> ScoreTally:
        k = len(classes)
        zeros = np.zeros(k, dtype=np.int64)
        return cls(
            classes,
            zeros.copy(),
            zeros.copy(),
            np.zeros(k),
            np.zeros(k),
            [Counter() for _ in range(k)],
        )

    def add(self, predicted: np.ndarray, scores: np.ndarray, margin: float) -> None:
        """One batch: predicted class index per frame (-1: none) and its (n, k) class scores."""
        keep = predicted >= 0
        predicted, scores = predicted[keep], scores[keep]
        if not len(predicted):
            return
        rows = np.arange(len(predicted))
        win = scores[rows, predicted]
        others = np.where(np.isnan(scores), -np.inf, scores)
        others[rows, predicted] = -np.inf
        gap = win - others.max(axis=1)  # inf when no other class has a score
        k = len(self.classes)
        self.frames += np.bincount(predicted, minlength=k)
        self.below += np.bincount(predicted[gap < margin], minlength=k)
        self.sum_win += np.bincount(predicted, weights=win, minlength=k)
        finite = np.isfinite(gap)
        self.sum_margin += np.bincount(predicted[finite], weights=gap[finite], minlength=k)
        keys = np.floor(win / SCORE_BIN).astype(np.int64)
        for c in np.unique(predicted):
            values, counts = np.unique(keys[predicted == c], return_counts=True)
            self.bins[c].update(dict(zip(values.tolist(), counts.tolist(), strict=True)))


@dataclass
class RunTally:
    """Everything the page shows about the dataset, reduced to counts."""

    folder: Path
    label_sets: list[str]
    counts: pd.DataFrame  # site, date, ok, <labels>_name..., rows (one row per combination)
    files: int  # distinct input files
    failed: pd.DataFrame  # every failed row: file, frame, site, date, status
    scores: dict[str, ScoreTally]
    margin: float
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def primary(self) -> str:
        """The label set the tables lead with: class6 when predicted, else class2."""
        return self.label_sets[0]

    @property
    def n_ok(self) -> int:
        return int(self.counts.loc[self.counts["ok"], "rows"].sum())

    @property
    def n_failed(self) -> int:
        return int(self.counts.loc[~self.counts["ok"], "rows"].sum())


def _columns(folder: Path, names: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    label_sets = [ls for ls in LABEL_NAMES if f"{ls}_name" in names]
    if not label_sets:
        raise ReportError(
            f"{folder}: no prediction columns (class6_name or class2_name); is this the "
            "dataset folder of a classify run (results/predictions/dataset)?"
        )
    scores = {ls: [score_column(ls, c) for c in LABEL_NAMES[ls]] for ls in label_sets}
    wanted = ["site", "date", "file", "frame", "status", "timestamp"]
    wanted += label_sets + [c for cols in scores.values() for c in cols]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise ReportError(
            f"{folder}: the dataset lacks column(s) {', '.join(missing)}; run snakemake "
            "classify again to rewrite it."
        )
    return wanted, scores


def dataset_provenance(folder: str | Path) -> dict[str, Any]:
    """What the shards recorded (:func:`oath.archive.gather.run_provenance`), {} when nothing."""
    import pyarrow.dataset as ds

    raw = (ds.dataset(folder, format="parquet", partitioning="hive").schema.metadata or {}).get(
        PROVENANCE_KEY
    )
    return json.loads(raw) if raw else {}


class _Counting:
    """The running counts of :func:`tally_dataset`, one batch of one partition at a time."""

    def __init__(self, score_cols: dict[str, list[str]], margin: float) -> None:
        self.score_cols = score_cols
        self.label_sets = list(score_cols)
        self.sizes = [len(LABEL_NAMES[ls]) + 1 for ls in self.label_sets]  # classes + 1, 0: none
        self.scores = {ls: ScoreTally.empty(tuple(LABEL_NAMES[ls])) for ls in self.label_sets}
        self.margin = margin
        self.groups: list[tuple[Any, ...]] = []
        self.failed: list[pd.DataFrame] = []
        self.files: set[str] = set()
        self.first: Any = None
        self.last: Any = None

    @property
    def keys(self) -> list[str]:
        return ["site", "date", "ok", *(f"{ls}_name" for ls in self.label_sets)]

    def add(self, site: str, date: str, batch: Any) -> None:
        """Count one record batch of the partition (``site``, ``date``)."""
        import pyarrow.compute as pc

        ok_array = pc.fill_null(pc.equal(batch["status"], STATUS_OK), False)
        ok = ok_array.to_numpy(zero_copy_only=False)
        numbers = self._count_classes(site, date, batch, ok)
        self.files.update(pc.unique(batch["file"]).to_pylist())
        span = pc.min_max(batch["timestamp"]).as_py()
        if span["min"] is not None:
            self.first = span["min"] if self.first is None else min(self.first, span["min"])
            self.last = span["max"] if self.last is None else max(self.last, span["max"])
        if not ok.all():
            rows = batch.filter(pc.invert(ok_array))
            self.failed.append(
                pd.DataFrame(
                    {
                        "file": rows["file"].to_pylist(),
                        "frame": rows["frame"].to_pylist(),
                        "site": site,
                        "date": date,
                        "status": rows["status"].to_pylist(),
                    }
                )
            )
        for ls in self.label_sets:
            chosen = numbers[ls] >= 0
            if not chosen.any():
                continue
            matrix = np.column_stack(
                [batch[c].to_numpy(zero_copy_only=False) for c in self.score_cols[ls]]
            ).astype(np.float64)
            self.scores[ls].add(numbers[ls][chosen], matrix[chosen], self.margin)

    def _count_classes(
        self, site: str, date: str, batch: Any, ok: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Rows per (ok, class per label set) into ``groups``; each row's class index per
        label set (-1: none) returned."""
        import pyarrow.compute as pc

        # One integer per row for (ok, class per label set), counted with numpy.
        code = ok.astype(np.int64)
        numbers = {}
        for ls, size in zip(self.label_sets, self.sizes, strict=True):
            number = pc.fill_null(batch[ls], -1).to_numpy(zero_copy_only=False).astype(np.int64)
            numbers[ls] = np.where(ok & (number >= 0) & (number < size - 1), number, -1)
            code = code * size + numbers[ls] + 1
        values, counts = np.unique(code, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            names = []
            for ls, size in zip(reversed(self.label_sets), reversed(self.sizes), strict=True):
                value, k = divmod(value, size)
                names.append(LABEL_NAMES[ls][k - 1] if k else "")
            self.groups.append((site, date, bool(value), *reversed(names), count))
        return numbers

    def result(self, folder: Path) -> RunTally:
        counts = (
            pd.DataFrame(self.groups, columns=[*self.keys, "rows"])
            .groupby(self.keys, as_index=False, sort=True)["rows"]
            .sum()
            .astype({"ok": bool})
        )
        failed_rows = (
            pd.concat(self.failed, ignore_index=True)
            if self.failed
            else pd.DataFrame({k: [] for k in FAILED_COLUMNS})
        )
        return RunTally(
            folder=folder,
            label_sets=self.label_sets,
            counts=counts,
            files=len(self.files),
            failed=failed_rows,
            scores=self.scores,
            margin=self.margin,
            first=pd.Timestamp(self.first) if self.first is not None else None,
            last=pd.Timestamp(self.last) if self.last is not None else None,
            provenance=dataset_provenance(folder),
        )


def _partition_batches(data: Any, columns: list[str], batch_rows: int) -> Iterator[Any]:
    """(site, date, batch) of every non-empty batch, fragment by fragment (one site and UT date
    each): a dataset scanner reads ahead without bound when the consumer is slower."""
    import pyarrow.dataset as ds

    for fragment in data.get_fragments():
        partition = ds.get_partition_keys(fragment.partition_expression)
        site, date = (str(partition.get(key, UNKNOWN)) for key in ("site", "date"))
        for batch in fragment.to_batches(columns=columns, batch_size=batch_rows):
            if batch.num_rows:
                yield site, date, batch


def tally_dataset(
    folder: str | Path, margin: float = DEFAULT_MARGIN, batch_rows: int = BATCH_ROWS
) -> RunTally:
    """Read the classify dataset ``folder`` batch by batch into a :class:`RunTally`."""
    import pyarrow.dataset as ds

    folder = Path(folder)
    if not folder.is_dir() or not any(folder.rglob("*.parquet")):
        raise ReportError(f"{folder}: no predictions dataset here; run snakemake classify first.")
    data = ds.dataset(folder, format="parquet", partitioning="hive")
    columns, score_cols = _columns(folder, data.schema.names)
    counting = _Counting(score_cols, margin)
    read = [c for c in columns if c not in ("site", "date")]
    for site, date, batch in _partition_batches(data, read, batch_rows):
        counting.add(site, date, batch)
    return counting.result(folder)
