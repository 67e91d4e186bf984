"""Adapter for rule classify_report: the classify run's page, from the dataset and pictures."""

from oath.logs import log_to_file
from oath.report.classify import write_classify_report

log_to_file(snakemake.log[0])
write_classify_report(
    snakemake.input.dataset,
    snakemake.output.html,
    model=snakemake.input.model,
    nights=snakemake.input.nights,
    counts_png=snakemake.input.counts,
    sheet_png=snakemake.input.sheet,
    margin=snakemake.params.margin,
    max_nights=snakemake.params.nights,
    keograms=snakemake.input.keograms,
)
