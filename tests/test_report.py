"""oath.report on tiny synthetic results: a self-contained HTML page, Markdown and figures."""

from __future__ import annotations

import html
import re
from pathlib import Path

import h5py
import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from oath.dataset.table import rotated_name
from oath.fit.ridge import aggregate, read_json, sweep_alpha_to_file
from oath.report.page import write_report

from .test_ridge import WEIGHTS, make_inputs, run_splits

CONFIG = {
    "dataset": "demo",
    "demo": {"n_images": 60, "seed": 2018, "image_size": 32},
    "checkpoint": "",
    "precision": "float32",
    "labels": ["class6", "class2"],
    "ridge": {
        "alpha": 0.03,
        "train_fraction": 0.7,
        "n_splits": 5,
        "split_seed": 1804,
        "sweep_alphas": [0.01, 1.0],
        "sweep_folds": 3,
    },
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def write_images(images_dir: Path, classifications: str, skip: int | None = None) -> None:
    """Small grey PNGs named as the rotated images; ``skip`` leaves one picNum out."""
    images_dir.mkdir(parents=True, exist_ok=True)
    table = pd.read_csv(classifications, comment="#")
    rng = np.random.default_rng(3)
    for pic, angle in zip(table["picNum"], table["angle"], strict=True):
        if pic != skip:
            pixels = rng.random((32, 32))
            mpimg.imsave(images_dir / rotated_name(pic, str(angle)), pixels, cmap="gray")


def build_report(
    root: Path, inputs: dict[str, str], skip: int | None = None, config: dict | None = None
) -> dict[str, Path]:
    split_results, sweeps = {}, {}
    for labels in ("class6", "class2"):
        out_dir = root / "ridge" / labels
        run_splits(inputs, out_dir, labels=labels)
        split_results[labels] = [str(out_dir / f"{labels}_split_{i}.json") for i in range(5)]
        sweeps[labels] = str(root / "ridge" / f"{labels}_sweep.json")
        sweep_alpha_to_file(
            **inputs,
            labels=labels,
            alphas=[0.01, 1.0],
            train_fraction=0.7,
            n_splits=2,
            folds=3,
            out=sweeps[labels],
        )
    images_dir = root / "rotated"
    write_images(images_dir, inputs["classifications"], skip=skip)
    out = {
        "html": root / "report" / "report.html",
        "markdown": root / "report" / "summary.md",
        "figures_dir": root / "report" / "figures",
    }
    write_report(
        split_results=split_results,
        sweeps=sweeps,
        features=inputs["features"],
        classifications=inputs["classifications"],
        images_dir=str(images_dir),
        config=config or CONFIG,
        **{k: str(v) for k, v in out.items()},
    )
    out["class6_line"] = aggregate([read_json(p) for p in split_results["class6"]])["printed_line"]
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("report")
    inputs = make_inputs(root / "data")
    return build_report(root, inputs, skip=1)


def test_html_is_self_contained(report):
    page = report["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert 'src="file' not in page and "<link" not in page and "<script" not in page
    assert "href=" not in page and "url(" not in page
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) > 10 and all(s.startswith("data:image/png;base64,") for s in sources)


def test_html_leads_with_original_line_and_weights(report):
    page = report["html"].read_text(encoding="utf-8")
    line = report["class6_line"]
    assert line in page
    assert page.index(line) < page.index('id="class6"')  # near the top, before the details
    assert "RANDOM weights, not the published Inception-v4" in page
    assert html.escape(WEIGHTS) in page
    assert "ab" * 32 in page and "float32" in page  # checkpoint SHA-256 and precision
    for heading in (
        "Most confident mistakes",
        "Alpha sweep",
        "Precision and recall",
        "Configuration",
    ):
        assert heading in page
    assert "image missing" in page  # picNum 1 has no image file: a placeholder, no crash


def test_markdown_and_figures(report):
    text = report["markdown"].read_text(encoding="utf-8")
    assert report["class6_line"] in text
    assert "RANDOM weights" in text
    assert "](figures/confusion_class6.png)" in text
    for name in ("confusion_class6", "confusion_class2", "examples_class6", "examples_class2"):
        assert (report["figures_dir"] / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
    leftovers = [p.name for p in report["html"].parent.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_features_without_weights_attribute(tmp_path):
    """The published auroral_feat.h5 records no weights; the report says so."""
    inputs = make_inputs(tmp_path / "data")
    with h5py.File(inputs["features"], "a") as h5:
        for key in list(h5.attrs):
            del h5.attrs[key]
    config = dict(CONFIG, dataset="/data/oath_v1.1", oath={"url": "http://example.org/oath.tgz"})
    out = build_report(tmp_path, inputs, config=config)
    page = out["html"].read_text(encoding="utf-8")
    assert "does not record which weights" in page and "RANDOM" not in page
    assert out["class6_line"] in page
    assert "OATH-layout folder /data/oath_v1.1 (60 images)" in page
    # A URL in the config is shown as text in the configuration table, never fetched or linked.
    assert "<td>&quot;http://example.org/oath.tgz&quot;</td>" in page
    assert page.count("http://") == 1 and "href=" not in page


def test_report_config_leaves_out_what_it_does_not_show():
    """Editing classify.* or a run-time knob must not rerun the report: not among its params."""
    from oath.report.provenance import reported_config

    config = dict(CONFIG, classify={"train_on": "all"}, new_images="/x", shard_size=256)
    shown = reported_config(config)
    assert shown == CONFIG


@pytest.mark.parametrize(
    "attrs, random",
    [
        ({"weights": WEIGHTS}, False),  # words alone decide nothing
        ({"weights": "Inception-v4 checkpoint /data/random_forest.ckpt"}, False),
        ({"weights": WEIGHTS, "random_weights": "false"}, False),
        ({"weights": "anything", "random_weights": "true"}, True),
        ({}, False),
    ],
)
def test_random_weights_are_read_from_recorded_attributes(attrs, random):
    from oath.report.provenance import has_random_weights

    assert has_random_weights(attrs) is random


def test_rule_inputs_are_sorted_by_what_the_results_record(tmp_path):
    """Result files in any order land under their own label set, in split order."""
    from oath.report.inputs import ReportInputError, results_by_labels

    inputs = make_inputs(tmp_path / "data")
    out_dir = tmp_path / "ridge"
    run_splits(inputs, out_dir, labels="class2")
    run_splits(inputs, out_dir, labels="class6")
    paths = sorted(str(p) for p in out_dir.glob("*_split_*.json"))[::-1]
    grouped = results_by_labels(paths, ["class6", "class2"])
    assert list(grouped) == ["class6", "class2"]
    for labels, found in grouped.items():
        assert [read_json(p)["split"] for p in found] == list(range(5))
        assert all(read_json(p)["labels"] == labels for p in found)
    with pytest.raises(ReportInputError, match="class2"):
        results_by_labels(paths, ["class6"])
