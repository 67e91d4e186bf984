"""Rotation through the workflow reruns only what a change touches (no TensorFlow needed)."""

from __future__ import annotations

import numpy as np

from oath.imaging.png import encode_png

from .workflow import plan, planned_jobs, set_angle, snakemake, write_config


def test_changing_one_image_or_angle_plans_only_its_shard(tmp_path, dataset):
    workdir = tmp_path / "run"
    workdir.mkdir()
    write_config(workdir, dataset=str(dataset), shard_size=8)
    snakemake(workdir, "rotate")
    rotated = sorted(p.name for p in (workdir / "results" / "rotated").glob("*.png"))
    assert len(rotated) == 24 and rotated[0].startswith("00001_")
    assert planned_jobs(workdir, "rotate") == {}

    set_angle(dataset, 10, "123")
    stale = plan(workdir, "rotate")
    assert stale.jobs == {"rotate_shard": 1, "rotate": 1}
    assert stale.wildcards("rotate_shard") == ["shard=00008-00015"]

    snakemake(workdir, "rotate")
    assert (workdir / "results" / "rotated" / "00010_123.png").is_file()
    new_pixels = np.full((64, 64), 90, np.uint8)
    (dataset / "images" / "cropped_scaled" / "00020.png").write_bytes(encode_png(new_pixels))
    stale = plan(workdir, "rotate")
    assert stale.jobs == {"rotate_shard": 1, "rotate": 1}
    assert stale.wildcards("rotate_shard") == ["shard=00016-00023"]


def test_a_deleted_rotated_image_says_which_shard_to_redo(tmp_path, dataset):
    workdir = tmp_path / "run"
    workdir.mkdir()
    write_config(workdir, dataset=str(dataset), shard_size=8)
    snakemake(workdir, "rotate")
    lost = next((workdir / "results" / "rotated").glob("00010_*.png"))
    lost.unlink()
    done = snakemake(workdir, "rotate", check=False)
    assert done.returncode != 0
    manifest = workdir / "results" / "rotated" / "shards" / "00008-00015.txt"
    assert f"{manifest.relative_to(workdir)}: lists {lost.relative_to(workdir)}" in done.stderr
    manifest.unlink()  # what the message says to do
    assert planned_jobs(workdir, "rotate") == {"rotate_shard": 1, "rotate": 1}
    snakemake(workdir, "rotate")
    assert lost.is_file() and planned_jobs(workdir, "rotate") == {}
