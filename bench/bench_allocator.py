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
Printed: the median per mode and path, and tuned / defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

WORKER = """
import json, os, resource, sys, time
from pathlib import Path
from oath.network import _tf_compat
files, pngs, checkpoint, batch, mode = json.loads(sys.argv[1])
if mode == "defaults":
    os.environ["TF_CPU_ALLOCATOR_USE_BFC"] = "false"
    _tf_compat.keep_freed_memory = lambda: False
from oath.network.features import InceptionV4Extractor
from oath.archive.stream import StreamingExtractor, iter_frames
from oath.archive.conversion import Conversion

def timed(run, n):
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"s_per_image": wall / n, "sys_per_image": (after.ru_stime - before.ru_stime) / n,
            "faults_per_image": (after.ru_minflt - before.ru_minflt) / n}

out = {}
with StreamingExtractor(checkpoint, batch_size=batch, threads=2) as ex:
    ex.run(iter_frames(files[:2], Conversion()))
    out["streamed"] = timed(lambda: ex.run(iter_frames(files, Conversion())), len(pngs))
with InceptionV4Extractor(checkpoint, batch_size=batch, threads=2) as ex:
    ex.extract(pngs[: 2 * batch])
    out["files"] = timed(lambda: ex.extract(pngs), len(pngs))
print(json.dumps(out))
"""


def run(mode: str, files: list[Path], pngs: list[Path], checkpoint: Path, batch: int) -> dict:
    payload = json.dumps(
        [[str(p) for p in files], [str(p) for p in pngs], str(checkpoint), batch, mode]
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CPU_ALLOCATOR_USE_BFC", None)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, payload], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} worker failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10, help="raw files of 20 frames")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    import datetime as dt

    from oath.archive.themis import prepare_images
    from oath.demo.stream0 import write_synthetic_hour
    from oath.network.checkpoint import write_random_checkpoint
    from oath.network.device import cpu_model

    work = Path(tempfile.mkdtemp(prefix="oath_bench_allocator_"))
    try:
        write_synthetic_hour(work / "raw", "gill", dt.datetime(2014, 3, 10, 6), n_files=args.files)
        files = sorted((work / "raw").rglob("*.pgm.gz"))
        manifest = prepare_images([work / "raw"], work / "png")
        pngs = [Path(p) for p in manifest.loc[manifest["status"] == "ok", "png"]]
        write_random_checkpoint(work / "ckpt" / "v4", seed=1804)
        results: dict[str, list[dict]] = {"defaults": [], "tuned": []}
        for round_ in range(args.rounds):
            order = ("defaults", "tuned") if round_ % 2 == 0 else ("tuned", "defaults")
            for mode in order:
                results[mode].append(run(mode, files, pngs, work / "ckpt" / "v4", args.batch_size))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"CPU: {cpu_model()}, {os.cpu_count()} logical CPUs; {len(pngs)} frames, "
        f"batch {args.batch_size}, {args.rounds} rounds (median)"
    )
    for path in ("streamed", "files"):
        median = {
            mode: {key: statistics.median(r[path][key] for r in runs) for key in runs[0][path]}
            for mode, runs in results.items()
        }
        for mode, v in median.items():
            print(
                f"{path:8s} {mode:9s} {v['s_per_image']:.4f} s/image, {v['sys_per_image']:.4f} s "
                f"kernel/image, {v['faults_per_image']:.0f} minor faults/image"
            )
        ratio = median["tuned"]["s_per_image"] / median["defaults"]["s_per_image"]
        print(f"{path:8s} tuned / defaults: {ratio:.3f}")


if __name__ == "__main__":
    main()
