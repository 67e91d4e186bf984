"""Adapter for rule fetch_raw_frames: the raw files files_origin.csv needs, via pyucalgarysrs."""

from oath.calibration.match import fetch_raw_files, origin_rows
from oath.dataset.table import load_classifications
from oath.logs import log_to_file, summary

log_to_file(snakemake.log[0])
table = load_classifications(snakemake.input.classifications)
files = fetch_raw_files(
    origin_rows(snakemake.input.origins, table["picNum"].tolist()),
    snakemake.params.folder,
    snakemake.output.listing,
    api_base_url=snakemake.params.api_base_url,
    tolerance_s=snakemake.params.tolerance_s,
)
summary(f"{len(files)} raw file(s) fetched with pyucalgarysrs: {snakemake.output.listing}")
