#!/usr/bin/env python3
"""Benchmark the memory settings of :func:`oath.network._tf_compat.load` against the defaults.

Not a test: run it by hand on an otherwise idle machine (about 4 minutes on 2 cores)::

    .venv/bin/python bench/bench_allocator.py

Each round runs two fresh processes on the same synthetic raw THEMIS files (stream0 format), in
alternating order: ``defaults`` (glibc's malloc settings and TensorFlow's plain CPU allocator:
``TF_CPU_ALLOCATOR_USE_BFC=false`` and no ``mallopt``) and ``tuned`` (what every job gets: the
caching allocator and :func:`oath.network._tf_compat.keep_freed_memory`). Each process streams the
frames through Inception-v4 as a classify job does
(:class:`oath.archive.stream.StreamingExtractor`),
then extracts the same frames from PNG files (:class:`oath.network.features.InceptionV4Extractor`),
each after a warm-up: wall s/image, kernel (sys) s/image and minor page faults per image.
Printed: the median per mode and path (a Markdown table), and tuned / defaults.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import harness


def worker(payload: str) -> None:
    """One process of one mode: both paths, each warmed up, then timed; one JSON line."""
    from oath.network import _tf_compat

    files, pngs, checkpoint, batch, mode = json.loads(payload)
    if mode == "defaults":
        os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "false"
        _tf_compat.keep_freed_memory = lambda: False
    from oath.archive.conversion import Conversion
    from oath.archive.stream import StreamingExtractor, iter_frames
    from oath.network.features import InceptionV4Extractor

    def per_image(timing: harness.Timing) -> dict[str, float]:
        return {
            "s_per_image": timing.wall / len(pngs),
            "sys_per_image": timing.system / len(pngs),
            "faults_per_image": timing.minor_faults / len(pngs),
        }

    out = {}
    with StreamingExtractor(checkpoint, batch_size=batch, threads=2) as ex:
        ex.run(iter_frames(files[:2], Conversion()))
        with harness.timed() as streamed:
            ex.run(iter_frames(files, Conversion()))
    out["streamed"] = per_image(streamed)
    with InceptionV4Extractor(checkpoint, batch_size=batch, threads=2) as ex:
        ex.extract(pngs[: 2 * batch])
        with harness.timed() as from_files:
            ex.extract(pngs)
    out["files"] = per_image(from_files)
    print(json.dumps(out))


def run(mode: str, files: list[Path], pngs: list[Path], checkpoint: Path, batch: int) -> dict:
    payload = json.dumps(
        [[str(p) for p in files], [str(p) for p in pngs], str(checkpoint), batch, mode]
    )
    env = harness.child_env()
    env.pop("TF_CPU_ALLOCATOR_USE_BFC", None)
    child = harness.run_child([__file__, "--worker", payload], env)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = harness.argument_parser(
        __doc__, files=(10, "raw files of 20 frames"), batch_size=16, rounds=2
    )
    args = parser.parse_args()
    import datetime as dt

    from oath.archive.themis import prepare_images
    from oath.demo.stream0 import write_synthetic_hour
    from oath.network.checkpoint import write_random_checkpoint

    work = Path(tempfile.mkdtemp(prefix="oath_bench_allocator_"))
    try:
        write_synthetic_hour(work / "raw", "gill", dt.datetime(2014, 3, 10, 6), n_files=args.files)
        files = sorted((work / "raw").rglob("*.pgm.gz"))
        manifest = prepare_images([work / "raw"], work / "png")
        pngs = [Path(p) for p in manifest.loc[manifest["status"] == "ok", "png"]]
        write_random_checkpoint(work / "ckpt" / "v4", seed=1804)
        harness.wait_for_idle(args)
        results: dict[str, list[dict]] = {"defaults": [], "tuned": []}
        for round_ in range(args.rounds):
            order = ("defaults", "tuned") if round_ % 2 == 0 else ("tuned", "defaults")
            for mode in order:
                results[mode].append(run(mode, files, pngs, work / "ckpt" / "v4", args.batch_size))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"CPU: {harness.cpu_description()}; {len(pngs)} frames, "
        f"batch {args.batch_size}, {args.rounds} rounds (median)"
    )
    rows, ratios = [], {}
    for path in ("streamed", "files"):
        median = {
            mode: {key: statistics.median(r[path][key] for r in runs) for key in runs[0][path]}
            for mode, runs in results.items()
        }
        for mode, v in median.items():
            rows.append(
                {
                    "path": path,
                    "mode": mode,
                    "s/image": v["s_per_image"],
                    "kernel s/image": v["sys_per_image"],
                    "minor faults/image": v["faults_per_image"],
                }
            )
        ratios[path] = median["tuned"]["s_per_image"] / median["defaults"]["s_per_image"]
    harness.print_table(
        rows,
        {
            "path": "",
            "mode": "",
            "s/image": ".4f",
            "kernel s/image": ".4f",
            "minor faults/image": ".0f",
        },
    )
    for path, ratio in ratios.items():
        print(f"{path:8s} tuned / defaults: {ratio:.3f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    else:
        main()
