"""Logging set-up shared by the workflow's script adapters."""

import logging
import sys


def log_to_file(path: str) -> None:
    """Send this job's log records (oath, TensorFlow's Python side) to the rule's log file.

    An exception that ends the job is written there too, so the log Snakemake points to says
    what went wrong (Snakemake prints the traceback only to the terminal).
    """
    logging.basicConfig(
        filename=path,
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )

    def log_and_raise(kind, value, traceback):
        logging.getLogger("oath").error("job failed: %s", value, exc_info=(kind, value, traceback))
        sys.__excepthook__(kind, value, traceback)

    sys.excepthook = log_and_raise
