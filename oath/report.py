"""The accuracy report: one self-contained HTML page, a Markdown summary and PNG figures.

It leads with what the original script printed (mean and std of the 6-class test accuracy, the
last split's confusion matrix) and says plainly which weights made the features. Then, for each
label set: confusion matrices, precision and recall per class, accuracy per split, example
images per class, the most confident mistakes, and the alpha sweep; provenance and the
configuration close it. Images are embedded as base64 data URIs and the CSS is inline, so the
HTML page can be mailed or opened offline; every output is written atomically.
"""

from __future__ import annotations

import base64
import html as htmlmod
import io
import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
from matplotlib.figure import Figure

from oath.atomic import write_bytes
from oath.data import load_classifications, rotated_name
from oath.featurefile import read_features
from oath.ridge import aggregate, read_json

log = logging.getLogger(__name__)

PAPER = (
    "Clausen, L. B. N., & Nickisch, H. (2018). Automatic classification of auroral images from "
    "the Oslo Auroral THEMIS (OATH) data set using machine learning. J. Geophys. Res. Space "
    "Physics, 123, 5640-5647, doi:10.1029/2018JA025274"
)
PUBLISHED_LINE = "0.8174012593016601 0.010271527444147862"
PUBLISHED_SUMMARY = "0.8174 ± 0.0103"
LABEL_TITLES = {"class6": "6 classes (class6)", "class2": "2 classes, aurora or not (class2)"}
EXAMPLES_PER_CLASS = 4
N_MISTAKES = 8
THUMBNAIL_PX = 128

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


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
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
    extras: Sequence[tuple[str, str, str]] = (),
) -> None:
    """Write the HTML report, the Markdown summary and the figures.

    ``split_results`` maps a label set ("class6", "class2") to its per-split JSON paths in split
    order (the last is the split whose confusion matrix the original printed); ``sweeps`` maps a
    label set to its alpha-sweep JSON. ``images_dir`` holds the rotated images
    ``{picNum:05d}_{angle}.png``; ``config`` is the workflow configuration. Figures written to
    ``figures_dir``: ``confusion_{labels}.png`` and ``examples_{labels}.png`` per label set.
    ``extras`` are further sections, (title, HTML fragment, Markdown fragment), shown after the
    headline: the published features side by side, the protocol comparison.
    """
    if "class6" not in split_results:
        raise ValueError(
            "the report needs the class6 results (the published number); add class6 to labels."
        )
    table = load_classifications(classifications)
    angle_of = dict(zip(table["picNum"].astype(int), table["angle"], strict=True))
    attrs = read_features(features).attrs
    images = ImageFinder(Path(images_dir), angle_of)
    figures_dir_path = Path(figures_dir)

    sections = []
    for labels, paths in split_results.items():
        results = [read_json(p) for p in paths]
        summary = aggregate(results)
        used = summary["provenance"].get("features")
        if used and Path(used).resolve() != Path(features).resolve():
            log.warning("%s results were fitted on %s, the report reads %s", labels, used, features)
        sweep = read_json(sweeps[labels]) if labels in sweeps else None
        confusion_png = confusion_figure(summary)
        write_bytes(figures_dir_path / f"confusion_{labels}.png", confusion_png)
        examples = class_examples(table, labels, summary["class_names"])
        write_bytes(
            figures_dir_path / f"examples_{labels}.png",
            contact_sheet(examples, summary["class_names"], images, labels),
        )
        sections.append(
            {
                "labels": labels,
                "summary": summary,
                "results": results,
                "sweep": sweep,
                "confusion_png": confusion_png,
                "examples": examples,
                "mistakes": confident_mistakes(results, N_MISTAKES),
            }
        )
        log.info("%s: %s", labels, summary["printed_line"])

    context = {
        "sections": sections,
        "attrs": attrs,
        "features": str(features),
        "classifications": str(classifications),
        "n_images": len(table),
        "config": config,
        "images": images,
        "extras": list(extras),
    }
    figure_paths = {
        s["labels"]: os.path.relpath(
            figures_dir_path / f"confusion_{s['labels']}.png", Path(markdown).parent
        )
        for s in sections
    }
    write_bytes(markdown, render_markdown(context, figure_paths).encode("utf-8"))
    write_bytes(html, render_html(context).encode("utf-8"))
    log.info("wrote %s, %s and figures in %s", html, markdown, figures_dir)


# --------------------------------------------------------------------------------------------
# Data for the page
# --------------------------------------------------------------------------------------------
class ImageFinder:
    """Rotated images by picNum, as small PNG thumbnails (cached)."""

    def __init__(self, images_dir: Path, angle_of: dict[int, str]) -> None:
        self.images_dir = images_dir
        self.angle_of = angle_of
        self._cache: dict[int, np.ndarray | None] = {}

    def path(self, pic_num: int) -> Path | None:
        angle = self.angle_of.get(int(pic_num))
        return None if angle is None else self.images_dir / rotated_name(pic_num, angle)

    def pixels(self, pic_num: int) -> np.ndarray | None:
        """Grey values in [0, 1], at most THUMBNAIL_PX per side; None when the file is missing."""
        pic_num = int(pic_num)
        if pic_num not in self._cache:
            self._cache[pic_num] = self._load(pic_num)
        return self._cache[pic_num]

    def _load(self, pic_num: int) -> np.ndarray | None:
        path = self.path(pic_num)
        if path is None or not path.is_file():
            log.warning("image of picNum %d not found (%s)", pic_num, path)
            return None
        try:
            pixels = np.asarray(mpimg.imread(path), dtype=np.float64)
        except (OSError, ValueError) as exc:
            log.warning("%s: cannot read (%s)", path, exc)
            return None
        if pixels.ndim == 3:
            pixels = pixels[..., :3].mean(axis=2)
        if pixels.max() > 1.0:
            pixels = pixels / 255.0
        step = max(1, int(np.ceil(max(pixels.shape) / THUMBNAIL_PX)))
        if step > 1:
            h, w = (pixels.shape[0] // step) * step, (pixels.shape[1] // step) * step
            pixels = pixels[:h, :w].reshape(h // step, step, w // step, step).mean(axis=(1, 3))
        return pixels

    def data_uri(self, pic_num: int) -> str | None:
        pixels = self.pixels(pic_num)
        if pixels is None:
            return None
        buffer = io.BytesIO()
        mpimg.imsave(buffer, pixels, cmap="gray", vmin=0.0, vmax=1.0, format="png")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def class_examples(table, labels: str, class_names: Sequence[str]) -> dict[int, list[int]]:
    """A few picNums per class, evenly spaced through the table's rows of that class."""
    examples = {}
    for k in range(len(class_names)):
        pics = table.loc[table[labels] == k, "picNum"].astype(int).to_numpy()
        if pics.size:
            picks = np.unique(np.linspace(0, pics.size - 1, EXAMPLES_PER_CLASS).round().astype(int))
            examples[k] = pics[picks].tolist()
        else:
            examples[k] = []
    return examples


def _margin(prediction: dict[str, Any]) -> float:
    scores = prediction["scores"]
    predicted = scores[prediction["predicted"]]
    true = scores[prediction["true"]]
    if predicted is None:
        return float("-inf")
    return predicted - (true if true is not None else min(s for s in scores if s is not None))


def confident_mistakes(results: Iterable[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    """The ``n`` wrong test predictions with the largest margin (score of the predicted class
    minus score of the true class), over all splits; each image once."""
    best: dict[int, dict[str, Any]] = {}
    for result in results:
        for prediction in result["predictions"]:
            if prediction["predicted"] == prediction["true"]:
                continue
            entry = dict(prediction, split=result["split"], margin=_margin(prediction))
            kept = best.get(entry["picNum"])
            if kept is None or entry["margin"] > kept["margin"]:
                best[entry["picNum"]] = entry
    return sorted(best.values(), key=lambda e: (-e["margin"], e["picNum"]))[:n]


def describe_dataset(config: dict[str, Any], n_images: int) -> str:
    dataset = config.get("dataset", "unknown")
    if dataset == "demo":
        demo = config.get("demo", {})
        return (
            f"synthetic demo data set ({n_images} images; demo seed {demo.get('seed', '?')}, "
            f"{demo.get('image_size', '?')} px), not the OATH images"
        )
    return f"OATH-layout folder {dataset} ({n_images} images)"


def is_random_weights(weights: str | None) -> bool:
    return bool(weights) and "random" in str(weights).lower()


def run_parameters(context: dict[str, Any]) -> list[tuple[str, str]]:
    """The parameters in use, as (name, value) rows."""
    config = context["config"]
    ridge = config.get("ridge", {})
    first = context["sections"][0]["summary"]
    attrs = context["attrs"]
    prov = first["provenance"]
    weights = attrs.get("weights") or "not recorded in the feature file"
    return [
        ("Data set", describe_dataset(config, context["n_images"])),
        ("Labels table", context["classifications"]),
        ("Split file", str(prov.get("split_file", "?"))),
        ("Weights", weights),
        ("Checkpoint", attrs.get("checkpoint") or config.get("checkpoint") or "not recorded"),
        ("Checkpoint SHA-256", attrs.get("checkpoint_sha256") or "not recorded"),
        ("Precision", attrs.get("precision") or "not recorded"),
        ("Features", context["features"]),
        ("Ridge alpha", f"{first['alpha']:g}"),
        ("Train fraction", f"{first['train_fraction']:g}"),
        ("Splits", str(len(first["splits"]))),
        (
            "Split seed",
            f"{ridge.get('split_seed', '?')} (used only when the data set ships no split file)",
        ),
        ("scikit-learn", str(prov.get("sklearn_version", "?"))),
    ]


def flatten(config: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows = []
    for key in sorted(config):
        value = config[key]
        if isinstance(value, dict):
            rows.extend(flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", json.dumps(value, default=str)))
    return rows


def best_alpha_text(sweep: dict[str, Any]) -> str:
    """The best alpha in words, saying when others tie with it."""
    best = max(r["mean_accuracy"] for r in sweep["results"])
    ties = sum(1 for r in sweep["results"] if r["mean_accuracy"] == best)
    text = f"alpha {sweep['best_alpha']:g} (CV accuracy {best:.4f})"
    if ties > 1:
        text += f"; {ties} alphas tie, the smallest is named"
    return text


def fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_pm(mean: float | None, std: float | None) -> str:
    return "–" if mean is None else f"{mean:.3f} ± {std:.3f}"


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    return buffer.getvalue()


def confusion_figure(summary: dict[str, Any]) -> bytes:
    """Two panels: the last split's counts (as printed) and all splits pooled, row-normalised."""
    names = summary["class_names"]
    k = len(names)
    last = np.asarray(summary["last_confusion_matrix"], dtype=float)
    pooled = np.asarray(summary["pooled_confusion_matrix"], dtype=float)
    side = 3.2 + 0.55 * k
    fig = Figure(figsize=(2 * side + 1.0, side))
    panels = [
        (last, f"last split (split {summary['last_split']}): counts", False),
        (pooled, f"all {len(summary['splits'])} splits pooled: % of true class", True),
    ]
    for i, (matrix, title, normalise) in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        totals = matrix.sum(axis=1, keepdims=True)
        shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
        ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        for r in range(k):
            for c in range(k):
                text = f"{100 * shares[r, c]:.0f}" if normalise else f"{int(matrix[r, c])}"
                colour = "white" if shares[r, c] > 0.55 else "#1d2330"
                ax.text(c, r, text, ha="center", va="center", color=colour, fontsize=10)
        ax.set_xticks(range(k), names, rotation=35, ha="right")
        ax.set_yticks(range(k), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
    fig.suptitle(
        f"{summary['labels']}: RidgeClassifier(alpha={summary['alpha']:g}), test accuracy "
        f"{summary['mean_accuracy']:.4f} ± {summary['std_accuracy']:.4f}",
        fontsize=11,
    )
    fig.tight_layout()
    return _png(fig)


def contact_sheet(
    examples: dict[int, list[int]], class_names: Sequence[str], images: ImageFinder, labels: str
) -> bytes:
    """A grid of example images, one row per class."""
    cols = max([len(v) for v in examples.values()] + [1])
    rows = len(class_names)
    fig = Figure(figsize=(1.6 * cols + 1.2, 1.7 * rows))
    for r, name in enumerate(class_names):
        for c in range(cols):
            ax = fig.add_subplot(rows, cols, r * cols + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            pics = examples.get(r, [])
            if c < len(pics):
                pixels = images.pixels(pics[c])
                if pixels is not None:
                    ax.imshow(pixels, cmap="gray", vmin=0.0, vmax=1.0)
                else:
                    ax.text(0.5, 0.5, "missing", ha="center", va="center")
                ax.set_title(f"picNum {pics[c]}", fontsize=8)
            else:
                ax.axis("off")
            if c == 0:
                ax.set_ylabel(f"{r} {name}", fontsize=9)
    fig.suptitle(f"{labels}: example images per class", fontsize=11)
    fig.tight_layout()
    return _png(fig)


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------
def e(value: Any) -> str:
    return htmlmod.escape(str(value))


def html_table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric=(), marked=()) -> str:
    """A table; columns whose index is in ``numeric`` align right, rows in ``marked`` shade."""
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{e(v)}</td>' if j in numeric else f"<td>{e(v)}</td>"
            for j, v in enumerate(row)
        )
        body.append(f'<tr class="mark">{cells}</tr>' if i in marked else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def tile(images: ImageFinder, pic_num: int, lines: Sequence[str]) -> str:
    uri = images.data_uri(pic_num)
    picture = (
        f'<img src="{uri}" alt="picNum {pic_num}">'
        if uri
        else '<div class="missing">image missing</div>'
    )
    caption = "<br>".join(e(line) for line in lines)
    return f'<div class="tile">{picture}{caption}</div>'


def weights_notice_html(attrs: dict[str, str]) -> str:
    weights = attrs.get("weights")
    if is_random_weights(weights):
        return (
            '<div class="warning"><strong>Demo run: these features come from deterministic '
            "RANDOM weights, not the published Inception-v4.</strong> The network has no "
            "ImageNet knowledge, so the accuracies below test the pipeline, not the method; "
            f"they are not comparable with the published {PUBLISHED_SUMMARY}."
            f"<br>Weights recorded in the feature file: <code>{e(weights)}</code></div>"
        )
    if not weights:
        return (
            '<div class="warning">The feature file does not record which weights made it '
            "(the published <code>auroral_feat.h5</code> has no such attributes).</div>"
        )
    return f'<div class="info">Weights: <code>{e(weights)}</code></div>'


def section_html(section: dict[str, Any], images: ImageFinder) -> str:
    s = section["summary"]
    labels = section["labels"]
    names = s["class_names"]
    parts = [f'<h2 id="{e(labels)}">{e(LABEL_TITLES.get(labels, labels))}</h2>']
    parts.append(
        f"<p>Test accuracy over {len(s['splits'])} splits: <strong>{s['mean_accuracy']:.4f} ± "
        f"{s['std_accuracy']:.4f}</strong> (mean ± population std). Printed as the original "
        f"would: <code>{e(s['printed_line'])}</code></p>"
    )
    uri = "data:image/png;base64," + base64.b64encode(section["confusion_png"]).decode("ascii")
    parts.append(
        f'<figure><img src="{uri}" alt="confusion matrices for {e(labels)}"><figcaption>Rows: '
        "true class; columns: predicted class. Left: the last split's test set in counts, as the "
        "original script printed it. Right: the test sets of all splits pooled, as the "
        "percentage of each true class.</figcaption></figure>"
    )
    parts.append("<h3>Precision and recall per class</h3>")
    parts.append(
        html_table(
            ["class", "precision", "recall", "test images (all splits)"],
            [
                (
                    f"{row['class']} {row['name']}",
                    fmt_pm(row["precision_mean"], row["precision_std"]),
                    fmt_pm(row["recall_mean"], row["recall_std"]),
                    row["support"],
                )
                for row in s["per_class"]
            ],
            numeric=(1, 2, 3),
        )
        + '<p class="small">Mean ± population std over the splits; – where a class was never '
        "predicted (precision) or never in a test set (recall).</p>"
    )
    parts.append("<h3>Accuracy per split</h3>")
    parts.append(
        html_table(
            ["split", "train images", "test images", "accuracy"],
            [
                (split, n_train, n_test, fmt(acc))
                for split, n_train, n_test, acc in zip(
                    s["splits"], s["n_train"], s["n_test"], s["accuracies"], strict=True
                )
            ]
            + [("mean ± std", "", "", f"{s['mean_accuracy']:.4f} ± {s['std_accuracy']:.4f}")],
            numeric=(1, 2, 3),
        )
    )
    parts.append("<h3>Example images per class</h3>")
    for k, pics in section["examples"].items():
        parts.append(f'<div class="rowlabel">{k} {e(names[k])}</div>')
        tiles = "".join(tile(images, p, [f"picNum {p}"]) for p in pics)
        parts.append(f'<div class="grid">{tiles or "<em>no images of this class</em>"}</div>')
    parts.append("<h3>Most confident mistakes</h3>")
    mistakes = section["mistakes"]
    if mistakes:
        parts.append(
            '<p class="small">Wrong test predictions over all splits with the largest margin: '
            "decision score of the predicted class minus that of the true class.</p>"
        )
        tiles = "".join(
            tile(
                images,
                m["picNum"],
                [
                    f"picNum {m['picNum']} (split {m['split']})",
                    f"true: {names[m['true']]}",
                    f"predicted: {names[m['predicted']]}",
                    f"score {fmt(m['scores'][m['predicted']], 3)}, margin {fmt(m['margin'], 3)}",
                ],
            )
            for m in mistakes
        )
        parts.append(f'<div class="grid">{tiles}</div>')
    else:
        parts.append("<p>No mistakes on any test set.</p>")
    return "\n".join(parts)


def sweep_html(section: dict[str, Any]) -> str:
    sweep = section["sweep"]
    labels = section["labels"]
    if sweep is None:
        return f"<p>No alpha sweep for {e(labels)}.</p>"
    alpha = section["summary"]["alpha"]
    rows = sweep["results"]
    marked = [i for i, r in enumerate(rows) if r["alpha"] == alpha]
    header = ["alpha", "CV accuracy", "std over splits"] + [
        f"split {i}" for i in range(sweep["n_splits"])
    ]
    return (
        f"<h3>{e(LABEL_TITLES.get(labels, labels))}</h3>"
        + html_table(
            header,
            [
                [
                    f"{r['alpha']:g}" + (" (used)" if r["alpha"] == alpha else ""),
                    fmt(r["mean_accuracy"]),
                    fmt(r["std_accuracy"]),
                ]
                + [fmt(v) for v in r["per_split"]]
                for r in rows
            ],
            numeric=tuple(range(1, len(header))),
            marked=marked,
        )
        + f'<p class="small">Best: {e(best_alpha_text(sweep))}. {e(sweep["cv"])}.</p>'
    )


def render_html(context: dict[str, Any]) -> str:
    sections = context["sections"]
    first = next(s for s in sections if s["labels"] == "class6")
    s6 = first["summary"]
    attrs = context["attrs"]
    config = context["config"]
    images = context["images"]
    overview = html_table(
        ["label set", "test accuracy (mean ± std)", "splits", "printed line"],
        [
            (
                LABEL_TITLES.get(s["labels"], s["labels"]),
                f"{s['summary']['mean_accuracy']:.4f} ± {s['summary']['std_accuracy']:.4f}",
                len(s["summary"]["splits"]),
                s["summary"]["printed_line"],
            )
            for s in sections
        ],
        numeric=(1, 2),
    )
    body = [
        "<h1>Auroral image classification: ridge classifier on Inception-v4 Logits</h1>",
        f'<p class="subtitle">Reproduction of {e(PAPER)}.</p>',
        f"<p>Data: {e(describe_dataset(config, context['n_images']))}.</p>",
        weights_notice_html(attrs),
        '<div class="headline">',
        "<div>What the original script printed: mean and std of the 6-class test accuracy over "
        f"{len(s6['splits'])} splits</div>",
        f'<div class="big">{s6["mean_accuracy"]:.4f} ± {s6["std_accuracy"]:.4f}</div>',
        f"<pre>{e(s6['printed_line'])}\n{e(s6['printed_confusion'])}</pre>",
        f'<div class="small">Second part: confusion matrix of the last split (split '
        f"{s6['last_split']}), rows true, columns predicted. Published "
        f"(Clausen &amp; Nickisch 2018): <code>{PUBLISHED_LINE}</code>, i.e. "
        f"{PUBLISHED_SUMMARY}.</div>",
        "</div>",
        overview,
    ]
    for title, fragment, _ in context["extras"]:
        body += [f"<h2>{e(title)}</h2>", fragment]
    body += [
        "<h2>Provenance</h2>",
        html_table(["item", "value"], run_parameters(context)),
    ]
    for section in sections:
        body.append(section_html(section, images))
    body.append("<h2>Alpha sweep</h2>")
    body.append(
        '<p class="small">Cross-validated accuracy inside the training part of each split; the '
        "test parts are not used, so this does not tune on the test sets.</p>"
    )
    body.extend(sweep_html(section) for section in sections)
    body.append("<h2>Configuration</h2>")
    body.append(html_table(["key", "value"], flatten(config)))
    body.append(
        f'<p class="small">Feature file attributes: '
        f"{e(', '.join(f'{k}={v}' for k, v in sorted(attrs.items())) or 'none')}</p>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>OATH ridge classifier report</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
def md_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(lines)


def render_markdown(context: dict[str, Any], figure_paths: dict[str, str]) -> str:
    sections = context["sections"]
    s6 = next(s for s in sections if s["labels"] == "class6")["summary"]
    weights = context["attrs"].get("weights")
    out = [
        "# OATH ridge classifier: summary",
        "",
        f"Reproduction of {PAPER}.",
        "",
    ]
    if is_random_weights(weights):
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
    ]
    for title, _, fragment in context["extras"]:
        out += [f"## {title}", "", fragment, ""]
    for section in sections:
        s = section["summary"]
        labels = section["labels"]
        out += [
            f"## {LABEL_TITLES.get(labels, labels)}",
            "",
            f"Test accuracy {s['mean_accuracy']:.4f} ± {s['std_accuracy']:.4f}; printed line "
            f"`{s['printed_line']}`.",
            "",
            f"![confusion matrices {labels}]({figure_paths[labels]})",
            "",
            md_table(
                ["split", "train", "test", "accuracy"],
                zip(s["splits"], s["n_train"], s["n_test"], map(fmt, s["accuracies"]), strict=True),
            ),
            "",
            md_table(
                ["class", "precision", "recall", "test images (all splits)"],
                [
                    (
                        f"{r['class']} {r['name']}",
                        fmt_pm(r["precision_mean"], r["precision_std"]),
                        fmt_pm(r["recall_mean"], r["recall_std"]),
                        r["support"],
                    )
                    for r in s["per_class"]
                ],
            ),
            "",
        ]
        sweep = section["sweep"]
        if sweep is not None:
            out += [
                f"Alpha sweep ({sweep['cv']}); best: {best_alpha_text(sweep)}:",
                "",
                md_table(
                    ["alpha", "CV accuracy", "std over splits"],
                    [
                        (
                            f"{r['alpha']:g}" + (" (used)" if r["alpha"] == s["alpha"] else ""),
                            fmt(r["mean_accuracy"]),
                            fmt(r["std_accuracy"]),
                        )
                        for r in sweep["results"]
                    ],
                ),
                "",
            ]
    out += ["## Provenance", "", md_table(["item", "value"], run_parameters(context)), ""]
    return "\n".join(out)
