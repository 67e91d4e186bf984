"""Adapter for rule make_demo_dataset: draw the synthetic demo in the OATH layout."""

from oath.demo import write_demo_dataset
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
write_demo_dataset(
    snakemake.params.root,
    n_images=snakemake.params.n_images,
    seed=snakemake.params.seed,
    image_size=snakemake.params.image_size,
)
