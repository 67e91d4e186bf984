"""The page's HTML pieces: pictures as data URIs, folded tables, the run summary, the model
and shard settings, class counts and the confidence table."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.archive.gather import UNKNOWN
from oath.report.classify.counts import site_order
from oath.report.classify.tally import RunTally
from oath.report.tables import Table, escape

COLLAPSE_ROWS = 30  # longer tables are folded into <details>


def img_tag(png: bytes, alt: str) -> str:
    """An <img> with ``png`` inlined as a data URI."""
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return f'<img src="{uri}" alt="{escape(alt)}">'


def picture(path: Path | None, alt: str, missing: str) -> str:
    """The PNG file ``path`` inlined, or the ``missing`` note when there is no such file."""
    if path is None or not Path(path).is_file():
        return f'<p class="small">{escape(missing)}</p>'
    return img_tag(Path(path).read_bytes(), alt)


def folded(html: str, n_rows: int, what: str, section_id: str) -> str:
    """A table, folded into <details> when it has more than COLLAPSE_ROWS rows."""
    body = f'<div id="{section_id}">{html}</div>'
    if n_rows <= COLLAPSE_ROWS:
        return body
    return f"<details><summary>{escape(what)} ({n_rows:,} rows)</summary>{body}</details>"


def share(value: float) -> str:
    """A share as a percentage, blank when undefined."""
    return "" if pd.isna(value) else f"{100 * value:.1f} %"


def counts_table(frame: pd.DataFrame, by: list[str], classes: list[str]) -> Table:
    """Class counts per ``by`` (rows of :func:`~oath.report.classify.counts.class_counts`)."""
    header = [*by, "classified", "failed rows", *classes, "aurora share"]
    rows = [
        (
            *(r[c] for c in by),
            r["classified"],
            r["failed"],
            *(r[c] for c in classes),
            share(r["aurora_share"]),
        )
        for _, r in frame.iterrows()
    ]
    return Table.of(header, rows, numeric=range(len(by), len(header)))


def summary_html(tally: RunTally, files: pd.DataFrame) -> str:
    """The run summary: files, frames, sites, UT dates, shards, label sets."""
    counts = tally.counts
    sites = site_order(counts["site"])
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


def _model_table(model: dict[str, Any]) -> str:
    """The model file's provenance: classifier, training data, features, versions."""
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
    return Table.of(["model", ""], rows).html()


def _shard_runs_html(runs: list[dict[str, Any]], trained: str | None) -> list[str]:
    """How the shards were classified: one row per distinct setting; ``trained`` is the
    checkpoint SHA-256 the model's training features came from."""
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
    parts = [
        "<h3>How the shards were classified</h3>",
        f'<div id="shard-runs">{Table.of(header, rows, numeric=(0,)).html()}</div>',
    ]
    if len(runs) > 1:
        parts.append(
            f'<div class="warning">The shards were not all classified alike: {len(runs)} '
            "different settings above.</div>"
        )
    return parts


def model_html(model: dict[str, Any] | None, provenance: dict[str, Any]) -> str:
    """The model (its file's provenance) and how the dataset's shards were classified."""
    if model is not None:
        parts = [_model_table(model)]
    else:
        parts = ['<p class="small">No model file given: the model is not described.</p>']
    runs = provenance.get("runs", [])
    if runs:
        trained = (model or {}).get("features", {}).get("checkpoint_sha256")
        parts += _shard_runs_html(runs, trained)
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


def confidence_html(tally: RunTally) -> str:
    """Per label set and predicted class: winning score, margin and share below the margin."""
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
                    share(s.below[k] / n if n else np.nan),
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
                share(s.below.sum() / n if n else np.nan),
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
