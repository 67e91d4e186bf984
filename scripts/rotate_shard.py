"""Adapter for rule rotate_shard: rotate one shard's images by their OATH angles."""

from oath.imaging.rotate import rotate_shard
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
rotate_shard(
    snakemake.input.images,
    snakemake.params.angles,
    snakemake.params.rotated,
    snakemake.output.manifest,
)
