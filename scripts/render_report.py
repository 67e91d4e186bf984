"""Adapter for rule render_report: the HTML report, Markdown summary and figures."""

from oath.logs import log_to_file
from oath.report.inputs import render_report

log_to_file(snakemake.log[0])
render_report(
    split_results=list(snakemake.input.split_results),
    sweeps=list(snakemake.input.sweeps),
    published_results=list(snakemake.input.published_results),
    comparison=list(snakemake.input.comparison),
    protocols=list(snakemake.input.protocols),
    feature_sets=list(snakemake.params.feature_sets),
    labels=list(snakemake.params.labels),
    features=snakemake.input.features,
    classifications=snakemake.input.classifications,
    rotated_dir=snakemake.params.rotated_dir,
    config=dict(snakemake.params.config),
    html=snakemake.output.html,
    markdown=snakemake.output.markdown,
    figures=list(snakemake.output.figures),
    calibration=list(snakemake.input.calibration),
)
