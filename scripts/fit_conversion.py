"""Adapter for rule fit_conversion: fit the raw-to-OATH conversion per site (split 0, training)."""

from oath.calibration.output import fit_conversion
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
fit_conversion(
    snakemake.input.matches,
    snakemake.input.frames,
    snakemake.input.classifications,
    snakemake.input.split,
    snakemake.params.images_dir,
    snakemake.output.conversion,
    snakemake.output.fit,
    train_fraction=snakemake.params.train_fraction,
    base=dict(snakemake.params.base),
    max_shift=snakemake.params.max_shift,
    out_triplets=snakemake.output.triplets,
)
