"""Train/test splits: the published recipe, the split file, and the rule that cuts a row.

Clausen & Nickisch split each row of ``train_test_split.csv`` (a permutation of the rows of
``classifications.csv``) so that its first ``round(train_fraction * N)`` indices train and the
rest test; the rows themselves come from ``np.random.seed(1804); np.argsort(np.random.rand(5, N),
axis=1)``. Every stage that splits (ridge fits, alpha sweep, protocol comparison, the classify
model) uses these functions, so the rule cannot drift between them. The split file
(``train_test_split.csv``) is made, written and read here too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPLIT_SEED = 1804  # the published recipe's seed; also seeds our CV folds so reruns agree
TRAIN_FRACTION = 0.7  # published


class SplitError(ValueError):
    """A split that cannot be made or read: a fraction out of range, a row the file does not
    have, or a split file that is not one permutation of the table's rows per line."""


def n_train_of(n_images: int, train_fraction: float = TRAIN_FRACTION) -> int:
    """Training-set size as the original script computes it: ``round(train_fraction * N)``.

    >>> n_train_of(5824)
    4077
    """
    if not 0.0 < train_fraction < 1.0:
        raise SplitError(f"train_fraction must lie between 0 and 1, not {train_fraction}.")
    n_train = int(round(train_fraction * n_images))
    if n_train < 1 or n_train >= n_images:
        raise SplitError(
            f"train_fraction {train_fraction} of {n_images} images leaves an empty training or "
            "test set; use more images or another fraction."
        )
    return n_train


def train_test_rows(
    split_rows: np.ndarray,
    index: int,
    train_fraction: float = TRAIN_FRACTION,
    split_file: str = "split file",
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test table rows of row ``index`` (0-based) of a split file's rows."""
    split_rows = np.asarray(split_rows, dtype=np.int64)
    n_rows = split_rows.shape[0]
    if not 0 <= index < n_rows:
        raise SplitError(
            f"{split_file}: split {index} asked for, but the file has {n_rows} row(s) "
            f"(splits 0..{n_rows - 1}). Lower ridge.n_splits in the config or use a split file "
            "with more rows."
        )
    n_train = n_train_of(split_rows.shape[1], train_fraction)
    row = split_rows[index]
    return row[:n_train].copy(), row[n_train:].copy()


def make_split(n_images: int, n_splits: int = 5, seed: int = SPLIT_SEED) -> np.ndarray:
    """The original split recipe.

    ``np.random.seed(1804); np.argsort(np.random.rand(5, N), axis=1)``

    >>> split = make_split(10)
    >>> split.shape
    (5, 10)
    >>> sorted(split[0]) == list(range(10))  # each row a permutation of the table's rows
    True
    >>> train, test = train_test_rows(split, 0)  # 70/30, as published
    >>> len(train), len(test)
    (7, 3)
    """
    rng = np.random.RandomState(seed)  # same stream as the legacy np.random.seed
    return np.argsort(rng.rand(n_splits, n_images), axis=1)


def write_split(path: str | Path, split: np.ndarray) -> None:
    """Write a split file as the published one: comma-separated integers, one split per row."""
    np.savetxt(path, split, fmt="%d", delimiter=",")


def load_split(path: str | Path, n_images: int) -> np.ndarray:
    """Read a split file and check that each row is a permutation of 0..N-1."""
    path = Path(path)
    try:
        split = np.loadtxt(path, delimiter=",", ndmin=2, comments="#")
    except (OSError, ValueError) as exc:
        raise SplitError(f"{path}: not a comma-separated table of integers ({exc}).") from exc
    if split.size == 0:
        raise SplitError(f"{path}: empty split file; delete it to have the original one made.")
    if np.any(split % 1 != 0):
        raise SplitError(f"{path}: split indices must be whole numbers.")
    split = split.astype(np.int64)
    expected = np.arange(n_images)
    for row, indices in enumerate(split, start=1):
        if indices.size != n_images or not np.array_equal(np.sort(indices), expected):
            raise SplitError(
                f"{path}: row {row} is not a permutation of 0..{n_images - 1} "
                f"({indices.size} entries for {n_images} images). The split must match "
                "classifications.csv row for row; delete the file to have the original recipe "
                f"(seed {SPLIT_SEED}) write one."
            )
    return split
