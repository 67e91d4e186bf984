"""Adapter for rule classify_shard: one shard of new files, streamed to predictions Parquet."""

from oath.archive.conversion import Conversion
from oath.archive.stream import classify_shard
from oath.config import checkpoint_prefix
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
classify_shard(
    list(snakemake.input.files),
    checkpoint_prefix(snakemake.input.weights),
    snakemake.input.model,
    snakemake.output.predictions,
    extras=snakemake.output.extras,
    conversion=Conversion.from_config(snakemake.params.conversion),
    weights=snakemake.params.weights,
    save_images=snakemake.params.save_images,
    save_features=snakemake.params.save_features,
    batch_size=snakemake.params.batch_size,
    gpu_batch_size=snakemake.params.gpu_batch_size,
    threads=snakemake.threads,
    precision=snakemake.params.precision,
    backend=snakemake.params.backend,
)
