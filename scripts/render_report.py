"""Adapter for rule render_report: the HTML report, Markdown summary and figures."""

import os

from oath.logs import log_to_file
from oath.report import write_report

log_to_file(snakemake.log[0])
labels = snakemake.params.labels
n_splits = snakemake.params.n_splits
results = list(snakemake.input.split_results)  # label-major order, as get_split_results lists
write_report(
    split_results={lab: results[i * n_splits : (i + 1) * n_splits] for i, lab in enumerate(labels)},
    sweeps=dict(zip(labels, snakemake.input.sweeps, strict=True)),
    features=snakemake.input.features,
    classifications=snakemake.input.classifications,
    images_dir=os.path.dirname(snakemake.input.rotated[0]),
    config=dict(snakemake.params.config),
    html=snakemake.output.html,
    markdown=snakemake.output.markdown,
    figures_dir=os.path.dirname(snakemake.output.figures[0]),
)
