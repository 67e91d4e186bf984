"""A shard extracted again after one image changed keeps the other batches' rows, and its rows
equal a fresh extraction's bit for bit (oath.network.reuse)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from oath.demo.dataset import draw_sky
from oath.imaging.png import encode_png
from oath.network import reuse
from oath.network.featurefile import read_features
from oath.network.features import extract_shard

BATCH = 2


def sky_pngs(folder: Path, n: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    paths = []
    for index in range(n):
        path = folder / f"{index + 1:05d}_30.png"
        path.write_bytes(encode_png(draw_sky(index % 6, rng, size=64)))
        paths.append(path)
    return paths


@pytest.mark.network
def test_a_changed_image_reruns_its_batch_only_with_the_rows_of_a_fresh_run(
    tmp_path, random_checkpoint, caplog
):
    images = sky_pngs(tmp_path / "rotated", 5, seed=7)  # batches [1, 2], [3, 4], [5]
    shard = tmp_path / "shards" / "000.h5"
    extract_shard(images, random_checkpoint, shard, weights="w", batch_size=BATCH)
    before = read_features(shard)

    images[2].write_bytes(encode_png(255 - draw_sky(1, np.random.RandomState(1), size=64)))
    shard.unlink()  # as Snakemake does before it runs the job again
    with caplog.at_level(logging.INFO, logger="oath"):
        extract_shard(images, random_checkpoint, shard, weights="w", batch_size=BATCH)
    assert "kept 3 of 5 images' rows from the previous extraction" in caplog.text
    again = read_features(shard)

    fresh = tmp_path / "fresh" / "000.h5"
    extract_shard(images, random_checkpoint, fresh, weights="w", batch_size=BATCH)
    fresh_rows = read_features(fresh)
    assert again.filenames == fresh_rows.filenames
    assert np.array_equal(again.logits, fresh_rows.logits)
    assert np.array_equal(again.prelogits, fresh_rows.prelogits)
    assert again.attrs == {**fresh_rows.attrs, "checkpoint": again.attrs["checkpoint"]}
    changed = again.filenames.index(images[2].name)
    assert not np.array_equal(again.logits[changed], before.logits[changed])
    unchanged = [i for i in range(5) if i != changed]
    assert np.array_equal(again.logits[unchanged], before.logits[unchanged])


def test_rows_are_kept_only_for_unchanged_batches_and_settings(tmp_path):
    names = [f"{i:05d}_0.png" for i in range(5)]
    digests = [f"{i:064x}" for i in range(5)]
    layers = {"Logits": np.zeros((5, 3), np.float32)}
    settings = reuse.settings_of({"checkpoint_sha256": "abc", "tensorflow_version": "2"}, 2, "f")
    out = tmp_path / "000.h5"
    reuse.save_rows(out, names, digests, layers, settings, "float32")
    previous = reuse.load_rows(out)

    assert reuse.plan_batches(previous, names, digests, settings, 2) == [0, 1, 2]
    edited = digests[:3] + ["f" * 64] + digests[4:]
    assert reuse.plan_batches(previous, names, edited, settings, 2) == [0, 2]
    # one image more: the old last batch was partial, the new one is not the same batch
    assert reuse.plan_batches(previous, [*names, "x.png"], [*digests, "0"], settings, 2) == [0, 1]
    # an image fewer: the batches before it stay, the shortened last one does not
    assert reuse.plan_batches(previous, names[:3], digests[:3], settings, 2) == [0]
    in_fours = reuse.settings_of({"checkpoint_sha256": "abc", "tensorflow_version": "2"}, 4, "f")
    assert reuse.plan_batches(previous, names, digests, in_fours, 4) == []
    newer = {**settings, "tensorflow_version": "3"}
    assert reuse.plan_batches(previous, names, digests, newer, 2) == []
    assert reuse.plan_batches(None, names, digests, settings, 2) == []

    reuse.reuse_path(out).write_bytes(b"not hdf5")  # a damaged copy is only not used
    assert reuse.load_rows(out) is None
