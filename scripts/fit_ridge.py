"""Adapter for rule fit_ridge: one RidgeClassifier fit on one split and label set."""

from oath.fit.ridge import fit_split_to_file
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
fit_split_to_file(
    features=snakemake.input.features,
    classifications=snakemake.input.classifications,
    split_file=snakemake.input.split,
    split=int(snakemake.wildcards.split),
    labels=snakemake.wildcards.labels,
    alpha=snakemake.params.alpha,
    train_fraction=snakemake.params.train_fraction,
    out=snakemake.output.result,
    layer=snakemake.params.layer,
)
