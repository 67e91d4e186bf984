"""The report page: what the original script printed, which weights made the features, the
extra sections (published features, protocol comparison), provenance, each label set, the alpha
sweep and the configuration, as one self-contained HTML page and a Markdown summary.

Images are embedded as base64 data URIs and the CSS is inline, so the HTML page can be mailed or
opened offline; every output is written atomically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from oath.atomic import write_bytes
from oath.dataset.table import load_classifications
from oath.fit.published import PAPER, PUBLISHED_LINE, PUBLISHED_SUMMARY
from oath.network.featurefile import LOGITS, read_features
from oath.report.label_sets import (
    LABEL_TITLES,
    ImageFinder,
    LabelSet,
    examples_sheet,
    label_set_html,
    label_set_markdown,
    load_label_set,
    sweep_html,
)
from oath.report.provenance import (
    config_table,
    describe_dataset,
    has_random_weights,
    parameters_table,
)
from oath.report.tables import Section, Table, escape

log = logging.getLogger(__name__)

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       max-width: 1100px; margin: 2em auto; padding: 0 1.5em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; }
h2 { border-bottom: 2px solid #d8dde6; padding-bottom: 0.2em; margin-top: 2em; }
h3 { margin-top: 1.5em; }
.subtitle { color: #566075; margin-top: 0; }
.warning { background: #fff4d6; border-left: 6px solid #e0a100; padding: 0.8em 1em;
           margin: 1em 0; }
.info { background: #eaf2fb; border-left: 6px solid #3b7dd8; padding: 0.8em 1em; margin: 1em 0; }
.headline { background: #f4f6f9; border: 1px solid #d8dde6; border-radius: 6px;
            padding: 0.8em 1.2em; margin: 1em 0; }
.headline .big { font-size: 1.6em; font-weight: 600; }
pre { background: #1d2330; color: #e8ecf2; padding: 0.8em 1em; border-radius: 4px;
      overflow-x: auto; font-size: 1.05em; line-height: 1.35; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em 0; font-size: 0.93em; }
th, td { border: 1px solid #d8dde6; padding: 0.3em 0.7em; text-align: left; }
th { background: #f4f6f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.mark td { background: #eef7ea; }
code { background: #f1f3f6; padding: 0 0.25em; border-radius: 3px; white-space: nowrap; }
.grid { display: flex; flex-wrap: wrap; gap: 10px; margin: 0.4em 0 1em 0; }
.tile { width: 150px; font-size: 0.8em; color: #39414f; }
.tile img { width: 150px; height: 150px; object-fit: contain; background: #000;
            display: block; border-radius: 3px; }
.tile .missing { width: 150px; height: 150px; background: #eee; display: flex;
                 align-items: center; justify-content: center; color: #888; }
.rowlabel { font-weight: 600; margin: 0.6em 0 0.2em 0; }
figure { margin: 0.5em 0 1em 0; }
figure img { max-width: 100%; }
figcaption { font-size: 0.85em; color: #566075; }
.small { font-size: 0.85em; color: #566075; }
"""


def write_report(
    split_results: dict[str, list[str]],
    sweeps: dict[str, str],
    features: str,
    classifications: str,
    images_dir: str,
    config: dict[str, Any],
    html: str,
    markdown: str,
    figures_dir: str,
    extras: Sequence[Section] = (),
) -> None:
    """Write the HTML report, the Markdown summary and the figures.

    ``split_results`` maps a label set ("class6", "class2") to its per-split JSON paths in split
    order (the last is the split whose confusion matrix the original printed); ``sweeps`` maps a
    label set to its alpha-sweep JSON. ``images_dir`` holds the rotated images
    ``{picNum:05d}_{angle}.png``; ``config`` is the part of the workflow configuration the
    report shows (:func:`oath.report.provenance.reported_config`). Figures written to
    ``figures_dir``: ``confusion_{labels}.png`` and ``examples_{labels}.png`` per label set.
    ``extras`` are further sections shown after the headline: the published features side by
    side, the protocol comparison.
    """
    if "class6" not in split_results:
        raise ValueError(
            "the report needs the class6 results (the published number); add class6 to labels."
        )
    table = load_classifications(classifications)
    angle_of = dict(zip(table["picNum"].astype(int), table["angle"], strict=True))
    images = ImageFinder(Path(images_dir), angle_of)
    figures = Path(figures_dir)
    label_sets = []
    for labels, paths in split_results.items():
        label_set = load_label_set(labels, paths, sweeps.get(labels), table)
        used = label_set.summary["provenance"].get("features")
        if used and Path(used).resolve() != Path(features).resolve():
            log.warning("%s results were fitted on %s, the report reads %s", labels, used, features)
        write_bytes(figures / f"confusion_{labels}.png", label_set.confusion_png)
        write_bytes(figures / f"examples_{labels}.png", examples_sheet(label_set, images))
        label_sets.append(label_set)
        log.info("%s: %s", labels, label_set.summary["printed_line"])
    page = Page(
        label_sets=label_sets,
        attrs=read_features(features).attrs,
        config=config,
        n_images=len(table),
        paths={"features": str(features), "classifications": str(classifications)},
        extras=list(extras),
    )
    figure_paths = {
        ls.labels: os.path.relpath(figures / f"confusion_{ls.labels}.png", Path(markdown).parent)
        for ls in label_sets
    }
    write_bytes(markdown, render_markdown(page, figure_paths).encode("utf-8"))
    write_bytes(html, render_html(page, images).encode("utf-8"))
    log.info("wrote %s, %s and figures in %s", html, markdown, figures_dir)


class Page:
    """Everything the page shows, read once."""

    def __init__(
        self,
        label_sets: list[LabelSet],
        attrs: dict[str, Any],
        config: dict[str, Any],
        n_images: int,
        paths: dict[str, str],
        extras: list[Section],
    ) -> None:
        self.label_sets = label_sets
        self.attrs = attrs
        self.config = config
        self.n_images = n_images
        self.paths = paths
        self.extras = extras

    @property
    def class6(self) -> dict[str, Any]:
        return next(ls for ls in self.label_sets if ls.labels == "class6").summary

    def parameters(self) -> Table:
        return parameters_table(
            self.config, self.attrs, self.label_sets[0].summary, self.n_images, self.paths
        )


def weights_notice_html(attrs: dict[str, Any]) -> str:
    weights = attrs.get("weights")
    if has_random_weights(attrs):
        return (
            '<div class="warning"><strong>Demo run: these features come from deterministic '
            "RANDOM weights, not the published Inception-v4.</strong> The network has no "
            "ImageNet knowledge, so the accuracies below test the pipeline, not the method; "
            f"they are not comparable with the published {PUBLISHED_SUMMARY}."
            f"<br>Weights recorded in the feature file: <code>{escape(weights)}</code></div>"
        )
    if not weights:
        return (
            '<div class="warning">The feature file does not record which weights made it '
            "(the published <code>auroral_feat.h5</code> has no such attributes).</div>"
        )
    return f'<div class="info">Weights: <code>{escape(weights)}</code></div>'


def _headline_html(page: Page) -> list[str]:
    s6 = page.class6
    overview = Table.of(
        ["label set", "test accuracy (mean ± std)", "splits", "printed line"],
        [
            (
                LABEL_TITLES.get(ls.labels, ls.labels),
                f"{ls.summary['mean_accuracy']:.4f} ± {ls.summary['std_accuracy']:.4f}",
                len(ls.summary["splits"]),
                ls.summary["printed_line"],
            )
            for ls in page.label_sets
        ],
        numeric=(1, 2),
    )
    return [
        '<div class="headline">',
        "<div>What the original script printed: mean and std of the 6-class test accuracy over "
        f"{len(s6['splits'])} splits</div>",
        f'<div class="big">{s6["mean_accuracy"]:.4f} ± {s6["std_accuracy"]:.4f}</div>',
        f"<pre>{escape(s6['printed_line'])}\n{escape(s6['printed_confusion'])}</pre>",
        f'<div class="small">Second part: confusion matrix of the last split (split '
        f"{s6['last_split']}), rows true, columns predicted. Published "
        f"(Clausen &amp; Nickisch 2018): <code>{PUBLISHED_LINE}</code>, i.e. "
        f"{PUBLISHED_SUMMARY}.</div>",
        *(f'<div class="small">{escape(note)}</div>' for note in _layer_note(s6)),
        "</div>",
        overview.html(),
    ]


def _layer_note(summary: dict[str, Any]) -> list[str]:
    """A sentence when the fits used another feature set than the original's Logits."""
    layer = summary["provenance"].get("layer") or LOGITS
    if layer == LOGITS:
        return []
    return [
        f"These fits classify the {layer} features (config features: {layer}); the original "
        "script classified Logits, so this is the same recipe on another feature set."
    ]


def render_html(page: Page, images: ImageFinder) -> str:
    body = [
        "<h1>Auroral image classification: ridge classifier on Inception-v4 Logits</h1>",
        f'<p class="subtitle">Reproduction of {escape(PAPER)}.</p>',
        f"<p>Data: {escape(describe_dataset(page.config, page.n_images))}.</p>",
        weights_notice_html(page.attrs),
        *_headline_html(page),
    ]
    for extra in page.extras:
        body += [f"<h2>{escape(extra.title)}</h2>", extra.html]
    body += ["<h2>Provenance</h2>", page.parameters().html()]
    body.extend(label_set_html(ls, images) for ls in page.label_sets)
    body.append("<h2>Alpha sweep</h2>")
    body.append(
        '<p class="small">Cross-validated accuracy inside the training part of each split; the '
        "test parts are not used, so this does not tune on the test sets.</p>"
    )
    body.extend(sweep_html(ls) for ls in page.label_sets)
    body.append("<h2>Configuration</h2>")
    body.append(config_table(page.config).html())
    attrs = ", ".join(f"{k}={v}" for k, v in sorted(page.attrs.items())) or "none"
    body.append(f'<p class="small">Feature file attributes: {escape(attrs)}</p>')
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>OATH ridge classifier report</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def render_markdown(page: Page, figure_paths: dict[str, str]) -> str:
    s6 = page.class6
    weights = page.attrs.get("weights")
    out = ["# OATH ridge classifier: summary", "", f"Reproduction of {PAPER}.", ""]
    if has_random_weights(page.attrs):
        out += [
            "**Demo run: these features come from deterministic RANDOM weights, not the "
            "published Inception-v4.** The accuracies test the pipeline, not the method, and are "
            f"not comparable with the published {PUBLISHED_SUMMARY}.",
            "",
        ]
    out += [
        f"Weights: `{weights or 'not recorded in the feature file'}`",
        "",
        f"## What the original script printed (class6, {len(s6['splits'])} splits)",
        "",
        "```",
        s6["printed_line"],
        s6["printed_confusion"],
        "```",
        "",
        f"Mean ± std of the 6-class test accuracy: **{s6['mean_accuracy']:.4f} ± "
        f"{s6['std_accuracy']:.4f}**; the matrix is the last split's (split {s6['last_split']}), "
        f"rows true, columns predicted. Published: `{PUBLISHED_LINE}`.",
        "",
        *(f"{note}\n" for note in _layer_note(s6)),
    ]
    for extra in page.extras:
        out += [f"## {extra.title}", "", extra.markdown, ""]
    for ls in page.label_sets:
        out += label_set_markdown(ls, figure_paths[ls.labels])
    out += ["## Provenance", "", page.parameters().markdown(), ""]
    return "\n".join(out)
