"""Adapter for rule render_report: the HTML report, Markdown summary and figures."""

import json
import os

from oath.logs import log_to_file
from oath.protocols import render_comparison
from oath.published import published_section
from oath.report import write_report

log_to_file(snakemake.log[0])
labels = snakemake.params.labels


def by_labels(paths):
    """Per-split result paths (label-major, as get_split_results lists them) by label set."""
    paths = list(paths)
    n = len(paths) // len(labels)
    return {lab: paths[i * n : (i + 1) * n] for i, lab in enumerate(labels)}


extracted = by_labels(snakemake.input.split_results)
extras = []
if snakemake.input.published_results:
    comparison = snakemake.input.comparison[0] if snakemake.input.comparison else None
    extras.append(
        published_section(extracted, by_labels(snakemake.input.published_results), comparison)
    )
for path in snakemake.input.protocols:
    title = "Beyond the 2018 protocol: same-night leakage and other linear classifiers"
    if "/published/" in path:
        title += " (published features)"
    extras.append((title, *render_comparison(json.loads(open(path).read()))))
write_report(
    split_results=extracted,
    sweeps=dict(zip(labels, snakemake.input.sweeps, strict=True)),
    features=snakemake.input.features,
    classifications=snakemake.input.classifications,
    images_dir=os.path.dirname(os.path.dirname(snakemake.input.manifests[0])),
    config=dict(snakemake.params.config),
    html=snakemake.output.html,
    markdown=snakemake.output.markdown,
    figures_dir=os.path.dirname(snakemake.output.figures[0]),
    extras=extras,
)
