"""An offline, synthetic demo data set in exactly the OATH layout.

The OATH tarball cannot be fetched everywhere, so the default run draws its own all-sky images:
a round field of view with stars, airglow and noise, and one of the six OATH classes drawn so a
person would recognise it. Everything comes from one seed, so the same config gives the same
bytes on every machine. These images are synthetic: accuracies on them say nothing about aurora.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from oath.atomic import write_bytes
from oath.dataset.splits import make_split, write_split
from oath.dataset.table import CLASS6_NAMES, image_name
from oath.imaging.png import encode_png

log = logging.getLogger(__name__)

# THEMIS ASI stations the demo pretends its images came from (files_origin.csv), with the
# imager number its raw file names carry (the demo's own numbers, not a station table).
DEMO_STATIONS = ("fsmi", "gill", "rank", "fykn", "inuv", "tpas")
DEMO_IMAGERS = {
    "fsmi": "themis14",
    "gill": "themis19",
    "rank": "themis20",
    "fykn": "themis08",
    "inuv": "themis12",
    "tpas": "themis17",
}
# How the demo's PNGs are made from its raw frames: the answer `calibrate` has to find, kept
# here and never read by oath.calibration. A linear counts window (not classify's default
# 3500-15000), a sky disk a few pixels off the frame's centre (row, column offsets), and one
# site whose frames lie upside down relative to what pyucalgarysrs returns.
DEMO_WINDOW = (3000.0, 10650.0)  # counts mapped to 0 and 255
DEMO_OFFSETS = {
    "fsmi": (2, -3),
    "gill": (-1, 2),
    "rank": (3, 1),
    "fykn": (0, -2),
    "inuv": (-2, 0),
    "tpas": (1, 3),
}
DEMO_ORIENTATIONS = {"gill": "flip_rows"}
RAW_FRAME = 256  # raw frames are 256 x 256 counts, whatever the PNGs' size
RAW_DIR = "raw"  # the raw stream0 files, in the UCalgary archive layout, under the demo root
COMMENT_LINES = 18  # the published classifications.csv has 18 comment lines before its header

HEADER_COMMENT = """\
# Oslo Aurora THEMIS (OATH) layout -- SYNTHETIC DEMO DATA SET made by oath-pipeline.
# These images are drawn by oath.demo.dataset, not observed: they only exercise the workflow.
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
    taken = set()
    for pic_num, night in zip(table["picNum"], night_of, strict=True):
        station = DEMO_STATIONS[night % len(DEMO_STATIONS)]
        when = start + dt.timedelta(
            days=int(night) * 3,
            minutes=int(rng.randint(0, 360)),
            seconds=3 * int(rng.randint(0, 20)),
        )
        while (station, when) in taken:  # one image per raw frame: the next 3-s frame
            when += dt.timedelta(seconds=3)
        taken.add((station, when))
        rows.append(
            {
                "picNum": int(pic_num),
                "station": station,
                "time": when.strftime("%Y-%m-%dT%H:%M:%S"),
                "filename": f"{when:%Y%m%d_%H%M}_{station}_{DEMO_IMAGERS[station]}_full.pgm.gz",
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
    return np.clip(np.rint(sky_light(class6, rng, size)), 0, 255).astype(np.uint8)


def sky_light(class6: int, rng: np.random.RandomState, size: int = 256) -> np.ndarray:
    """The light of :func:`draw_sky` before it is rounded and clipped (grey-level units)."""
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
    return img


def demo_conversion(image_size: int) -> dict[str, Any]:
    """The demo's secret conversion in classify's config keys (what calibrate should find)."""
    radius = image_size / 2
    return {
        "scaling": {"mode": "linear", "low": DEMO_WINDOW[0], "high": DEMO_WINDOW[1]},
        "crop_per_site": {
            site: {
                "center_row": (RAW_FRAME - 1) / 2 + dr,
                "center_col": (RAW_FRAME - 1) / 2 + dc,
                "radius": radius,
            }
            for site, (dr, dc) in DEMO_OFFSETS.items()
        },
        "orientation_per_site": dict(DEMO_ORIENTATIONS),
    }


def demo_raw_files(origins: pd.DataFrame) -> list[str]:
    """Paths of the demo's raw files relative to its root, one per station-minute, sorted."""
    from oath.demo.stream0 import archive_path

    paths = set()
    for station, when in zip(origins["station"], origins["time"], strict=True):
        minute = dt.datetime.fromisoformat(when).replace(second=0)
        paths.add(str(archive_path(RAW_DIR, minute, station, DEMO_IMAGERS[station])))
    return sorted(paths)


def _raw_counts(light: np.ndarray, site: str, rng: np.random.RandomState) -> np.ndarray:
    """A 256 x 256 raw frame (counts, after the site's orientation) whose crop at the site's
    offset, scaled by the demo window, gives ``light`` back (rounded): a dark floor below the
    window outside the sky, the sky's light mapped linearly into the window inside."""
    low, high = DEMO_WINDOW
    size = light.shape[0]
    frame = low - 300.0 + rng.normal(0, 5.0, (RAW_FRAME, RAW_FRAME))
    dr, dc = DEMO_OFFSETS[site]
    top = int(np.floor((RAW_FRAME - 1) / 2 + dr - size / 2 + 0.5))
    left = int(np.floor((RAW_FRAME - 1) / 2 + dc - size / 2 + 0.5))
    counts = np.where(light > 0, low + light * (high - low) / 255.0, np.nan)
    # the part of the image's window inside the frame (a 256-px image reaches past its edge)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + size, RAW_FRAME), min(left + size, RAW_FRAME)
    part = counts[r0 - top : r1 - top, c0 - left : c1 - left]
    window = frame[r0:r1, c0:c1]
    window[~np.isnan(part)] = part[~np.isnan(part)]
    return np.clip(np.rint(frame), 0, 65535).astype(np.uint16)


def _write_raw_minute(
    root: Path, station: str, minute: dt.datetime, frames: dict[int, np.ndarray]
) -> Path:
    """One stream0 minute file holding ``frames`` (3-s slot -> counts, as pyucalgarysrs will
    return them) and a neighbour: slots from the first image's to the last's plus one (minus
    one at the minute's end), each slot without an image a dimmer copy of the nearest image's
    frame, so that the frame matched by time is not the only one in its file."""
    from oath.demo.stream0 import CADENCE, archive_path, write_stream0

    first, last = min(frames), max(frames) + 1
    if last > 19:
        first, last = max(first - 1, 0), 19
    rng = np.random.RandomState([minute.toordinal(), minute.hour, minute.minute])
    stored = []
    for slot in range(first, last + 1):
        nearest = min(frames, key=lambda k: (abs(k - slot), k))
        frame = frames[slot] if slot in frames else _dim(frames[nearest], rng)
        stored.append(frame[::-1, :])  # the reader flips the file's rows
    start = minute + first * CADENCE + dt.timedelta(microseconds=63119)
    path = archive_path(root / RAW_DIR, minute, station, DEMO_IMAGERS[station])
    return write_stream0(path, stored, station, start, imager=DEMO_IMAGERS[station])


def _dim(frame: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """A neighbouring frame: the sky 15 % dimmer above the floor, with its own noise."""
    low = DEMO_WINDOW[0]
    counts = frame.astype(float)
    sky = counts > low - 150
    counts[sky] = low + 0.85 * (counts[sky] - low) + rng.normal(0, 10.0, int(sky.sum()))
    return np.clip(np.rint(counts), 0, 65535).astype(np.uint16)


def _draw_from_raw(
    images: Path, raw_root: Path, table: pd.DataFrame, origins: pd.DataFrame, seed: int, size: int
) -> None:
    """Each image's raw frame, and its PNG made from that frame by the demo's conversion."""
    from oath.archive.conversion import as_crop, as_scaling, frame_to_oath, orient

    secret = demo_conversion(size)
    scaling = as_scaling(secret["scaling"])
    class_of = dict(zip(table["picNum"], table["class6"], strict=True))
    origins = origins.assign(
        minute=[w[:16] for w in origins["time"]], slot=[int(w[17:19]) // 3 for w in origins["time"]]
    )
    for (station, minute), group in origins.groupby(["station", "minute"], sort=True):
        frames: dict[int, np.ndarray] = {}
        for pic_num, slot in zip(group["picNum"], group["slot"], strict=True):
            rng = np.random.RandomState([seed, int(pic_num)])  # one stream per image: stable
            light = sky_light(int(class_of[pic_num]), rng, size)
            noise = np.random.RandomState([seed, int(pic_num), 1])
            counts = _raw_counts(light, station, noise)
            read = orient(counts, DEMO_ORIENTATIONS.get(station, "none"), inverse=True)
            frames[int(slot)] = read  # demo_origins gives every image a frame of its own
            crop = as_crop(secret["crop_per_site"][station])
            gray = frame_to_oath(counts, crop, scaling)  # = the conversion applied to `read`
            write_bytes(images / image_name(pic_num), encode_png(gray))
        _write_raw_minute(raw_root, station, dt.datetime.fromisoformat(minute), frames)


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
    origins = demo_origins(table, seed)
    _draw_from_raw(images, root, table, origins, seed, image_size)
    comment = HEADER_COMMENT.splitlines()
    comment += ["#"] * (COMMENT_LINES - len(comment))
    csv = "\n".join(comment) + "\n" + table.to_csv(index=False)
    write_bytes(classes / "classifications.csv", csv.encode())
    write_bytes(root / "images" / "files_origin.csv", origins.to_csv(index=False).encode())
    split_path = classes / "train_test_split.csv"
    write_split(split_path, make_split(n_images, n_splits, split_seed))
    (root / "README.txt").write_text(
        f"SYNTHETIC demo data set in the OATH layout: {n_images} images drawn by oath.demo.dataset "
        f"(seed {seed}); not real THEMIS data. {RAW_DIR}/ holds the raw stream0 files that "
        "images/files_origin.csv names; each PNG was made from its raw frame.\n"
    )
    log.info("wrote %d synthetic images under %s", n_images, root)
    return table
