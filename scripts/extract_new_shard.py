"""Adapter for rule extract_new_shard: Inception-v4 Logits of one shard of new images."""

from oath.config import checkpoint_prefix
from oath.logs import log_to_file
from oath.predict import extract_prepared

log_to_file(snakemake.log[0])
extract_prepared(
    snakemake.input.manifest,
    checkpoint_prefix(snakemake.input.weights),
    snakemake.output.features,
    weights=snakemake.params.weights,
    batch_size=snakemake.params.batch_size,
    threads=snakemake.threads,
    precision=snakemake.params.precision,
)
