"""ImageMagick's ``-distort SRT ANGLE`` of one image size as a fixed sparse linear map.

For a fixed angle and image size, ``convert IN -background black -distort SRT ANGLE +repage
OUT`` (:func:`oath.imaging.rotate.rotate_image`) is linear in the input pixels up to its final
rounding: each output pixel is ImageMagick's elliptical weighted average (EWA, its default
cylindrical Robidoux filter) of the input pixels its ellipse covers, edge pixels standing in for
what lies outside the frame (the default ``edge`` virtual pixels). So the rotation of every frame
of a site is one sparse matrix product, which is what :func:`rotate_frames` computes, for a batch
of frames at once, instead of a PNG encode, Wand and another PNG encode per frame.

Exact, not approximate: the map reproduces ImageMagick's arithmetic (Q16, not HDRI) step by
step, so the result equals Wand's pixel for pixel:

- the filter's weights are ImageMagick's own lookup table, read from the library
  (``resample:verbose`` prints it, at 17 significant digits under ``MAGICK_PRECISION=17``, in a
  child process since the library reads that setting once);
- which input pixels each output pixel weighs, and which table entry each gets, follow
  ImageMagick 6's ``ScaleRotateTranslate`` coefficients, its ellipse (``ClampUpAxes``,
  ``ScaleResampleFilter``) and its scan of the ellipse's bounding parallelogram, in the same
  floating-point operations and order;
- weights and weighted sums are accumulated in ImageMagick's order (a CSR row in scan order),
  divided the same way (times ``1 / sum of weights``), clamped and rounded to 16 bits, then to
  8 bits through a table read from ImageMagick's PNG encoder (:func:`png_depth8_table`: it
  truncates, ``q // 257``, where exporting pixels rounds).

Every map is checked against Wand on random frames when it is built (:func:`build_rotation_map`
raises :class:`RotationMapError` on any pixel that differs), and classify checks the first frame
of each site against Wand again (:mod:`oath.archive.feed`), falling back to Wand for that site
if they ever differ. Maps are cached on disk (:func:`load_rotation_map`), keyed by ImageMagick's
version, quantum depth and HDRI flag, the angle, the size and the map format, and written
atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from oath.atomic import atomic_path
from oath.imaging.rotate import import_wand

log = logging.getLogger(__name__)

#: Bumped whenever the map's construction or file layout changes (part of the cache key).
MAP_FORMAT = 1
#: ImageMagick's filter lookup table length (``WLUT_WIDTH`` in resample.c).
LUT_WIDTH = 1024
QUANTUM_MAX = 65535.0
#: How many random frames a new map is checked on against Wand.
CHECK_FRAMES = 2
#: Most frames per sparse product in :func:`rotate_frames` (a batch is split evenly). On a
#: 2-core AMD EPYC (busy; the least of 12 passes), 8 to 12 frames of 256 x 256 took less CPU a
#: frame than one at a time, 15 to 32 more (their 8-16 MiB float64 arrays leave the cache).
ROTATE_CHUNK = 12
#: An 8-bit pixel as ImageMagick's 16-bit quantum (``v * 257``, exact in float64).
_QUANTUM_OF_8BIT = np.arange(256, dtype=np.float64) * 257.0

_LUT_SCRIPT = """
import sys
import numpy as np
from oath.imaging.rotate import import_wand
wand = import_wand()
with wand.Image.from_array(np.zeros((8, 8), np.uint8)) as img:
    img.artifacts["resample:verbose"] = "true"
    img.background_color = wand.Color("black")
    img.distort("scale_rotate_translate", (1.0,))
"""


class RotationMapError(RuntimeError):
    """The map could not be built, or differs from Wand; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class RotationMap:
    """The rotation of ``shape`` images by ``angle`` degrees: output = f(weights @ input).

    ``weights`` is the (pixels x pixels) CSR matrix of ImageMagick's raw filter weights, rows in
    its accumulation order; ``scale`` is ``1 / sum of each row's weights`` as it computes it.
    """

    shape: tuple[int, int]
    angle: float
    weights: sp.csr_matrix
    scale: np.ndarray
    #: 16-bit quantum -> the 8-bit value ImageMagick's PNG encoder writes (65,536 entries).
    to_8bit: np.ndarray

    def rotate(self, frames: np.ndarray) -> np.ndarray:
        """Rotate uint8 ``frames`` (H x W, or N x H x W): equal to Wand's result."""
        return rotate_frames(self, frames)


def imagemagick_version() -> str:
    """ImageMagick's version string, quantum depth and HDRI flag (what the map depends on)."""
    import_wand()
    from wand.version import MAGICK_HDRI, MAGICK_VERSION, QUANTUM_DEPTH

    return f"{MAGICK_VERSION}; Q{QUANTUM_DEPTH}; HDRI {bool(MAGICK_HDRI)}"


def imagemagick_filter_lut() -> np.ndarray:
    """ImageMagick's EWA filter lookup table (1024 doubles, exact), as the library prints it."""
    env = {**os.environ, "MAGICK_PRECISION": "17"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")) if p
    )
    done = subprocess.run(
        [sys.executable, "-c", _LUT_SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    rows = [line.split() for line in done.stdout.splitlines() if line.strip()[:1].isdigit()]
    if done.returncode != 0 or len(rows) < LUT_WIDTH:
        raise RotationMapError(
            f"ImageMagick ({imagemagick_version()}) did not print its filter table "
            f"(exit {done.returncode}: {done.stderr.strip()[-300:]}). Classify falls back to "
            "Wand; check that this ImageMagick supports resample:verbose."
        )
    if "Robidoux" not in done.stdout:
        raise RotationMapError(
            "ImageMagick's default -distort filter is not Robidoux here; the map assumes it."
        )
    return np.array([float(value) for _, value in rows[:LUT_WIDTH]], dtype=np.float64)


def _ellipse(c: tuple[float, ...], support: float) -> tuple[float, ...]:
    """ImageMagick's scaled ellipse (A, B, C), Vlimit, Uwidth and slope for affine ``c``.

    The same operations, in the same order, as ``ClampUpAxes`` and ``ScaleResampleFilter``
    with derivatives (du/dx, du/dy, dv/dx, dv/dy) = (c0, c1, c3, c4).
    """
    a, b, cc, d = c[0], c[1], c[3], c[4]  # Jinv = [[dux, duy], [dvx, dvy]]
    n11, n12, n22 = a * a + b * b, a * cc + b * d, cc * cc + d * d
    det = a * d - b * cc
    twice, frob = det + det, n11 + n22
    disc = (frob + twice) * (frob - twice)
    root = math.sqrt(disc if disc > 0.0 else 0.0)
    s1s1, s2s2 = 0.5 * (frob + root), 0.5 * (frob - root)
    m11, m22 = s1s1 - n11, s1s1 - n22
    first = m11 * m11 >= m22 * m22
    t11, t21 = (n12, m11) if first else (m22, n12)
    norm = math.sqrt(t11 * t11 + t21 * t21)
    u11, u21 = (t11 / norm, t21 / norm) if norm > 0.0 else (1.0, 0.0)
    major = 1.0 if s1s1 <= 1.0 else math.sqrt(s1s1)
    minor = 1.0 if s2s2 <= 1.0 else math.sqrt(s2s2)
    mx, my, nx, ny = u11 * major, u21 * major, -u21 * minor, u11 * minor
    big_a = my * my + ny * ny
    big_b = -2.0 * (mx * my + nx * ny)
    big_c = mx * mx + nx * nx
    f = major * minor
    f *= f
    f *= support
    f *= support
    vlimit = math.sqrt(big_a * f / (big_a * big_c - 0.25 * big_b * big_b))
    uwidth = math.sqrt(f / big_a)
    slope = -big_b / (2.0 * big_a)
    scale = LUT_WIDTH / f
    return big_a * scale, big_b * scale, big_c * scale, vlimit, uwidth, slope


def _srt_coefficients(rows: int, cols: int, angle: float) -> tuple[float, ...]:
    """ImageMagick 6's affine coefficients of ``-distort SRT angle`` (output -> input)."""
    x = nx = cols / 2.0
    y = ny = rows / 2.0
    radians = math.pi * angle / 180.0  # DegreesToRadians
    cosine, sine = math.cos(radians), math.sin(radians)
    c0, c1 = cosine, sine
    c3, c4 = -sine, cosine
    return (c0, c1, x - nx * c0 - ny * c1, c3, c4, y - nx * c3 - ny * c4)


def _weights(
    shape: tuple[int, int], angle: float, lut: np.ndarray, support: float = 2.0
) -> sp.csr_matrix:
    """The raw EWA weights of every output pixel, each row in ImageMagick's scan order."""
    rows, cols = shape
    c = _srt_coefficients(rows, cols, angle)
    big_a, big_b, big_c, vlimit, uwidth, slope = _ellipse(c, support)
    j, i = np.mgrid[0:rows, 0:cols]
    dx, dy = (i + 0.5).ravel(), (j + 0.5).ravel()
    u0 = (c[0] * dx + c[1] * dy + c[2]) - 0.5
    v0 = (c[3] * dx + c[4] * dy + c[5]) - 0.5
    v1, v2 = np.ceil(v0 - vlimit), np.floor(v0 + vlimit)
    u1 = u0 + (v1 - v0) * slope - uwidth
    width = int(2.0 * uwidth) + 1
    out, src, val, pos = [], [], [], []
    for line in range(int((v2 - v1).max()) + 1):
        v = v1 + line
        u = np.ceil(u1)
        u1 = u1 + slope
        big_u, big_v = u - u0, v - v0
        q = (big_a * big_u + big_b * big_v) * big_u + big_c * big_v * big_v
        dq = big_a * (2.0 * big_u + 1) + big_b * big_v
        row_of = np.clip(v, 0, rows - 1).astype(np.int64) * cols  # edge virtual pixels
        for step in range(width):
            hit = np.flatnonzero((v <= v2) & (q < LUT_WIDTH))
            out.append(hit)
            src.append(row_of[hit] + np.clip(u[hit] + step, 0, cols - 1).astype(np.int64))
            val.append(lut[q[hit].astype(np.int64)])
            pos.append(np.full(hit.size, line * width + step))
            q = q + dq
            dq = dq + 2 * big_a
    out_a, src_a, val_a = np.concatenate(out), np.concatenate(src), np.concatenate(val)
    order = np.lexsort((np.concatenate(pos), out_a))
    indptr = np.searchsorted(out_a[order], np.arange(rows * cols + 1))
    return sp.csr_matrix((val_a[order], src_a[order], indptr), shape=(rows * cols, rows * cols))


def rotate_frames(rotation: RotationMap, frames: np.ndarray) -> np.ndarray:
    """uint8 ``frames`` (H x W or N x H x W) rotated as ImageMagick rotates them.

    A batch is split evenly into sparse products of at most :data:`ROTATE_CHUNK` frames (each
    frame's arithmetic is the same as alone, so the result does not depend on the batch).
    """
    frames = np.asarray(frames)
    single = frames.ndim == 2
    batch = frames[None] if single else frames
    if batch.shape[1:] != rotation.shape or batch.dtype != np.uint8:
        raise ValueError(
            f"the map rotates uint8 {rotation.shape} frames, got {batch.dtype} {batch.shape[1:]}"
        )
    if not len(batch):
        return batch.copy()
    chunks = np.array_split(batch, -(-len(batch) // ROTATE_CHUNK))
    out = np.concatenate([_rotate_chunk(rotation, chunk) for chunk in chunks])
    return out[0] if single else out


def _rotate_chunk(rotation: RotationMap, chunk: np.ndarray) -> np.ndarray:
    """One sparse product for N uint8 frames: ImageMagick's sums, scale, clamp and rounding."""
    pixels = _QUANTUM_OF_8BIT[chunk.reshape(len(chunk), -1).T]  # pixels x frames, C order
    value = rotation.weights @ pixels
    value *= rotation.scale[:, None]
    # ClampToQuantum: <= 0 -> 0, >= QuantumRange -> QuantumRange, else (Quantum) (value + 0.5),
    # a truncation; adding 0.5 before clamping gives the same quantum in every case.
    value += 0.5
    np.clip(value, 0.0, QUANTUM_MAX, out=value)
    return rotation.to_8bit[value.astype(np.uint16)].T.reshape(chunk.shape)


def _png_options(img: object) -> None:
    """The PNG settings of :func:`oath.imaging.rotate.rotate_image` (zlib level 1, no date
    chunks)."""
    img.compression_quality = 10  # type: ignore[attr-defined]
    img.options["png:exclude-chunk"] = "date,time"  # type: ignore[attr-defined]


def png_depth8_table() -> np.ndarray:
    """What ImageMagick's PNG encoder writes for each 16-bit gray quantum of an 8-bit image."""
    wand = import_wand()
    with wand.Image(width=256, height=256, background=wand.Color("black")) as img:
        img.import_pixels(channel_map="I", storage="short", data=list(range(65536)))
        img.type = "grayscale"
        img.depth = 8
        _png_options(img)
        with wand.Image(blob=img.make_blob("png"), format="png") as back:
            table = np.array(back)[:, :, 0].ravel()
    return np.ascontiguousarray(table, dtype=np.uint8)


def wand_rotate_png(gray: np.ndarray, angle: float) -> bytes:
    """``convert IN.png -background black -distort SRT ANGLE +repage OUT.png`` in memory.

    The same Wand calls as :func:`oath.imaging.rotate.rotate_image` on the PNG
    :mod:`oath.archive.themis`
    would write, so the pixels equal those of the file the PNG path makes.
    """
    from oath.imaging.png import encode_png

    wand = import_wand()
    with wand.Image(blob=encode_png(gray), format="png") as img:
        img.background_color = wand.Color("black")
        img.distort("scale_rotate_translate", (float(angle),))
        img.reset_coords()
        _png_options(img)
        return img.make_blob("png")


def wand_rotate(frame: np.ndarray, angle: float) -> np.ndarray:
    """The pixels of :func:`wand_rotate_png`'s PNG (the reference the map must equal)."""
    wand = import_wand()
    with wand.Image(blob=wand_rotate_png(frame, angle), format="png") as img:
        return np.array(img)[:, :, 0]


def differing_pixels(rotation: RotationMap, frame: np.ndarray) -> int:
    """How many pixels of ``frame`` the map rotates other than Wand does (0 when exact)."""
    return int((rotate_frames(rotation, frame) != wand_rotate(frame, rotation.angle)).sum())


def build_rotation_map(
    shape: tuple[int, int], angle: float, lut: np.ndarray | None = None
) -> RotationMap:
    """Derive the map from ImageMagick and check it against Wand on random frames."""
    shape = (int(shape[0]), int(shape[1]))
    lut = imagemagick_filter_lut() if lut is None else lut
    weights = _weights(shape, float(angle), lut)
    scale = 1.0 / np.asarray(weights @ np.ones(shape[0] * shape[1]))
    rotation = RotationMap(shape, float(angle), weights, scale, png_depth8_table())
    rng = np.random.default_rng(38)
    for _ in range(CHECK_FRAMES):
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        bad = differing_pixels(rotation, frame)
        if bad:
            raise RotationMapError(
                f"the map of {shape} at {angle} degrees differs from ImageMagick "
                f"({imagemagick_version()}) in {bad} pixel(s) of a random frame: this "
                "ImageMagick computes -distort otherwise. Classify rotates through Wand."
            )
    log.info("rotation map %s at %s degrees: %d weights", shape, angle, weights.nnz)
    return rotation


def cache_key(shape: tuple[int, int], angle: float) -> str:
    """What the map depends on, hashed: ImageMagick, the call's settings, the map format."""
    settings = {
        "format": MAP_FORMAT,
        "imagemagick": imagemagick_version(),
        "call": "-background black -distort SRT ANGLE +repage (default filter, edge pixels)",
        "angle": float(angle).hex(),
        "shape": list(shape),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:20]


def load_rotation_map(
    shape: tuple[int, int], angle: float, cache_dir: str | Path | None = None
) -> RotationMap:
    """The map for ``shape`` and ``angle``: from the cache, else built, checked and cached."""
    from oath.network.inception_v4 import graph_cache_dir

    shape = (int(shape[0]), int(shape[1]))
    folder = Path(cache_dir) if cache_dir is not None else graph_cache_dir() / "rotation_maps"
    path = folder / f"srt-{shape[0]}x{shape[1]}-{cache_key(shape, angle)}.npz"
    if path.is_file():
        try:
            with np.load(path) as data:
                weights = sp.csr_matrix(
                    (data["data"], data["indices"], data["indptr"]),
                    shape=(shape[0] * shape[1],) * 2,
                )
                return RotationMap(shape, float(angle), weights, data["scale"], data["to_8bit"])
        except (OSError, ValueError, KeyError) as exc:
            log.warning("%s: unreadable rotation map (%s); building it again", path, exc)
    rotation = build_rotation_map(shape, angle)
    with atomic_path(path, suffix=".npz") as tmp:
        w = rotation.weights
        np.savez(
            tmp,
            data=w.data,
            indices=w.indices,
            indptr=w.indptr,
            scale=rotation.scale,
            to_8bit=rotation.to_8bit,
        )
    return rotation
