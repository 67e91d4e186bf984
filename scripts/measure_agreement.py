"""Adapter for rule measure_agreement: labels from OATH's PNGs against labels from raw frames."""

from oath.calibration.agreement import measure_agreement, summary_line
from oath.config import checkpoint_prefix
from oath.logs import log_to_file, summary
from oath.network.device import RunOptions

log_to_file(snakemake.log[0])
result = measure_agreement(
    snakemake.input.matches,
    snakemake.input.frames,
    snakemake.input.fit,
    snakemake.input.features,
    snakemake.input.classifications,
    snakemake.input.split,
    checkpoint_prefix(snakemake.input.weights),
    snakemake.output.calibration,
    snakemake.output.model,
    default=dict(snakemake.params.default),
    labels=list(snakemake.params.labels),
    alpha=snakemake.params.alpha,
    train_fraction=snakemake.params.train_fraction,
    layer=snakemake.params.layer,
    provenance=dict(snakemake.params.provenance),
    run=RunOptions(
        batch_size=snakemake.params.batch_size,
        threads=snakemake.threads,
        precision=snakemake.params.precision,
    ),
    files_origin=snakemake.input.origins,
)
summary(summary_line(result))
