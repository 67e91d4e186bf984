"""Adapter for rule compare_features: our Logits against the published auroral_feat.h5."""

from oath.fit.published import compare_features_to_file
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
compare_features_to_file(
    snakemake.input.ours, snakemake.input.published, snakemake.output.comparison
)
