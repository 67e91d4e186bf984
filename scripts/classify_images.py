"""Adapter for rule classify_images: shard predictions -> dataset, CSV and summary pictures."""

from oath.archive.conversion import Conversion
from oath.archive.gather import merge_predictions, summarise
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
table = merge_predictions(
    list(snakemake.input.shards), snakemake.output.dataset, snakemake.output.predictions
)
summarise(
    snakemake.output.predictions,
    table,
    Conversion.from_config(snakemake.params.conversion),
    counts_png=snakemake.output.counts,
    sheet_png=snakemake.output.sheet,
    nights=snakemake.output.nights,
)
