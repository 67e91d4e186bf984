"""Adapter for rule make_demo_checkpoint: deterministic random Inception-v4 weights."""

from oath.features import write_random_checkpoint
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
write_random_checkpoint(snakemake.params.prefix, seed=snakemake.params.seed)
