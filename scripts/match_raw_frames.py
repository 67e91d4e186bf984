"""Adapter for rule match_raw_frames: every data-set image to its raw frame (files_origin.csv)."""

from oath.calibration.match import list_raw_files, match_frames, origin_rows
from oath.dataset.table import load_classifications
from oath.logs import log_to_file, summary

log_to_file(snakemake.log[0])
table = load_classifications(snakemake.input.classifications)
matches = match_frames(
    origin_rows(snakemake.input.origins, table["picNum"].tolist()),
    list_raw_files(snakemake.params.raw_images),
    snakemake.output.matches,
    snakemake.output.frames,
    tolerance_s=snakemake.params.tolerance_s,
)
matched = int((matches["status"] == "matched").sum())
summary(f"{matched} of {len(matches)} image(s) matched to raw frames: {snakemake.output.matches}")
