"""Logging set-up shared by the workflow's script adapters."""

import logging


def log_to_file(path: str) -> None:
    """Send this job's log records (oath, TensorFlow's Python side) to the rule's log file."""
    logging.basicConfig(
        filename=path,
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
