"""`snakemake calibrate` end to end on a tiny demo: the files it promises, the report section
(opened in headless chromium), the terminal's summary line, and a data set it cannot serve.

It calibrates a copy of the session's finished demo run (tests/config.yaml), so only the
calibration and the report run here; apart from tests/test_calibration.py, which stays under a
minute.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from oath.archive.themis import name_stem, read_gray8
from oath.calibration.match import MATCHED
from oath.config import validate_config
from oath.demo.dataset import demo_conversion
from tests.browser import load_page
from tests.workflow import e2e_config, snakemake, write_config

pytestmark = pytest.mark.e2e
DEMO = e2e_config()["demo"]


@pytest.fixture(scope="module")
def calibrated(demo_run, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("calibrate") / "run"
    shutil.copytree(demo_run[0], workdir, symlinks=True)  # time stamps kept: nothing stale
    done = snakemake(workdir, "calibrate")
    return workdir, done.stdout + done.stderr


def test_calibrate_writes_the_conversion_and_the_agreement(calibrated):
    workdir, terminal = calibrated
    out = workdir / "results" / "calibration"
    result = json.loads((out / "calibration.json").read_text())
    fitted = [s for s, e in result["sites"].items() if e["conversion"]]
    assert fitted and result["matched"] == DEMO["n_images"] and result["unmatched"] == []
    secret = demo_conversion(DEMO["image_size"])
    for site in fitted:
        entry = result["sites"][site]
        assert set(entry) >= {"matched", "unmatched", "family", "residual_mean_abs", "conversion"}
        assert entry["conversion"]["crop"] == secret["crop_per_site"][site]
        assert entry["family"] == "linear"
        assert entry["residual_mean_abs"] is None or entry["residual_mean_abs"] < 1.0
    agreement = result["agreement"]
    # the fitted conversion gives the PNGs' own pixels, so the labels are the PNGs' labels
    assert agreement["route_agreement"] == 1.0
    assert agreement["raw_fitted_accuracy"] == agreement["png_accuracy"]
    assert agreement["raw_fitted_logits_rel_l2"]["max"] < 1e-3
    assert agreement["raw_default_logits_rel_l2"]["median"] > 1e-2  # another picture
    conversion = yaml.safe_load((out / "conversion.yaml").read_text())
    validate_config(conversion)  # what --configfile gives classify
    assert conversion["classify"]["orientation_per_site"].get("gill", "none") == "flip_rows"
    assert f"oath: calibrate: {DEMO['n_images']} image(s) matched" in terminal


def test_calibrate_shows_its_page_without_rerunning_the_comparisons(calibrated):
    workdir, terminal = calibrated
    assert "rule compare_protocols" not in terminal and "rule render_report" not in terminal
    page = load_page(workdir / "results" / "calibration" / "report.html")
    assert page.missing_images == []
    assert "Raw frames against OATH's images (calibrate)" in page.text
    assert "agreement with PNG labels: fitted" in page.text
    assert "OATH image, converted raw frame, difference" in page.dom


def test_a_data_set_without_raw_images_says_how_to_get_them(calibrated, tmp_path):
    workdir, _ = calibrated
    demo = next((workdir / "resources" / "demo").iterdir())
    write_config(tmp_path, dataset=str(demo))
    done = snakemake(tmp_path, "-n", "calibrate", check=False)
    text = done.stdout + done.stderr
    assert done.returncode != 0
    assert "calibrate needs the raw THEMIS frames" in text
    assert "raw_images=" in text and "pyucalgarysrs" in text


def test_classify_with_the_fitted_conversion_remakes_the_oath_images(calibrated):
    """--configfile conversion.yaml: classify's converted frames are the demo's own PNGs."""
    workdir, _ = calibrated
    matches = pd.read_csv(workdir / "results" / "calibration" / "matches.csv")
    matches = matches[matches["status"] == MATCHED]
    chosen = [
        matches[matches["station"] == "gill"].iloc[0],
        matches[matches["station"] != "gill"].iloc[0],
    ]
    listing = workdir / "raw_listing.txt"
    listing.write_text("".join(f"{row['file']}\n" for row in chosen))
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    config["classify"] = {"save_images": True}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    # up to the classify shards, whose saved frames are what is compared (gathering, keograms
    # and the page of a classify run are checked in test_stream and test_workflow)
    snakemake(
        workdir,
        "classify",
        "--until",
        "classify_shard",
        "--configfile",
        str(workdir / "results" / "calibration" / "conversion.yaml"),
        "--config",
        f"new_images={listing}",
    )
    images = next((workdir / "resources" / "demo").iterdir()) / "images" / "cropped_scaled"
    saved = {p.name: p for p in (workdir / "results" / "predictions" / "shards").rglob("*.png")}
    for row in chosen:
        name = f"{name_stem(row['file'])}_f{int(row['frame']):02d}.png"
        oath_png = read_gray8(images / f"{int(row['picNum']):05d}.png")
        assert np.array_equal(read_gray8(saved[name]), oath_png)


def test_calibrate_fetches_the_raw_files_through_pyucalgarysrs(calibrated, tmp_path):
    """calibrate.fetch on a data set without raw_images: the files come from the API
    (a fake of it on 127.0.0.1, serving the demo's raw folder), exactly those needed."""
    from tests.test_calibration import FakeUCalgaryAPI

    workdir, _ = calibrated
    demo = next((workdir / "resources" / "demo").iterdir())
    api = FakeUCalgaryAPI(demo / "raw")
    try:
        write_config(
            tmp_path, dataset=str(demo), calibrate={"fetch": True, "api_base_url": api.url}
        )
        snakemake(tmp_path, "resources/raw_frames/listing.txt")
    finally:
        api.server.shutdown()
    listing = tmp_path / "resources" / "raw_frames" / "listing.txt"
    lines = listing.read_text().splitlines()
    fetched = sorted(Path(line).name for line in lines if not line.startswith("#"))
    origins = pd.read_csv(demo / "images" / "files_origin.csv")
    assert fetched == sorted(set(origins["filename"]))
