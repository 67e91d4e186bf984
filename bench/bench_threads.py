#!/usr/bin/env python3
"""How many threads an extraction job really computes on, and what that does to throughput.

Not a test: run it by hand on an otherwise idle machine::

    .venv/bin/python bench/bench_threads.py [--images 64]

Each variant is whole shard jobs (``oath.network.features.extract_shard``, as rule extract_shard
calls
it) in their own Python processes, on demo-like 256 x 256 PNGs and the demo checkpoint, the
graph cache warm:

- ``... (as today)``: as the workflow runs it. TensorFlow's CPU thread pool is made once per
  process, sized by its first context (one thread a core), not by the session's
  ``intra_op_parallelism_threads`` that ``threads`` sets: a job given 1 thread computes on
  one thread a core;
- ``... (threads honoured)``: the pool sized ``threads`` first
  (``tf.config.threading.set_intra_op_parallelism_threads``), so the job computes on that many;
- ``alone``: one shard, nothing beside it (one changed image's rerun); ``pair``: two shards side
  by side, as ``--cores 2`` runs rule extract_shard (``threads: 1``).

It prints, as a Markdown table, wall seconds per image of the machine (all jobs of the variant,
start-up included), CPU seconds per image, and per job the threads that did more than a tenth
of its CPU time (the main thread decodes; the others compute).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import harness


def worker(images: list[str], checkpoint: str, out: str, threads: int, honoured: bool) -> None:
    """One shard job; prints one JSON line."""
    from oath.network import _tf_compat
    from oath.network.features import extract_shard

    tf, _ = _tf_compat.load()
    if honoured:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    with harness.timed() as job:
        extract_shard(images, checkpoint, out, weights="bench", threads=threads, batch_size=16)
    busy = []
    for task in os.listdir("/proc/self/task"):
        fields = Path(f"/proc/self/task/{task}/stat").read_text().rsplit(")", 1)[1].split()
        busy.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    print(json.dumps({"cpu": job.cpu, "busy_threads": sum(b > 0.1 * sum(busy) for b in busy)}))


def run_jobs(jobs: list[list[str]]) -> list[dict]:
    """Run the jobs side by side; each one's JSON line."""
    children = harness.run_children(jobs, cwd=harness.REPO)
    return [json.loads(child.stdout.strip().splitlines()[-1]) for child in children]


def main() -> None:
    parser = harness.argument_parser(__doc__, images=(64, "images per shard"))
    args = parser.parse_args()
    import numpy as np

    from oath.demo.dataset import draw_sky
    from oath.imaging.png import encode_png
    from oath.network.checkpoint import write_random_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["OATH_CACHE_DIR"] = str(folder / "cache")
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        checkpoint = folder / "ckpt" / "inception_v4"
        write_random_checkpoint(checkpoint)
        rng = np.random.RandomState(0)
        images = []
        for index in range(args.images):
            path = folder / f"{index + 1:05d}_0.png"
            path.write_bytes(encode_png(draw_sky(index % 6, rng, size=256)))
            images.append(str(path))

        def job(name: str, threads: int, honoured: bool) -> list[str]:
            return [
                __file__,
                "--worker",
                json.dumps([images, str(checkpoint), str(folder / name), threads, honoured]),
            ]

        run_jobs([job("warm.h5", 1, False)])  # fills the graph cache
        variants = {
            "alone, 1 thread (as today)": [job("a.h5", 1, False)],
            "alone, 1 thread (threads honoured)": [job("a.h5", 1, True)],
            "alone, 2 threads (threads honoured)": [job("a.h5", 2, True)],
            "pair, 1 thread each (as today)": [job("a.h5", 1, False), job("b.h5", 1, False)],
            "pair, 1 thread each (honoured)": [job("a.h5", 1, True), job("b.h5", 1, True)],
        }
        print(f"{harness.cpu_description()}, {args.images} images a shard")
        harness.wait_for_idle(args)
        rows = []
        for name, jobs in variants.items():
            with harness.timed() as together:
                results = run_jobs(jobs)
            images = args.images * len(jobs)
            rows.append(
                {
                    "variant": name,
                    "s/image (machine)": together.wall / images,
                    "CPU s/image": sum(r["cpu"] for r in results) / images,
                    "busy threads": "/".join(str(r["busy_threads"]) for r in results),
                }
            )
            print(f"  done: {name}", flush=True)
        harness.print_table(
            rows,
            {"variant": "", "s/image (machine)": ".3f", "CPU s/image": ".3f", "busy threads": ""},
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(*json.loads(sys.argv[2]))
    else:
        main()
