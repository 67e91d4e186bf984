#!/usr/bin/env python3
"""Rotation stage at OATH scale: 5,824 demo images through the workflow on this machine.

Prints the wall time of `snakemake --cores N rotate` (every image rotated, one job per shard),
the time of a no-op re-run and of `snakemake -n` after one image changes, and, as baseline in the
same run, the original tool's way (one `convert` process per image, as rotate.sh) on a sample,
scaled to the full set. Run it on an otherwise idle machine:

    .venv/bin/python bench/bench_rotation.py [--images 5824] [--cores 2] [--keep DIR]
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import harness
import yaml

SNAKEMAKE = ["-m", "snakemake", "-s", str(harness.REPO / "Snakefile")]


def run(args: list[str], workdir: Path) -> tuple[float, str]:
    """Wall seconds and terminal output of one Snakemake command in ``workdir``."""
    done = harness.run_child(SNAKEMAKE + args, cwd=workdir)
    return done.wall, done.stdout + done.stderr


def main() -> None:
    parser = harness.argument_parser(
        __doc__, images=5824, cores=2, shard_size=256, baseline_sample=300
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="oath-bench-rotation-"))
    workdir.mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((harness.REPO / "config.yaml").read_text())
    config["demo"]["n_images"] = args.images
    config["shard_size"] = args.shard_size
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    common: list[str] = []

    print(f"CPU: {harness.cpu_description()}")
    harness.wait_for_idle(args)
    t_demo, _ = run(["--cores", str(args.cores), "make_demo_dataset", *common], workdir)
    print(f"demo data set of {args.images} images drawn in {t_demo:.1f} s (not part of the stage)")

    t_rotate, log = run(["--cores", str(args.cores), "rotate", *common], workdir)
    rotated = sorted((workdir / "results" / "rotated").glob("*.png"))
    assert len(rotated) == args.images, f"expected {args.images} rotated images, got {len(rotated)}"
    jobs = sum(1 for line in log.splitlines() if re.match(r"\s*(local)?rule rotate_shard:", line))
    print(
        f"rotation stage, {args.images} images, --cores {args.cores}: {t_rotate:.1f} s wall "
        f"({jobs} jobs, {1000 * t_rotate / args.images:.1f} ms an image)"
    )

    t_noop, _ = run(["--cores", str(args.cores), "rotate", *common], workdir)
    print(f"re-run with nothing to do: {t_noop:.1f} s")

    # Change one image's angle (the demo's images are workflow outputs, which Snakemake does
    # not re-check by time; a changed angle names a new rotated file, so it is always seen).
    demo = next((workdir / "resources" / "demo").iterdir())
    csv = demo / "classifications" / "classifications.csv"
    lines = csv.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split(",")
        if fields[2:3] == ["17"]:
            fields[-1] = str((int(fields[-1]) + 1) % 360)
            lines[i] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    t_dry, dry = run(["-n", "--cores", str(args.cores), "rotate", *common], workdir)
    stale = sorted(set(re.findall(r"rule rotate_shard:(?:\n.*?)*?wildcards: (shard=\S+)", dry)))
    print(f"after changing one image's angle, snakemake -n: {t_dry:.1f} s, stale jobs: {stale}")

    # Baseline: the original rotate.sh, one convert process per image, on a sample.
    sample = random.Random(1).sample(
        range(1, args.images + 1), min(args.baseline_sample, args.images)
    )
    images = demo / "images" / "cropped_scaled"
    out = Path(tempfile.mkdtemp(prefix="oath-bench-convert-"))
    with harness.timed() as converts:
        for pic_num in sample:
            subprocess.run(
                [
                    "convert",
                    str(images / f"{pic_num:05d}.png"),
                    "-background",
                    "black",
                    "-distort",
                    "SRT",
                    "33",
                    "+repage",
                    str(out / f"{pic_num:05d}_33.png"),
                ],
                check=True,
            )
    t_baseline = converts.wall / len(sample) * args.images
    shutil.rmtree(out)
    print(
        f"baseline (rotate.sh: one convert per image, sequential), {len(sample)}-image sample "
        f"scaled to {args.images}: {t_baseline:.1f} s"
    )
    print(
        f"speed-up of the workflow's rotation stage over the baseline: {t_baseline / t_rotate:.2f}x"
    )
    if not args.keep:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
