"""Split protocols: which images train and which test, in each split.

* ``published``: the rows of ``train_test_split.csv`` unchanged; the first
  ``round(train_fraction * N)`` indices of a row train, the rest test (the rule of
  :mod:`oath.dataset.splits`, shared with every other stage);
* ``grouped``: images of one station and night (:mod:`oath.dataset.origins`) never on both sides;
  ``n_splits`` seeded splits holding ~``train_fraction`` of the images in training
  (station-night groups shuffled with ``RandomState([seed, split])``, taken until the training
  part is closest to ``round(train_fraction * N)`` images).

:func:`inner_folds` gives the cross-validation folds inside one split's training part, grouped
the same way, so that model selection does not reward leakage either.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from oath.dataset.origins import ProtocolInputError
from oath.dataset.splits import TRAIN_FRACTION, n_train_of, train_test_rows

log = logging.getLogger(__name__)

PROTOCOLS = ("published", "grouped")


@dataclass(frozen=True)
class Split:
    """Train and test table rows of one split; ``index`` counts from 0."""

    protocol: str
    index: int
    train: np.ndarray
    test: np.ndarray


def published_splits(
    split_rows: np.ndarray,
    n_splits: int,
    split_file: str = "split file",
    train_fraction: float = TRAIN_FRACTION,
) -> list[Split]:
    """The first ``n_splits`` rows of the split file, each split by the published rule."""
    splits = []
    for i in range(n_splits):
        train, test = train_test_rows(split_rows, i, train_fraction, split_file)
        splits.append(Split("published", i, train, test))
    return splits


MIN_GROUPS = 2  # one station-night to train on, one to test on
MIN_CV_GROUPS = 2  # station-nights a training part needs for grouped cross-validation


def grouped_splits(
    groups: np.ndarray, n_splits: int, seed: int, train_fraction: float = TRAIN_FRACTION
) -> list[Split]:
    """Seeded splits that keep every group (station-night) on one side.

    Split ``i`` shuffles the groups with ``RandomState([seed, i])`` and puts groups into
    training, in that order, until the number of training images is closest to
    ``round(train_fraction * N)``; the rest test. Rows of group ``-1`` (station-night
    unknown) are on neither side. Rows are returned in ascending order. Raises
    :class:`ProtocolInputError` with fewer than :data:`MIN_GROUPS` groups
    (:func:`grouped_shortfall` says so beforehand).
    """
    groups = np.asarray(groups)
    known = groups >= 0
    ids, sizes = np.unique(groups[known], return_counts=True)
    if ids.size < MIN_GROUPS:
        raise ProtocolInputError(
            f"grouped splits need at least {MIN_GROUPS} station-nights, found {ids.size}."
        )
    target = n_train_of(int(known.sum()), train_fraction)
    splits = []
    for i in range(n_splits):
        order = np.random.RandomState([seed, i]).permutation(ids.size)
        cumulative = np.cumsum(sizes[order])
        k = min(int(np.argmin(np.abs(cumulative - target))), ids.size - 2)
        in_train = np.isin(groups, ids[order[: k + 1]])
        test = known & ~in_train
        splits.append(Split("grouped", i, np.flatnonzero(in_train), np.flatnonzero(test)))
    return splits


def grouped_shortfall(
    groups: np.ndarray,
    n_splits: int,
    seed: int,
    train_fraction: float = TRAIN_FRACTION,
    cross_validated: bool = True,
) -> dict[str, Any] | None:
    """Why the grouped protocol cannot run on these groups, or None when it can.

    It needs :data:`MIN_GROUPS` station-nights with a known origin; with ``cross_validated``
    (a tuned classifier is scored), every split's training part needs :data:`MIN_CV_GROUPS`
    station-nights for the grouped inner folds. The answer names the count found and the
    count needed: ``{"reason", "found", "needed", "what"}``.
    """
    groups = np.asarray(groups)
    n_groups = int(np.unique(groups[groups >= 0]).size)
    if n_groups < MIN_GROUPS:
        return {
            "what": "station-nights with a known station and time",
            "found": n_groups,
            "needed": MIN_GROUPS,
            "reason": (
                f"{n_groups} station-night(s) with a known station and time found, "
                f"{MIN_GROUPS} needed (one to train on, one to test on)"
            ),
        }
    if not cross_validated:
        return None
    for split in grouped_splits(groups, n_splits, seed, train_fraction):
        in_train = int(np.unique(groups[split.train]).size)
        if in_train < MIN_CV_GROUPS:
            return {
                "what": "station-nights in every grouped training part",
                "found": in_train,
                "needed": MIN_CV_GROUPS,
                "reason": (
                    f"grouped split {split.index}'s training part holds {in_train} of the "
                    f"{n_groups} station-nights found, {MIN_CV_GROUPS} needed to "
                    "cross-validate the tuned classifiers without leakage (more nights, or "
                    "compare.classifiers: [ridge_published])"
                ),
            }
    return None


def cv_shortfall(splits: list[Split], strata: np.ndarray, folds: int) -> dict[str, Any] | None:
    """Why the tuned classifiers cannot cross-validate inside these splits, or None.

    Stratified folds need, in every training part, some class with at least ``folds``
    images (scikit-learn's StratifiedKFold refuses otherwise). The answer names the count
    found and the count needed: ``{"reason", "found", "needed", "what"}``.
    """
    strata = np.asarray(strata)
    for split in splits:
        largest = int(np.bincount(strata[split.train]).max()) if split.train.size else 0
        if largest < folds:
            return {
                "what": "images of the largest class in every training part",
                "found": largest,
                "needed": folds,
                "reason": (
                    f"{split.protocol} split {split.index}'s training part holds at most "
                    f"{largest} image(s) of a class, {folds} needed for the tuned classifiers' "
                    f"{folds}-fold stratified cross-validation (more images per class)"
                ),
            }
    return None


def tuned_left_out(
    classifiers: Sequence[str], splits: list[Split], strata: np.ndarray, folds: int
) -> tuple[list[str], dict[str, Any]]:
    """The classifiers that can run on these splits, and the tuned ones left out (name ->
    :func:`cv_shortfall`'s reason, count found and count needed); the published ridge needs
    no cross-validation and always runs."""
    tuned = [c for c in classifiers if c != "ridge_published"]
    short = cv_shortfall(splits, strata, folds) if tuned else None
    if short is None:
        return list(classifiers), {}
    log.warning("tuned classifier(s) %s left out: %s", ", ".join(tuned), short["reason"])
    return [c for c in classifiers if c not in tuned], dict.fromkeys(tuned, short)


def inner_folds(
    train: np.ndarray,
    strata: np.ndarray,
    groups: np.ndarray | None,
    folds: int,
    seed: int,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds over the training rows only, as (fit, held-out) positions into ``train``.

    ``StratifiedKFold`` when ``groups`` is None, else ``StratifiedGroupKFold`` so that a
    station-night never sits in both a fold's fitting and held-out part.
    """
    y_train = np.asarray(strata)[train]
    placeholder = np.zeros((train.size, 1))
    if groups is not None:
        n_groups = np.unique(np.asarray(groups)[train]).size
        if n_groups < 2:
            raise ProtocolInputError(
                f"only {n_groups} station-night in a training part: too few to cross-validate "
                "without leakage; the data set needs more nights"
            )
        if n_groups < folds:
            log.warning(
                "only %d station-nights in a training part: %d inner folds instead of %d",
                n_groups,
                n_groups,
                folds,
            )
            folds = n_groups
    if groups is None:
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return [(a, b) for a, b in cv.split(placeholder, y_train)]
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(a, b) for a, b in cv.split(placeholder, y_train, np.asarray(groups)[train])]
