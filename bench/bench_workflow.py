#!/usr/bin/env python3
"""Benchmark the whole replication run against the floors of its stages.

Not a test: run it by hand on an otherwise idle machine (about 40 minutes on a 2-core AVX2
EPYC at the OATH size)::

    .venv/bin/python bench/bench_workflow.py                 # 5,824 images, --cores 2
    .venv/bin/python bench/bench_workflow.py --images 300    # the default demo, a quick check

In a scratch folder it runs the README's workflow (``snakemake --cores N``) on an OATH-size demo
with the random-weight checkpoint, all in this one command:

1. acquisition (not part of any figure): the demo images and the checkpoint are drawn, as a
   real run downloads them once (``--until make_demo_dataset make_demo_checkpoint``);
2. the stage floors, each stage alone on all cores of the same machine:
   - the network: Inception-v4 alone on a sample of the demo images, rotated by 30 degrees
     beforehand (the network's cost does not depend on the angle), in fresh processes after a
     warm-up (steady s/image x the image count), at the run's precision and batch size, two
     ways: one process with a thread per core, and one 1-thread process per core timed
     together (as the run's extract_shard jobs run); measured before and after the run, the
     fastest of all counts (smallest floor, strictest ratio);
   - the rotation: the workflow's rotation jobs alone (``snakemake --cores N rotate``, its
     wall time, planning included), whose output is then removed so the run starts bare;
   - the rest: the merge, fits, alpha sweeps, protocol comparison and report forced again after
     the run (``--forcerun merge_features``), from the first job's start to the last one's end;
3. the run: every job from rotation to the report, wall-timed; per stage, the jobs' own
   timings (Snakemake ``benchmark:`` files) give how many jobs ran, their summed seconds and
   the stage's window (first start to last end);
4. one changed image: one PNG redrawn, then the same command again; its wall time as a
   fraction of the run's.

Targets (issue "the OATH run against the floor of all its stages"): whole run / stage floors
<= 1.20; changed image / whole run <= 0.10. The whole run / network floor is printed too.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import harness
import yaml

TARGETS = {"ratio_to_stage_floors": 1.20, "changed_fraction": 0.10}
# The run's rules by stage, in workflow order; a rule not listed is counted under "other".
STAGES = {
    "rotation": ("rotate_shard",),
    "extraction": ("extract_shard",),
    "merge": ("merge_features",),
    "split": ("make_split_file",),
    "ridge fits + sweeps": ("fit_ridge", "sweep_alpha"),
    "protocol comparison": ("compare_protocols",),
    "report": ("render_report",),
}
ACQUISITION = ("make_demo_dataset", "make_demo_checkpoint")
# What runs after the features are merged: forced again alone for the last stage floor.
REST = ("merge_features", *STAGES["ridge fits + sweeps"], "compare_protocols", "render_report")


def snakemake(work: Path, cores: int, *extra: str) -> float:
    """Run the workflow in ``work``; its wall time (the terminal output goes to a log)."""
    argv = ["-m", "snakemake", "-s", str(harness.REPO / "Snakefile"), "-d", str(work)]
    argv += ["--configfile", str(work / "config.yaml"), "--cores", str(cores), *extra]
    # The run's own network graph cache, empty at the first run as on a fresh machine.
    env = harness.child_env(OATH_CACHE_DIR=str(work / "graph_cache"))
    return harness.run_child(argv, env, cwd=work, log=work / "snakemake_terminal.txt").wall


def job_timings(work: Path, since: float) -> dict[str, list[tuple[float, float]]]:
    """(start, end) epoch seconds of each job that finished after ``since``, by rule, from the
    benchmark files (written when the job ends; their ``s`` column is its wall time)."""
    jobs: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for tsv in (work / "benchmarks").rglob("*.tsv"):
        end = tsv.stat().st_mtime
        if end < since:
            continue
        rule = tsv.relative_to(work / "benchmarks").parts[0]
        seconds = float(tsv.read_text().splitlines()[1].split("\t")[0])
        jobs[rule].append((end - seconds, end))
    return jobs


def stage_table(jobs: dict[str, list[tuple[float, float]]]) -> list[dict[str, object]]:
    rows = []
    listed = {rule for rules in STAGES.values() for rule in rules}
    stages = {**STAGES, "other": tuple(sorted(set(jobs) - listed))}
    for stage, rules in stages.items():
        spans = [span for rule in rules for span in jobs.get(rule, [])]
        if not spans:
            continue
        rows.append(
            {
                "stage": stage,
                "jobs": len(spans),
                "job s": sum(end - start for start, end in spans),
                "window s": max(end for _, end in spans) - min(start for start, _ in spans),
            }
        )
    return rows


FLOOR_CODE = """
import json, sys, time
from pathlib import Path
from oath.network.features import InceptionV4Extractor
paths, ckpt, batch, threads, precision, barrier, n = json.loads(sys.argv[1])
with InceptionV4Extractor(ckpt, batch_size=batch, threads=threads, precision=precision) as ex:
    ex.extract(paths[: 2 * batch])
    Path(barrier, str(len(list(Path(barrier).iterdir())))).touch()
    ready_by = time.monotonic() + 600  # a process that died before the barrier ends the wait
    while len(list(Path(barrier).iterdir())) < n:  # all processes time the same stretch
        if time.monotonic() > ready_by:
            sys.exit(f"the other floor processes never got ready ({barrier})")
        time.sleep(0.01)
    t = time.perf_counter(); ex.extract(paths)
    print(json.dumps((time.perf_counter() - t) / len(paths)))
"""


def measure_floor(work: Path, config: dict, threads: int, sample: int, processes: int) -> float:
    """Steady s/image of the network alone: ``processes`` fresh processes of ``threads``
    threads each, warmed up, then timed together on ``sample`` rotated images each; the
    machine's combined s/image (one process of 2 threads, or two of 1 thread, on 2 cores)."""
    images = sorted((work / "floor_images").glob("*.png"))[:sample]
    checkpoint = next((work / "resources" / "checkpoints").rglob("*.index")).with_suffix("")
    barrier = Path(tempfile.mkdtemp(prefix="barrier_", dir=work))
    payload = json.dumps(
        [
            [str(p) for p in images],
            str(checkpoint),
            config["batch_size"],
            threads,
            config["precision"],
            str(barrier),
            processes,
        ]
    )
    # Its own graph cache: leaves the run's empty.
    env = harness.child_env(OATH_CACHE_DIR=str(work / "floor_graph_cache"))
    children = harness.run_children([["-c", FLOOR_CODE, payload]] * processes, env)
    per_process = [float(child.stdout.strip().splitlines()[-1]) for child in children]
    shutil.rmtree(barrier)
    return 1.0 / sum(1.0 / t for t in per_process)


def floor_images(work: Path, count: int) -> None:
    """The first ``count`` demo images rotated by 30 degrees, for the floor (before the run)."""
    from oath.imaging.rotate import rotate_image

    source = sorted((work / "resources" / "demo").rglob("images/cropped_scaled/*.png"))
    target = work / "floor_images"
    target.mkdir(exist_ok=True)
    for path in source[:count]:
        rotate_image(path, target / path.name, 30.0)


def rotation_floor(work: Path, cores: int) -> float:
    """Wall seconds of the workflow's rotation jobs alone; their output is removed after, so
    the run rotates every image again as a fresh run does."""
    wall = snakemake(work, cores, "rotate")
    for folder in ("results/rotated", "logs/rotate_shard", "benchmarks/rotate_shard"):
        shutil.rmtree(work / folder, ignore_errors=True)
    return wall


def rest_floor(work: Path, cores: int) -> float:
    """Seconds from the first start to the last end of the jobs after the features (merge,
    fits, sweeps, comparison, report), forced again alone after the run."""
    started = time.time()
    snakemake(work, cores, "--forcerun", "merge_features")
    spans = [
        span for rule, jobs in job_timings(work, started).items() if rule in REST for span in jobs
    ]
    if not spans:
        raise RuntimeError(f"{work}: forcing merge_features reran none of {REST}")
    return max(end for _, end in spans) - min(start for start, _ in spans)


def change_one_image(work: Path) -> Path:
    """Redraw one demo image (inverted pixels): its shard is stale, nothing else is."""

    from oath.archive.themis import read_gray8
    from oath.imaging.png import encode_png

    images = sorted((work / "resources" / "demo").rglob("images/cropped_scaled/*.png"))
    path = images[len(images) // 2]
    path.write_bytes(encode_png(255 - read_gray8(path)))
    return path


def main() -> None:
    parser = harness.argument_parser(__doc__, images=(5824, "demo images (OATH: 5,824)"), cores=2)
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--floor-sample", type=int, default=192, help="images for the floor")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--shard-size", type=int, help="images per shard (default: config.yaml's shard_size)"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oath_bench_workflow_"))
    config = yaml.safe_load((harness.REPO / "config.yaml").read_text())
    config["demo"]["n_images"] = args.images
    config["precision"] = args.precision
    if args.shard_size:
        config["shard_size"] = args.shard_size
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    report: dict[str, object] = {
        "images": args.images,
        "cores": args.cores,
        "shard_size": config["shard_size"],
    }
    print(f"CPU: {harness.cpu_description()}")
    harness.wait_for_idle(args)
    try:
        report["acquisition_s"] = snakemake(work, args.cores, "--until", *ACQUISITION)
        floor_images(work, args.floor_sample)
        # The network on all cores: one process with a thread per core, and a process per
        # core with one thread (as the run's extract_shard jobs); the faster counts.
        layouts = {
            f"1 process x {args.cores} threads": (args.cores, 1),
            f"{args.cores} processes x 1 thread": (1, args.cores),
        }
        floors: dict[str, list[float]] = {name: [] for name in layouts}

        def floors_now() -> None:
            for name, (threads, processes) in layouts.items():
                floors[name].append(
                    measure_floor(work, config, threads, args.floor_sample, processes)
                )

        floors_now()
        report["rotation_floor_s"] = rotation_floor(work, args.cores)
        started = time.time()
        report["run_s"] = snakemake(work, args.cores)
        stages = stage_table(job_timings(work, started))
        floors_now()
        for name, values in floors.items():
            report[f"network s/image, {name} (before, after)"] = [round(f, 4) for f in values]
        report["network_s_per_image"] = min(min(values) for values in floors.values())
        report["network_floor_s"] = args.images * report["network_s_per_image"]
        report["rest_floor_s"] = rest_floor(work, args.cores)
        report["stage_floors_s"] = sum(
            report[key] for key in ("network_floor_s", "rotation_floor_s", "rest_floor_s")
        )
        report["ratio_to_network_floor"] = report["run_s"] / report["network_floor_s"]
        report["ratio_to_stage_floors"] = report["run_s"] / report["stage_floors_s"]
        changed = change_one_image(work)
        report["changed_image"] = changed.name
        started = time.time()
        report["rerun_s"] = snakemake(work, args.cores)
        rerun_stages = stage_table(job_timings(work, started))
        report["changed_fraction"] = report["rerun_s"] / report["run_s"]
    finally:
        if args.keep:
            print(f"scratch folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    for title, rows in (("the run", stages), ("after one changed image", rerun_stages)):
        print(f"{title}:")
        harness.print_table(rows, {"stage": "", "jobs": "d", "job s": ".1f", "window s": ".1f"})
    for key, value in report.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            met = round(value, 2) <= target  # as the docs show it: two decimals
            verdict = f"   target <= {target:.2f}: {'met' if met else 'NOT met'}"
        print(f"{key:32s} {shown}{verdict}")


if __name__ == "__main__":
    main()
