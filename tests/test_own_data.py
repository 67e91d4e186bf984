"""A user's own small labelled set (issue 33): one station-night of 12 demo images with a bad
time and an unknown station in files_origin.csv and a truncated raw file. The main run and
`snakemake calibrate` both finish; what cannot be computed on so few data is said, not raised.

One small workflow run (~60-90 CPU-s on 2 cores): 12 images, the session's random checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

import oath.demo.dataset
from tests.workflow import e2e_config, place_demo_checkpoint, snakemake, write_config

pytestmark = pytest.mark.e2e
N_IMAGES = 12


def one_night_origins(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every image from Fort Smith, one frame every 30 s of one evening."""
    start = dt.datetime(2011, 1, 1, 4, 0)
    times = [start + dt.timedelta(seconds=30 * k) for k in range(len(table))]
    imager = oath.demo.dataset.DEMO_IMAGERS["fsmi"]
    return pd.DataFrame(
        {
            "picNum": table["picNum"],
            "station": "fsmi",
            "time": [t.strftime("%Y-%m-%dT%H:%M:%S") for t in times],
            "filename": [f"{t:%Y%m%d_%H%M}_fsmi_{imager}_full.pgm.gz" for t in times],
        }
    )


@pytest.fixture(scope="module")
def own_run(tmp_path_factory, random_checkpoint):
    """The set written as the demo writes its own (raw frames behind every PNG), damaged, then
    `snakemake` on it (protocols.json and the report kept), then an unknown station in
    files_origin.csv and `snakemake calibrate`: the working folder, calibrate's terminal and
    what the main run wrote."""
    root = tmp_path_factory.mktemp("own") / "oath"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oath.demo.dataset, "demo_origins", one_night_origins)
        oath.demo.dataset.write_demo_dataset(root, n_images=N_IMAGES, seed=11, image_size=64)
    origins = root / "images" / "files_origin.csv"
    lines = origins.read_text().splitlines()
    lines[3] = "3,fsmi,2011-13-45Tnope,unknown.pgm.gz"  # file line 4: no time anywhere
    origins.write_text("\n".join(lines) + "\n")
    raw = sorted((root / "raw").rglob("*.pgm.gz"))[-1]  # the last minute: picNums 11, 12
    raw.write_bytes(raw.read_bytes()[:3000])
    workdir = root.parent / "run"
    workdir.mkdir()
    # class6 alone and one split: what is left out is decided per data set, not per label set
    # or split (one ridge fit, not two; the demo run's tests check several splits)
    write_config(
        workdir,
        dataset=str(root),
        checkpoint="random",
        raw_images=str(root / "raw"),
        labels=["class6"],
        ridge=e2e_config()["ridge"] | {"n_splits": 1},
    )
    place_demo_checkpoint(workdir, random_checkpoint)
    snakemake(workdir)
    protocols = workdir / "results" / "ridge" / "extracted" / "protocols.json"
    report = workdir / "results" / "report" / "summary.md"
    seen = {"protocols": json.loads(protocols.read_text()), "report": report.read_text()}
    # a station-night of its own to the grouping (not a THEMIS site), unusable to calibrate
    lines[5] = lines[5].replace(",fsmi,", ",zzzz,")  # file line 6
    origins.write_text("\n".join(lines) + "\n")
    calibrated = snakemake(workdir, "calibrate")
    return workdir, calibrated.stdout + calibrated.stderr, seen


def test_calibrate_finishes_without_the_protocol_comparison(own_run):
    workdir, calibrated, _ = own_run
    assert "rule compare_protocols" not in calibrated
    assert "rule render_report" not in calibrated
    result = json.loads((workdir / "results" / "calibration" / "calibration.json").read_text())
    left = [(r["line"], r["picNum"]) for r in result["files_origin_left_out"]]
    assert left == [(4, 3), (6, 5)]
    reasons = {u["picNum"]: u["reason"] for u in result["unmatched"]}
    assert "time cannot be parsed" in reasons[3] and "unknown station 'zzzz'" in reasons[5]
    truncated = "could not read it (error reading before image data"  # the last minute's file
    assert truncated in reasons[11] and truncated in reasons[12]
    page = (workdir / "results" / "calibration" / "summary.md").read_text()
    assert "| files_origin.csv | 4 | 3 |" in page and "| files_origin.csv | 6 | 5 |" in page
    assert "2 files_origin.csv row(s) left out" in calibrated


def test_the_main_run_finishes_and_says_what_was_left_out(own_run):
    workdir, _, seen = own_run
    result = seen["protocols"]
    assert result["protocols"] == ["published"]
    assert result["protocols_left_out"]["grouped"] | {"reason": ""} == {
        "what": "station-nights with a known station and time",
        "found": 1,
        "needed": 2,
        "reason": "",
    }
    assert [(e["line"], e["picNum"]) for e in result["origins_left_out"]] == [(4, 3)]
    short = result["classifiers_left_out"]["logistic"]  # 2 images a class in 12
    assert short["found"] < short["needed"] == 3
    assert (workdir / "results" / "ridge" / "extracted" / "class6" / "split_0.json").is_file()
    summary = seen["report"]
    reason = result["protocols_left_out"]["grouped"]["reason"]
    assert f"The grouped protocol was not run: {reason}" in summary
    assert f"The logistic regression was not run: {short['reason']}" in summary
    assert "| files_origin.csv | 4 | 3 |" in summary
    log = (workdir / "logs" / "compare_protocols" / "extracted.log").read_text()
    assert "files_origin.csv line 4: picNum 3 left out: time cannot be parsed" in log
