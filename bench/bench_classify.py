#!/usr/bin/env python3
"""Benchmark classifying a THEMIS archive: one streamed site-hour job, and planning a station-year.

Not a test: run it by hand on an otherwise idle machine::

    .venv/bin/python bench/bench_classify.py            # 60 files x 20 frames, 2,000 site-hours
    .venv/bin/python bench/bench_classify.py --files 2 --frames 2 --year-hours 20 \\
        --files-per-hour 5                              # a tiny check that it runs

In a temporary folder it writes one site-hour of synthetic raw files in the real stream0 format
(:mod:`oath.demo.stream0`), a random-weight Inception-v4 checkpoint and a ridge model said to be
trained on it, then measures, each in a fresh Python process:

- job: :func:`oath.archive.stream.classify_shard` on the whole hour, as rule ``classify_shard``
    runs it
  (interpreter start, imports, graph build, restore, reading, conversion, network, ridge and
  Parquet writing all included): frames/s and peak memory (max RSS from ``wait4``);
- steady: the extraction rate of the same network and precision on the same frames as PNGs
  (:class:`oath.network.features.InceptionV4Extractor`, after one warm-up pass): frames/s.

Target: job >= 0.85 x steady, peak < 3 GiB. Then planning: a station-year of placeholder files
(``--year-hours`` site-hours x ``--files-per-hour`` empty files in the archive layout) and the
wall time of ``snakemake -n classify`` on it (target < 60 s), plus how many classify_shard jobs
that plans and how many ``sbatch`` calls profiles/slurm's job arrays make of them (jobs divided
by ``slurm-array-limit``, rounded up: computed, since a dry-run does not reach the executor).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"ratio": 0.85, "peak_gib": 3.0, "planning_s": 60.0}
CLASSIFY_RULES = ("--allowed-rules", "classify_shard", "classify_images", "classify")


# ------------------------------------------------------------------------------------------
# Workers (run in a child process; print one JSON line)
# ------------------------------------------------------------------------------------------
def worker_job(args: argparse.Namespace) -> dict[str, float]:
    from oath.archive.stream import classify_shard

    files = sorted(str(p) for p in Path(args.archive).rglob("*.pgm.gz"))
    table = classify_shard(
        files,
        args.checkpoint,
        args.model,
        Path(args.out) / "shard.parquet",
        extras=Path(args.out) / "shard.extra",
        batch_size=args.batch_size,
        threads=args.threads,
        precision=args.precision,
    )
    return {"frames": int((table["status"] == "ok").sum())}


def worker_steady(args: argparse.Namespace) -> dict[str, float]:
    from oath.archive.themis import prepare_images
    from oath.network.features import InceptionV4Extractor

    manifest = prepare_images([args.archive], Path(args.out) / "png")
    paths = manifest.loc[manifest["status"] == "ok", "png"].tolist()
    with InceptionV4Extractor(
        args.checkpoint, batch_size=args.batch_size, threads=args.threads, precision=args.precision
    ) as extractor:
        extractor.extract(paths[: 2 * args.batch_size])  # warm-up: graph optimisation
        started = time.perf_counter()
        extractor.extract(paths)
        seconds = time.perf_counter() - started
    return {"frames": len(paths), "seconds": seconds}


def run_child(kind: str, args: argparse.Namespace, work: Path) -> dict[str, float]:
    """Run a worker in a fresh interpreter; wall time and its peak RSS from wait4."""
    out = work / kind
    out.mkdir()
    argv = [sys.executable, __file__, "--worker", kind, "--out", str(out)]
    argv += ["--archive", str(work / "archive"), "--checkpoint", str(work / "ckpt" / "v4")]
    argv += ["--model", str(work / "model.npz"), "--batch-size", str(args.batch_size)]
    argv += ["--threads", str(args.threads), "--precision", args.precision]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2"}
    started = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    stdout = child.stdout.read() if child.stdout else b""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{kind} worker failed (status {status}); run it alone to see why")
    result = json.loads(stdout.decode().strip().splitlines()[-1])
    return {**result, "wall_s": wall, "peak_gib": usage.ru_maxrss / 2**20}


# ------------------------------------------------------------------------------------------
# Set-up
# ------------------------------------------------------------------------------------------
def make_inputs(work: Path, args: argparse.Namespace) -> None:
    from oath.dataset.table import LABEL_NAMES
    from oath.demo.stream0 import write_synthetic_hour
    from oath.fit.model import LabelModel, Model, save_model
    from oath.network.checkpoint import checkpoint_sha256, write_random_checkpoint

    write_synthetic_hour(
        work / "archive",
        "gill",
        dt.datetime(2014, 3, 10, 6),
        n_files=args.files,
        frames_per_file=args.frames,
    )
    write_random_checkpoint(work / "ckpt" / "v4", seed=1804)
    rng = np.random.RandomState(0)
    label_models = {}
    for name in ("class6", "class2"):
        k = len(LABEL_NAMES[name])
        coef = rng.normal(0, 0.05, (k if k > 2 else 1, 1001))
        label_models[name] = LabelModel(
            name, tuple(LABEL_NAMES[name]), np.arange(k), coef, np.zeros(coef.shape[0])
        )
    provenance = {
        "labels": list(label_models),
        "features": {"checkpoint_sha256": checkpoint_sha256(work / "ckpt" / "v4")},
    }
    save_model(Model(label_models, provenance), work / "model.npz")


def placeholder_year(root: Path, site_hours: int, files_per_hour: int) -> int:
    """Empty files in the archive layout: ``site_hours`` hours (10 UT hours a night)."""
    from oath.demo.stream0 import archive_path

    count = 0
    first = dt.datetime(2014, 1, 1)
    for index in range(site_hours):
        night, hour = divmod(index, 10)
        site = "gill" if night < 365 else f"s{night // 365:03d}"
        base = first + dt.timedelta(days=night % 365, hours=hour)
        folder = archive_path(root, base, site).parent
        folder.mkdir(parents=True, exist_ok=True)
        for minute in range(files_per_hour):
            (folder / archive_path(root, base.replace(minute=minute), site).name).touch()
            count += 1
    return count


def plan_year(work: Path, args: argparse.Namespace) -> dict[str, float]:
    n_files = placeholder_year(work / "year", args.year_hours, args.files_per_hour)
    planning = work / "planning"
    (planning / "results" / "predictions").mkdir(parents=True)
    (planning / "results" / "predictions" / "model.npz").touch()
    (planning / "inception_v4.ckpt").touch()
    config = yaml.safe_load((REPO / "tests" / "config.yaml").read_text())
    config.update(checkpoint=str(planning / "inception_v4.ckpt"), new_images=str(work / "year"))
    (planning / "config.yaml").write_text(yaml.safe_dump(config))
    argv = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(planning)]
    argv += ["-n", "--cores", "2", "classify", *CLASSIFY_RULES]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{done.stderr[-3000:]}")
    jobs = (done.stdout + done.stderr).count("rule classify_shard:")
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    limit = int(profile.get("slurm-array-limit", 1000))
    return {
        "files": n_files,
        "site_hours": args.year_hours,
        "planning_s": seconds,
        "classify_shard_jobs": jobs,
        "array_sbatch_calls": math.ceil(jobs / limit),
    }


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=60, help="raw files in the site-hour")
    parser.add_argument("--frames", type=int, default=20, help="frames per raw file")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="TensorFlow intra-op threads")
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--year-hours", type=int, default=2000, help="site-hours to plan")
    parser.add_argument("--files-per-hour", type=int, default=50, help="placeholder files/hour")
    parser.add_argument("--skip-planning", action="store_true")
    for hidden in ("--worker", "--out", "--archive", "--checkpoint", "--model"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = (worker_job if args.worker == "job" else worker_steady)(args)
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="oath_bench_classify_"))
    try:
        make_inputs(work, args)
        steady = run_child("steady", args, work)
        job = run_child("job", args, work)
        report = {
            "shard": f"{args.files} files x {args.frames} frames, {args.precision}",
            "job_frames_per_s": job["frames"] / job["wall_s"],
            "job_wall_s": job["wall_s"],
            "steady_frames_per_s": steady["frames"] / steady["seconds"],
            "peak_gib": job["peak_gib"],
        }
        report["ratio"] = report["job_frames_per_s"] / report["steady_frames_per_s"]
        if not args.skip_planning:
            report.update(plan_year(work, args))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for key, value in report.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        target = TARGETS.get(key)
        verdict = ""
        if target is not None:
            met = value >= target if key == "ratio" else value < target
            sign = ">=" if key == "ratio" else "<"
            verdict = f"   target {sign} {target}: {'met' if met else 'NOT met'}"
        print(f"{key:22s} {shown}{verdict}")


if __name__ == "__main__":
    main()
