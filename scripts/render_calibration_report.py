"""Adapter for rule render_calibration_report: the calibration section as its own page."""

from oath.logs import log_to_file
from oath.report.calibration import write_calibration_page

log_to_file(snakemake.log[0])
write_calibration_page(
    snakemake.input.calibration,
    snakemake.input.triplets,
    snakemake.output.html,
    snakemake.output.markdown,
)
