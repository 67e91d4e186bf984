"""Adapter for rule compare_protocols: classifiers x split protocols on the same features."""

from oath.fit.comparison import compare_to_file
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
compare_to_file(
    snakemake.input.features,
    snakemake.input.classifications,
    snakemake.input.split,
    snakemake.input.get("files_origin"),
    list(snakemake.params.labels),
    snakemake.params.n_splits,
    snakemake.params.seed,
    snakemake.output.comparison,
    n_jobs=snakemake.threads,
    alpha=snakemake.params.alpha,
    train_fraction=snakemake.params.train_fraction,
    layer=snakemake.params.layer,
    classifiers=list(snakemake.params.classifiers),
)
