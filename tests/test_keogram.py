"""oath.archive.keogram: the frames' N-S slices kept by the streamed pass, a night's grid and
picture.

No network here: frames are read and converted by oath.archive.stream.iter_frames (the shard pass's
reader), scored with random features; tests/test_stream.py runs the whole classify workflow.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from oath.archive.cdf import write_synthetic_asf_cdf
from oath.archive.conversion import Conversion
from oath.archive.gather import merge_predictions
from oath.archive.keogram import (
    PAGE_LEVELS,
    PAGE_ROWS,
    STRIP_ROWS,
    KeogramError,
    class_colours,
    night_grid,
    night_keograms,
    read_index,
    read_skymap_latitudes,
    skymap_latitudes,
    slice_index,
    write_keograms,
)
from oath.archive.stream import iter_frames, predictions_table, write_parquet
from oath.archive.themis import read_frames
from oath.demo.stream0 import archive_path, synthetic_frames, write_stream0, write_synthetic_hour
from oath.fit.model import load_model

from .test_classify_report import random_model

pytest.importorskip("pyucalgarysrs")

HOUR = dt.datetime(2014, 3, 10, 6)


def test_the_slice_is_pyaurorax_s_middle_column():
    assert slice_index(256) == 127 and slice_index(257) == 127 and slice_index(1) == 0


def test_a_stream0_file_and_an_l1_cdf_give_the_slices_of_the_frames_read_directly(tmp_path):
    frames = synthetic_frames(3, np.random.RandomState(7))
    raw = write_stream0(
        archive_path(tmp_path, HOUR, "gill"), [np.flipud(f) for f in frames], "gill", HOUR
    )
    times = [HOUR + dt.timedelta(seconds=3 * k) for k in range(3)]
    cdf = write_synthetic_asf_cdf(
        tmp_path / "thg_l1_asf_gill_2014031006_v01.cdf", frames, times, "gill"
    )
    records = list(iter_frames([raw, cdf], Conversion.from_config({"angle_per_site": {"gill": 9}})))
    assert [r.status for r in records] == ["ok"] * 6
    direct = [f.image[:, 127] for f in read_frames(raw)]
    for record, expected in zip(records[:3], direct, strict=True):
        assert record.keogram.dtype == np.uint16
        np.testing.assert_array_equal(record.keogram, expected)
    for record, expected in zip(records[3:], direct, strict=True):  # same frames, other archive
        np.testing.assert_array_equal(record.keogram, expected)


def test_a_night_grid_averages_each_minute_and_leaves_empty_minutes_nan():
    times = pd.Series(
        pd.to_datetime(["2014-03-10 06:00:01", "2014-03-10 06:00:40", "2014-03-10 06:02:05"])
    ).dt.tz_localize("UTC")
    columns = np.array([[10, 20], [30, 40], [50, 60]], dtype=np.uint16)
    start, data, classes = night_grid(times, columns, np.array([2, 2, -1]), n_classes=6)
    assert start == pd.Timestamp("2014-03-10 06:00", tz="UTC") and data.shape == (2, 60)
    np.testing.assert_array_equal(data[:, 0], [20, 30])
    assert np.isnan(data[:, 1]).all() and np.isnan(data[:, 3:]).all()
    np.testing.assert_array_equal(data[:, 2], [50, 60])
    assert classes[:3].tolist() == [2, -1, -1]  # a minute of frames without a class: none


@pytest.fixture(scope="module")
def keogram_run(tmp_path_factory):
    """A site-hour (one file truncated) and a second site's hour, through the shard pass's
    reader into shards, the dataset and the keograms folder."""
    root = tmp_path_factory.mktemp("keogram_run")
    gill = write_synthetic_hour(root / "in", "gill", HOUR, n_files=4, frames_per_file=3)
    fsmi = write_synthetic_hour(root / "in", "fsmi", HOUR, n_files=2, frames_per_file=2, seed=1)
    gill[2].write_bytes(gill[2].read_bytes()[:400])  # truncated: a white minute
    model = load_model(random_model(root / "model.npz"))
    shards = []
    for site, files in (("gill", gill), ("fsmi", fsmi)):
        records = list(iter_frames(files, Conversion()))
        features = np.random.RandomState(1).normal(0, 1, (len(records), 1001))
        shards.append(root / "shards" / f"{site}.parquet")
        write_parquet(
            predictions_table(model, records, features.astype(np.float32)), shards[-1], {}
        )
    merge_predictions(shards, root / "dataset", root / "predictions.csv")
    index = write_keograms(root / "dataset", root / "keograms")
    return root, gill, index


def test_a_keogram_s_columns_are_the_slices_of_the_same_frames_read_directly(keogram_run):
    root, gill, _ = keogram_run
    night = next(n for n in night_keograms(root / "dataset") if n.site == "gill")
    assert night.date == "2014-03-10" and night.frames == 9 and night.data.shape == (256, 60)
    for minute, path in enumerate(gill):
        if minute == 2:
            assert np.isnan(night.data[:, minute]).all()  # the truncated file's minute
            continue
        slices = np.stack([f.image[:, 127] for f in read_frames(path)]).astype(float)
        np.testing.assert_allclose(night.data[:, minute], slices.mean(axis=0))
    assert np.isnan(night.data[:, 4:]).all()


def test_keograms_are_written_per_site_night_with_their_scale(keogram_run):
    root, _, index = keogram_run
    assert index[["site", "date", "png"]].values.tolist() == [
        ["fsmi", "2014-03-10", "fsmi_2014-03-10.png"],
        ["gill", "2014-03-10", "gill_2014-03-10.png"],
    ]
    for row in read_index(root / "keograms").itertuples():
        assert (root / "keograms" / row.png).stat().st_size > 5000
        assert row.axis == "pixel rows" and row.low < row.high
    assert "keogram" not in pd.read_csv(root / "predictions.csv").columns


def test_the_page_picture_is_the_keogram_s_block_means_above_the_class_strip(keogram_run):
    """The light picture the classify page inlines, decoded: 4-row means of the night's grid
    on 64 grey levels (row 0 at the bottom), white minutes without a frame, class colours."""
    import matplotlib.image as mpimg

    root, _, _ = keogram_run
    night = next(n for n in night_keograms(root / "dataset") if n.site == "gill")
    row = read_index(root / "keograms").set_index("site").loc["gill"]
    assert (row.page_png, row.bottom, row.top, row.start) == ("gill_2014-03-10_page.png", 0, 255, 6)
    pixels = mpimg.imread(root / "keograms" / row.page_png)[..., :3]
    assert pixels.shape[:2] == (PAGE_ROWS + 1 + STRIP_ROWS, 60)
    keogram, strip = pixels[:PAGE_ROWS, :, 0][::-1], pixels[PAGE_ROWS + 1 :]
    low, high = night.scale
    means = night.data.reshape(PAGE_ROWS, 4, 60).mean(axis=1)
    expected = np.rint(np.clip((means - low) / (high - low), 0, 1) * (PAGE_LEVELS - 1))
    filled = [0, 1, 3]  # minute 2: the truncated file
    levels = keogram[:, filled] * (PAGE_LEVELS - 1)  # greys are rounded to 0-255: within 1/4
    np.testing.assert_allclose(levels, expected[:, filled], atol=0.25)
    assert (pixels[:, [2, *range(4, 60)]] == 1).all()  # white: no frame, no class
    for minute in filled:
        colour = class_colours("class6")[night.classes[minute]]
        hexes = {"#" + "".join(f"{round(v * 255):02x}" for v in px) for px in strip[:, minute]}
        assert hexes == {colour}


def test_skymap_latitudes_are_the_column_s_pixel_centres_at_110_km():
    corners = np.broadcast_to(np.arange(5.0)[:, None], (5, 5)) + 60.0  # latitude by row edge
    skymap = SimpleNamespace(
        filename="sky.sav",
        full_map_altitude=np.array([90000.0, 110000.0, 150000.0]),  # metres, as UCalgary's
        full_map_latitude=np.stack([corners - 1, corners, corners + 1]),
    )
    np.testing.assert_allclose(skymap_latitudes(skymap, 1), [60.5, 61.5, 62.5, 63.5])
    with pytest.raises(KeogramError, match="sky.sav: no mapping at 120 km"):
        skymap_latitudes(skymap, 1, altitude_km=120)


def test_an_unreadable_skymap_is_refused_with_its_name(tmp_path):
    with pytest.raises(KeogramError, match="no such skymap file"):
        read_skymap_latitudes(tmp_path / "missing.sav", 127)
    bad = tmp_path / "themis_skymap_gill_20140301_v01.sav"
    bad.write_bytes(b"not an IDL save file")
    with pytest.raises(KeogramError, match=str(bad)):
        read_skymap_latitudes(bad, 127)
