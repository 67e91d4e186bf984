"""Rotate images by their OATH angle, equal pixel for pixel to the original ImageMagick step.

The original rotate.sh ran, per image::

    convert IN -background black -distort SRT ANGLE +repage OUT/{picNum}_{angle}.png

Wand drives the same MagickWand library in-process, which saves one ``convert`` process per
image (thousands at OATH scale).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from oath.atomic import atomic_path, write_text

log = logging.getLogger(__name__)


# The library names Wand tries first: Debian's and Ubuntu's ImageMagick 6 (setup.sh), then 7.
# Without a hint Wand probes ~24 names through ctypes.util.find_library, each miss a gcc and an
# ld run: ~0.5 s of CPU at the start of every job that rotates or decodes images (0.08 s with
# it). Another ImageMagick is still found by Wand's full search; a value the user set wins.
WAND_LIBRARY_SUFFIXES = "-6.Q16;-7.Q16HDRI;-7.Q16"


def import_wand() -> SimpleNamespace:
    """Wand's ``Image``, ``Color`` and ``WandException``, its library found without a search."""
    os.environ.setdefault("WAND_MAGICK_LIBRARY_SUFFIX", WAND_LIBRARY_SUFFIXES)
    from wand.color import Color
    from wand.exceptions import WandException
    from wand.image import Image

    return SimpleNamespace(Image=Image, Color=Color, WandException=WandException)


class RotationError(ValueError):
    """An image could not be read or rotated; the message names the file."""


def rotate_image(source: str | Path, target: str | Path, angle: float) -> None:
    """``convert SOURCE -background black -distort SRT ANGLE +repage TARGET``, via Wand.

    Same size as the input; what the rotation brings in from outside the frame is black.
    The target is written under a temporary name and renamed, so it is complete or absent.
    """
    wand = import_wand()
    try:
        with atomic_path(target, suffix=".png") as tmp, wand.Image(filename=str(source)) as img:
            img.background_color = wand.Color("black")
            img.distort("scale_rotate_translate", (float(angle),))
            img.reset_coords()  # +repage: drop the virtual canvas offset the distortion leaves
            # PNG zlib level 1, no filter: the same pixels as convert's default encoding, and
            # the encoder is half of the cost per image (measured: 17.7 -> 14.6 ms an image).
            img.compression_quality = 10
            img.options["png:exclude-chunk"] = "date,time"  # byte-identical reruns
            img.save(filename=f"png:{tmp}")
    except wand.WandException as exc:
        raise RotationError(
            f"{source}: cannot rotate ({exc}). Replace the file with a readable PNG or remove "
            "its row from classifications.csv."
        ) from exc


def rotate_images(
    sources: Sequence[str | Path], targets: Sequence[str | Path], angles: Sequence[float | str]
) -> None:
    """Rotate a batch of images (one workflow job rotates one shard)."""
    if not len(sources) == len(targets) == len(angles):
        raise ValueError(
            f"{len(sources)} sources, {len(targets)} targets and {len(angles)} angles differ"
        )
    for source, target, angle in zip(sources, targets, angles, strict=True):
        rotate_image(source, target, float(angle))
    log.info("rotated %d image(s)", len(sources))


def rotate_shard(
    sources: Sequence[str | Path],
    angles: Sequence[float | str],
    targets: Sequence[str | Path],
    manifest: str | Path,
) -> None:
    """Rotate one shard's source images to ``targets`` and list their names in a manifest.

    The manifest (file names, one a line) is what extraction reads; it is written last, so it
    exists only when the whole shard is done.
    """
    targets = [Path(t) for t in targets]
    rotate_images(sources, targets, angles)
    write_text(manifest, "".join(f"{t.name}\n" for t in targets))


def read_manifest(manifest: str | Path, rotated_dir: str | Path) -> list[Path]:
    """The rotated images a shard manifest lists, as paths in ``rotated_dir``."""
    manifest = Path(manifest)
    names = [line.strip() for line in manifest.read_text().splitlines() if line.strip()]
    if not names:
        raise RotationError(f"{manifest}: empty shard manifest; delete it to rotate again.")
    return [Path(rotated_dir) / name for name in names]
