"""Adapter for rule make_demo_checkpoint: deterministic random Inception-v4 weights."""

from oath.config import checkpoint_prefix
from oath.logs import log_to_file
from oath.network.checkpoint import write_random_checkpoint

log_to_file(snakemake.log[0])
write_random_checkpoint(checkpoint_prefix(snakemake.output), seed=snakemake.params.seed)
