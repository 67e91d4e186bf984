"""The published split rule, in one place.

Clausen & Nickisch split each row of ``train_test_split.csv`` (a permutation of the rows of
``classifications.csv``) so that its first ``round(train_fraction * N)`` indices train and the
rest test; the rows themselves come from ``np.random.seed(1804); np.argsort(np.random.rand(5, N),
axis=1)``. Every stage that splits (ridge fits, alpha sweep, protocol comparison, the classify
model) uses these functions, so the rule cannot drift between them.
"""

from __future__ import annotations

import numpy as np

SPLIT_SEED = 1804  # the published recipe's seed; also seeds our CV folds so reruns agree
TRAIN_FRACTION = 0.7  # published


class SplitError(ValueError):
    """A split that cannot be made: a fraction out of range or a row the file does not have."""


def n_train_of(n_images: int, train_fraction: float = TRAIN_FRACTION) -> int:
    """Training-set size as the original script computes it: ``round(train_fraction * N)``."""
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
