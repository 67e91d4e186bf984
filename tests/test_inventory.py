"""oath.archive.inventory: one listing per run, stable site-hour shard names; oath.demo.stream0
files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from oath.archive.inventory import (
    InventoryError,
    make_inventory,
    read_inventory,
    shard_files,
    shard_key,
    write_inventory,
)
from oath.archive.themis import read_frames
from oath.demo.stream0 import archive_path, synthetic_frames, write_stream0

pytest.importorskip("pyucalgarysrs")


def placeholder_night(root: Path, site: str, night: dt.date, hours: range) -> list[Path]:
    """Empty files with archive names and layout: enough for listing and planning."""
    paths = []
    for hour in hours:
        for minute in (0, 1, 59):
            when = dt.datetime.combine(night, dt.time(hour, minute))
            path = archive_path(root, when, site)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            paths.append(path)
    return paths


def test_archive_files_shard_by_site_and_ut_hour(tmp_path):
    placeholder_night(tmp_path, "gill", dt.date(2014, 3, 10), range(5, 7))
    placeholder_night(tmp_path, "fsmi", dt.date(2014, 3, 10), range(6, 7))
    shards = shard_files(make_inventory(tmp_path))
    assert list(shards) == ["fsmi/2014-03-10T06", "gill/2014-03-10T05", "gill/2014-03-10T06"]
    assert [Path(f).name for f in shards["gill/2014-03-10T06"]] == [
        "20140310_0600_gill_themis19_full.pgm.gz",
        "20140310_0601_gill_themis19_full.pgm.gz",
        "20140310_0659_gill_themis19_full.pgm.gz",
    ]
    by_day = shard_files(make_inventory(tmp_path, unit="day"))
    assert {k: len(v) for k, v in by_day.items()} == {"fsmi/2014-03-10": 3, "gill/2014-03-10": 6}


def test_adding_a_night_adds_shards_only(tmp_path):
    placeholder_night(tmp_path, "gill", dt.date(2014, 3, 10), range(4, 8))
    before = shard_files(make_inventory(tmp_path))
    placeholder_night(tmp_path, "gill", dt.date(2014, 3, 9), range(4, 8))  # an earlier night
    placeholder_night(tmp_path, "atha", dt.date(2014, 3, 10), range(4, 5))  # a new site
    after = shard_files(make_inventory(tmp_path))
    assert {k: after[k] for k in before} == before  # every old shard: same name, same files
    assert sorted(set(after) - set(before)) == [
        "atha/2014-03-10T04",
        *[f"gill/2014-03-09T{h:02d}" for h in range(4, 8)],
    ]


def test_images_without_archive_names_keep_their_bucket(tmp_path):
    for name in ("a.png", "b.jpg", "c.png"):
        (tmp_path / "sub" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "sub" / name).write_bytes(b"")
    (tmp_path / "20140310_0600_gill_themis19_full.png").write_bytes(b"")
    table = make_inventory(tmp_path, image_buckets=4)
    keys = dict(zip(table["file"].map(lambda f: Path(f).name), table["shard"], strict=True))
    assert keys["20140310_0600_gill_themis19_full.png"] == "gill/2014-03-10T06"
    assert all(keys[n].startswith("images/h00") for n in ("a.png", "b.jpg", "c.png"))
    (tmp_path / "d.png").write_bytes(b"")
    moved = make_inventory(tmp_path, image_buckets=4)
    again = dict(zip(moved["file"].map(lambda f: Path(f).name), moved["shard"], strict=True))
    assert {n: again[n] for n in keys} == keys
    assert shard_key("elsewhere/a.png", image_buckets=4) == keys["a.png"]  # folder-independent


def test_text_listing_is_read_without_walking(tmp_path):
    files = placeholder_night(tmp_path / "archive", "gill", dt.date(2014, 3, 10), range(6, 7))
    listing = tmp_path / "files.txt"
    listing.write_text(
        "# my night\n\n" + "\n".join(str(p.relative_to(tmp_path)) for p in files[:2]) + "\n"
    )
    table = make_inventory(listing)
    assert table["file"].tolist() == [str(p) for p in files[:2]]
    listing.write_text(f"{files[0]}\n{tmp_path / 'gone.pgm.gz'}\n")
    with pytest.raises(InventoryError, match="gone.pgm.gz"):
        make_inventory(listing)


def test_missing_folder_and_empty_listing_stop_with_their_name(tmp_path):
    with pytest.raises(InventoryError, match="nowhere"):
        make_inventory(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InventoryError, match="empty"):
        make_inventory(tmp_path / "empty")
    (tmp_path / "list.txt").write_text("# nothing yet\n")
    with pytest.raises(InventoryError, match="list.txt"):
        make_inventory(tmp_path / "list.txt")


def test_stored_inventory_round_trips_and_keeps_its_date(tmp_path):
    placeholder_night(tmp_path / "a", "gill", dt.date(2014, 3, 10), range(6, 8))
    table = make_inventory(tmp_path / "a")
    stored = tmp_path / "inventory.parquet"
    assert write_inventory(table, stored)
    assert read_inventory(stored).equals(table)
    assert not write_inventory(make_inventory(tmp_path / "a"), stored)  # unchanged: not rewritten


def test_synthetic_stream0_files_are_read_by_pyucalgarysrs(tmp_path):
    start = dt.datetime(2014, 3, 10, 6, 0, 0, 63119)
    frames = synthetic_frames(3, np.random.RandomState(1))
    path = write_stream0(archive_path(tmp_path, start, "gill"), frames, "gill", start)
    read = read_frames(path)
    assert len(read) == 3
    for k, frame in enumerate(read):
        np.testing.assert_array_equal(frame.image, np.flipud(frames[k]))  # the reader's flip
        assert frame.timestamp == start + k * dt.timedelta(seconds=3)
        assert frame.site == "gill"
    assert path.relative_to(tmp_path).parts[:5] == ("2014", "03", "10", "gill_themis19", "ut06")
