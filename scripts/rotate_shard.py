"""Adapter for the rotate_shard_* rules: rotate one shard's images by their OATH angles."""

from oath.logs import log_to_file
from oath.rotate import rotate_images

log_to_file(snakemake.log[0])
rotate_images(snakemake.input.images, snakemake.output.rotated, snakemake.params.angles)
