"""oath.report.classify: the classify run's page, from a run with corrupt files and at archive size.

The corrupt run is real up to the network: synthetic stream0 files (some damaged) read and
converted by oath.archive.stream, scored by a ridge model on random features (no Inception-v4 here;
tests/test_stream.py runs the network), gathered by oath.archive.gather into the dataset and
pictures
exactly as rule classify_images does.
"""

from __future__ import annotations

import base64
import datetime as dt
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from oath.archive.conversion import Conversion
from oath.archive.gather import merge_predictions, summarise
from oath.archive.keogram import INDEX_COLUMNS, INDEX_NAME, write_keograms, write_page_keogram
from oath.archive.stream import iter_frames, predictions_table, write_parquet
from oath.dataset.table import LABEL_NAMES
from oath.demo.classify_run import (
    SYNTHETIC_SITES,
    random_label_models,
    synthetic_night_keogram,
    write_synthetic_dataset,
)
from oath.demo.stream0 import write_synthetic_hour
from oath.fit.model import Model, load_model, save_model
from oath.imaging.png import encode_png
from oath.report.classify import (
    ReportError,
    chosen_nights,
    class_counts,
    tally_dataset,
    write_classify_report,
)

from .browser import load_page

pytest.importorskip("pyucalgarysrs")

NIGHT = dt.datetime(2014, 3, 10)
CONVERSION = Conversion.from_config({"angle_per_site": {"gill": 12.5}})
PROVENANCE = {
    "weights": "demo: deterministic RANDOM weights (seed 1804), not the published Inception-v4",
    "checkpoint": "resources/checkpoints/demo_seed1804/inception_v4.ckpt",
    "checkpoint_sha256": "ab" * 32,
    "precision": "float32",
    "device": "CPU",
    "layer": "Logits",
    "conversion": {"angle_per_site": {"gill": 12.5}},
}
SECTIONS = ("summary", "model", "overview", "counts", "nights", "contact-sheet", "confidence")
SITE_HOURS = 2000
# The 2,000 site-hour page, rendered (dataset read, figures, HTML): CPU seconds of this
# process, all threads (wall time on a shared 2-core machine says more about the neighbours).
MAX_SECONDS = 10.0
MAX_BYTES = 1_500_000  # ... and its size with real keograms, placeholders for other pictures


def random_model(path: Path) -> Path:
    label_models = random_label_models(np.random.RandomState(5), intercept_scale=0.1)
    provenance = {
        "classifier": "sklearn.linear_model.RidgeClassifier(alpha=0.03)",
        "labels": ["class6", "class2"],
        "training": {"images": "all labelled images", "n_train": 36, "n_labelled": 36},
        "features": {"layer": "Logits", "n_features": 1001, "precision": "float32"},
        "run": {"dataset": "demo"},
    }
    save_model(Model(label_models, provenance), path)
    return path


def run_without_network(shards: dict[str, list[Path]], model: Path, out: Path) -> None:
    """What rules classify_shard (scores from random features, not Inception-v4),
    classify_images and classify_report leave in ``out``: shard key -> its files."""
    fitted = load_model(model)
    paths = []
    for key, files in shards.items():
        records = list(iter_frames(files, CONVERSION))
        features = np.random.RandomState(len(records)).normal(0, 1, (len(records), 1001))
        table = predictions_table(fitted, records, features.astype(np.float32))
        paths.append(out / "shards" / f"{key}.parquet")
        write_parquet(table, paths[-1], PROVENANCE)
    table = merge_predictions(paths, out / "dataset", out / "predictions.csv")
    write_keograms(out / "dataset", out / "keograms")
    summarise(
        out / "predictions.csv",
        table,
        CONVERSION,
        counts_png=out / "class_counts.png",
        sheet_png=out / "contact_sheet.png",
        nights=out / "nights",
    )
    write_classify_report(
        out / "dataset",
        out / "report.html",
        model=model,
        nights=out / "nights",
        counts_png=out / "class_counts.png",
        sheet_png=out / "contact_sheet.png",
        keograms=out / "keograms",
    )


@pytest.fixture(scope="module")
def corrupt_run(tmp_path_factory):
    """Two site-hours, three damaged files; the run's outputs as classify_images writes them."""
    root = tmp_path_factory.mktemp("corrupt_run")
    inbox, out = root / "archive", root / "results" / "predictions"
    gill = write_synthetic_hour(inbox, "gill", NIGHT.replace(hour=6), n_files=3, frames_per_file=2)
    fsmi = write_synthetic_hour(
        inbox, "fsmi", NIGHT.replace(hour=7), n_files=3, frames_per_file=2, seed=1
    )
    gill[1].write_bytes(gill[1].read_bytes()[:300])  # truncated
    fsmi[0].write_bytes(b"")  # empty
    fsmi[2].write_bytes(b"this is not a THEMIS file" * 40)  # garbage
    shards = {"gill/2014-03-10T06": gill, "fsmi/2014-03-10T07": fsmi}
    run_without_network(shards, random_model(root / "model.npz"), out)
    return out, [str(gill[1]), str(fsmi[0]), str(fsmi[2])]


class TableReader(HTMLParser):
    """The cells of the <table> inside the element with a given id."""

    def __init__(self, wanted: str) -> None:
        super().__init__()
        self.wanted, self.depth, self.rows, self.cell = wanted, 0, [], None

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += tag == "div"
        elif tag == "div" and dict(attrs).get("id") == self.wanted:
            self.depth = 1
        if self.depth and tag == "tr":
            self.rows.append([])
        if self.depth and tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if self.depth and tag in ("td", "th"):
            self.rows[-1].append(self.cell)
            self.cell = None
        if self.depth and tag == "div":
            self.depth -= 1

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def page_table(html: Path, wanted: str) -> pd.DataFrame:
    reader = TableReader(wanted)
    reader.feed(html.read_text(encoding="utf-8"))
    assert reader.rows, f"no table with id {wanted} on {html}"
    header, *rows = reader.rows
    return pd.DataFrame(rows, columns=header)


def counts_of(dataset: Path) -> pd.DataFrame:
    """Per UT date and site: classified frames, failed rows, frames per class6 class; from the
    whole dataset in pandas (small datasets only)."""
    table = pd.read_parquet(dataset)
    table["date"], table["site"] = table["date"].astype(str), table["site"].astype(str)
    ok = table["status"] == "ok"
    keys = ["date", "site"]
    out = pd.DataFrame(
        {
            "classified": ok.groupby([table[k] for k in keys]).sum(),
            "failed rows": (~ok).groupby([table[k] for k in keys]).sum(),
        }
    )
    per_class = pd.crosstab([table.loc[ok, k] for k in keys], table.loc[ok, "class6_name"])
    out = out.join(per_class.reindex(columns=list(LABEL_NAMES["class6"]), fill_value=0))
    return out.fillna(0).astype(int).sort_index()


def assert_page_counts_equal_dataset(html: Path, dataset: Path) -> None:
    shown = page_table(html, "counts-per-night").set_index(["date", "site"])
    columns = ["classified", "failed rows", *LABEL_NAMES["class6"]]
    shown = shown[columns].apply(lambda c: c.str.replace(",", "").astype(int)).sort_index()
    expected = counts_of(dataset)
    assert shown.index.tolist() == expected.index.tolist()
    pd.testing.assert_frame_equal(shown, expected[columns], check_names=False)


def test_the_page_names_every_failed_file_with_its_reason(corrupt_run):
    out, broken = corrupt_run
    failed = page_table(out / "report.html", "failed-files")
    assert sorted(failed["file"]) == sorted(broken)
    dataset = pd.read_parquet(out / "dataset")
    reasons = dataset.loc[dataset["status"] != "ok"].set_index("file")["status"]
    for row in failed.itertuples():
        assert row.reason == reasons[row.file].removeprefix("failed: ")
        assert row.frames == "whole file"
    assert "Failed files (3)" in (out / "report.html").read_text()


def test_page_counts_equal_the_dataset(corrupt_run):
    out, _ = corrupt_run
    assert_page_counts_equal_dataset(out / "report.html", out / "dataset")


def test_the_page_opens_in_a_browser_with_every_picture(corrupt_run):
    out, broken = corrupt_run
    page = load_page(out / "report.html")
    assert page.missing_images == []
    assert page.images >= 5  # overview, class counts, the night, contact sheet, confidence
    for section in SECTIONS:
        assert f'id="{section}"' in page.dom
    for file in broken:
        assert file in page.text
    # the shards' provenance: precision in use and the conversion, one line per key and site
    assert "float32" in page.text and "angle_per_site gill: 12.5" in page.text
    # one keogram per site-night, each right above its class strip, scale in words
    for site in ("gill", "fsmi"):
        assert (out / "keograms" / f"{site}_2014-03-10.png").stat().st_size > 5000
        assert f'alt="keogram {site} 2014-03-10"' in page.dom
    assert page.dom.count('<figure class="keogram">') == 2
    assert "1st to 99th percentile of this night" in page.text
    assert "RidgeClassifier(alpha=0.03)" in page.text


@pytest.fixture(scope="module")
def archive_run(tmp_path_factory):
    """2,000 site-hours (4 sites, 10 UT hours a night, 50 nights), 5 frames each, 40 failed
    files; placeholder night pictures, as rule classify_images leaves them, and real page
    keograms (of synthetic slices) of the nights it shows."""
    root = tmp_path_factory.mktemp("archive_run")
    failed = write_synthetic_dataset(root / "dataset", SITE_HOURS, n_failed_files=40, seed=3)
    placeholder = encode_png(np.full((40, 120), 128, dtype=np.uint8))
    (root / "nights").mkdir()
    for day in pd.date_range("2014-01-01", periods=50).strftime("%Y-%m-%d"):
        (root / "nights" / f"{day}.png").write_bytes(placeholder)
    for name in ("class_counts.png", "contact_sheet.png"):
        (root / name).write_bytes(placeholder)
    # The keograms of the nights the page shows, as rule draw_keograms leaves them: the page's
    # pictures real, of a frame every 3 s (every minute filled: the largest pictures), those
    # for papers (linked, not inlined) placeholders.
    (root / "keograms").mkdir()
    shown = chosen_nights(class_counts(tally_dataset(root / "dataset"), ["date", "site"]), 10)
    rng = np.random.default_rng(4)
    listed = []
    for day in shown:
        for site in SYNTHETIC_SITES[:4]:
            night = synthetic_night_keogram(site, day, frames_per_hour=1200, rng=rng)
            listed.append(write_page_keogram(night, root / "keograms"))
            (root / "keograms" / listed[-1]["png"]).write_bytes(placeholder)
    pd.DataFrame(listed, columns=list(INDEX_COLUMNS)).to_csv(
        root / "keograms" / INDEX_NAME, index=False
    )
    started = time.process_time()
    write_classify_report(
        root / "dataset",
        root / "report.html",
        nights=root / "nights",
        counts_png=root / "class_counts.png",
        sheet_png=root / "contact_sheet.png",
        keograms=root / "keograms",
    )
    return root, failed, time.process_time() - started


def test_a_2000_site_hour_run_renders_fast_and_small(archive_run):
    root, failed, seconds = archive_run
    size = (root / "report.html").stat().st_size
    assert seconds < MAX_SECONDS, f"{seconds:.1f} CPU s"
    assert size < MAX_BYTES, f"{size:,} bytes"
    assert_page_counts_equal_dataset(root / "report.html", root / "dataset")
    shown = page_table(root / "report.html", "failed-files")
    assert sorted(shown["file"]) == sorted(failed["file"]) and len(shown) == 40
    text = (root / "report.html").read_text()
    # overview, class counts, 10 nights in full, confidence
    assert text.count('<figure><img src="data:image/png') == 1 + 1 + 10 + 1
    assert text.count('<a href="nights/') == 40  # the other nights, linked
    assert text.count('<figure class="keogram"><img src="data:image/png') == 10 * 4
    assert text.count('<a href="keograms/') == 10 * 4  # each keogram's picture for papers
    inlined = [
        base64.b64encode(path.read_bytes()).decode("ascii")
        for path in (root / "keograms").glob("*_page.png")
    ]
    assert sum(uri in text for uri in inlined) == 10 * 4  # the page's own, not the papers'


def test_the_2000_site_hour_page_opens_in_a_browser(archive_run):
    root, _, _ = archive_run
    page = load_page(root / "report.html")
    assert page.missing_images == []
    assert "The 10 of 50 UT dates with the most aurora frames" in page.text
    assert "Failed files (40)" in page.text


def test_margin_share_counts_frames_below_the_margin(tmp_path):
    """The share below the margin is the share of frames whose two best scores are closer
    than the margin, computed here from the rows."""
    write_synthetic_dataset(tmp_path / "dataset", 30, seed=1)
    table = pd.read_parquet(tmp_path / "dataset")
    scores = table[[c for c in table.columns if c.startswith("class6_score_")]].to_numpy()
    top2 = np.sort(scores, axis=1)[:, -2:]
    expected = int((top2[:, 1] - top2[:, 0] < 0.25).sum())
    tally = tally_dataset(tmp_path / "dataset", margin=0.25, batch_rows=17)  # many batches
    assert int(tally.scores["class6"].below.sum()) == expected > 0
    assert int(tally.scores["class6"].frames.sum()) == len(table)


def test_a_folder_without_a_dataset_is_refused_with_its_name(tmp_path):
    with pytest.raises(ReportError, match=f"{tmp_path / 'nothing'}.*snakemake classify"):
        write_classify_report(tmp_path / "nothing", tmp_path / "report.html")


def test_a_run_of_plain_images_without_time_or_site_renders(tmp_path, demo_template):
    """PNG files named like nothing in the archive: no site, no time; one unreadable."""
    files = sorted((demo_template / "images" / "cropped_scaled").glob("*.png"))[:5]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    out = tmp_path / "predictions"
    run_without_network({"images/h000": [*files, broken]}, random_model(tmp_path / "m.npz"), out)
    page = load_page(out / "report.html")
    assert page.missing_images == []
    assert str(broken) in page.text and "Failed files (1)" in page.text
    per_site = page_table(out / "report.html", "counts-per-site")
    assert per_site[["site", "classified", "failed rows"]].values.tolist() == [
        ["unknown", "5", "1"]
    ]
    assert "No dated, classified frames" in page.text
