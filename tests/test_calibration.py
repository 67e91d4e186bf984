"""calibrate: images matched to their raw frames, and the conversion recovered from them.

Synthetic raw frames (oath.demo.stream0) are turned into "OATH images" by a known conversion (the
very Conversion classify runs); the fit sees only frames and images. Tolerances: orientation
and crop centre exact (the centre to the pixel, which is all the fit searches), radius exact
(half the image's side), a linear window within 0.5 % of its width, percentiles within 0.5
percentile points; held-out residual under 1 grey level.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from oath.archive.cdf import write_synthetic_asf_cdf
from oath.archive.conversion import Conversion, Crop, Scaling
from oath.archive.themis import read_frames, read_gray8
from oath.calibration.fit import fit_site
from oath.calibration.match import (
    MATCHED,
    CalibrationError,
    match_frames,
    origin_problems,
    origin_rows,
    read_matched_frames,
    read_matches,
)
from oath.calibration.output import fit_conversion
from oath.config import validate_config
from oath.demo.dataset import demo_conversion, write_demo_dataset
from oath.demo.stream0 import archive_path, synthetic_frames, write_stream0

SITE = "gill"


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(12, np.random.RandomState(24))


def images_of(frames, conversion):
    """picNum -> (raw frame, image made from it by ``conversion``), 9 to train, 3 held out."""
    pairs = {k + 1: (f, conversion.to_gray(f, SITE)) for k, f in enumerate(frames)}
    return {p: pairs[p] for p in range(1, 10)}, {p: pairs[p] for p in range(10, 13)}


@pytest.mark.parametrize("orientation", ["flip_rows", "rot90", "none"])
def test_linear_window_crop_offset_and_orientation_are_recovered(frames, orientation):
    secret = Conversion(
        crop=Crop(130.5, 124.5, 112.0),
        scaling=Scaling("linear", 3800, 14000),
        site_orientations={SITE: orientation},
    )
    train, test = images_of(frames, secret)
    fit = fit_site(SITE, train, test)
    assert fit.geometry.orientation == orientation
    assert fit.geometry.crop == Crop(130.5, 124.5, 112.0)
    assert fit.scaling.mode == "linear"
    assert abs(fit.scaling.low - 3800) < 0.005 * 10200
    assert abs(fit.scaling.high - 14000) < 0.005 * 10200
    assert fit.residual_test < 1.0
    assert fit.family_residuals["linear"] < fit.family_residuals["percentile"]


def test_percentile_stretch_is_recovered_and_chosen(frames):
    secret = Conversion(crop=Crop(125.5, 129.5, 110.0), scaling=Scaling("percentile", 2.0, 99.0))
    train, test = images_of(frames, secret)
    fit = fit_site(SITE, train, test)
    assert fit.geometry.orientation == "none"
    assert fit.geometry.crop == Crop(125.5, 129.5, 110.0)
    assert fit.scaling.mode == "percentile"
    assert abs(fit.scaling.low - 2.0) < 0.5 and abs(fit.scaling.high - 99.0) < 0.5
    assert fit.residual_test < 1.0
    assert fit.family_residuals["percentile"] < fit.family_residuals["linear"]


# --- matching ------------------------------------------------------------------------------
T0 = dt.datetime(2014, 3, 10, 6, 0, 0, 63119)  # the first frame of the gill minute file


@pytest.fixture
def archive(tmp_path, frames):
    """Raw files: a gill minute of 12 frames (stream0), a gill minute with one frame, a corrupt
    fsmi file, and an atha L1 CDF hour with 4 frames."""
    raw = tmp_path / "raw"
    write_stream0(archive_path(raw, T0, SITE), frames, SITE, T0)
    late = T0 + dt.timedelta(minutes=1)
    write_stream0(archive_path(raw, late, SITE), frames[:1], SITE, late)
    corrupt = archive_path(raw, T0, "fsmi", "themis14")
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(gzip.compress(b"P5\n#garbage\n256 256\n65535\n" + b"\x01" * 1000))
    hour = dt.datetime(2014, 3, 10, 7)
    times = [hour + dt.timedelta(seconds=3 * k) for k in range(4)]
    cdf = raw / "thg_l1_asf_atha_2014031007_v01.cdf"
    write_synthetic_asf_cdf(cdf, frames[:4], times, "atha")
    return raw


ORIGINS = """\
# picNum,station,time as the demo writes them
picNum,station,time
1,gill,2014-03-10T06:00:03
2,gill,2014-03-10T06:00:07.5
3,gill,2014-03-10T06:05:00
4,fsmi,2014-03-10T06:00:00
5,gill,not a time
6,zzzz,2014-03-10T06:00:03
8,gill,2014-03-10T06:01:30
9,gill,2014-03-10T06:00:09
9,gill,2014-03-10T06:00:12
10,atha,2014-03-10T07:00:06
"""


def test_images_are_matched_to_the_nearest_frame_and_the_rest_say_why(tmp_path, archive, frames):
    origins_csv = tmp_path / "files_origin.csv"
    origins_csv.write_text(ORIGINS)
    rows = origin_rows(origins_csv, range(1, 11))
    files = sorted(p for p in archive.rglob("*") if p.is_file())
    table = match_frames(rows, files, tmp_path / "m.csv", tmp_path / "f.h5")
    assert table.equals(read_matches(tmp_path / "m.csv"))
    by_pic = table.set_index("picNum")
    matched = by_pic[by_pic["status"] == MATCHED]
    assert sorted(matched.index) == [1, 2, 10]
    assert matched.loc[1, "frame"] == 1 and matched.loc[2, "frame"] == 2  # 1.44 s beats 1.56 s
    assert matched.loc[10, "frame"] == 2 and matched.loc[10, "file"].endswith(".cdf")
    reason = by_pic["reason"]
    assert reason[3].startswith("raw file missing: no gill file for 2014-03-10 06:05")
    assert reason[4].startswith("unreadable raw file") and "fsmi_themis14" in reason[4]
    assert "line 7: time cannot be parsed" in reason[5]
    assert "line 8: unknown station 'zzzz'" in reason[6]
    assert reason[7] == "no row for picNum 7 in files_origin.csv"
    assert reason[8].startswith("no frame within 3 s (nearest 29.9 s")
    assert "picNum 9 on 2 rows" in reason[9] and "lines 10, 11" in reason[9]
    listed = origin_problems(origins_csv, range(1, 11))  # calibration.json's rows left out
    assert [(r["line"], r["picNum"]) for r in listed] == [(0, 7), (7, 5), (8, 6), (10, 9)]
    assert all(r["file"] == str(origins_csv) for r in listed)
    assert "time cannot be parsed" in listed[1]["reason"] and "zzzz" in listed[2]["reason"]
    stored = read_matched_frames(tmp_path / "f.h5", [1, 10])
    gill = read_frames(archive_path(archive, T0, SITE))
    assert np.array_equal(stored[1], gill[1].image)
    assert np.array_equal(stored[10], frames[2])  # the CDF reader returns stream0's orientation


def test_no_files_origin_stops_with_the_file_and_the_fix(tmp_path):
    with pytest.raises(CalibrationError, match=r"files_origin\.csv: no files_origin\.csv"):
        origin_rows(tmp_path / "images" / "files_origin.csv", [1, 2])


# --- the demo: its raw frames, its PNGs, the whole fit -------------------------------------
@pytest.fixture(scope="module")
def small_demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibration_demo") / "oath"
    write_demo_dataset(root, n_images=36, seed=5, image_size=64)
    return root


def test_the_demo_fit_recovers_its_secret_and_classify_can_use_it(small_demo, tmp_path):
    from oath.calibration.match import list_raw_files
    from oath.dataset.table import load_classifications

    classes = small_demo / "classifications"
    table = load_classifications(classes / "classifications.csv")
    rows = origin_rows(small_demo / "images" / "files_origin.csv", table["picNum"])
    # a damaged raw file and a bad row: those images unmatched, the rest calibrated
    bad = sorted((small_demo / "raw").rglob("*.pgm.gz"))[0]
    bad.write_bytes(bad.read_bytes()[:5000])
    matches = match_frames(
        rows, list_raw_files(small_demo / "raw"), tmp_path / "m.csv", tmp_path / "f.h5"
    )
    lost = matches[matches["status"] != MATCHED]
    assert len(lost) >= 1 and lost["reason"].str.contains("unreadable").all()
    assert lost["reason"].str.contains(bad.name).all()
    assert (matches["status"] == MATCHED).sum() == 36 - len(lost)
    result = fit_conversion(
        tmp_path / "m.csv",
        tmp_path / "f.h5",
        classes / "classifications.csv",
        classes / "train_test_split.csv",
        small_demo / "images" / "cropped_scaled",
        tmp_path / "conversion.yaml",
        tmp_path / "fit.json",
        out_triplets=tmp_path / "triplets.png",
    )
    secret = demo_conversion(64)
    fitted = yaml.safe_load((tmp_path / "conversion.yaml").read_text())["classify"]
    for site, entry in result["sites"].items():
        if entry["conversion"] is None:
            continue
        assert fitted["crop_per_site"][site] == secret["crop_per_site"][site]
        assert fitted["orientation_per_site"].get(site, "none") == secret[
            "orientation_per_site"
        ].get(site, "none")
        assert entry["family"] == "linear"
        if entry["residual_mean_abs"] is not None:
            assert entry["residual_mean_abs"] < 1.0
    width = secret["scaling"]["high"] - secret["scaling"]["low"]
    assert fitted["scaling"]["mode"] == "linear"
    for end in ("low", "high"):
        assert abs(fitted["scaling"][end] - secret["scaling"][end]) < 0.005 * width
    assert (tmp_path / "triplets.png").read_bytes().startswith(b"\x89PNG")
    # the file is a config classify accepts, and turns a raw frame into the demo's PNG
    validate_config({"classify": fitted})
    pic = int(matches.loc[matches["status"] == MATCHED, "picNum"].iloc[0])
    site = matches.set_index("picNum").loc[pic, "station"]
    frame = read_matched_frames(tmp_path / "f.h5", [pic])[pic]
    png = read_gray8(small_demo / "images" / "cropped_scaled" / f"{pic:05d}.png")
    same = Conversion.from_config(fitted).to_gray(frame, site) == png
    assert same.mean() > 0.99


def test_demo_files_origin_names_the_raw_files_it_wrote(small_demo):
    origins = pd.read_csv(small_demo / "images" / "files_origin.csv")
    names = {p.name for p in (small_demo / "raw").rglob("*.pgm.gz")}
    assert set(origins["filename"]) <= names
    assert len(origins.groupby(["station", "time"])) == len(origins)  # a frame per image


def test_classify_takes_per_site_scaling_and_orientation(frames):
    conversion = Conversion.from_config(
        {
            "scaling": {"mode": "linear", "low": 3500, "high": 15000},
            "scaling_per_site": {"rank": {"mode": "percentile", "low": 1, "high": 99}},
            "orientation_per_site": {"rank": "flip_cols"},
        }
    )
    frame = frames[0]
    assert np.array_equal(
        conversion.to_gray(frame, "rank"),
        Conversion(scaling=Scaling("percentile", 1, 99)).to_gray(frame[:, ::-1], "rank"),
    )
    assert np.array_equal(conversion.to_gray(frame, "gill"), Conversion().to_gray(frame, "gill"))
    assert Conversion.from_config(conversion.to_config()) == conversion
    with pytest.raises(
        ValueError, match="orientation 'upside' unknown; use one of none, flip_rows"
    ):
        Conversion.from_config({"orientation_per_site": {"gill": "upside"}})


# --- fetching the raw files with pyucalgarysrs, from a fake of the UCalgary API ------------
class FakeUCalgaryAPI:
    """The two calls pyucalgarysrs' download makes, on 127.0.0.1: the URL listing
    (``/api/v1/data_distribution/urls``) and the files, served from a folder in the archive
    layout; every request is recorded."""

    def __init__(self, root):
        import http.server
        import threading
        import urllib.parse

        self.root = root
        self.requests: list[str] = []
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                api.requests.append(self.path)
                if url.path == "/api/v1/data_distribution/urls":
                    query = dict(urllib.parse.parse_qsl(url.query))
                    body = json.dumps(api.listing(query)).encode()
                    kind = "application/json"
                elif url.path.startswith("/data/") and (root / url.path[6:]).is_file():
                    body, kind = (root / url.path[6:]).read_bytes(), "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def listing(self, query):
        start = dt.datetime.fromisoformat(query["start"])
        end = dt.datetime.fromisoformat(query["end"])
        urls = []
        for path in sorted(self.root.rglob("*_full.pgm.gz")):
            minute = dt.datetime.strptime(path.name[:13], "%Y%m%d_%H%M")
            if path.name[14:18] == query["site_uid"] and start <= minute <= end:
                urls.append(f"{self.url}/data/{path.relative_to(self.root)}")
        dataset = {
            "name": query["name"],
            "short_description": "THEMIS ASI raw data (fake)",
            "long_description": "",
            "data_tree_url": f"{self.url}/data",
            "file_listing_supported": True,
            "level": "L0",
            "supported_libraries": ["pyucalgarysrs"],
            "file_time_resolution": "1min",
        }
        return {
            "urls": urls,
            "path_prefix": f"{self.url}/data",
            "count": len(urls),
            "dataset": dataset,
        }


def test_calibrate_fetches_exactly_the_files_it_needs(tmp_path, archive):
    from oath.calibration.match import fetch_raw_files, list_raw_files

    api = FakeUCalgaryAPI(archive)
    try:
        origins_csv = tmp_path / "files_origin.csv"
        origins_csv.write_text(ORIGINS)
        rows = origin_rows(origins_csv, range(1, 11))
        listing = tmp_path / "fetched" / "listing.txt"
        files = fetch_raw_files(rows, tmp_path / "fetched", listing, api_base_url=api.url)
    finally:
        api.server.shutdown()
    names = sorted(p.name for p in files)
    # images 1, 2 and 9 need gill 06:00 (and 9 only that), 8 gill 06:01, 3 gill 06:05 (absent),
    # 4 fsmi 06:00 (served, corrupt); 5 and 6 have bad rows, the CDF hour is not stream0
    assert names == [
        "20140310_0600_fsmi_themis14_full.pgm.gz",
        "20140310_0600_gill_themis19_full.pgm.gz",
        "20140310_0601_gill_themis19_full.pgm.gz",
    ]
    fetched = [r for r in api.requests if r.startswith("/data/")]
    assert len(fetched) == 3  # each file once
    assert [p.name for p in list_raw_files(listing)] == names
    table = match_frames(rows, list_raw_files(listing), tmp_path / "m.csv", tmp_path / "f.h5")
    assert sorted(table.loc[table["status"] == MATCHED, "picNum"]) == [1, 2]
