"""Our features against the published auroral_feat.h5, and the side-by-side report section."""

from __future__ import annotations

import json

import numpy as np
import pytest

from oath.fit.published import compare_features, compare_features_to_file
from oath.fit.ridge import aggregate
from oath.network.featurefile import FeatureFileError, Features, write_features
from oath.report.published_features import published_section

from .test_ridge import make_inputs, run_splits


def feature_file(path, names, logits, **attrs):
    write_features(path, Features(list(names), np.asarray(logits, np.float32), attrs))
    return str(path)


def test_identical_features_reproduce_and_a_changed_image_is_listed_first(tmp_path):
    rng = np.random.RandomState(0)
    logits = rng.randn(5, 1001)
    ours = feature_file(tmp_path / "ours.h5", [f"{i:05d}_10.png" for i in range(1, 6)], logits)
    changed = logits.copy()
    changed[3] *= 1.05  # picNum 4 differs by 5 %
    theirs = feature_file(tmp_path / "pub.h5", [f"{i:05d}_10.png" for i in range(1, 6)], changed)
    result = compare_features(ours, theirs)
    assert result["n_compared"] == 5
    assert result["worst"][0]["picNum"] == 4
    assert result["worst"][0]["relative_difference"] == pytest.approx(0.05 / 1.05, rel=1e-4)
    assert result["fraction_reproduced"] == pytest.approx(0.8)
    assert result["median_relative_difference"] < 1e-6


def test_images_are_matched_by_picnum_not_position(tmp_path):
    rng = np.random.RandomState(1)
    logits = rng.randn(3, 1001)
    ours = feature_file(tmp_path / "ours.h5", ["00001_5.png", "00002_7.png", "00003_9.png"], logits)
    theirs = feature_file(tmp_path / "pub.h5", ["00002_7.png", "00003_9.png"], logits[1:])
    out = tmp_path / "cmp.json"
    compare_features_to_file(ours, theirs, str(out))
    result = json.loads(out.read_text())
    assert result["n_compared"] == 2 and result["n_only_ours"] == 1
    assert result["max_relative_difference"] == 0.0


def test_disjoint_files_are_refused(tmp_path):
    a = feature_file(tmp_path / "a.h5", ["00001_1.png"], np.ones((1, 1001)))
    b = feature_file(tmp_path / "b.h5", ["00009_1.png"], np.ones((1, 1001)))
    with pytest.raises(FeatureFileError, match="share no picNum"):
        compare_features(a, b)


def test_section_shows_both_feature_sets_side_by_side(tmp_path):
    ours = make_inputs(tmp_path / "ours", seed=0)
    theirs = make_inputs(tmp_path / "published", seed=3)
    ours_results = [str(tmp_path / "ours" / f"class6_split_{i}.json") for i in range(5)]
    their_results = [str(tmp_path / "published" / f"class6_split_{i}.json") for i in range(5)]
    run_splits(ours, tmp_path / "ours")
    run_splits(theirs, tmp_path / "published")
    comparison = tmp_path / "cmp.json"
    compare_features_to_file(ours["features"], theirs["features"], str(comparison))
    section = published_section(
        {"class6": ours_results}, {"class6": their_results}, str(comparison)
    )
    html, markdown = section.html, section.markdown
    mine = aggregate([json.loads(open(p).read()) for p in ours_results])["printed_line"]
    published = aggregate([json.loads(open(p).read()) for p in their_results])["printed_line"]
    assert mine != published
    for text in (html, markdown):
        assert mine in text and published in text
        assert "median relative L2 difference" in text
