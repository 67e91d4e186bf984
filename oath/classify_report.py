"""The classify report: one self-contained HTML page about a run of the classify target.

What a physicist checking an archive run wants on one page: the run summary (files, frames
classified and failed, sites, UT dates) and how the labels were made (the model's training data
and feature set, the weights, precision, device and frame conversion each shard recorded), class
counts per site and per site-night, a site x date overview of every night, the night timelines
of the nights with most aurora, the contact sheet, the confidence of the labels and every file
that failed, with its reason.

The partitioned Parquet dataset (:func:`oath.archive.gather.write_dataset`) is read lazily with
``pyarrow.dataset``: only the columns the page needs, batch by batch, each batch reduced to
counts at once (:func:`tally_dataset`), so a station-year of frames never sits in memory as rows.
The page's size is bounded by the number of site-nights (one table row each), failed files and
``max_nights`` night pictures, not by frames. Pictures are PNG data URIs inside the page; the
night pictures not shown in full are linked, relative to the page, from the pictures folder
beside it.

Confidence: the *winning score* of a frame is the ridge decision score of its predicted class;
its *margin* is the winning score minus the runner-up's (the next highest class score). For two
classes the scores are ``-d`` and ``d``, so the margin is ``2|d|``. The page gives, per class,
the share of frames with a margin below ``margin``.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.archive.gather import UNKNOWN
from oath.archive.keogram import read_index
from oath.archive.stream import PROVENANCE_KEY
from oath.archive.themis import STATUS_OK
from oath.atomic import write_bytes
from oath.dataset.table import LABEL_NAMES
from oath.fit.model import load_model, score_column
from oath.imaging.figures import png_bytes
from oath.logs import summary
from oath.report.page import CSS
from oath.report.tables import Table, escape

log = logging.getLogger(__name__)

DEFAULT_MARGIN = 0.1  # decision-score units (config classify.report_margin)
DEFAULT_NIGHTS = 10  # night timelines shown in full (config classify.report_nights)
SCORE_BIN = 0.02  # width of the winning-score histogram bins
BATCH_ROWS = 131_072  # rows read at a time
COLLAPSE_ROWS = 30  # longer tables are folded into <details>
AURORA_CLASS6 = ("arc", "diffuse", "discrete")  # class6 0-2 are aurora (class2 0)

EXTRA_CSS = """
details { margin: 0.4em 0 1em 0; }
summary { cursor: pointer; color: #2a5db0; }
.nights figure { border-top: 1px solid #d8dde6; padding-top: 0.4em; }
.nights figure.keogram { border-top: none; margin-bottom: 0.2em; }
#shard-runs td:last-child { white-space: pre-line; overflow-wrap: anywhere; min-width: 22em;
  font-size: 0.85em; }
"""


class ReportError(ValueError):
    """A classify report input is missing or malformed; the message names the file and fix."""


# --------------------------------------------------------------------------------------------
# Reading the dataset lazily
# --------------------------------------------------------------------------------------------
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


def tally_dataset(
    folder: str | Path, margin: float = DEFAULT_MARGIN, batch_rows: int = BATCH_ROWS
) -> RunTally:
    """Read the classify dataset ``folder`` batch by batch into a :class:`RunTally`."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    folder = Path(folder)
    if not folder.is_dir() or not any(folder.rglob("*.parquet")):
        raise ReportError(f"{folder}: no predictions dataset here; run snakemake classify first.")
    data = ds.dataset(folder, format="parquet", partitioning="hive")
    columns, score_cols = _columns(folder, data.schema.names)
    label_sets = list(score_cols)
    scores = {ls: ScoreTally.empty(tuple(LABEL_NAMES[ls])) for ls in label_sets}
    groups: list[tuple[Any, ...]] = []
    failed, files = [], set()
    first = last = None
    keys = ["site", "date", "ok", *(f"{ls}_name" for ls in label_sets)]
    sizes = [len(LABEL_NAMES[ls]) + 1 for ls in label_sets]  # class numbers + 1, 0: none
    read = [c for c in columns if c not in ("site", "date")]
    # Fragment by fragment (one site and UT date each): a dataset scanner reads ahead without
    # bound when the consumer is slower than the reader.
    batches = (
        (ds.get_partition_keys(fragment.partition_expression), batch)
        for fragment in data.get_fragments()
        for batch in fragment.to_batches(columns=read, batch_size=batch_rows)
    )
    for partition, batch in batches:
        if not batch.num_rows:
            continue
        site, date = (str(partition.get(key, UNKNOWN)) for key in ("site", "date"))
        ok_array = pc.fill_null(pc.equal(batch["status"], STATUS_OK), False)
        ok = ok_array.to_numpy(zero_copy_only=False)
        # One integer per row for (ok, class per label set), counted with numpy.
        code = ok.astype(np.int64)
        numbers = {}
        for ls, size in zip(label_sets, sizes, strict=True):
            number = pc.fill_null(batch[ls], -1).to_numpy(zero_copy_only=False).astype(np.int64)
            numbers[ls] = np.where(ok & (number >= 0) & (number < size - 1), number, -1)
            code = code * size + numbers[ls] + 1
        values, counts = np.unique(code, return_counts=True)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True):
            names = []
            for ls, size in zip(reversed(label_sets), reversed(sizes), strict=True):
                value, k = divmod(value, size)
                names.append(LABEL_NAMES[ls][k - 1] if k else "")
            groups.append((site, date, bool(value), *reversed(names), count))
        files.update(pc.unique(batch["file"]).to_pylist())
        span = pc.min_max(batch["timestamp"]).as_py()
        if span["min"] is not None:
            first = span["min"] if first is None else min(first, span["min"])
            last = span["max"] if last is None else max(last, span["max"])
        if not ok.all():
            bad = pc.invert(ok_array)
            rows = batch.filter(bad)
            failed.append(
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
        for ls in label_sets:
            chosen = numbers[ls] >= 0
            if not chosen.any():
                continue
            matrix = np.column_stack(
                [batch[c].to_numpy(zero_copy_only=False) for c in score_cols[ls]]
            ).astype(np.float64)
            scores[ls].add(numbers[ls][chosen], matrix[chosen], margin)
    counts = (
        pd.DataFrame(groups, columns=[*keys, "rows"])
        .groupby(keys, as_index=False, sort=True)["rows"]
        .sum()
        .astype({"ok": bool})
    )
    failed_rows = (
        pd.concat(failed, ignore_index=True)
        if failed
        else pd.DataFrame({k: [] for k in ("file", "frame", "site", "date", "status")})
    )
    return RunTally(
        folder=folder,
        label_sets=label_sets,
        counts=counts,
        files=len(files),
        failed=failed_rows,
        scores=scores,
        margin=margin,
        first=pd.Timestamp(first) if first is not None else None,
        last=pd.Timestamp(last) if last is not None else None,
        provenance=dataset_provenance(folder),
    )


# --------------------------------------------------------------------------------------------
# Tables derived from the tally
# --------------------------------------------------------------------------------------------
def _site_order(sites: Iterable[str]) -> list[str]:
    return sorted(set(sites), key=lambda s: (s == UNKNOWN, s))


def class_counts(tally: RunTally, by: list[str]) -> pd.DataFrame:
    """Frames classified, failed rows and frames per class of the primary label set, and the
    aurora share of classified frames, per ``by`` (e.g. ``["site", "date"]``)."""
    counts = tally.counts
    name = f"{tally.primary}_name"
    classes = list(LABEL_NAMES[tally.primary])
    ok = counts[counts["ok"]]
    per_class = (
        ok.pivot_table(index=by, columns=name, values="rows", aggfunc="sum", fill_value=0)
        .reindex(columns=classes, fill_value=0)
        .astype(np.int64)
    )
    rows = counts.groupby(by + ["ok"])["rows"].sum().unstack("ok", fill_value=0)
    out = pd.DataFrame(index=rows.index)
    out["classified"] = rows.get(True, 0)
    out["failed"] = rows.get(False, 0)
    out = out.join(per_class).fillna(0).astype(np.int64)
    out["aurora"] = _aurora_frames(tally, by).reindex(out.index, fill_value=0)
    share = out["aurora"] / out["classified"].where(out["classified"] > 0)
    out["aurora_share"] = share
    return out.reset_index()


def _aurora_frames(tally: RunTally, by: list[str]) -> pd.Series:
    ok = tally.counts[tally.counts["ok"]]
    if "class2" in tally.label_sets:
        chosen = ok[ok["class2_name"] == "aurora"]
    else:
        chosen = ok[ok["class6_name"].isin(AURORA_CLASS6)]
    return chosen.groupby(by)["rows"].sum()


def failed_files(tally: RunTally) -> pd.DataFrame:
    """One row per file with a failure: site, date, which frames and the reason(s)."""
    failed = tally.failed
    if failed.empty:
        return pd.DataFrame(columns=["file", "site", "date", "frames", "reason"])
    out = []
    for file, part in failed.groupby("file", sort=True):
        frames = part["frame"].dropna()
        whole = len(frames) < len(part)
        which = "whole file" if whole else ""
        if len(frames):
            listed = ", ".join(str(int(k)) for k in sorted(frames))
            which = f"{which}; frames {listed}" if which else f"frame(s) {listed}"
        reasons = dict.fromkeys(str(s).removeprefix("failed: ") for s in part["status"])
        out.append((file, part["site"].iloc[0], part["date"].iloc[0], which, "; ".join(reasons)))
    return pd.DataFrame(out, columns=["file", "site", "date", "frames", "reason"])


def chosen_nights(per_night: pd.DataFrame, max_nights: int) -> list[str]:
    """The UT dates shown in full: the ``max_nights`` with most aurora frames (all sites), ties
    to the earlier date; returned in date order."""
    dated = per_night[per_night["date"] != UNKNOWN]
    totals = dated.groupby("date")[["aurora", "classified"]].sum()
    totals = totals[totals["classified"] > 0].reset_index()
    ranked = totals.sort_values(["aurora", "date"], ascending=[False, True], kind="stable")
    return sorted(ranked["date"].head(max_nights))


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def _calendar(dates: Iterable[str]) -> list[str]:
    """Every UT date from the first to the last (gaps included), then "unknown" if any."""
    dates = set(dates)
    real = sorted(d for d in dates if d != UNKNOWN)
    every = pd.date_range(real[0], real[-1], freq="D").strftime("%Y-%m-%d").tolist() if real else []
    return every + ([UNKNOWN] if UNKNOWN in dates else [])


def overview_figure(tally: RunTally, per_night: pd.DataFrame) -> bytes | None:
    """Site x UT date: the aurora share of classified frames, and the dominant class (class6
    when predicted); grey where nothing was classified."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap

    ok = per_night[per_night["classified"] > 0]
    if ok.empty:
        return None
    sites = _site_order(ok["site"])
    dates = _calendar(ok["date"])
    col = {d: j for j, d in enumerate(dates)}
    row = {s: i for i, s in enumerate(sites)}
    share = np.full((len(sites), len(dates)), np.nan)
    dominant = np.full((len(sites), len(dates)), np.nan)
    classes = list(LABEL_NAMES[tally.primary])
    i, j = ok["site"].map(row).to_numpy(), ok["date"].map(col).to_numpy()
    share[i, j] = ok["aurora_share"].to_numpy(dtype=float)
    dominant[i, j] = ok[classes].to_numpy().argmax(axis=1)
    from matplotlib.figure import Figure

    height = 0.28 * len(sites) + 1.3
    fig = Figure(figsize=(11, 2 * height + 0.4), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    shares = colormaps["viridis"].with_extremes(bad="#e3e6eb")
    image = top.imshow(share, aspect="auto", interpolation="nearest", cmap=shares, vmin=0, vmax=1)
    fig.colorbar(image, ax=top, label="aurora share", fraction=0.03, pad=0.01)
    top.set_title("Aurora share of the classified frames, per site and UT date", fontsize=10)
    tab = colormaps["tab10"]
    cmap = ListedColormap([tab(k) for k in range(len(classes))]).with_extremes(bad="#e3e6eb")
    norm = BoundaryNorm(np.arange(len(classes) + 1) - 0.5, len(classes))
    image = bottom.imshow(dominant, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
    bar = fig.colorbar(image, ax=bottom, fraction=0.03, pad=0.01, ticks=range(len(classes)))
    bar.ax.set_yticklabels(classes, fontsize=7)
    bottom.set_title(f"Most frequent predicted {tally.primary} class", fontsize=10)
    for ax in (top, bottom):
        ax.set_yticks(range(len(sites)), sites, fontsize=7)
    if len(dates) <= 31:
        ticks = list(range(len(dates)))
    else:
        ticks = [k for k, d in enumerate(dates) if d.endswith("-01")] or [0]
    bottom.set_xticks(ticks, [dates[k] for k in ticks], rotation=35, ha="right", fontsize=7)
    bottom.set_xlabel("UT date (grey: no classified frames)")
    return png_bytes(fig, dpi=90)


def confidence_figure(tally: RunTally) -> bytes | None:
    """Per label set, the distribution of the winning score of each predicted class."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    shown = [ls for ls in tally.label_sets if tally.scores[ls].frames.sum()]
    if not shown:
        return None
    fig = Figure(figsize=(5.2 * len(shown) + 1.5, 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(shown)))
    colours = colormaps["tab10"]
    for ax, ls in zip(axes, shown, strict=True):
        scores = tally.scores[ls]
        for k, name in enumerate(scores.classes):
            if not scores.frames[k]:
                continue
            keys = np.array(sorted(scores.bins[k]))
            counts = np.array([scores.bins[k][key] for key in keys], dtype=float)
            edges = np.append(keys, keys[-1] + 1) * SCORE_BIN
            ax.stairs(
                counts / counts.sum() / SCORE_BIN,
                edges,
                color=colours(k),
                label=f"{name} ({int(scores.frames[k]):,})",
            )
        ax.set_xlabel(f"winning {ls} decision score (bins of {SCORE_BIN:g})")
        ax.set_ylabel("density")
        ax.set_title(f"{ls}: score of the predicted class", fontsize=10)
        ax.legend(fontsize=7, title="predicted (frames)", title_fontsize=7)
    return png_bytes(fig, dpi=90)


# --------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------
def _img(png: bytes, alt: str) -> str:
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f'<img src="{uri}" alt="{escape(alt)}">'


def _picture(path: Path | None, alt: str, missing: str) -> str:
    if path is None or not Path(path).is_file():
        return f'<p class="small">{escape(missing)}</p>'
    return _img(Path(path).read_bytes(), alt)


def _folded(html: str, n_rows: int, what: str, section_id: str) -> str:
    """A table, folded into <details> when it has more than COLLAPSE_ROWS rows."""
    body = f'<div id="{section_id}">{html}</div>'
    if n_rows <= COLLAPSE_ROWS:
        return body
    return f"<details><summary>{escape(what)} ({n_rows:,} rows)</summary>{body}</details>"


def _share(value: float) -> str:
    return "" if pd.isna(value) else f"{100 * value:.1f} %"


def counts_table(frame: pd.DataFrame, by: list[str], classes: list[str]) -> Table:
    header = [*by, "classified", "failed rows", *classes, "aurora share"]
    rows = [
        (
            *(r[c] for c in by),
            r["classified"],
            r["failed"],
            *(r[c] for c in classes),
            _share(r["aurora_share"]),
        )
        for _, r in frame.iterrows()
    ]
    return Table.of(header, rows, numeric=range(len(by), len(header)))


def _summary_html(tally: RunTally, files: pd.DataFrame) -> str:
    counts = tally.counts
    sites = _site_order(counts["site"])
    dates = sorted(d for d in set(counts["date"]) if d != UNKNOWN)
    whole = int(files["frames"].str.startswith("whole").sum()) if len(files) else 0
    shards = tally.provenance.get("shards")
    span = (
        f"{tally.first:%Y-%m-%d %H:%M:%S} to {tally.last:%Y-%m-%d %H:%M:%S} UT"
        if tally.first is not None
        else "no time stamps"
    )
    rows = [
        ("input files", f"{tally.files:,}"),
        ("files with a failure", f"{len(files):,} ({whole:,} unreadable as a whole)"),
        ("frames classified", f"{tally.n_ok:,}"),
        ("failed rows", f"{tally.n_failed:,} (a whole file is one row, a failed frame one row)"),
        ("sites", f"{len(sites)}: {', '.join(sites)}" if len(sites) <= 30 else f"{len(sites)}"),
        (
            "UT dates",
            f"{len(dates):,}: {dates[0]} to {dates[-1]}" if dates else "none (no dated files)",
        ),
        ("frame times", span),
        ("shards", f"{shards:,}" if shards is not None else "not recorded"),
        ("label sets", ", ".join(tally.label_sets)),
        ("dataset", str(tally.folder)),
    ]
    return Table.of(["what", "this run"], rows).html()


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)


def conversion_lines(conversion: Any) -> str:
    """A shard's conversion as text, one line per key and, for per-site keys, per site (the
    page keeps the line breaks): readable where the raw JSON would overflow the page."""
    if not isinstance(conversion, dict):
        return _compact(conversion)
    lines = []
    for key, value in sorted(conversion.items()):
        if key.endswith("_per_site") and isinstance(value, dict):
            lines += [f"{key} {site}: {_compact(v)}" for site, v in sorted(value.items())]
            lines += [] if value else [f"{key}: none"]
        else:
            lines.append(f"{key}: {_compact(value)}")
    return "\n".join(lines)


def _short(sha: str) -> str:
    """A SHA-256 cut to 16 hex digits (the full one is in the shard metadata)."""
    return f"{sha[:16]}…" if len(sha) > 16 else sha


def _model_html(model: dict[str, Any] | None, provenance: dict[str, Any]) -> str:
    parts = []
    if model is not None:
        features = model.get("features", {})
        training = model.get("training", {})
        run = model.get("run", {})
        rows = [
            ("classifier", model.get("classifier", "")),
            (
                "training data",
                f"{run.get('dataset', '?')}: {training.get('images', '?')}, "
                f"{training.get('n_train', '?')} of {training.get('n_labelled', '?')} labelled "
                f"images, {model.get('classifications', 'classifications not recorded')}",
            ),
            ("label sets", ", ".join(model.get("labels", []))),
            (
                "feature set",
                f"{features.get('layer', 'Logits')} ({features.get('n_features', '?')} features)",
            ),
            ("training features", features.get("path", "")),
            ("weights of the training features", features.get("weights", "not recorded")),
            (
                "checkpoint SHA-256 (training)",
                _short(features.get("checkpoint_sha256", "")) or "not recorded",
            ),
            ("precision (training features)", features.get("precision", "not recorded")),
            ("versions", _compact(model.get("versions", {}))),
        ]
        parts.append(Table.of(["model", ""], rows).html())
    else:
        parts.append('<p class="small">No model file given: the model is not described.</p>')
    runs = provenance.get("runs", [])
    if runs:
        trained = (model or {}).get("features", {}).get("checkpoint_sha256")
        rows = [
            (
                run.get("shards", ""),
                run.get("weights", ""),
                run.get("checkpoint", ""),
                _short(run.get("checkpoint_sha256", ""))
                + (
                    ""
                    if not trained or run.get("checkpoint_sha256") == trained
                    else " (NOT the model's)"
                ),
                run.get("precision", ""),
                run.get("device", ""),
                run.get("layer", ""),
                conversion_lines(run.get("conversion", {})),
            )
            for run in runs
        ]
        header = [
            "shards",
            "weights",
            "checkpoint",
            "SHA-256",
            "precision in use",
            "device",
            "feature set fed",
            "conversion (one line per key and site)",
        ]
        parts.append("<h3>How the shards were classified</h3>")
        parts.append(f'<div id="shard-runs">{Table.of(header, rows, numeric=(0,)).html()}</div>')
        if len(runs) > 1:
            parts.append(
                f'<div class="warning">The shards were not all classified alike: {len(runs)} '
                "different settings above.</div>"
            )
    if not runs:
        parts.append(
            '<div class="warning">The dataset does not record how its shards were classified '
            "(weights, precision in use, conversion): they were written before shards recorded "
            "it. Rerun them to have it here.</div>"
        )
    elif provenance.get("unrecorded"):
        parts.append(
            f'<div class="warning">{provenance["unrecorded"]} of {provenance.get("shards")} '
            "shards do not record how they were classified (written before shards recorded "
            "it); rerun them to have it here.</div>"
        )
    return "\n".join(parts)


def _confidence_html(tally: RunTally) -> str:
    rows = []
    for ls in tally.label_sets:
        s = tally.scores[ls]
        for k, name in enumerate(s.classes):
            n = int(s.frames[k])
            rows.append(
                (
                    ls,
                    name,
                    f"{n:,}",
                    f"{s.sum_win[k] / n:.3f}" if n else "",
                    f"{s.sum_margin[k] / n:.3f}" if n else "",
                    f"{int(s.below[k]):,}",
                    _share(s.below[k] / n if n else np.nan),
                )
            )
        n = int(s.frames.sum())
        rows.append(
            (
                ls,
                "all",
                f"{n:,}",
                "",
                "",
                f"{int(s.below.sum()):,}",
                _share(s.below.sum() / n if n else np.nan),
            )
        )
    table = Table.of(
        [
            "label set",
            "predicted class",
            "frames",
            "mean winning score",
            "mean margin",
            f"margin < {tally.margin:g}",
            "share below",
        ],
        rows,
        numeric=range(2, 7),
        marked=[i for i, r in enumerate(rows) if r[1] == "all"],
    )
    return (
        "<p>The <em>winning score</em> of a frame is the ridge decision score of its predicted "
        "class; its <em>margin</em> is the winning score minus the runner-up's (the next highest "
        "class score; for two classes the scores are &minus;d and d, so the margin is 2|d|). "
        f"Frames with a margin below {tally.margin:g} (config <code>classify.report_margin</code>) "
        "were nearly given another class. Decision scores are not probabilities.</p>" + table.html()
    )


def _keograms_html(index: pd.DataFrame | None, keograms: Path | None, date: str) -> str:
    """Each site's keogram of ``date``, with its intensity scale in words."""
    if keograms is None or index is None:
        return '<p class="small">No keograms folder given.</p>'
    rows = index[index["date"] == date]
    if rows.empty:
        return (
            f'<p class="small">{escape(date)}: no keogram (no raw frames with counts, or '
            "shards written before they kept keogram slices).</p>"
        )
    parts = []
    for r in rows.itertuples(index=False):
        alt = f"keogram {r.site} {date}"
        caption = (
            f"{r.site} {date}: keogram above the predicted class per minute; {int(r.frames):,} "
            f"frames over {int(r.minutes):,} minutes, white where no frame; gray scale "
            f"{r.low:,.0f} to {r.high:,.0f} counts (1st to 99th percentile of this night); "
            f"vertical axis: {r.axis}."
        )
        picture = _picture(keograms / r.png, alt, f"{r.site} {date}: no keogram picture")
        parts.append(
            f'<figure class="keogram">{picture}<figcaption>{escape(caption)}</figcaption></figure>'
        )
    return "\n".join(parts)


def _nights_html(
    per_night: pd.DataFrame,
    nights: Path | None,
    html_dir: Path,
    max_nights: int,
    keograms: Path | None = None,
) -> str:
    dated = sorted(
        d for d in set(per_night.loc[per_night["classified"] > 0, "date"]) if d != UNKNOWN
    )
    if not dated:
        return '<p class="small">No dated, classified frames: no night timelines.</p>'
    if nights is None:
        return '<p class="small">No night pictures folder given.</p>'
    chosen = chosen_nights(per_night, max_nights)
    what = (
        f"All {len(dated)} UT date(s)"
        if len(chosen) == len(dated)
        else f"The {len(chosen)} of {len(dated)} UT dates with the most aurora frames "
        f"(config <code>classify.report_nights</code>: {max_nights}), in date order"
    )
    parts = [
        f"<p>{what}: per site the keogram (the zenith north-south slice of every raw frame "
        "along UT; docs/keograms.md) above the predicted class of each minute, on the same UT "
        "axis; then a class strip per site over 0-24 UT and each site's class counts.</p>"
    ]
    parts.append('<div class="nights">')
    index = read_index(keograms) if keograms is not None else None
    for date in chosen:
        path = nights / f"{date}.png"
        parts.append(_keograms_html(index, keograms, date))
        parts.append(
            f"<figure>{_picture(path, f'night {date}', f'{date}: no picture in {nights}')}"
            f"<figcaption>{escape(date)}</figcaption></figure>"
        )
    parts.append("</div>")
    rest = [d for d in dated if d not in set(chosen)]
    if rest:
        links = " ".join(
            f'<a href="{escape(Path(os.path.relpath(nights / f"{d}.png", html_dir)).as_posix())}">'
            f"{escape(d)}</a>"
            for d in rest
        )
        parts.append(
            f"<details><summary>The other {len(rest):,} night pictures (files beside this page, "
            f"in {escape(nights.name)}/)</summary><p>{links}</p></details>"
        )
    return "\n".join(parts)


def render_page(
    tally: RunTally,
    html_dir: Path,
    *,
    model: dict[str, Any] | None = None,
    nights: Path | None = None,
    counts_png: Path | None = None,
    sheet_png: Path | None = None,
    max_nights: int = DEFAULT_NIGHTS,
    keograms: Path | None = None,
) -> str:
    """The page as HTML text (see the module doc)."""
    classes = list(LABEL_NAMES[tally.primary])
    per_site = class_counts(tally, ["site"])
    per_site = per_site.set_index("site").loc[_site_order(per_site["site"])].reset_index()
    per_night = class_counts(tally, ["date", "site"])
    files = failed_files(tally)
    body = [
        "<h1>Classify run: predicted classes of new all-sky images</h1>",
        f'<p class="subtitle">{tally.n_ok:,} frames classified, {tally.n_failed:,} failed '
        f"row(s), from {tally.files:,} file(s). Classes are the ridge classifier's "
        f"{', '.join(tally.label_sets)} predictions.</p>",
        '<h2 id="summary">Run summary</h2>',
        _summary_html(tally, files),
        '<h2 id="model">Model, weights and conversion</h2>',
        _model_html(model, tally.provenance),
        '<h2 id="overview">Every night at a glance</h2>',
    ]
    overview = overview_figure(tally, per_night)
    body.append(
        f"<figure>{_img(overview, 'site x date overview')}<figcaption>One cell per site and UT "
        "date, every night of the run.</figcaption></figure>"
        if overview is not None
        else '<p class="small">No classified frames.</p>'
    )
    body += [
        f'<h2 id="counts">Class counts ({tally.primary})</h2>',
        "<h3>Per site</h3>",
        f'<div id="counts-per-site">{counts_table(per_site, ["site"], classes).html()}</div>',
        "<h3>Per site and UT date</h3>",
        _folded(
            counts_table(per_night, ["date", "site"], classes).html(),
            len(per_night),
            "Class counts of every site and UT date",
            "counts-per-night",
        ),
        "<figure>"
        + _picture(counts_png, "class counts over time", "No class counts picture given.")
        + "<figcaption>Predicted classes over time per site (class_counts.png).</figcaption>"
        "</figure>",
        '<h2 id="nights">Night timelines</h2>',
        _nights_html(per_night, nights, html_dir, max_nights, keograms),
        '<h2 id="contact-sheet">Contact sheet</h2>',
        "<p>The most confident frames of each predicted class: look here before trusting the "
        "crop and scaling of raw frames.</p>",
        _picture(sheet_png, "contact sheet", "No contact sheet given."),
        '<h2 id="confidence">Confidence</h2>',
        _confidence_html(tally),
    ]
    figure = confidence_figure(tally)
    if figure is not None:
        body.append(f"<figure>{_img(figure, 'winning score distributions')}</figure>")
    failed_rows = [tuple(r) for r in files.itertuples(index=False)]
    body += [
        f'<h2 id="failed">Failed files ({len(files):,})</h2>',
        _folded(
            Table.of(["file", "site", "date", "frames", "reason"], failed_rows).html(),
            len(files),
            "Every file with a failure",
            "failed-files",
        )
        if len(files)
        else "<p>No file failed.</p>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>OATH classify report</title>\n"
        f"<style>{CSS}{EXTRA_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_classify_report(
    dataset: str | Path,
    html: str | Path,
    *,
    model: str | Path | None = None,
    nights: str | Path | None = None,
    counts_png: str | Path | None = None,
    sheet_png: str | Path | None = None,
    margin: float = DEFAULT_MARGIN,
    max_nights: int = DEFAULT_NIGHTS,
    keograms: str | Path | None = None,
) -> RunTally:
    """Write the classify report ``html`` from the run's ``dataset`` folder and pictures.

    ``model`` is the run's model file (its provenance is shown), ``nights`` the folder of
    night pictures (``<YYYY-MM-DD>.png``), ``counts_png`` and ``sheet_png`` the class counts
    picture and the contact sheet; ``margin`` the decision-score margin below which a label
    counts as doubtful, ``max_nights`` how many night pictures are shown in full, ``keograms``
    the folder of site-night keograms (:func:`oath.archive.keogram.write_keograms`) shown above
    them.
    """
    if not margin >= 0:
        raise ReportError(f"the report margin must be zero or positive, not {margin}.")
    if max_nights < 0:
        raise ReportError(f"report_nights must be zero or positive, not {max_nights}.")
    started = time.perf_counter()
    tally = tally_dataset(dataset, margin)
    provenance = load_model(model).provenance if model is not None else None
    html = Path(html)
    text = render_page(
        tally,
        html.parent,
        model=provenance,
        nights=Path(nights) if nights is not None else None,
        counts_png=Path(counts_png) if counts_png is not None else None,
        sheet_png=Path(sheet_png) if sheet_png is not None else None,
        max_nights=max_nights,
        keograms=Path(keograms) if keograms is not None else None,
    )
    write_bytes(html, text.encode("utf-8"))
    n_files = tally.failed["file"].nunique() if len(tally.failed) else 0
    summary(
        f"classify report: {tally.n_ok:,} frames classified, {n_files:,} file(s) with "
        f"failures, {tally.counts['site'].nunique()} site(s) -> {html} "
        f"({len(text) / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s)"
    )
    return tally


# --------------------------------------------------------------------------------------------
# A synthetic run (tests and bench/bench_classify_report.py)
# --------------------------------------------------------------------------------------------
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
    from oath.demo.stream0 import archive_path

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
    :func:`oath.archive.gather.write_dataset` writes it; written ``chunk_site_hours`` at a time, so
    a
    station-year of frames needs little memory. Returns the failed rows (file, status)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    folder = Path(folder)
    if folder.exists():
        raise ReportError(f"{folder} exists; write the synthetic dataset into a new folder.")
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
