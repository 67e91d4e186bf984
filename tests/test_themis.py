"""oath.archive.themis: raw THEMIS files through pyucalgarysrs, conversion to OATH-like PNGs,
manifest."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import numpy as np
import pytest

from oath.archive.conversion import Crop, Scaling, frame_to_oath
from oath.archive.themis import (
    NoImagesError,
    ThemisError,
    ok_images,
    prepare_images,
    read_frames,
    read_gray8,
    read_prepared_table,
)
from oath.demo.stream0 import stream0_bytes
from oath.imaging.png import encode_png
from oath.imaging.rotate import rotate_image

pytest.importorskip("pyucalgarysrs")

START = dt.datetime(2014, 3, 10, 6, 0, 0, 63119)
CADENCE = dt.timedelta(seconds=3)


@pytest.fixture(scope="module")
def raw_frames() -> list[np.ndarray]:
    rng = np.random.RandomState(3)
    return [rng.randint(3000, 65536, size=(256, 256)).astype(np.uint16) for _ in range(3)]


def write_raw(folder: Path, frames: list[np.ndarray], name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = stream0_bytes(frames)
    path.write_bytes(gzip.compress(data, compresslevel=1) if name.endswith(".gz") else data)
    return path


def test_read_frames_through_pyucalgarysrs(tmp_path, raw_frames):
    path = write_raw(tmp_path, raw_frames, "20140310_0600_gill_themis19_full.pgm.gz")
    frames = read_frames(path)
    assert len(frames) == 3
    for k, frame in enumerate(frames):
        assert frame.index == k
        assert frame.image.dtype == np.uint16 and frame.image.shape == (256, 256)
        # the reader turns frames upside down (its display convention); values are exact
        np.testing.assert_array_equal(frame.image, np.flipud(raw_frames[k]))
        assert frame.timestamp == START + k * CADENCE
        assert frame.site == "gill"  # later frames carry no site line: the reader carries it over


def test_renamed_raw_file_is_still_read(tmp_path, raw_frames):
    path = write_raw(tmp_path, raw_frames[:1], "my_copy.pgm")
    (frame,) = read_frames(path)
    np.testing.assert_array_equal(frame.image, np.flipud(raw_frames[0]))
    assert frame.timestamp == START and frame.site == "gill"


def test_linear_scaling_and_circular_crop():
    image = np.full((8, 8), 1400, dtype=np.uint16)
    image[0, 3] = 999  # below low: black
    image[4, 4] = 5000  # above high: white
    image[3, 4] = 1004
    gray = frame_to_oath(image, Crop(3.5, 3.5, 4), Scaling("linear", 1000, 1000 + 255 * 4))
    assert gray.dtype == np.uint8 and gray.shape == (8, 8)
    assert gray[4, 4] == 255 and gray[3, 4] == 1 and gray[0, 3] == 0
    assert gray[2, 2] == 100  # (1400 - 1000) / 4
    # outside the circle (corners) is black whatever the counts
    assert gray[0, 0] == gray[7, 7] == gray[0, 7] == gray[1, 0] == 0
    assert gray[0, 4] == 100  # distance 3.5 from the centre: inside


def test_crop_cuts_the_square_around_the_centre_and_pads():
    image = np.arange(100, dtype=np.uint16).reshape(10, 10)
    gray = frame_to_oath(image, Crop(2, 2, 3), Scaling("linear", -100, 155))  # gray = counts + 100
    assert gray.shape == (6, 6)  # rows/cols -1..4: row -1 and col -1 lie outside the frame
    assert gray[3, 3] == image[2, 2] + 100  # the centre pixel
    assert gray[0, 3] == 0  # padded row inside the circle: black, not the scaled 0 counts (100)
    assert gray[3, 5] == image[2, 4] + 100
    assert gray[5, 5] == image[4, 4] + 100  # 2.83 from the centre: inside


def test_percentile_scaling_uses_the_sky_only():
    image = np.zeros((64, 64), dtype=np.uint16)
    yy, xx = np.mgrid[:64, :64]
    sky = np.hypot(yy - 31.5, xx - 31.5) <= 32
    image[sky] = 4000 + (xx[sky] * 100)  # 4000 .. 10300 inside
    image[~sky] = 60000  # a bright rim must not set the scale
    gray = frame_to_oath(image, Crop(31.5, 31.5, 32), Scaling("percentile", 0, 100))
    assert gray[~sky].max() == 0
    assert gray[sky].min() == 0 and gray[sky].max() == 255


def test_bad_settings_are_refused():
    with pytest.raises(ThemisError, match="high"):
        Scaling("linear", 5000, 4000)
    with pytest.raises(ThemisError, match="mode"):
        Scaling("log", 0, 1)
    with pytest.raises(ThemisError, match="unknown key"):
        prepare_images([], "x", crop={"centre": 1})


def test_prepare_images_manifest(tmp_path, raw_frames):
    inbox = tmp_path / "inbox"
    write_raw(inbox / "gill", raw_frames, "20140310_0600_gill_themis19_full.pgm.gz")
    good = gzip.compress(stream0_bytes(raw_frames[:2]))
    (inbox / "20140310_0601_gill_themis19_full.pgm.gz").write_bytes(good[: len(good) // 2])
    gray = (np.arange(48 * 64).reshape(48, 64) % 251).astype(np.uint8)
    (inbox / "allsky.png").write_bytes(encode_png(gray))
    from wand.image import Image

    flat = np.full((40, 40, 3), 90, dtype=np.uint8)  # RGB: Wand takes a 2-d array as linear gray
    with Image.from_array(flat) as img:
        img.format = "jpeg"
        img.save(filename=str(inbox / "photo.jpg"))
    (inbox / "notes.txt").write_text("not an image")

    out = tmp_path / "png"
    manifest = prepare_images(
        [inbox],
        out,
        scaling={"mode": "linear", "low": 3000, "high": 65535},
        site_angles={"gill": 90},
        manifest=tmp_path / "manifest.csv",
    )
    assert list(manifest.columns) == ["file", "frame", "timestamp", "site", "png", "status"]
    assert len(manifest) == 3 + 1 + 1 + 1 + 1
    by_name = {Path(f).name: part for f, part in manifest.groupby("file")}

    raw = by_name["20140310_0600_gill_themis19_full.pgm.gz"]
    assert (raw["status"] == "ok").all() and raw["frame"].tolist() == [0, 1, 2]
    assert raw["site"].tolist() == ["gill"] * 3
    assert raw["timestamp"].iloc[1] == "2014-03-10T06:00:03.063119Z"
    assert [Path(p).name for p in raw["png"]] == [
        f"20140310_0600_gill_themis19_full_f0{k}.png" for k in range(3)
    ]
    # the frame, converted, then turned by the site's angle exactly as oath.imaging.rotate turns
    # images
    unrotated = tmp_path / "unrotated.png"
    unrotated.write_bytes(
        encode_png(frame_to_oath(np.flipud(raw_frames[0]), None, Scaling("linear", 3000, 65535)))
    )
    rotate_image(unrotated, tmp_path / "expected.png", 90)
    rotated = read_gray8(raw["png"].iloc[0])
    assert rotated.shape == (256, 256)
    np.testing.assert_array_equal(rotated, read_gray8(tmp_path / "expected.png"))

    truncated = by_name["20140310_0601_gill_themis19_full.pgm.gz"]
    assert len(truncated) == 1 and truncated["status"].iloc[0].startswith("failed: ")
    assert truncated["png"].iloc[0] == ""

    png = by_name["allsky.png"]
    assert png["status"].iloc[0] == "ok"
    np.testing.assert_array_equal(read_gray8(png["png"].iloc[0]), gray)  # taken as it is
    jpg = by_name["photo.jpg"]
    assert jpg["status"].iloc[0] == "ok" and Path(jpg["png"].iloc[0]).suffix == ".png"
    assert np.abs(read_gray8(jpg["png"].iloc[0]).astype(int) - 90).max() <= 2
    assert by_name["notes.txt"]["status"].iloc[0].startswith("failed: unsupported")

    again = read_prepared_table(tmp_path / "manifest.csv")
    assert again["status"].tolist() == manifest["status"].tolist()
    assert (
        ok_images(tmp_path / "manifest.csv")
        == manifest.loc[manifest["status"] == "ok", "png"].tolist()
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        Path(p).name for p in manifest["png"] if p
    )


def test_truncated_file_is_named_in_the_log(tmp_path, raw_frames, caplog):
    data = gzip.compress(stream0_bytes(raw_frames))
    bad = tmp_path / "in" / "20140310_0602_gill_themis19_full.pgm.gz"
    bad.parent.mkdir()
    bad.write_bytes(data[:-5000])
    with caplog.at_level("WARNING", logger="oath.archive.themis"):
        manifest = prepare_images([bad], tmp_path / "out")
    assert manifest["status"].iloc[0].startswith("failed: pyucalgarysrs could not read it")
    assert bad.name in caplog.text


def test_empty_folder_raises_naming_it(tmp_path):
    empty = tmp_path / "nothing_here"
    empty.mkdir()
    (empty / ".hidden").write_text("")
    with pytest.raises(NoImagesError, match="nothing_here"):
        prepare_images([empty], tmp_path / "out")
    with pytest.raises(ThemisError, match="missing_folder"):
        prepare_images([tmp_path / "missing_folder"], tmp_path / "out")
