"""Rotation with Wand equals the original `convert ... -distort SRT ANGLE +repage` step."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from wand.image import Image

from oath.demo.dataset import draw_sky
from oath.imaging.png import encode_png
from oath.imaging.rotate import RotationError, rotate_image, rotate_images


def pixels(path) -> np.ndarray:
    with Image(filename=str(path)) as img:
        return np.array(img)


@pytest.fixture
def sources(tmp_path, dataset):
    """Grayscale demo images, one non-square, and one RGB picture with a bright edge."""
    images = [dataset / "images" / "cropped_scaled" / f"{n:05d}.png" for n in (1, 2, 3)]
    rng = np.random.RandomState(3)
    tall = np.vstack([draw_sky(0, rng, 48), draw_sky(4, rng, 48)])  # 96 x 48, not square
    (tmp_path / "tall.png").write_bytes(encode_png(tall))
    images.append(tmp_path / "tall.png")
    with Image(width=40, height=30, pseudo="gradient:red-yellow") as rgb:
        rgb.save(filename=str(tmp_path / "rgb.png"))
    images.append(tmp_path / "rgb.png")
    return images


@pytest.mark.parametrize("angle", ["0", "37", "90", "212.5", "-45"])
def test_wand_equals_convert_pixel_for_pixel(tmp_path, sources, angle, convert_cli):
    for source in sources:
        ours = tmp_path / f"ours_{source.stem}_{angle}.png"
        theirs = tmp_path / f"theirs_{source.stem}_{angle}.png"
        rotate_image(source, ours, float(angle))
        subprocess.run(
            [
                convert_cli,
                str(source),
                "-background",
                "black",
                "-distort",
                "SRT",
                angle,
                "+repage",
                str(theirs),
            ],
            check=True,
        )
        a, b = pixels(ours), pixels(theirs)
        assert a.shape == b.shape == pixels(source).shape
        assert np.array_equal(a, b), f"{source.name} at {angle} degrees differs from convert"


def test_rotation_keeps_size_and_blackens_corners(tmp_path, dataset):
    source = dataset / "images" / "cropped_scaled" / "00001.png"
    target = tmp_path / "00001_45.png"
    rotate_image(source, target, 45)
    before, after = pixels(source), pixels(target)
    assert after.shape == before.shape
    assert after[0, 0].max() == 0 and after[-1, -1].max() == 0
    assert not np.array_equal(before, after)


def test_unreadable_image_names_the_file_and_leaves_nothing(tmp_path):
    bad = tmp_path / "00009.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    target = tmp_path / "out" / "00009_10.png"
    target.parent.mkdir()
    with pytest.raises(RotationError, match="00009.png"):
        rotate_image(bad, target, 10)
    assert list(target.parent.iterdir()) == []


def test_batch_checks_its_lengths(tmp_path):
    with pytest.raises(ValueError, match="differ"):
        rotate_images(["a.png"], [], [1.0])


def test_wand_finds_imagemagick_without_running_a_compiler():
    """Every job that rotates or decodes images loads ImageMagick through Wand first. oath
    names the library to try (WAND_MAGICK_LIBRARY_SUFFIX): ldconfig alone finds it, where
    Wand's own search ran gcc and ld ~24 times each (~0.5 s of CPU a job)."""
    code = (
        "import os, subprocess\n"
        "runs = []\n"
        "popen_init = subprocess.Popen.__init__\n"
        "def record(self, args, *rest, **kwargs):\n"
        "    runs.append(os.path.basename(args if isinstance(args, str) else args[0]))\n"
        "    popen_init(self, args, *rest, **kwargs)\n"
        "subprocess.Popen.__init__ = record\n"
        "from oath.imaging.rotate import import_wand\n"
        "wand = import_wand()\n"
        "with wand.Image(width=2, height=2, pseudo='xc:black') as image:\n"
        "    assert image.width == 2\n"
        "print(' '.join(runs))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "WAND_MAGICK_LIBRARY_SUFFIX"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert set(done.stdout.split()) <= {"ldconfig"}, done.stdout
