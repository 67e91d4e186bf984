"""End to end: the demo workflow as a user runs it, then what a change makes stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oath.imaging.png import encode_png
from oath.network import _tf_compat
from oath.network.featurefile import read_features

from .browser import load_page
from .workflow import (
    N_FITS,
    plan,
    planned_jobs,
    put_back_afterwards,
    set_angle,
    snakemake,
    write_config,
)

pytestmark = pytest.mark.e2e
DEMO_CHECKPOINT = "resources/checkpoints/demo_seed1804/inception_v4.ckpt"


def test_demo_run_produces_the_published_layout_and_the_report(demo_run):
    workdir, _ = demo_run
    rotated = sorted(p.name for p in (workdir / "results" / "rotated").glob("*.png"))
    assert len(rotated) == 36
    features = read_features(workdir / "results" / "features" / "auroral_feat.h5")
    assert features.filenames == rotated  # sorted by file name = picNum order
    assert features.logits.shape == (36, 1001) and features.logits.dtype == np.float32
    assert np.isfinite(features.logits).all()
    assert "RANDOM weights" in features.attrs["weights"]
    assert features.attrs["precision"] == "float32"
    # the pooled features beside them, same rows: Logits = PreLogitsFlatten @ W + b row by row
    assert features.prelogits.shape == (36, 1536) and features.prelogits.dtype == np.float32
    tf, _ = _tf_compat.load()
    reader = tf.train.load_checkpoint(str(workdir / DEMO_CHECKPOINT))
    recomputed = features.prelogits.astype(np.float64) @ reader.get_tensor(
        "InceptionV4/Logits/Logits/weights"
    ) + reader.get_tensor("InceptionV4/Logits/Logits/biases")
    assert np.linalg.norm(features.logits - recomputed) / np.linalg.norm(recomputed) < 1e-5

    split = json.loads((workdir / "results/ridge/extracted/class6/split_1.json").read_text())
    assert 0.0 <= split["accuracy"] <= 1.0
    html = (workdir / "results" / "report" / "report.html").read_text()
    summary = (workdir / "results" / "report" / "summary.md").read_text()
    assert "RANDOM weights" in html and "RANDOM weights" in summary
    protocols = json.loads((workdir / "results/ridge/extracted/protocols.json").read_text())
    assert protocols["layers"]["PreLogitsFlatten"]["classifiers"] == ["ridge_published"]
    for text in (html, summary):  # the feature-set table, and what it cannot tell on the demo
        assert "Feature sets" in text and "PreLogitsFlatten" in text
        assert "tests the machinery, not the science" in text
        assert "Classifiers run (config compare.classifiers): published ridge, logistic" in text
    for name in ("confusion_class6.png", "confusion_class2.png"):
        assert (workdir / "results" / "report" / "figures" / name).stat().st_size > 1000
    # as the user opens it: from disk, in a real browser, every picture rendered
    page = load_page(workdir / "results" / "report" / "report.html")
    assert page.images >= 2 and page.missing_images == []
    assert "RANDOM weights" in page.text


def test_second_run_has_nothing_to_do(demo_run):
    workdir, _ = demo_run
    assert planned_jobs(workdir) == {}


@pytest.fixture(scope="module")
def demo_copy(demo_run, tmp_path_factory):
    """A copy of the finished demo run that this module's tests change (an image, an angle,
    the configuration): the working directory and its data set's folder (OATH layout). A
    user's own folder is run from scratch by test_replication."""
    workdir = tmp_path_factory.mktemp("demo-copy") / "run"
    shutil.copytree(demo_run[0], workdir, symlinks=True)
    (dataset,) = {p.parent for p in workdir.glob("resources/demo/*/images")}
    return workdir, dataset


def expect_one_shard_downstream(jobs):
    assert jobs.pop("rotate_shard") == 1
    assert jobs.pop("extract_shard") == 1  # the one shard holding the image, of two
    assert jobs.pop("merge_features") == 1
    assert jobs.pop("render_report") == 1 and jobs.pop("all") == 1
    assert jobs.pop("fit_ridge") == N_FITS and jobs.pop("sweep_alpha") == 2
    assert jobs.pop("compare_protocols") == 1  # the protocol table reads the same features


def test_one_changed_image_reruns_only_its_shard_downstream(demo_copy):
    workdir, dataset = demo_copy
    assert planned_jobs(workdir) == {}
    image = dataset / "images" / "cropped_scaled" / "00020.png"
    with put_back_afterwards(image):
        image.write_bytes(encode_png(np.full((64, 64), 77, np.uint8)))
        stale = plan(workdir)
        jobs = stale.jobs
        expect_one_shard_downstream(jobs)
        assert jobs == {}
        assert stale.wildcards("rotate_shard") == ["shard=00020-00039"]
    # the image put back as it was (bytes and time stamp): nothing is stale any more
    assert planned_jobs(workdir) == {}


def test_one_changed_angle_reruns_only_its_shard_downstream(demo_copy):
    workdir, dataset = demo_copy
    with put_back_afterwards(dataset / "classifications" / "classifications.csv"):
        set_angle(dataset, 5, "359")
        stale = plan(workdir)
        jobs = stale.jobs
        expect_one_shard_downstream(jobs)
        assert jobs == {}
        assert stale.wildcards("rotate_shard") == ["shard=00000-00019"]
        assert stale.wildcards("extract_shard") == ["shard=00000-00019"]
    # the angle put back as it was (bytes and time stamp): nothing is stale any more
    assert planned_jobs(workdir) == {}


def test_report_zip_bundles_the_figures(demo_run):
    workdir, _ = demo_run
    snakemake(workdir, "--report", "report.zip")
    assert (workdir / "report.zip").stat().st_size > 10_000


def test_classify_reproduces_split_0_from_the_image_files(demo_copy, tmp_path):
    workdir, _ = demo_copy
    fits = {
        labels: json.loads((workdir / f"results/ridge/extracted/{labels}/split_0.json").read_text())
        for labels in ("class6", "class2")
    }
    test_pics = {p["picNum"] for p in fits["class6"]["predictions"]}
    new_images = tmp_path / "new"
    new_images.mkdir()
    for image in (workdir / "results" / "rotated").glob("*.png"):
        if int(image.name.split("_")[0]) in test_pics:
            shutil.copy(image, new_images / image.name)
    # one bucket: one classify shard (several shards are gathered in test_stream and on SLURM)
    write_config(workdir, new_images=str(new_images), classify={"train_on": 0, "image_buckets": 1})
    snakemake(workdir, "classify")

    table = pd.read_csv(workdir / "results" / "predictions" / "predictions.csv")
    assert len(table) == len(test_pics) and (table["status"] == "ok").all()
    predicted = {
        int(Path(f).name.split("_")[0]): row
        for f, row in zip(table["file"], table.itertuples(), strict=True)
    }
    for labels, fit in fits.items():
        for p in fit["predictions"]:
            assert getattr(predicted[p["picNum"]], labels) == p["predicted"], (labels, p)
    for picture in ("class_counts.png", "contact_sheet.png"):
        assert (workdir / "results" / "predictions" / picture).stat().st_size > 5000
