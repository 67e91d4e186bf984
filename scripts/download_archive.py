"""Adapter for rule download_archive: resumable, checksummed download of a published archive."""

from oath.dataset.download import download
from oath.logs import log_to_file

log_to_file(snakemake.log[0])
download(snakemake.params.url, snakemake.output.archive, sha256=snakemake.params.sha256 or None)
