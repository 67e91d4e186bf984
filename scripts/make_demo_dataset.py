"""Adapter for rule make_demo_dataset: draw the synthetic demo in the OATH layout."""

import os

from oath.demo.dataset import write_demo_dataset
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
demo = snakemake.params.demo
write_demo_dataset(
    os.path.dirname(snakemake.output.readme),  # the data set's folder holds its README.txt
    n_images=demo["n_images"],
    seed=demo["seed"],
    image_size=demo["image_size"],
)
