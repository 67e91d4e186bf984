"""Adapter for rule make_split_file: the original split recipe, for data sets without one."""

from oath.dataset.splits import make_split, write_split
from oath.dataset.table import load_classifications
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
n_images = len(load_classifications(snakemake.input.classifications))
write_split(
    snakemake.output.split, make_split(n_images, snakemake.params.n_splits, snakemake.params.seed)
)
