"""Adapter for rule train_model: the ridge classifier for new images, with its provenance."""

from oath.fit.model import train_model
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
train_on = snakemake.params.train_on  # "all" or a split number
on_split = train_on != "all"
train_model(
    snakemake.input.features,
    snakemake.input.classifications,
    list(snakemake.params.labels),
    snakemake.params.alpha,
    snakemake.output.model,
    split_file=snakemake.input.split if on_split else None,
    split=int(train_on) if on_split else None,
    train_fraction=snakemake.params.train_fraction,
    provenance=dict(snakemake.params.provenance),
    layer=snakemake.params.layer,
)
