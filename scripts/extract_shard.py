"""Adapter for rule extract_shard: Inception-v4 Logits of one shard's rotated images."""

from oath.config import checkpoint_prefix
from oath.imaging.rotate import read_manifest
from oath.logs import log_to_file
from oath.network.features import extract_shard

log_to_file(snakemake.log[0])
extract_shard(
    read_manifest(snakemake.input.manifest, snakemake.params.rotated_dir),
    checkpoint_prefix(snakemake.input.weights),
    snakemake.output.features,
    weights=snakemake.params.weights,
    random_weights=snakemake.params.random_weights,
    batch_size=snakemake.params.batch_size,
    gpu_batch_size=snakemake.params.gpu_batch_size,
    threads=snakemake.threads,
    precision=snakemake.params.precision,
    backend=snakemake.params.backend,
)
