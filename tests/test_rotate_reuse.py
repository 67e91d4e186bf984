"""A shard rotated again keeps the rotated images that would come out the same
(oath.imaging.rotate.rotate_shard's record), and they equal a fresh rotation's bytes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from oath.demo.dataset import draw_sky
from oath.imaging.png import encode_png
from oath.imaging.rotate import rotate_shard


def shard(folder: Path, n: int = 4) -> tuple[list[Path], list[float], list[Path], Path]:
    rng = np.random.RandomState(5)
    (folder / "src").mkdir(parents=True)
    sources = [folder / "src" / f"{i:05d}.png" for i in range(n)]
    for path in sources:
        path.write_bytes(encode_png(draw_sky(2, rng, size=48)))
    angles = [10.0 + 7 * i for i in range(n)]
    targets = [folder / "rotated" / f"{i:05d}_{a:g}.png" for i, a in enumerate(angles)]
    (folder / "rotated").mkdir()
    return sources, angles, targets, folder / "shards" / "000.txt"


def test_a_changed_image_is_the_only_one_rotated_again(tmp_path, caplog):
    sources, angles, targets, manifest = shard(tmp_path / "run")
    rotate_shard(sources, angles, targets, manifest)
    sources[1].write_bytes(encode_png(255 - draw_sky(0, np.random.RandomState(1), size=48)))
    targets[3].write_bytes(targets[3].read_bytes()[:-40])  # a damaged rotated image
    manifest.unlink()  # as Snakemake does before it runs the job again

    with caplog.at_level(logging.INFO, logger="oath"):
        rotate_shard(sources, angles, targets, manifest)
    assert "rotated 2 image(s)" in caplog.text  # the changed one and the damaged one
    assert "kept 2 rotated image(s) of the previous run" in caplog.text
    assert manifest.read_text().split() == [t.name for t in targets]

    fresh_sources, _, fresh_targets, fresh_manifest = shard(tmp_path / "fresh")
    fresh_sources[1].write_bytes(sources[1].read_bytes())
    rotate_shard(fresh_sources, angles, fresh_targets, fresh_manifest)
    assert [t.read_bytes() for t in targets] == [t.read_bytes() for t in fresh_targets]


def test_another_imagemagick_or_angle_rotates_again(tmp_path, caplog):
    sources, angles, targets, manifest = shard(tmp_path)
    rotate_shard(sources, angles, targets, manifest)
    record_path = manifest.parent / "reuse" / "000.json"
    record = json.loads(record_path.read_text())
    record["imagemagick"] = "ImageMagick 0.0.0"
    record_path.write_text(json.dumps(record))
    with caplog.at_level(logging.INFO, logger="oath"):
        rotate_shard(sources, angles, targets, manifest)
    assert "rotated 4 image(s)" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="oath"):
        rotate_shard(sources, [angles[0] + 1, *angles[1:]], targets, manifest)
    assert "rotated 1 image(s)" in caplog.text
