"""Logging set-up shared by the workflow's script adapters.

The terminal of a run belongs to the user: Snakemake's progress and one line per job from us.
Everything else a job prints (oath's log records, Python warnings, TensorFlow's C++ start-up
lines such as ``failed call to cuInit`` on a machine without a GPU) goes to the rule's log file.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import time
import warnings
from collections import Counter
from typing import TextIO

_terminal: TextIO | None = None  # the job's original stderr, kept for summary lines
# Why a warning we expect is harmless, said once with its count in the log.
EXPECTED_WARNINGS = {
    "LinAlgWarning": "ill-conditioned ridge solves, expected with a small alpha (published 0.03) "
    "on the strongly correlated Inception-v4 features",
}


class WarningTally:
    """Log the first warning of each kind in full and count the rest, summed up at exit."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        kind = category.__name__
        self.counts[kind] += 1
        if self.counts[kind] == 1:
            logging.getLogger("py.warnings").warning(
                "%s: %s (%s:%d); more of this kind are counted at the end",
                kind,
                message,
                filename,
                lineno,
            )

    def log_summary(self) -> None:
        for kind, count in sorted(self.counts.items()):
            why = EXPECTED_WARNINGS.get(kind)
            logging.getLogger("oath").info(
                "%d %s warning(s)%s", count, kind, f": {why}" if why else ""
            )


def _count_warnings() -> None:
    """Every warning a job raises reaches the tally (Python shows a repeated one only once)."""
    tally = WarningTally()
    warnings.simplefilter("always")
    for quiet in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
        warnings.filterwarnings("ignore", category=quiet)  # Python's defaults for these
    warnings.showwarning = tally.show
    atexit.register(tally.log_summary)


def _redirect_output(path: str) -> None:
    """Point file descriptors 1 and 2 at the log file, so C/C++ libraries write there too."""
    global _terminal
    if _terminal is None:
        _terminal = os.fdopen(os.dup(2), "w", buffering=1)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    for target in (1, 2):
        os.dup2(fd, target)
    os.close(fd)


def log_to_file(path: str) -> None:
    """Send this job's log records, warnings and library output to the rule's log file.

    An exception that ends the job is written there in full, and named in one line on the
    terminal, so the log Snakemake points to says what went wrong.
    """
    _redirect_output(path)
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        force=True,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    _count_warnings()

    def log_and_raise(kind, value, traceback):
        logging.getLogger("oath").error("job failed: %s", value, exc_info=(kind, value, traceback))
        summary(f"failed: {value} (traceback in {path})")

    sys.excepthook = log_and_raise


def summary(line: str) -> None:
    """One line for the user's terminal (and the log); the log alone outside a workflow job."""
    logging.getLogger("oath").info(line)
    if _terminal is not None:
        print(f"oath: {line}", file=_terminal)


def process_seconds() -> float | None:
    """Seconds since this process started (interpreter start-up included); None where the
    system does not say (Linux's ``/proc/self/stat`` does)."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after "pid (name)": field 3 on
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, in ticks since boot
        return time.clock_gettime(time.CLOCK_BOOTTIME) - started
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def log_phase(logger: logging.Logger, phase: str, seconds: float) -> None:
    """One line ``phase <name>: <seconds> s`` in ``logger``'s log; the record carries
    ``phase`` and ``seconds`` too, for a benchmark's handler."""
    logger.info("phase %s: %.2f s", phase, seconds, extra={"phase": phase, "seconds": seconds})
