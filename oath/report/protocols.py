"""Report section: classifiers x split protocols, from :func:`oath.comparison.compare_to_file`'s
JSON: the table, the published ridge's printed line, and the leakage gap in words."""

from __future__ import annotations

import math
from typing import Any

from oath.published import PUBLISHED_LINE
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


def protocols_section(result: dict[str, Any], feature_set: str = "extracted") -> Section:
    """The classifier x protocol x label-set table and the gap, as HTML and Markdown.

    Both list mean ± std (population, over splits) of accuracy and macro F1, the aurora
    true-positive rate for class2 and the chosen C per split, then sentences in words on the
    leakage gap, on whether a tuned model beats the published ridge (paired over splits), and
    on skipped protocols; the published ridge's printed line is quoted as the script prints it.
    ``feature_set`` names the features compared ("published" says so in the title).
    """
    title = TITLE + (" (published features)" if feature_set == "published" else "")
    table = Table.of(HEADER, _rows(result))
    sentences = _sentences(result)
    printed = result.get("published_printed_line")
    intro = (
        "Same features, two split protocols: the published random 70/30 splits, and splits "
        "that keep every station-night on one side (grouped). Mean ± std over "
        f"{result['n_splits']} splits."
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
    html.append("</section>")
    md.extend(f"- {s}" for s in sentences)
    return Section(title, "\n".join(html) + "\n", "\n".join(md).rstrip() + "\n")


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
                tpr = (
                    _pm(entry.get("mean_aurora_tpr"), entry.get("std_aurora_tpr"))
                    if labels == "class2"
                    else ""
                )
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
    return out
