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

log = logging.getLogger(__name__)


class RotationError(ValueError):
    """An image could not be read or rotated; the message names the file."""


def rotate_image(source: str | Path, target: str | Path, angle: float) -> None:
    """``convert SOURCE -background black -distort SRT ANGLE +repage TARGET``, via Wand.

    Same size as the input; what the rotation brings in from outside the frame is black.
    The target is written under a temporary name and renamed, so it is complete or absent.
    """
    from wand.color import Color
    from wand.exceptions import WandException
    from wand.image import Image

    source, target = Path(source), Path(target)
    tmp = target.with_name(f".{target.stem}.tmp{target.suffix}")
    try:
        with Image(filename=str(source)) as img:
            img.background_color = Color("black")
            img.distort("scale_rotate_translate", (float(angle),))
            img.reset_coords()  # +repage: drop the virtual canvas offset the distortion leaves
            img.save(filename=f"png:{tmp}")
    except WandException as exc:
        tmp.unlink(missing_ok=True)
        raise RotationError(
            f"{source}: cannot rotate ({exc}). Replace the file with a readable PNG or remove "
            "its row from classifications.csv."
        ) from exc
    os.replace(tmp, target)


def rotate_images(
    sources: Sequence[str | Path], targets: Sequence[str | Path], angles: Sequence[float | str]
) -> None:
    """Rotate a batch of images (one workflow job rotates one shard)."""
    if not len(sources) == len(targets) == len(angles):
        raise ValueError(
            f"{len(sources)} sources, {len(targets)} targets and {len(angles)} angles differ"
        )
    for source, target, angle in zip(sources, targets, angles, strict=True):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        rotate_image(source, target, float(angle))
    log.info("rotated %d image(s)", len(sources))
