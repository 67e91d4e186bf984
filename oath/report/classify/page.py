"""The classify page put together (:func:`render_page`) and written (:func:`write_classify_report`).

The page's size is bounded by the number of site-nights (one table row each), failed files and
``max_nights`` nights shown in full, not by frames. Pictures are PNG data URIs inside the page;
the night pictures not shown in full are linked, relative to the page, from the pictures folder
beside it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from oath.atomic import write_bytes
from oath.dataset.table import LABEL_NAMES
from oath.fit.model import load_model
from oath.logs import summary
from oath.report.classify.counts import class_counts, failed_files, site_order
from oath.report.classify.figures import confidence_figure, overview_figure
from oath.report.classify.nights import nights_html
from oath.report.classify.sections import (
    confidence_html,
    counts_table,
    folded,
    img_tag,
    model_html,
    picture,
    summary_html,
)
from oath.report.classify.tally import DEFAULT_MARGIN, ReportError, RunTally, tally_dataset
from oath.report.page import CSS
from oath.report.tables import Table

log = logging.getLogger(__name__)

DEFAULT_NIGHTS = 10  # night timelines shown in full (config classify.report_nights)

EXTRA_CSS = """
details { margin: 0.4em 0 1em 0; }
summary { cursor: pointer; color: #2a5db0; }
.nights figure { border-top: 1px solid #d8dde6; padding-top: 0.4em; }
.nights figure.keogram, .nights figure.keogram-full { border-top: none; }
.nights figure.keogram { margin-bottom: 0.2em; display: grid;
  grid-template-columns: 4.2em 1fr; column-gap: 0.3em; }
figure.keogram > img { grid-area: 1 / 2; width: 100%; height: 7em; image-rendering: pixelated; }
figure.keogram .keo-y { grid-area: 1 / 1; display: flex; flex-direction: column;
  justify-content: space-between; text-align: right; font-size: 0.75em; padding-bottom: 1.2em; }
figure.keogram .keo-x { grid-area: 2 / 2; position: relative; height: 1.2em; font-size: 0.75em; }
figure.keogram .keo-x span { position: absolute; transform: translateX(-50%); }
figure.keogram figcaption { grid-area: 3 / 1 / 4 / 3; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin: 0 0.2em 0 0.7em;
  vertical-align: middle; }
#shard-runs td:last-child { white-space: pre-line; overflow-wrap: anywhere; min-width: 22em;
  font-size: 0.85em; }
"""


def _head_html(tally: RunTally, files: pd.DataFrame, model: dict[str, Any] | None) -> list[str]:
    """Title, run summary, model and the overview of every night."""
    body = [
        "<h1>Classify run: predicted classes of new all-sky images</h1>",
        f'<p class="subtitle">{tally.n_ok:,} frames classified, {tally.n_failed:,} failed '
        f"row(s), from {tally.files:,} file(s). Classes are the ridge classifier's "
        f"{', '.join(tally.label_sets)} predictions.</p>",
        '<h2 id="summary">Run summary</h2>',
        summary_html(tally, files),
        '<h2 id="model">Model, weights and conversion</h2>',
        model_html(model, tally.provenance),
        '<h2 id="overview">Every night at a glance</h2>',
    ]
    return body


def _counts_html(tally: RunTally, per_night: pd.DataFrame, counts_png: Path | None) -> list[str]:
    """The overview figure and the class counts per site and per site-night."""
    classes = list(LABEL_NAMES[tally.primary])
    per_site = class_counts(tally, ["site"])
    per_site = per_site.set_index("site").loc[site_order(per_site["site"])].reset_index()
    overview = overview_figure(tally, per_night)
    return [
        f"<figure>{img_tag(overview, 'site x date overview')}<figcaption>One cell per site and "
        "UT date, every night of the run.</figcaption></figure>"
        if overview is not None
        else '<p class="small">No classified frames.</p>',
        f'<h2 id="counts">Class counts ({tally.primary})</h2>',
        "<h3>Per site</h3>",
        f'<div id="counts-per-site">{counts_table(per_site, ["site"], classes).html()}</div>',
        "<h3>Per site and UT date</h3>",
        folded(
            counts_table(per_night, ["date", "site"], classes).html(),
            len(per_night),
            "Class counts of every site and UT date",
            "counts-per-night",
        ),
        "<figure>"
        + picture(counts_png, "class counts over time", "No class counts picture given.")
        + "<figcaption>Predicted classes over time per site (class_counts.png).</figcaption>"
        "</figure>",
    ]


def _tail_html(tally: RunTally, files: pd.DataFrame, sheet_png: Path | None) -> list[str]:
    """Contact sheet, confidence and the failed files."""
    body = [
        '<h2 id="contact-sheet">Contact sheet</h2>',
        "<p>The most confident frames of each predicted class: look here before trusting the "
        "crop and scaling of raw frames.</p>",
        picture(sheet_png, "contact sheet", "No contact sheet given."),
        '<h2 id="confidence">Confidence</h2>',
        confidence_html(tally),
    ]
    figure = confidence_figure(tally)
    if figure is not None:
        body.append(f"<figure>{img_tag(figure, 'winning score distributions')}</figure>")
    failed_rows = [tuple(r) for r in files.itertuples(index=False)]
    body += [
        f'<h2 id="failed">Failed files ({len(files):,})</h2>',
        folded(
            Table.of(["file", "site", "date", "frames", "reason"], failed_rows).html(),
            len(files),
            "Every file with a failure",
            "failed-files",
        )
        if len(files)
        else "<p>No file failed.</p>",
    ]
    return body


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
    """The page as HTML text (see :mod:`oath.report.classify`)."""
    per_night = class_counts(tally, ["date", "site"])
    files = failed_files(tally)
    body = [
        *_head_html(tally, files, model),
        *_counts_html(tally, per_night, counts_png),
        '<h2 id="nights">Night timelines</h2>',
        nights_html(per_night, nights, html_dir, max_nights, keograms),
        *_tail_html(tally, files, sheet_png),
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
