"""Adapter for rule draw_keograms: a keogram per site-night of the classify dataset."""

from oath.archive.keogram import write_keograms
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
write_keograms(
    snakemake.input.dataset,
    snakemake.output.keograms,
    skymaps=snakemake.params.skymaps,
)
