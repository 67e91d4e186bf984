"""Report section: classifiers x split protocols, from :func:`oath.fit.comparison.compare_to_file`'s
JSON: the table on Logits, the published ridge's printed line, and the leakage gap in words;
then the feature sets (Logits, pooled PreLogitsFlatten) x classifier x protocol table, each row
set against the published ridge on Logits in units of its split std."""

from __future__ import annotations

import math
from typing import Any

from oath.fit.published import PUBLISHED_LINE
from oath.network.featurefile import LOGITS
from oath.report.calibration import origins_left_out_part
from oath.report.provenance import has_random_weights
from oath.report.tables import Section, Table, escape

TITLE = "Beyond the 2018 protocol: same-night leakage and other linear classifiers"
LABEL_WORDS = {"class6": "6-class", "class2": "2-class (aurora / no aurora)"}
CLASSIFIER_WORDS = {
    "ridge_published": "published ridge",
    "logistic": "logistic regression",
    "linear_svm": "linear SVM",
}
HEADER = [
    "Label set",
    "Classifier",
    "Protocol",
    "Accuracy (mean ± std)",
    "Macro F1 (mean ± std)",
    "Aurora TPR (class2)",
    "Chosen C per split",
]
LAYER_HEADER = [
    "Label set",
    "Feature set",
    "Classifier",
    "Protocol",
    "Accuracy (mean ± std)",
    "Macro F1 (mean ± std)",
    "Aurora TPR (class2)",
    "Accuracy vs published ridge on Logits",
]


def protocols_section(result: dict[str, Any], source: str = "extracted") -> Section:
    """The classifier x protocol x label-set table and the gap, as HTML and Markdown.

    Both list mean ± std (population, over splits) of accuracy and macro F1, the aurora
    true-positive rate for class2 and the chosen C per split, then sentences in words on the
    leakage gap, on whether a tuned model beats the published ridge (paired over splits), and
    on skipped protocols; the published ridge's printed line is quoted as the script prints it.
    Then the feature-set table (:func:`_layers_part`) when more than Logits was scored, with a
    plain warning when the features come from random weights. ``source`` names the feature
    file compared ("published" says so in the title).
    """
    title = TITLE + (" (published features)" if source == "published" else "")
    table = Table.of(HEADER, _rows(result))
    sentences = _sentences(result)
    printed = result.get("published_printed_line")
    intro = (
        "Same features (Logits, as published), two split protocols: the published random "
        "70/30 splits, and splits that keep every station-night on one side (grouped). Mean ± "
        f"std over {result['n_splits']} splits. {_classifiers_sentence(result)}"
    )
    note = "Published protocol, ridge, 6 classes, as the original script prints it: "
    html = ['<section class="protocol-comparison">', f"<p>{escape(intro)}</p>", table.html()]
    md = [intro, "", table.markdown(), ""]
    if printed:
        html.append(
            f"<p>{note}<code>{escape(printed)}</code> (the paper's run on the published "
            f"features printed <code>{PUBLISHED_LINE}</code>).</p>"
        )
        md += [
            f"{note}`{printed}` (the paper's run on the published features printed "
            f"`{PUBLISHED_LINE}`).",
            "",
        ]
    if sentences:
        html.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in sentences) + "</ul>")
    md.extend(f"- {s}" for s in sentences)
    words = (
        "files_origin.csv rows left out of the grouped protocol (station or time unreadable); "
        "the published protocol scores every image:"
    )
    left_html, left_md = origins_left_out_part(result.get("origins_left_out") or [], words)
    html += left_html
    md += left_md
    layer_html, layer_md = _layers_part(result)
    html += [*layer_html, "</section>"]
    md += ["", *layer_md]
    return Section(title, "\n".join(html) + "\n", "\n".join(md).rstrip() + "\n")


def _classifiers_sentence(result: dict[str, Any]) -> str:
    """Which classifiers ran (config compare.classifiers) and which did not."""
    ran = result.get("classifiers_run") or list(result["results"])
    words = ", ".join(CLASSIFIER_WORDS.get(c, c) for c in ran)
    left = [CLASSIFIER_WORDS.get(c, c) for c in CLASSIFIER_WORDS if c not in ran]
    sentence = f"Classifiers run (config compare.classifiers): {words}."
    if left:
        sentence += f" Not run: {', '.join(left)}."
    return sentence


def _layers_part(result: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The feature-set table (when more than Logits ran) and sentences, as HTML and Markdown."""
    layers = result.get("layers") or {}
    notes = [
        f"{name} was not compared: {reason}."
        for name, reason in (result.get("layers_skipped") or {}).items()
    ]
    html: list[str] = []
    md: list[str] = []
    if len(layers) > 1:
        intro = (
            "Feature sets: the published Logits (1001 ImageNet class scores) and the pooled "
            "PreLogitsFlatten (1536-d average pool before the classifier, same forward pass), "
            "on the very same splits. The last column is the difference of the mean accuracy "
            "to the published ridge on Logits under the same protocol, in units of that "
            "ridge's std over splits (points in brackets)."
        )
        if has_random_weights(result.get("provenance") or {}):
            intro += (
                " These features come from RANDOM weights: this table tests the machinery, "
                "not the science; which feature set wins here says nothing about aurora."
            )
        table = Table.of(LAYER_HEADER, _layer_rows(result))
        ridge_only = [n for n, v in layers.items() if v["classifiers"] == ["ridge_published"]]
        if ridge_only:
            notes.append(
                f"On {', '.join(ridge_only)} only the published ridge ran; set features: "
                f"{ridge_only[0]} to score every classifier on it (the comparison then takes "
                "about 2.5 times as long)."
            )
        html += [f"<h3>Feature sets</h3><p>{escape(intro)}</p>", table.html()]
        md += ["### Feature sets", "", intro, "", table.markdown(), ""]
    if notes:
        html.append("<ul>" + "".join(f"<li>{escape(s)}</li>" for s in notes) + "</ul>")
        md.extend(f"- {s}" for s in notes)
    return html, md


def _versus(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return ""
    if entry["in_split_std"] is None:
        return f"{entry['difference_points']:+.1f} points (split std 0)"
    return f"{entry['in_split_std']:+.2f} split std ({entry['difference_points']:+.1f} points)"


def _layer_rows(result: dict[str, Any]) -> list[list[str]]:
    by_layer = {LOGITS: result["results"], **(result.get("layer_results") or {})}
    versus = result.get("versus_published_ridge") or {}
    rows = []
    for labels in result["labels"]:
        for layer, results in by_layer.items():
            for c in results:
                for p in result["protocols"]:
                    entry = results[c][p][labels]
                    is_reference = layer == LOGITS and c == "ridge_published"
                    vs = versus.get(layer, {}).get(c, {}).get(p, {}).get(labels)
                    rows.append(
                        [
                            labels,
                            layer,
                            c,
                            p,
                            _pm(entry["mean_accuracy"], entry["std_accuracy"]),
                            _pm(entry["mean_macro_f1"], entry["std_macro_f1"]),
                            _tpr(entry, labels),
                            "reference" if is_reference else _versus(vs),
                        ]
                    )
    return rows


def _tpr(entry: dict[str, Any], labels: str) -> str:
    if labels != "class2":
        return ""
    return _pm(entry.get("mean_aurora_tpr"), entry.get("std_aurora_tpr"))


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None or std is None or not math.isfinite(mean):
        return "n/a"
    return f"{mean:.4f} ± {std:.4f}"


def _rows(result: dict[str, Any]) -> list[list[str]]:
    rows = []
    for labels in result["labels"]:
        for c in result["results"]:
            for p in result["protocols"]:
                entry = result["results"][c][p][labels]
                tpr = _tpr(entry, labels)
                chosen = entry.get("chosen_C")
                rows.append(
                    [
                        labels,
                        c,
                        p,
                        _pm(entry["mean_accuracy"], entry["std_accuracy"]),
                        _pm(entry["mean_macro_f1"], entry["std_macro_f1"]),
                        tpr,
                        ", ".join(f"{x:g}" for x in chosen) if chosen else "",
                    ]
                )
    return rows


def _sentences(result: dict[str, Any]) -> list[str]:
    out = []
    gaps = result.get("leakage_gap") or {}
    for labels in result["labels"]:
        for c in result["results"]:
            if c not in gaps or labels not in gaps[c]:
                continue
            g = gaps[c][labels]
            verb = "lowers" if g["gap"] >= 0 else "raises"
            out.append(
                f"Keeping each station-night on one side {verb} {LABEL_WORDS[labels]} accuracy "
                f"of the {CLASSIFIER_WORDS.get(c, c)} by {abs(g['gap_points']):.1f} points "
                f"({g['published_mean_accuracy']:.4f} → {g['grouped_mean_accuracy']:.4f})."
            )
    versus = result.get("versus_ridge") or {}
    for labels in result["labels"]:
        for p in result["protocols"]:
            best = max(
                result["results"],
                key=lambda c: result["results"][c][p][labels]["mean_accuracy"],
            )
            if best not in versus:
                if best == "ridge_published" and versus:
                    out.append(
                        f"On {p} splits neither tuned model beats the published ridge for "
                        f"{LABEL_WORDS[labels]} accuracy."
                    )
                continue
            d = versus[best][p][labels]
            out.append(
                f"On {p} splits the best {LABEL_WORDS[labels]} classifier is the "
                f"{CLASSIFIER_WORDS.get(best, best)}: {100 * d['mean']:+.1f} ± "
                f"{100 * d['std']:.1f} points over the published ridge on the same splits."
            )
    for protocol, reason in (result.get("protocols_skipped") or {}).items():
        out.append(f"The {protocol} protocol was not run: {reason}.")
    for name, short in (result.get("classifiers_left_out") or {}).items():
        out.append(f"The {CLASSIFIER_WORDS.get(name, name)} was not run: {short['reason']}.")
    return out
