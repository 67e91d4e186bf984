"""oath.archive.stream and the classify rules: streamed shards equal the PNG path, failures,
resume."""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oath.archive.cdf import write_synthetic_asf_cdf
from oath.archive.conversion import Conversion
from oath.archive.inventory import make_inventory
from oath.archive.stream import classify_shard
from oath.archive.themis import prepare_images
from oath.demo.classify_run import random_label_models
from oath.demo.stream0 import archive_path, synthetic_frames, write_stream0, write_synthetic_hour
from oath.fit.model import Model, load_model, predict, save_model
from oath.network.checkpoint import checkpoint_sha256
from oath.network.featurefile import PRELOGITS, read_features
from oath.network.features import extract_logits
from tests.browser import load_page
from tests.workflow import plan, planned_jobs, snakemake, write_config

pytest.importorskip("pyucalgarysrs")

NIGHT = dt.datetime(2014, 3, 10)
ANGLES = {"gill": 12.5}  # gill frames are rotated, fsmi frames are not
CLASSIFY_RULES = (
    "--allowed-rules",
    "classify_shard",
    "classify_images",
    "draw_keograms",
    "classify_report",
    "classify",
)


@pytest.fixture(scope="module")
def checkpoint(random_checkpoint) -> Path:
    return random_checkpoint


def write_model(checkpoint: Path, path: Path, layer: str = "Logits") -> Path:
    """A ridge model with random coefficients, trained (it says) on this checkpoint's features
    of feature set ``layer``."""
    width = 1536 if layer == PRELOGITS else 1001
    label_models = random_label_models(np.random.RandomState(5), width, intercept_scale=0.1)
    provenance = {
        "labels": ["class6", "class2"],
        "features": {"checkpoint_sha256": checkpoint_sha256(checkpoint), "layer": layer},
    }
    save_model(Model(label_models, provenance), path)
    return path


@pytest.fixture(scope="module")
def model(checkpoint, tmp_path_factory) -> Path:
    return write_model(checkpoint, tmp_path_factory.mktemp("stream_model") / "model.npz")


def archive(root: Path, site: str, hour: int, n_files: int = 2, seed: int = 0) -> list[Path]:
    return write_synthetic_hour(
        root, site, NIGHT.replace(hour=hour), n_files=n_files, frames_per_file=2, seed=seed
    )


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def relative_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def classify_with_features(files, tmp_path: Path, checkpoint, model, batch_size: int):
    """One shard through oath.archive.stream with the test angles, keeping its Logits in
    shard.extra."""
    return classify_shard(
        files,
        checkpoint,
        model,
        tmp_path / "shard.parquet",
        extras=tmp_path / "shard.extra",
        conversion=Conversion.from_config({"angle_per_site": ANGLES}),
        save_features=True,
        batch_size=batch_size,
    )


def test_streaming_equals_the_png_path_and_lists_a_corrupt_file(tmp_path, checkpoint, model):
    files = archive(tmp_path / "in", "gill", 6, n_files=3) + archive(tmp_path / "in", "fsmi", 6)
    truncate(files[1])
    pngs = prepare_images(files, tmp_path / "png", site_angles=ANGLES)
    png_logits = extract_logits(ok_images_of(pngs), checkpoint, batch_size=4)

    extras = tmp_path / "shard.extra"
    table = classify_with_features(files, tmp_path, checkpoint, model, batch_size=4)
    assert table.equals(pd.read_parquet(tmp_path / "shard.parquet"))
    failed = table[table["status"] != "ok"]
    assert failed["file"].tolist() == [str(files[1])]
    assert failed["status"].iloc[0].startswith("failed: pyucalgarysrs could not read it")
    assert (table["status"] == "ok").sum() == 8  # the neighbours' 2 frames each

    streamed = read_features(extras / "features.h5")
    names = [Path(p).name for p in ok_images_of(pngs)]
    assert sorted(streamed.filenames) == sorted(names)
    row = {name: i for i, name in enumerate(streamed.filenames)}
    ours = streamed.logits[[row[n] for n in names]]
    assert relative_l2(ours, png_logits).max() < 1e-4

    ok = table[table["status"] == "ok"]
    expected = predict(load_model(model), png_logits)
    by_name = dict(zip(names, expected["class6"].classes, strict=True))
    frame_names = [
        f"{Path(f).name.removesuffix('.pgm.gz')}_f{k:02d}.png"
        for f, k in zip(ok["file"], ok["frame"], strict=True)
    ]
    assert ok["class6"].tolist() == [by_name[n] for n in frame_names]
    assert ok["timestamp"].dt.tz is not None and (ok["site"].isin(["gill", "fsmi"])).all()


def test_a_stream0_file_and_an_l1_cdf_of_the_same_frames_classify_alike(
    tmp_path, checkpoint, model
):
    """A folder with both archives' files: one site-hour shard, the same Logits and labels."""
    frames = synthetic_frames(3, np.random.RandomState(7))
    start = NIGHT.replace(hour=6)
    inbox = tmp_path / "in"
    # stream0 files hold rows bottom-up (the reader flips them); the CDF writer takes read frames
    file_rows = [np.flipud(f) for f in frames]
    raw = write_stream0(archive_path(inbox, start, "gill"), file_rows, "gill", start)
    times = [start + dt.timedelta(seconds=3 * k) for k in range(len(frames))]
    cdf = write_synthetic_asf_cdf(
        inbox / "thg_l1_asf_gill_2014031006_v01.cdf", frames, times, "gill"
    )

    inventory = make_inventory(inbox)
    assert inventory["shard"].unique().tolist() == ["gill/2014-03-10T06"]
    assert dict(zip(inventory["file"], inventory["archive"], strict=True)) == {
        str(raw): "ucalgary_stream0",
        str(cdf): "themis_l1_cdf",
    }

    extras = tmp_path / "shard.extra"
    table = classify_with_features(
        inventory["file"].tolist(), tmp_path, checkpoint, model, batch_size=3
    )
    assert len(table) == 6 and (table["status"] == "ok").all()
    stream0 = table[table["archive"] == "ucalgary_stream0"].sort_values("frame")
    l1 = table[table["archive"] == "themis_l1_cdf"].sort_values("frame")
    assert stream0["class6"].tolist() == l1["class6"].tolist()
    assert stream0["class2"].tolist() == l1["class2"].tolist()
    gap = np.abs(stream0["timestamp"].to_numpy() - l1["timestamp"].to_numpy())
    assert (gap < np.timedelta64(1, "ms")).all()  # CDF_EPOCH keeps milliseconds

    features = read_features(extras / "features.h5")
    row = {name: i for i, name in enumerate(features.filenames)}
    for k in range(len(frames)):
        ours = features.logits[[row[f"{raw.name.removesuffix('.pgm.gz')}_f{k:02d}.png"]]]
        theirs = features.logits[[row[f"{cdf.stem}_f{k:02d}.png"]]]
        assert relative_l2(theirs, ours).max() < 1e-6


def test_a_model_on_pooled_features_is_fed_pooled_features(tmp_path, checkpoint, caplog):
    """A model trained on PreLogitsFlatten gets them from the stream, beside the Logits; the
    job's log gives the seconds of each phase."""
    caplog.set_level(logging.INFO, logger="oath.archive.stream")
    pooled_model = write_model(checkpoint, tmp_path / "pooled.npz", layer=PRELOGITS)
    files = archive(tmp_path / "in", "fsmi", 6, n_files=1)
    extras = tmp_path / "shard.extra"
    table = classify_shard(
        files,
        checkpoint,
        pooled_model,
        tmp_path / "shard.parquet",
        extras=extras,
        save_features=True,
        batch_size=2,
    )
    assert len(table) == 2 and (table["status"] == "ok").all()
    features = read_features(extras / "features.h5")
    assert features.logits.shape == (2, 1001) and features.prelogits.shape == (2, 1536)
    row = {name: i for i, name in enumerate(features.filenames)}
    names = [
        f"{Path(f).name.removesuffix('.pgm.gz')}_f{k:02d}.png"
        for f, k in zip(table["file"], table["frame"], strict=True)
    ]
    pooled = features.prelogits[[row[n] for n in names]]
    expected = predict(load_model(pooled_model), pooled, PRELOGITS)
    assert table["class6"].tolist() == expected["class6"].classes.tolist()
    assert table["class2"].tolist() == expected["class2"].classes.tolist()
    phases = {r.phase: r.seconds for r in caplog.records if hasattr(r, "phase")}
    assert {"restore", "first batch", "outputs (table, extras, Parquet)"} <= set(phases)
    assert all(seconds >= 0 for seconds in phases.values())


def ok_images_of(manifest: pd.DataFrame) -> list[str]:
    return manifest.loc[manifest["status"] == "ok", "png"].tolist()


def planned_shards(workdir: Path) -> list[str]:
    """The classify shards `snakemake -n classify` would run."""
    done = snakemake(workdir, "-n", "classify", *CLASSIFY_RULES)
    return sorted(re.findall(r"newshard=(\S+)", done.stdout + done.stderr))


@pytest.mark.e2e
def test_classify_workflow_shards_resume_and_grow(tmp_path, checkpoint, model):
    """Two site-hours through the classify rules; then a new hour, a changed file and a shard
    left unfinished by a killed run each plan only their own shard."""
    workdir, inbox = tmp_path / "work", tmp_path / "archive"
    files = archive(inbox, "gill", 6, n_files=1) + archive(inbox, "fsmi", 7, n_files=2)
    truncate(files[-1])
    workdir.mkdir()
    (workdir / "results" / "predictions").mkdir(parents=True)
    shutil.copy(model, workdir / "results" / "predictions" / "model.npz")
    write_config(
        workdir,
        checkpoint=str(checkpoint),
        new_images=str(inbox),
        classify={"angle_per_site": ANGLES},
    )
    snakemake(workdir, "classify", *CLASSIFY_RULES, "--set-threads", "classify_shard=1")

    out = workdir / "results" / "predictions"
    table = pd.read_csv(out / "predictions.csv")
    assert len(table) == 5 and (table["status"] != "ok").sum() == 1  # 4 frames + 1 failed file
    dataset = pd.read_parquet(out / "dataset")
    assert len(dataset) == 5 and set(dataset["site"].astype(str)) == {"gill", "fsmi"}
    assert set(dataset["date"].astype(str)) == {"2014-03-10"}
    assert (out / "nights" / "2014-03-10.png").stat().st_size > 5000
    assert (out / "contact_sheet.png").stat().st_size > 5000
    shards = sorted(
        p.relative_to(out / "shards").as_posix()
        for p in out.rglob("*.parquet")
        if "shards" in p.parts
    )
    assert shards == ["fsmi/2014-03-10T07.parquet", "gill/2014-03-10T06.parquet"]
    assert planned_jobs(workdir, "classify", *CLASSIFY_RULES) == {}

    # The run's page names the corrupt file and how the shards were classified; it opens in a
    # browser with every picture; Snakemake's own report of the classify target builds too.
    page = load_page(out / "report.html")
    assert page.missing_images == [] and page.images >= 5
    assert str(files[-1]) in page.text and "Failed files (1)" in page.text
    # the conversion in the config keys a user passes back to classify
    assert "angle_per_site gill: 12.5" in page.text and "float32" in page.text
    # a keogram per site-night for papers, and a light one the page shows above its class strip
    assert sorted(p.name for p in (out / "keograms").glob("*.png")) == [
        "fsmi_2014-03-10.png",
        "fsmi_2014-03-10_page.png",
        "gill_2014-03-10.png",
        "gill_2014-03-10_page.png",
    ]
    assert "keogram gill 2014-03-10" in page.dom and "keogram fsmi 2014-03-10" in page.dom
    snakemake(workdir, "classify", *CLASSIFY_RULES, "--report", "classify_report.zip")
    with zipfile.ZipFile(workdir / "classify_report.zip") as bundle:
        names = bundle.namelist()
    for item in ("report.html", "class_counts.png", "contact_sheet.png"):
        assert any(name.endswith(item) for name in names), (item, names)

    archive(inbox, "gill", 8, n_files=1, seed=3)  # a new hour: one new shard
    write_stream0(
        files[1], synthetic_frames(2, np.random.RandomState(9)), "fsmi", NIGHT.replace(hour=7)
    )
    assert planned_shards(workdir) == [
        "fsmi/2014-03-10T07",  # its changed file
        "gill/2014-03-10T08",  # the new hour
    ]

    # What a run killed mid-way leaves: one shard without its Parquet (written last,
    # atomically), nothing gathered. Snakemake's own lock would ask for --unlock first.
    (out / "shards" / "gill" / "2014-03-10T06.parquet").unlink()
    (out / "predictions.csv").unlink()
    assert planned_shards(workdir) == [
        "fsmi/2014-03-10T07",
        "gill/2014-03-10T06",  # the unfinished one; the other finished shards stay
        "gill/2014-03-10T08",
    ]


def test_a_dry_run_writes_nothing(tmp_path):
    """`snakemake -n` and `snakemake -n classify` plan (the listing included) and write no
    file under results/ or resources/."""
    workdir, inbox = tmp_path / "work", tmp_path / "archive"
    archive(inbox, "gill", 6, n_files=1)
    workdir.mkdir()
    write_config(workdir, new_images=str(inbox))
    planned = plan(workdir, "classify")
    assert planned.wildcards("classify_shard") == ["newshard=gill/2014-03-10T06"]
    assert plan(workdir).jobs  # the replication's plan, too
    written = [p for d in ("results", "resources") for p in (workdir / d).rglob("*")]
    assert written == []
