"""oath.archive.feed: a file's frames rotated in one batch equal Wand's, a bad frame fails
alone, the read-ahead thread is bounded, stops when closed and passes its errors on."""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import logging
import threading
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import oath.archive.feed as feed
import oath.archive.gather as gather
from oath.archive.conversion import Conversion
from oath.archive.feed import ReadAhead, Rotator, iter_frames
from oath.archive.stream import predictions_table
from oath.archive.themis import read_frames
from oath.demo.classify_run import random_label_models
from oath.demo.stream0 import archive_path, stream0_bytes, synthetic_frames, write_synthetic_hour
from oath.fit.model import Model
from oath.imaging.rotation_map import RotationMap, load_rotation_map, wand_rotate

pytest.importorskip("pyucalgarysrs")

HOUR = dt.datetime(2014, 3, 10, 6)
GILL, FSMI = 12.5, -7.25  # fsmi's map is made to differ from Wand: it must be dropped for Wand


def expected_pixels(path, conversion: Conversion, first: int = 0) -> list[np.ndarray]:
    """Each frame of ``path`` from ``first`` on, converted and rotated one by one through Wand
    (the reference)."""
    out = []
    for frame in read_frames(path)[first:]:
        gray = conversion.to_gray(frame.image, frame.site)
        angle = conversion.site_angles.get(frame.site, 0.0)
        out.append(wand_rotate(gray, angle) if angle else gray)
    return out


def test_a_file_s_frames_in_one_product_equal_wand_and_a_map_that_differs_is_dropped(
    tmp_path, monkeypatch, caplog
):
    files = write_synthetic_hour(tmp_path / "in", "gill", HOUR, n_files=2, frames_per_file=4)
    files += write_synthetic_hour(tmp_path / "in", "fsmi", HOUR, n_files=1, frames_per_file=3)
    conversion = Conversion.from_config({"angle_per_site": {"gill": GILL, "fsmi": FSMI}})

    def off_for_fsmi(shape, angle, cache_dir=None):  # a map one part in 10^3 too bright
        rotation = load_rotation_map(shape, angle, cache_dir)
        return (
            dataclasses.replace(rotation, scale=rotation.scale * 1.001)
            if angle == FSMI
            else rotation
        )

    batches = []
    rotate = RotationMap.rotate
    monkeypatch.setattr(feed, "load_rotation_map", off_for_fsmi)
    monkeypatch.setattr(RotationMap, "rotate", lambda m, f: batches.append(f.shape) or rotate(m, f))
    caplog.set_level(logging.WARNING, logger="oath.archive.feed")

    records = list(iter_frames(files, conversion, Rotator(tmp_path / "maps")))
    assert [r.status for r in records] == ["ok"] * 11
    expected = [pixels for path in files for pixels in expected_pixels(path, conversion)]
    for record, pixels in zip(records, expected, strict=True):
        assert record.image.dtype == np.uint8 and np.array_equal(record.image, pixels)
    assert batches == [(4, 256, 256), (4, 256, 256)]  # one product a gill file, none for fsmi
    assert "differs from Wand" in caplog.text and str(FSMI) in caplog.text


def test_a_frame_that_cannot_be_converted_fails_alone(tmp_path):
    """Frame 0's header names a site whose crop lies outside the frame; the file's other
    frames are gill's, converted and rotated together as usual."""
    frames = synthetic_frames(4, np.random.RandomState(3))
    path = archive_path(tmp_path, HOUR, "gill")
    path.parent.mkdir(parents=True)
    odd = stream0_bytes(frames[:1], site="odd", start=HOUR)
    gill = stream0_bytes(frames[1:], site="gill", start=HOUR + dt.timedelta(seconds=3))
    path.write_bytes(gzip.compress(odd + gill))
    conversion = Conversion.from_config(
        {
            "angle_per_site": {"gill": GILL},
            "crop_per_site": {"odd": {"center_row": 900, "center_col": 900, "radius": 50}},
        }
    )
    records = list(iter_frames([path], conversion))
    assert [r.frame for r in records] == [0, 1, 2, 3]
    assert records[0].status.startswith("failed: crop centre (900")
    assert records[0].image is None and records[0].keogram is None
    assert [r.status for r in records[1:]] == ["ok"] * 3
    expected = expected_pixels(path, conversion, first=1)
    for record, pixels in zip(records[1:], expected, strict=True):
        assert np.array_equal(record.image, pixels) and record.keogram is not None


def read_ahead_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """The read-ahead threads alive now that were not in ``before``."""
    return [t for t in threading.enumerate() if t.name == "oath-read-ahead" and t not in before]


def test_the_read_ahead_holds_a_bounded_amount_and_stops_when_closed(tmp_path):
    files = write_synthetic_hour(tmp_path, "gill", HOUR, n_files=4, frames_per_file=3)
    before = set(threading.enumerate())
    rows = ReadAhead(files, Conversion(), limit_bytes=1)  # one file's frames at a time
    deadline = time.monotonic() + 60
    while rows.frames < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert rows.frames == 3  # the thread waits for the first file to be taken
    first = [next(rows) for _ in range(4)]  # the first file's three frames and one more
    assert [r.file for r in first] == [str(files[0])] * 3 + [str(files[1])]
    assert read_ahead_threads(before)
    rows.close()
    assert not read_ahead_threads(before)
    with pytest.raises(StopIteration):
        next(rows)


def test_an_error_on_the_thread_is_raised_where_the_rows_are_taken(tmp_path, monkeypatch):
    files = write_synthetic_hour(tmp_path, "gill", HOUR, n_files=2, frames_per_file=2)
    calls = []

    def failing_second_file(image):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("a bug, not a bad file")
        return image[:, 0].copy()

    monkeypatch.setattr(feed, "keogram_column", failing_second_file)
    before = set(threading.enumerate())
    rows = iter_frames(files, Conversion())
    assert [r.file for r in (next(rows), next(rows))] == [str(files[0])] * 2
    with pytest.raises(RuntimeError, match="a bug, not a bad file"):
        next(rows)
    assert not read_ahead_threads(before)


def test_the_contact_sheet_shows_the_frames_the_feed_prepares(tmp_path, monkeypatch):
    """oath.archive.gather draws the sheet from the feed's pixels (PNGs it writes for them)."""
    files = write_synthetic_hour(tmp_path / "in", "gill", HOUR, n_files=2, frames_per_file=2)
    conversion = Conversion.from_config({"angle_per_site": {"gill": GILL}})
    records = list(iter_frames(files, conversion))
    models = random_label_models(np.random.RandomState(5), intercept_scale=0.1)
    features = np.random.RandomState(1).normal(0, 1, (len(records), 1001)).astype(np.float32)
    table = predictions_table(Model(models, {}), records, features)
    shown, draw = {}, gather.contact_sheet

    def read_the_sheet_s_csv(csv, out_png, per_class):
        for _, row in pd.read_csv(csv).iterrows():
            with Image.open(row["png"]) as png:
                shown[(row["file"], row["frame"])] = np.asarray(png)
        draw(csv, out_png, per_class=per_class)

    monkeypatch.setattr(gather, "contact_sheet", read_the_sheet_s_csv)
    gather.contact_sheet_from_frames(table, conversion, tmp_path / "sheet.png")
    assert len(shown) == 4 and (tmp_path / "sheet.png").stat().st_size > 0
    expected = {str(path): expected_pixels(path, conversion) for path in files}
    for (file, frame), pixels in shown.items():
        assert np.array_equal(pixels, expected[file][frame])
