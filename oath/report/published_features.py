"""Report section: the ridge on our features and on the published ones, side by side."""

from __future__ import annotations

import json
from pathlib import Path

from oath.fit.published import describe_comparison
from oath.fit.ridge import aggregate, read_json
from oath.report.tables import Section, Table, escape

TITLE = "Our features and the published ones"


def published_section(
    extracted: dict[str, list[str]],
    published: dict[str, list[str]],
    comparison: str | None = None,
) -> Section:
    """Accuracy on both feature sets per label set, and how far our Logits are from theirs.

    ``extracted`` and ``published`` map a label set to its per-split result JSONs;
    ``comparison`` is :func:`oath.fit.published.compare_features_to_file`'s JSON, when there is one.
    """
    rows = []
    for labels in extracted:
        for name, results in (("extracted (this run)", extracted), ("published", published)):
            if labels in results:
                summary = aggregate([read_json(p) for p in results[labels]])
                layer = summary["provenance"].get("layer") or "Logits"
                rows.append(
                    (
                        labels,
                        f"{name}, {layer}",
                        f"{summary['mean_accuracy']:.4f} ± {summary['std_accuracy']:.4f}",
                        summary["printed_line"],
                    )
                )
    accuracy = Table.of(
        ["label set", "features", "test accuracy (mean ± std)", "printed line"], rows
    )
    html, md = [accuracy.html()], [accuracy.markdown()]
    if comparison is not None:
        result = json.loads(Path(comparison).read_text())
        sentence = describe_comparison(result)
        worst = Table.of(
            ["our image", "published name", "relative L2 difference"],
            [
                (r["ours"], r["published"], f"{r['relative_difference']:.2e}")
                for r in result["worst"]
            ],
        )
        html += [f"<p>{escape(sentence)}</p>", worst.html()]
        md += ["", sentence, "", worst.markdown()]
    return Section(TITLE, "\n".join(html), "\n".join(md))
