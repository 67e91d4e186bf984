"""Adapter for rule merge_features: shards into auroral_feat.h5, sorted by file name."""

from oath.logs import log_to_file
from oath.network.features import merge_feature_shards

log_to_file(snakemake.log[0])
merge_feature_shards(list(snakemake.input.shards), snakemake.output.features)
