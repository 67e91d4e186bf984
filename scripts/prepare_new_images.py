"""Adapter for rule prepare_new_images: new files -> OATH-like PNGs and a manifest."""

from oath.logs import log_to_file
from oath.themis import prepare_images

log_to_file(snakemake.log[0])
prepare_images(
    list(snakemake.input.files),
    snakemake.output.images,
    crop=dict(snakemake.params.crop),
    scaling=dict(snakemake.params.scaling),
    site_crops=dict(snakemake.params.crop_per_site),
    site_angles=dict(snakemake.params.angle_per_site),
    manifest=snakemake.output.manifest,
)
