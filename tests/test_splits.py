"""oath.dataset.splits: the published split recipe, the split file, and the rule that cuts a row."""

from __future__ import annotations

import numpy as np
import pytest

from oath.dataset.splits import (
    SPLIT_SEED,
    TRAIN_FRACTION,
    SplitError,
    load_split,
    make_split,
    n_train_of,
    train_test_rows,
    write_split,
)


def test_split_recipe_is_the_original_one():
    np.random.seed(1804)
    original = np.argsort(np.random.rand(5, 5824), axis=1)
    assert SPLIT_SEED == 1804
    assert np.array_equal(make_split(5824), original)


def test_published_training_size():
    """The published 5,824 images: round(0.7 * 5824) = 4077 train, 1747 test."""
    assert TRAIN_FRACTION == 0.7
    assert n_train_of(5824) == 4077
    train, test = train_test_rows(make_split(5824), 4)
    assert (len(train), len(test)) == (4077, 1747)


def test_first_indices_of_the_row_train_the_rest_test():
    rows = make_split(10, n_splits=3)
    train, test = train_test_rows(rows, 2, train_fraction=0.6)
    assert train.tolist() == rows[2, :6].tolist()
    assert test.tolist() == rows[2, 6:].tolist()
    train[:] = -1  # the caller's copy: the split rows stay as read
    assert rows.min() == 0


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_fraction_outside_zero_one_is_refused(fraction):
    with pytest.raises(
        SplitError, match=f"train_fraction must lie between 0 and 1, not {fraction}"
    ):
        n_train_of(100, fraction)


@pytest.mark.parametrize(("n_images", "fraction"), [(3, 0.1), (3, 0.9)])
def test_fraction_leaving_an_empty_part_is_refused(n_images, fraction):
    with pytest.raises(SplitError, match="leaves an empty training or test set"):
        n_train_of(n_images, fraction)


def test_split_row_out_of_range_names_file_and_rows():
    with pytest.raises(
        SplitError, match=r"my_split.csv: split 5 asked for.*5 row\(s\) \(splits 0..4\)"
    ):
        train_test_rows(make_split(20), 5, split_file="my_split.csv")


def test_split_file_round_trip(tmp_path):
    path = tmp_path / "train_test_split.csv"
    split = make_split(40, n_splits=3)
    write_split(path, split)
    assert path.read_text().splitlines()[0] == ",".join(str(i) for i in split[0])
    assert np.array_equal(load_split(path, 40), split)


def test_split_with_wrong_length_is_refused(tmp_path):
    path = tmp_path / "train_test_split.csv"
    write_split(path, make_split(30))
    with pytest.raises(SplitError, match="row 1 is not a permutation of 0..28"):
        load_split(path, 29)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# a comment only\n", "empty split file"),
        ("0,1,2\n0,1.5,2\n", "whole numbers"),
        ("0,1,x\n", "not a comma-separated table of integers"),
    ],
)
def test_malformed_split_file_names_the_file(tmp_path, text, message):
    path = tmp_path / "train_test_split.csv"
    path.write_text(text)
    with pytest.raises(SplitError, match=message) as error:
        load_split(path, 3)
    assert str(path) in str(error.value)
