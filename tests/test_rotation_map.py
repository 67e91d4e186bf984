"""oath.imaging.rotation_map: the linear map of -distort SRT equals Wand pixel for pixel; its
cache."""

from __future__ import annotations

import numpy as np
import pytest

from oath.archive.conversion import frame_to_oath
from oath.demo.stream0 import synthetic_frames
from oath.imaging.rotation_map import (
    build_rotation_map,
    cache_key,
    imagemagick_filter_lut,
    load_rotation_map,
    wand_rotate,
)
from tests.conftest import SHARED

FIXTURE_IMAGES = SHARED / "fixtures" / "inception_v4" / "images"


@pytest.fixture(scope="module")
def lut() -> np.ndarray:
    return imagemagick_filter_lut()


def test_the_map_equals_wand_on_converted_themis_frames(lut):
    frames = [frame_to_oath(f) for f in synthetic_frames(3, np.random.RandomState(4))]
    for angle in (12.5, -101.25):
        rotation = build_rotation_map(frames[0].shape, angle, lut)
        batch = rotation.rotate(np.stack(frames))
        for frame, ours in zip(frames, batch, strict=True):
            assert np.array_equal(ours, wand_rotate(frame, angle))


def test_the_map_equals_wand_on_odd_sizes_and_real_frames(lut):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (37, 52), dtype=np.uint8)]
    if FIXTURE_IMAGES.is_dir():
        from oath.imaging.rotate import import_wand

        wand = import_wand()
        for path in sorted(FIXTURE_IMAGES.glob("*.png")):
            with wand.Image(filename=str(path)) as img:
                frames.append(np.ascontiguousarray(np.array(img)[:, :, 0]))
    for frame in frames:
        rotation = build_rotation_map(frame.shape, 33.3, lut)
        assert np.array_equal(rotation.rotate(frame), wand_rotate(frame, 33.3))


def test_the_cache_is_keyed_by_angle_and_size_and_reused(tmp_path):
    assert cache_key((40, 40), 12.5) != cache_key((40, 40), 12.25)
    assert cache_key((40, 40), 12.5) != cache_key((40, 41), 12.5)
    first = load_rotation_map((40, 40), 12.5, tmp_path)
    [cached] = list(tmp_path.glob("*.npz"))
    again = load_rotation_map((40, 40), 12.5, tmp_path)
    assert list(tmp_path.iterdir()) == [cached]  # no temporary file left behind
    frame = np.random.default_rng(1).integers(0, 256, (40, 40), dtype=np.uint8)
    assert np.array_equal(again.rotate(frame), first.rotate(frame))
    with pytest.raises(ValueError, match="uint8"):
        again.rotate(frame.astype(np.float32))
