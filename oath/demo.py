"""An offline, synthetic demo data set in exactly the OATH layout.

The OATH tarball cannot be fetched everywhere, so the default run draws its own all-sky images:
a round field of view with stars, airglow and noise, and one of the six OATH classes drawn so a
person would recognise it. Everything comes from one seed, so the same config gives the same
bytes on every machine. These images are synthetic: accuracies on them say nothing about aurora.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from oath.atomic import write_bytes
from oath.data import CLASS6_NAMES, image_name
from oath.splits import make_split, write_split

log = logging.getLogger(__name__)

# THEMIS ASI stations the demo pretends its images came from (files_origin.csv).
DEMO_STATIONS = ("fsmi", "gill", "rank", "fykn", "inuv", "tpas")
COMMENT_LINES = 18  # the published classifications.csv has 18 comment lines before its header

HEADER_COMMENT = """\
# Oslo Aurora THEMIS (OATH) layout -- SYNTHETIC DEMO DATA SET made by oath-pipeline.
# These images are drawn by oath.demo, not observed: they only exercise the workflow.
#
# Columns:
#   class2  0 aurora, 1 no aurora
#   class6  0 arc, 1 diffuse, 2 discrete, 3 cloudy, 4 moon, 5 clear/no aurora
#   picNum  image number; the image is images/cropped_scaled/{picNum:05d}.png
#   label   class name
#   angle   rotation angle in degrees applied before feature extraction
#
# Real data: Clausen & Nickisch (2018), doi:10.1029/2018JA025274.
"""


def demo_table(n_images: int, seed: int) -> pd.DataFrame:
    """The demo's classifications table (class2, class6, picNum, label, angle) for N and seed.

    Cheap: no pixels are drawn, so the workflow can plan its jobs before the images exist.
    """
    if n_images < 12:
        raise ValueError(f"the demo needs at least 12 images (2 per class), got {n_images}")
    rng = np.random.RandomState(seed)
    class6 = np.resize(np.arange(6), n_images)
    rng.shuffle(class6)
    angles = rng.randint(0, 360, size=n_images)
    return pd.DataFrame(
        {
            "class2": (class6 >= 3).astype(int),
            "class6": class6,
            "picNum": np.arange(1, n_images + 1),
            "label": [CLASS6_NAMES[c] for c in class6],
            "angle": [str(a) for a in angles],
        }
    )


def demo_origins(table: pd.DataFrame, seed: int) -> pd.DataFrame:
    """files_origin.csv for the demo: station and time, several images per station-night."""
    rng = np.random.RandomState(seed + 1)
    n = len(table)
    nights = max(2, n // 8)  # about eight images a night, like bursts of frames in one evening
    night_of = np.sort(rng.randint(0, nights, size=n))
    rng.shuffle(night_of)
    start = dt.datetime(2011, 1, 1, 4, 0)
    rows = []
    for pic_num, night in zip(table["picNum"], night_of, strict=True):
        station = DEMO_STATIONS[night % len(DEMO_STATIONS)]
        when = start + dt.timedelta(
            days=int(night) * 3,
            minutes=int(rng.randint(0, 360)),
            seconds=3 * int(rng.randint(0, 20)),
        )
        rows.append(
            {
                "picNum": int(pic_num),
                "station": station,
                "time": when.strftime("%Y-%m-%dT%H:%M:%S"),
                "filename": f"{when:%Y%m%d_%H%M}_{station}_themis_full.pgm.gz",
            }
        )
    return pd.DataFrame(rows)


# --- drawing ---------------------------------------------------------------------------------


def _smooth(field: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with periodic borders through the FFT (sigma in pixels)."""
    size = field.shape[0]
    freq = np.fft.fftfreq(size)
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (freq[:, None] ** 2 + freq[None, :] ** 2))
    return np.real(np.fft.ifft2(np.fft.fft2(field) * kernel))


def _unit(field: np.ndarray) -> np.ndarray:
    lo, hi = field.min(), field.max()
    return (field - lo) / (hi - lo + 1e-12)


class _Sky:
    """Coordinates of a round all-sky field of view, radius 1 at the horizon."""

    def __init__(self, size: int, rng: np.random.RandomState):
        self.size = size
        self.rng = rng
        centre = (size - 1) / 2
        radius = 0.47 * size
        yy, xx = np.mgrid[0:size, 0:size].astype(float)
        self.x = (xx - centre) / radius
        self.y = (yy - centre) / radius
        self.r = np.hypot(self.x, self.y)
        self.fov = self.r <= 1.0

    def stars(self, count: int) -> np.ndarray:
        img = np.zeros((self.size, self.size))
        iy = self.rng.randint(0, self.size, count)
        ix = self.rng.randint(0, self.size, count)
        np.add.at(img, (iy, ix), self.rng.exponential(60.0, count) + 20.0)
        return _smooth(img, 0.7) * 3.0

    def field(self, sigma: float) -> np.ndarray:
        return _unit(_smooth(self.rng.randn(self.size, self.size), sigma))

    def random_point(self, max_r: float) -> tuple[float, float]:
        r = max_r * np.sqrt(self.rng.rand())
        phi = 2 * np.pi * self.rng.rand()
        return r * np.cos(phi), r * np.sin(phi)


def _arc(sky: _Sky) -> np.ndarray:
    """Arcs: one to three bands across the sky with sharp edges, gently curved."""
    img = np.zeros_like(sky.r)
    theta = sky.rng.uniform(0, np.pi)
    for _ in range(sky.rng.randint(1, 4)):
        bend = sky.rng.uniform(2.5, 6.0)  # radius of curvature, in horizon radii
        offset = sky.rng.uniform(-0.6, 0.6)
        cx, cy = -np.sin(theta) * (bend + offset), np.cos(theta) * (bend + offset)
        dist = np.hypot(sky.x - cx, sky.y - cy) - bend
        width = sky.rng.uniform(0.03, 0.08)
        band = np.clip((width - np.abs(dist)) * sky.size * 0.5, 0, 1)  # ~2 px soft edge
        along = 0.7 + 0.3 * np.cos(3 * (np.cos(theta) * sky.x + np.sin(theta) * sky.y))
        img += band * along * sky.rng.uniform(110, 190)
    return img


def _diffuse(sky: _Sky) -> np.ndarray:
    """Diffuse aurora: large fuzzy patches, no sharp edges."""
    img = np.zeros_like(sky.r)
    for _ in range(sky.rng.randint(2, 5)):
        px, py = sky.random_point(0.8)
        spread = sky.rng.uniform(0.25, 0.6)
        img += sky.rng.uniform(25, 55) * np.exp(
            -((sky.x - px) ** 2 + (sky.y - py) ** 2) / (2 * spread**2)
        )
    return img * (0.6 + 0.8 * sky.field(sky.size / 10))


def _discrete(sky: _Sky) -> np.ndarray:
    """Discrete aurora: bright, sharp-edged irregular forms and folds, not a single band."""
    blobs = sky.field(sky.size / 25)
    level = np.quantile(blobs[sky.fov], sky.rng.uniform(0.85, 0.93))
    forms = np.clip((blobs - level) * 40, 0, 1)
    rays = np.clip(np.sin(sky.rng.uniform(20, 40) * np.arctan2(sky.y, sky.x)) - 0.6, 0, 1)
    ring = np.exp(-((sky.r - sky.rng.uniform(0.3, 0.7)) ** 2) / 0.01)
    return forms * sky.rng.uniform(90, 160) + rays * ring * 60


def _cloudy(sky: _Sky) -> np.ndarray:
    """Cloud cover: multi-scale texture over most of the sky (stars dimmed by the caller)."""
    texture = sum(sky.field(sky.size / s) / s for s in (4, 8, 16, 32))
    cover = _unit(texture)
    return 30 + 70 * cover**1.5


def _moon(sky: _Sky) -> np.ndarray:
    """The moon: a small saturated disk with a wide glare halo."""
    px, py = sky.random_point(0.75)
    d = np.hypot(sky.x - px, sky.y - py)
    disk = (d < 0.05) * 255.0
    glare = 140.0 / (1.0 + (d / 0.12) ** 2)
    return disk + glare + 25 * (1 - sky.r)


def _clear(sky: _Sky) -> np.ndarray:
    return np.zeros_like(sky.r)


DRAW: dict[int, Callable[[_Sky], np.ndarray]] = {
    0: _arc,
    1: _diffuse,
    2: _discrete,
    3: _cloudy,
    4: _moon,
    5: _clear,
}


def draw_sky(class6: int, rng: np.random.RandomState, size: int = 256) -> np.ndarray:
    """One synthetic all-sky image of a class: uint8, size x size, black outside the FOV."""
    sky = _Sky(size, rng)
    airglow = 12 + 14 * sky.r**2
    stars = sky.stars(rng.randint(80, 200))
    emission = DRAW[class6](sky)
    if class6 == 3:
        stars = stars * (1 - _unit(emission)) * 0.3  # clouds hide most stars
    elif class6 == 4:
        stars = stars * 0.5  # moonlight washes faint stars out
    img = airglow + stars + emission + rng.normal(0, 3.0, sky.r.shape)
    img[~sky.fov] = 0
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def encode_png(gray: np.ndarray) -> bytes:
    """Minimal 8-bit grayscale PNG encoder: deterministic bytes, no imaging library needed."""
    height, width = gray.shape
    raw = np.hstack([np.zeros((height, 1), np.uint8), gray.astype(np.uint8)]).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def write_demo_dataset(
    root: str | Path,
    n_images: int,
    seed: int,
    n_splits: int = 5,
    split_seed: int = 1804,
    image_size: int = 256,
) -> pd.DataFrame:
    """Write the synthetic demo in the OATH layout under ``root``; returns its table."""
    root = Path(root)
    table = demo_table(n_images, seed)
    images = root / "images" / "cropped_scaled"
    classes = root / "classifications"
    images.mkdir(parents=True, exist_ok=True)
    classes.mkdir(parents=True, exist_ok=True)
    for pic_num, class6 in zip(table["picNum"], table["class6"], strict=True):
        rng = np.random.RandomState([seed, int(pic_num)])  # one stream per image: stable pixels
        write_bytes(
            images / image_name(pic_num), encode_png(draw_sky(int(class6), rng, image_size))
        )
    comment = HEADER_COMMENT.splitlines()
    comment += ["#"] * (COMMENT_LINES - len(comment))
    csv = "\n".join(comment) + "\n" + table.to_csv(index=False)
    write_bytes(classes / "classifications.csv", csv.encode())
    origins = demo_origins(table, seed)
    write_bytes(root / "images" / "files_origin.csv", origins.to_csv(index=False).encode())
    split_path = classes / "train_test_split.csv"
    write_split(split_path, make_split(n_images, n_splits, split_seed))
    (root / "README.txt").write_text(
        f"SYNTHETIC demo data set in the OATH layout: {n_images} images drawn by oath.demo "
        f"(seed {seed}); not real THEMIS data.\n"
    )
    log.info("wrote %d synthetic images under %s", n_images, root)
    return table
