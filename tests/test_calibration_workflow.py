"""`snakemake calibrate` end to end on a tiny demo: the files it promises, the report section
(opened in headless chromium), the terminal's summary line, and a data set it cannot serve.

About 5 minutes on 2 cores (the demo's whole run: extraction, ridge fits, report), so apart
from tests/test_calibration.py, which stays under a minute.
"""

from __future__ import annotations

import json

import pytest
import yaml

from oath.config import validate_config
from oath.demo import demo_conversion
from tests.browser import load_page
from tests.workflow import snakemake, write_config

DEMO = {"n_images": 24, "seed": 11, "image_size": 64}


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("calibrate")
    write_config(workdir, demo=DEMO)
    done = snakemake(workdir, "calibrate")
    return workdir, done.stdout + done.stderr


def test_calibrate_writes_the_conversion_and_the_agreement(calibrated):
    workdir, terminal = calibrated
    out = workdir / "results" / "calibration"
    result = json.loads((out / "calibration.json").read_text())
    fitted = [s for s, e in result["sites"].items() if e["conversion"]]
    assert fitted and result["matched"] == 24 and result["unmatched"] == []
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
    assert "oath: calibrate: 24 image(s) matched" in terminal


def test_the_report_shows_the_calibration(calibrated):
    workdir, _ = calibrated
    page = load_page(workdir / "results" / "report" / "report.html")
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
