"""The report rule's inputs, gathered into :func:`oath.report.page.write_report`'s arguments.

Result files are sorted by what they record (their label set and split), not by the order of
a file list; the protocol comparisons are named by the feature set they were made on.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from oath.fit.ridge import read_json
from oath.report.calibration import calibration_section
from oath.report.page import write_report
from oath.report.protocols import protocols_section
from oath.report.published_features import published_section
from oath.report.tables import Section


class ReportInputError(ValueError):
    """The report's input files do not fit together; the message names them."""


def results_by_labels(paths: Sequence[str], labels: Sequence[str]) -> dict[str, list[str]]:
    """Per-split result JSONs grouped by the label set they record, each in split order."""
    found: dict[str, list[tuple[int, str]]] = {name: [] for name in labels}
    for path in paths:
        result = read_json(path)
        if result.get("labels") not in found:
            raise ReportInputError(
                f"{path}: results for label set {result.get('labels')!r}, but the report shows "
                f"{list(labels)}; rerun the ridge fits."
            )
        found[result["labels"]].append((int(result["split"]), str(path)))
    return {name: [p for _, p in sorted(found[name])] for name in labels if found[name]}


def sweeps_by_labels(paths: Sequence[str]) -> dict[str, str]:
    """Alpha-sweep JSONs by the label set they record."""
    return {read_json(p)["labels"]: str(p) for p in paths}


def extra_sections(
    extracted: dict[str, list[str]],
    published_results: Sequence[str],
    comparison: Sequence[str],
    protocols: Sequence[str],
    feature_sets: Sequence[str],
) -> list[Section]:
    """The published features side by side (when the data set ships them), then the protocol
    comparison per feature set (``protocols`` in the order of ``feature_sets``)."""
    if len(protocols) != len(feature_sets):
        raise ReportInputError(
            f"{len(protocols)} protocol comparison(s) {list(protocols)} for feature sets "
            f"{list(feature_sets)}: one per feature set expected."
        )
    extras = []
    if published_results:
        published = results_by_labels(published_results, list(extracted))
        extras.append(
            published_section(extracted, published, comparison[0] if comparison else None)
        )
    for path, feature_set in zip(protocols, feature_sets, strict=True):
        result = json.loads(Path(path).read_text())
        extras.append(protocols_section(result, feature_set))
    return extras


def render_report(
    *,
    split_results: Sequence[str],
    sweeps: Sequence[str],
    published_results: Sequence[str],
    comparison: Sequence[str],
    protocols: Sequence[str],
    feature_sets: Sequence[str],
    labels: Sequence[str],
    features: str,
    classifications: str,
    rotated_dir: str,
    config: dict[str, Any],
    html: str,
    markdown: str,
    figures: Sequence[str],
    calibration: Sequence[str] = (),
) -> None:
    """The whole report from the rule's files: see :func:`oath.report.page.write_report`.

    The rotated images in ``rotated_dir`` illustrate the classes; the figures go to the folder
    of the ``figures`` outputs. ``calibration``: calibration.json and its triplet figure, when
    calibrate ran (a section of its own), else empty.
    """
    extracted = results_by_labels(split_results, labels)
    extras = extra_sections(extracted, published_results, comparison, protocols, feature_sets)
    if calibration:
        extras.append(
            calibration_section(calibration[0], calibration[1] if len(calibration) > 1 else None)
        )
    write_report(
        split_results=extracted,
        sweeps=sweeps_by_labels(sweeps),
        features=features,
        classifications=classifications,
        images_dir=str(rotated_dir),
        config=config,
        html=html,
        markdown=markdown,
        figures_dir=str(Path(figures[0]).parent),
        extras=extras,
    )
