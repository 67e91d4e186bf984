"""Adapter for rule classify_images: predictions CSV, class counts over time, contact sheet."""

from oath.logs import log_to_file
from oath.predict import classify_shards_to_csv, contact_sheet, plot_class_counts

log_to_file(snakemake.log[0])
classify_shards_to_csv(
    list(snakemake.input.features),
    list(snakemake.input.manifests),
    snakemake.input.model,
    snakemake.output.predictions,
)
plot_class_counts(snakemake.output.predictions, snakemake.output.counts)
contact_sheet(snakemake.output.predictions, snakemake.output.sheet)
