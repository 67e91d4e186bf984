"""Adapter for rule sweep_alpha: CV accuracy per alpha on the training parts only."""

from oath.fit.ridge import sweep_alpha_to_file
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
sweep_alpha_to_file(
    features=snakemake.input.features,
    classifications=snakemake.input.classifications,
    split_file=snakemake.input.split,
    labels=snakemake.wildcards.labels,
    alphas=list(snakemake.params.alphas),
    train_fraction=snakemake.params.train_fraction,
    n_splits=snakemake.params.n_splits,
    folds=snakemake.params.folds,
    out=snakemake.output.sweep,
    layer=snakemake.params.layer,
)
