"""The classify report: one self-contained HTML page about a run of the classify target.

What a physicist checking an archive run wants on one page: the run summary (files, frames
classified and failed, sites, UT dates) and how the labels were made (the model's training data
and feature set, the weights, precision, device and frame conversion each shard recorded), class
counts per site and per site-night, a site x date overview of every night, the keograms and
night timelines of the nights with most aurora, the contact sheet, the confidence of the labels
and every file that failed, with its reason.

- :mod:`~oath.report.classify.tally`: the Parquet dataset read lazily, batch by batch, into
  counts (:func:`~oath.report.classify.tally.tally_dataset`), so a station-year of frames never
  sits in memory as rows.
- :mod:`~oath.report.classify.counts`: class counts per site and site-night, failed files, the
  nights shown in full.
- :mod:`~oath.report.classify.figures`: the overview and confidence figures.
- :mod:`~oath.report.classify.sections`: the HTML pieces (summary, model, tables, confidence).
- :mod:`~oath.report.classify.nights`: the night timelines and their keograms.
- :mod:`~oath.report.classify.page`: the page put together and written
  (:func:`~oath.report.classify.page.write_classify_report`, what rule classify_report calls).

Confidence: the *winning score* of a frame is the ridge decision score of its predicted class;
its *margin* is the winning score minus the runner-up's (the next highest class score). For two
classes the scores are ``-d`` and ``d``, so the margin is ``2|d|``. The page gives, per class,
the share of frames with a margin below ``margin``.

The synthetic classify runs of the tests and benchmarks are in :mod:`oath.demo.classify_run`.
"""

from oath.report.classify.counts import chosen_nights, class_counts
from oath.report.classify.page import DEFAULT_NIGHTS, render_page, write_classify_report
from oath.report.classify.tally import DEFAULT_MARGIN, ReportError, RunTally, tally_dataset

__all__ = [
    "DEFAULT_MARGIN",
    "DEFAULT_NIGHTS",
    "ReportError",
    "RunTally",
    "chosen_nights",
    "class_counts",
    "render_page",
    "tally_dataset",
    "write_classify_report",
]
