"""Report sections per label set: the accuracy, confusion matrices, precision and recall per
class, accuracy per split, example images, the most confident mistakes and the alpha sweep.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pandas as pd

from oath.dataset.table import rotated_name
from oath.fit.ridge import aggregate, read_json
from oath.imaging.figures import SheetCell, SheetRow, confusion_figure, contact_sheet, thumbnail
from oath.report.tables import Table, escape

log = logging.getLogger(__name__)

LABEL_TITLES = {"class6": "6 classes (class6)", "class2": "2 classes, aurora or not (class2)"}
EXAMPLES_PER_CLASS = 4
N_MISTAKES = 8


class ImageFinder:
    """Rotated images by picNum, as small grey thumbnails (cached)."""

    def __init__(self, images_dir: Path, angle_of: dict[int, str]) -> None:
        self.images_dir = images_dir
        self.angle_of = angle_of
        self._cache: dict[int, np.ndarray | None] = {}

    def path(self, pic_num: int) -> Path | None:
        angle = self.angle_of.get(int(pic_num))
        return None if angle is None else self.images_dir / rotated_name(pic_num, angle)

    def pixels(self, pic_num: int) -> np.ndarray | None:
        """Grey values in [0, 1]; None when the file is missing or unreadable."""
        pic_num = int(pic_num)
        if pic_num not in self._cache:
            path = self.path(pic_num)
            if path is None:
                log.warning("picNum %d is not in the labels table", pic_num)
            self._cache[pic_num] = None if path is None else thumbnail(path)
        return self._cache[pic_num]

    def data_uri(self, pic_num: int) -> str | None:
        pixels = self.pixels(pic_num)
        if pixels is None:
            return None
        buffer = io.BytesIO()
        mpimg.imsave(buffer, pixels, cmap="gray", vmin=0.0, vmax=1.0, format="png")
        return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class LabelSet:
    """One label set's results, as the report shows them."""

    labels: str
    summary: dict[str, Any]  # oath.fit.ridge.aggregate of the per-split results
    results: list[dict[str, Any]]
    sweep: dict[str, Any] | None
    examples: dict[int, list[int]]  # class -> picNums shown
    mistakes: list[dict[str, Any]]
    confusion_png: bytes


def load_label_set(
    labels: str, paths: Sequence[str], sweep: str | None, table: pd.DataFrame
) -> LabelSet:
    """Read one label set's per-split result JSONs (in split order) and its alpha sweep."""
    results = [read_json(p) for p in paths]
    summary = aggregate(results)
    return LabelSet(
        labels=labels,
        summary=summary,
        results=results,
        sweep=read_json(sweep) if sweep else None,
        examples=class_examples(table, labels, summary["class_names"]),
        mistakes=confident_mistakes(results, N_MISTAKES),
        confusion_png=confusion_figure(summary),
    )


def examples_sheet(label_set: LabelSet, images: ImageFinder) -> bytes:
    """PNG contact sheet of the example images, one row per class."""
    names = label_set.summary["class_names"]
    rows = [
        SheetRow(
            f"{k} {name}",
            [SheetCell(images.pixels(p), f"picNum {p}") for p in label_set.examples.get(k, [])],
        )
        for k, name in enumerate(names)
    ]
    return contact_sheet(rows, f"{label_set.labels}: example images per class")


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


def tile(images: ImageFinder, pic_num: int, lines: Sequence[str]) -> str:
    uri = images.data_uri(pic_num)
    picture = (
        f'<img src="{uri}" alt="picNum {pic_num}">'
        if uri
        else '<div class="missing">image missing</div>'
    )
    caption = "<br>".join(escape(line) for line in lines)
    return f'<div class="tile">{picture}{caption}</div>'


def label_set_html(label_set: LabelSet, images: ImageFinder) -> str:
    """The label set's part of the HTML page; its alpha sweep comes later (:func:`sweep_html`)."""
    s = label_set.summary
    labels = label_set.labels
    parts = [f'<h2 id="{escape(labels)}">{escape(LABEL_TITLES.get(labels, labels))}</h2>']
    parts.append(
        f"<p>Test accuracy over {len(s['splits'])} splits: <strong>{s['mean_accuracy']:.4f} ± "
        f"{s['std_accuracy']:.4f}</strong> (mean ± population std). Printed as the original "
        f"would: <code>{escape(s['printed_line'])}</code></p>"
    )
    uri = "data:image/png;base64," + base64.b64encode(label_set.confusion_png).decode("ascii")
    parts.append(
        f'<figure><img src="{uri}" alt="confusion matrices for {escape(labels)}"><figcaption>'
        "Rows: true class; columns: predicted class. Left: the last split's test set in counts, "
        "as the original script printed it. Right: the test sets of all splits pooled, as the "
        "percentage of each true class.</figcaption></figure>"
    )
    parts.append("<h3>Precision and recall per class</h3>")
    parts.append(
        per_class_table(s).html()
        + '<p class="small">Mean ± population std over the splits; – where a class was never '
        "predicted (precision) or never in a test set (recall).</p>"
    )
    parts.append("<h3>Accuracy per split</h3>")
    splits = Table.of(
        ["split", "train images", "test images", "accuracy"],
        [
            *_split_rows(s),
            ("mean ± std", "", "", f"{s['mean_accuracy']:.4f} ± {s['std_accuracy']:.4f}"),
        ],
        numeric=(1, 2, 3),
    )
    parts.append(splits.html())
    parts.append("<h3>Example images per class</h3>")
    for k, pics in label_set.examples.items():
        parts.append(f'<div class="rowlabel">{k} {escape(s["class_names"][k])}</div>')
        tiles = "".join(tile(images, p, [f"picNum {p}"]) for p in pics)
        parts.append(f'<div class="grid">{tiles or "<em>no images of this class</em>"}</div>')
    parts.append("<h3>Most confident mistakes</h3>")
    parts.append(_mistakes_html(label_set, images))
    return "\n".join(parts)


def _mistakes_html(label_set: LabelSet, images: ImageFinder) -> str:
    names = label_set.summary["class_names"]
    if not label_set.mistakes:
        return "<p>No mistakes on any test set.</p>"
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
        for m in label_set.mistakes
    )
    return (
        '<p class="small">Wrong test predictions over all splits with the largest margin: '
        "decision score of the predicted class minus that of the true class.</p>\n"
        f'<div class="grid">{tiles}</div>'
    )


def per_class_table(s: dict[str, Any]) -> Table:
    """Precision and recall per class, mean ± std over splits, and test images per class."""
    return Table.of(
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


def _split_rows(s: dict[str, Any]) -> list[tuple[Any, Any, Any, str]]:
    return [
        (split, n_train, n_test, fmt(acc))
        for split, n_train, n_test, acc in zip(
            s["splits"], s["n_train"], s["n_test"], s["accuracies"], strict=True
        )
    ]


def sweep_html(label_set: LabelSet) -> str:
    """The alpha sweep's table, one column per split, the alpha in use shaded."""
    sweep = label_set.sweep
    labels = label_set.labels
    if sweep is None:
        return f"<p>No alpha sweep for {escape(labels)}.</p>"
    alpha = label_set.summary["alpha"]
    rows = sweep["results"]
    header = ["alpha", "CV accuracy", "std over splits"] + [
        f"split {i}" for i in range(sweep["n_splits"])
    ]
    table = Table.of(
        header,
        [
            [_alpha_cell(r["alpha"], alpha), fmt(r["mean_accuracy"]), fmt(r["std_accuracy"])]
            + [fmt(v) for v in r["per_split"]]
            for r in rows
        ],
        numeric=tuple(range(1, len(header))),
        marked=[i for i, r in enumerate(rows) if r["alpha"] == alpha],
    )
    return (
        f"<h3>{escape(LABEL_TITLES.get(labels, labels))}</h3>"
        + table.html()
        + f'<p class="small">Best: {escape(best_alpha_text(sweep))}. {escape(sweep["cv"])}.</p>'
    )


def _alpha_cell(value: float, used: float) -> str:
    return f"{value:g}" + (" (used)" if value == used else "")


def label_set_markdown(label_set: LabelSet, figure_path: str) -> list[str]:
    """The label set's part of the Markdown summary, as lines; ``figure_path`` is the confusion
    figure relative to the summary."""
    s = label_set.summary
    labels = label_set.labels
    splits = Table.of(["split", "train", "test", "accuracy"], _split_rows(s))
    out = [
        f"## {LABEL_TITLES.get(labels, labels)}",
        "",
        f"Test accuracy {s['mean_accuracy']:.4f} ± {s['std_accuracy']:.4f}; printed line "
        f"`{s['printed_line']}`.",
        "",
        f"![confusion matrices {labels}]({figure_path})",
        "",
        splits.markdown(),
        "",
        per_class_table(s).markdown(),
        "",
    ]
    sweep = label_set.sweep
    if sweep is not None:
        table = Table.of(
            ["alpha", "CV accuracy", "std over splits"],
            [
                (
                    _alpha_cell(r["alpha"], s["alpha"]),
                    fmt(r["mean_accuracy"]),
                    fmt(r["std_accuracy"]),
                )
                for r in sweep["results"]
            ],
        )
        out += [
            f"Alpha sweep ({sweep['cv']}); best: {best_alpha_text(sweep)}:",
            "",
            table.markdown(),
            "",
        ]
    return out
