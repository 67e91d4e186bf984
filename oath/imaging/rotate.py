"""Rotate images by their OATH angle, equal pixel for pixel to the original ImageMagick step.

The original rotate.sh ran, per image::

    convert IN -background black -distort SRT ANGLE +repage OUT/{picNum}_{angle}.png

Wand drives the same MagickWand library in-process, which saves one ``convert`` process per
image (thousands at OATH scale).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

from oath.atomic import atomic_path, write_json, write_text

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


# What the rotation call is; a change to rotate_image's settings must change it, so that images
# rotated the old way are not kept by a rerun (rotate_shard's record).
ROTATION_CALL = "distort SRT ANGLE, background black, +repage, PNG zlib level 1, no date chunks"
REUSE_FOLDER = "reuse"


def magick_version() -> str:
    """The ImageMagick library Wand drives, in its own words."""
    import_wand()
    from wand.version import MAGICK_VERSION

    return str(MAGICK_VERSION)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rotate_shard(
    sources: Sequence[str | Path],
    angles: Sequence[float | str],
    targets: Sequence[str | Path],
    manifest: str | Path,
) -> None:
    """Rotate one shard's source images to ``targets`` and list their names in a manifest.

    The manifest (file names, one a line) is what extraction reads; it is written last, so it
    exists only when the whole shard is done. A record beside it (``reuse/<shard>.json``: each
    image's source and rotated SHA-256 and angle, the ImageMagick version and the call) lets the
    shard's next run keep the rotated images that would come out the same: one changed image
    rotates one image.
    """
    targets = [Path(t) for t in targets]
    manifest = Path(manifest)
    record_path = manifest.parent / REUSE_FOLDER / f"{manifest.stem}.json"
    version = magick_version()
    previous = _read_record(record_path, version)
    digests = [_sha256(Path(s)) for s in sources]
    todo = [
        i
        for i, target in enumerate(targets)
        if not _unchanged(previous.get(target.name), digests[i], float(angles[i]), target)
    ]
    rotate_images([sources[i] for i in todo], [targets[i] for i in todo], [angles[i] for i in todo])
    if len(todo) < len(targets):
        log.info("kept %d rotated image(s) of the previous run", len(targets) - len(todo))
    images = {
        t.name: [digest, float(angle), _sha256(t)]
        for t, digest, angle in zip(targets, digests, angles, strict=True)
    }
    record_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(record_path, {"imagemagick": version, "call": ROTATION_CALL, "images": images})
    write_text(manifest, "".join(f"{t.name}\n" for t in targets))


def _read_record(path: Path, version: str) -> dict[str, list]:
    """The previous run's images, if it rotated with this ImageMagick and call (else none)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(record, dict) or record.get("imagemagick") != version:
        return {}
    images = record.get("images") if record.get("call") == ROTATION_CALL else None
    return images if isinstance(images, dict) else {}


def _unchanged(entry: object, source_digest: str, angle: float, target: Path) -> bool:
    """Whether ``target`` is what rotating the source by ``angle`` would write again."""
    if not isinstance(entry, list) or len(entry) != 3 or not target.is_file():
        return False
    return entry[:2] == [source_digest, angle] and entry[2] == _sha256(target)


def read_manifest(manifest: str | Path, rotated_dir: str | Path) -> list[Path]:
    """The rotated images a shard manifest lists, as paths in ``rotated_dir``."""
    manifest = Path(manifest)
    names = [line.strip() for line in manifest.read_text().splitlines() if line.strip()]
    if not names:
        raise RotationError(f"{manifest}: empty shard manifest; delete it to rotate again.")
    return [Path(rotated_dir) / name for name in names]
