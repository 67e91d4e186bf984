#!/usr/bin/env python3
"""Benchmark classifying a THEMIS archive: one streamed site-hour job, and planning a station-year.

Not a test: run it by hand on an otherwise idle machine::

    .venv/bin/python bench/bench_classify.py            # 60 files x 20 frames, 2,000 site-hours
    .venv/bin/python bench/bench_classify.py --files 2 --frames 2 --year-hours 20 \\
        --files-per-hour 5 --wait-idle 0                # a tiny check that it runs

In a temporary folder it writes one site-hour of synthetic raw files in the real stream0 format
(:mod:`oath.demo.stream0`), a random-weight Inception-v4 checkpoint and a ridge model said to be
trained on it, then measures, for each ``--precision`` (float32 and bfloat16 by default), each
in a fresh Python process after the idle wait (bench/harness.py):

- steady: the extraction rate of the same network and precision on the same frames as PNGs
  (:class:`oath.network.features.InceptionV4Extractor`, after one warm-up pass): frames/s;
- job: :func:`oath.archive.stream.classify_shard` on the whole hour, as rule ``classify_shard``
  runs it (interpreter start, imports, graph build, restore, reading, conversion, network,
  ridge and Parquet writing all included): frames/s over the process's wall time, and its peak
  memory (max RSS from ``wait4``); then where its time went, from the phases its log gives
  (``phase <name>: <s> s``: start-up before classify, model, TensorFlow's import, device,
  graph, restore, checkpoint check, first batch, the other frames, outputs; plus the exit,
  measured from here), beside the steady rate's time for the same frames.

Target: job >= 0.90 x steady (issue 38), peak < 3 GiB, at each precision. Each row says what
the network computed in; on a CPU without ``avx512_bf16`` / ``amx_bf16`` the bfloat16 row is
float32 in disguise, and the script says so. Then planning: a station-year of placeholder files
(``--year-hours`` site-hours x ``--files-per-hour`` empty files in the archive layout) and the
wall time of ``snakemake -n classify`` on it (target < 60 s), plus how many classify_shard jobs
that plans and how many ``sbatch`` calls profiles/slurm's job arrays make of them (jobs divided
by ``slurm-array-limit``, rounded up: computed, since a dry-run does not reach the executor).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import shutil
import tempfile
from pathlib import Path

import harness
import numpy as np
import yaml

TARGETS = {"job/steady": (">=", 0.90), "peak GiB": ("<", 3.0), "planning_s": ("<", 60.0)}
PRECISIONS = ("float32", "bfloat16")
CLASSIFY_RULES = ("--allowed-rules", "classify_shard", "classify_images", "classify")
FEATURES = 1001
"""Inception-v4's Logits, the features the random ridge model reads."""


# ------------------------------------------------------------------------------------------
# Workers (each runs in a child process and prints one JSON line)
# ------------------------------------------------------------------------------------------
def worker_inputs(args: argparse.Namespace) -> dict[str, object]:
    """The site-hour's raw files, the checkpoint and the model in ``--work`` (in a child, so
    that TensorFlow never counts in this process's peak memory, which ``wait4`` passes on)."""
    from oath.demo.classify_run import random_label_models
    from oath.demo.stream0 import write_synthetic_hour
    from oath.fit.model import Model, save_model
    from oath.network.checkpoint import checkpoint_sha256, write_random_checkpoint

    work = Path(args.work)
    hour = dt.datetime(2014, 3, 10, 6)
    write_synthetic_hour(
        work / "archive", "gill", hour, n_files=args.files, frames_per_file=args.frames
    )
    write_random_checkpoint(work / "ckpt" / "v4", seed=1804)
    models = random_label_models(np.random.RandomState(0), FEATURES)
    sha = checkpoint_sha256(work / "ckpt" / "v4")
    provenance = {"labels": list(models), "features": {"checkpoint_sha256": sha}}
    save_model(Model(models, provenance), work / "model.npz")
    return {"checkpoint_sha256": sha}


class PhaseLog(logging.Handler):
    """The phases a classify job logs (``phase`` and ``seconds`` on the record), and what its
    read-ahead thread did (``read_ahead``)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.phases: dict[str, float] = {}
        self.read_ahead: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "phase"):
            self.phases[record.phase] = record.seconds
        if hasattr(record, "read_ahead"):
            self.read_ahead = record.read_ahead


def worker_job(args: argparse.Namespace) -> dict[str, object]:
    from oath.archive.stream import classify_shard, shard_provenance
    from oath.logs import process_seconds

    phases = PhaseLog()
    logger = logging.getLogger("oath.archive.stream")
    logger.addHandler(phases)
    logger.setLevel(logging.INFO)
    work, out = Path(args.work), Path(args.out)
    table = classify_shard(
        sorted(str(p) for p in (work / "archive").rglob("*.pgm.gz")),
        work / "ckpt" / "v4",
        work / "model.npz",
        out / "shard.parquet",
        extras=out / "shard.extra",
        batch_size=args.batch_size,
        threads=args.threads,
        precision=args.precision[0],
    )
    returned = process_seconds()
    computed_in = (shard_provenance(out / "shard.parquet") or {}).get("precision", "?")
    return {
        "frames": int((table["status"] == "ok").sum()),
        "computed_in": computed_in,
        "phases": phases.phases,
        "read_ahead": phases.read_ahead,
        "returned_s": returned,
    }


def worker_steady(args: argparse.Namespace) -> dict[str, object]:
    from oath.archive.themis import prepare_images
    from oath.network.features import InceptionV4Extractor

    work = Path(args.work)
    manifest = prepare_images([str(work / "archive")], Path(args.out) / "png")
    paths = manifest.loc[manifest["status"] == "ok", "png"].tolist()
    with InceptionV4Extractor(
        str(work / "ckpt" / "v4"),
        batch_size=args.batch_size,
        threads=args.threads,
        precision=args.precision[0],
    ) as extractor:
        extractor.extract(paths[: 2 * args.batch_size])  # warm-up: graph optimisation
        with harness.timed() as block:
            extractor.extract(paths)
        computed_in = extractor.precision_in_use or "?"
    return {"frames": len(paths), "seconds": block.wall, "computed_in": computed_in}


WORKERS = {"inputs": worker_inputs, "job": worker_job, "steady": worker_steady}


def run_worker(
    kind: str, precision: str, args: argparse.Namespace, work: Path
) -> tuple[dict, harness.ChildRun]:
    """Run a worker in a fresh interpreter: what it printed, and the child measured."""
    out = work / f"{kind}_{precision}"
    out.mkdir()
    argv = [__file__, "--worker", kind, "--work", str(work), "--out", str(out)]
    argv += ["--files", str(args.files), "--frames", str(args.frames)]
    argv += ["--batch-size", str(args.batch_size), "--threads", str(args.threads)]
    child = harness.run_child([*argv, "--precision", precision])
    return json.loads(child.stdout.strip().splitlines()[-1]), child


def measure_shard(precision: str, args: argparse.Namespace, work: Path) -> dict[str, object]:
    """Steady rate, then the whole job, at one precision; each after the idle wait."""
    harness.wait_for_idle(args)
    steady, _ = run_worker("steady", precision, args, work)
    harness.wait_for_idle(args)
    job, child = run_worker("job", precision, args, work)
    steady_rate = steady["frames"] / steady["seconds"]
    job_rate = job["frames"] / child.wall
    phases = dict(job["phases"])
    if job["returned_s"] is not None:  # the worker's JSON line, then the interpreter's exit
        phases["after classify (JSON, exit)"] = child.wall - job["returned_s"]
    return {
        "precision": precision,
        "computed in": f"{job['computed_in']} / {steady['computed_in']}",
        "job frames/s": job_rate,
        "job wall s": child.wall,
        "steady frames/s": steady_rate,
        "job/steady": job_rate / steady_rate,
        "peak GiB": child.peak_gib,
        "others": child.others,
        "phases": phases,
        "read_ahead": job["read_ahead"],
        "steady s": job["frames"] / steady_rate,
    }


def print_phases(rows: list[dict[str, object]]) -> None:
    """Where each job's wall time went (the phases its log gives), beside the steady rate's
    time for the same frames, and what its read-ahead thread did."""
    names = list(dict.fromkeys(name for row in rows for name in row["phases"]))
    if not names:
        return
    print("\nthe job's phases (its log; s of wall time):")
    table = [
        {"phase": name, **{row["precision"]: row["phases"].get(name, math.nan) for row in rows}}
        for name in names
    ]
    table.append({"phase": "sum", **{r["precision"]: sum(r["phases"].values()) for r in rows}})
    table.append({"phase": "job wall", **{r["precision"]: r["job wall s"] for r in rows}})
    table.append({"phase": "steady, same frames", **{r["precision"]: r["steady s"] for r in rows}})
    harness.print_table(table, {"phase": "", **{r["precision"]: ".2f" for r in rows}})
    for row in rows:
        ahead = row["read_ahead"]
        if ahead:
            print(
                f"{row['precision']}: read-ahead thread {ahead['cpu_s']:.2f} s CPU for "
                f"{ahead['frames']} frames ({1e3 * ahead['cpu_s'] / max(ahead['frames'], 1):.2f}"
                f" ms a frame), all ready {ahead['ready_after_s']:.1f} s after the thread started; "
                f"the network waited {ahead['waited_s']:.2f} s for frames"
            )


# ------------------------------------------------------------------------------------------
# Planning a station-year
# ------------------------------------------------------------------------------------------
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


def plan_year(work: Path, args: argparse.Namespace) -> dict[str, object]:
    """``snakemake -n classify`` on a placeholder station-year, after the idle wait."""
    n_files = placeholder_year(work / "year", args.year_hours, args.files_per_hour)
    planning = work / "planning"
    (planning / "results" / "predictions").mkdir(parents=True)
    (planning / "results" / "predictions" / "model.npz").touch()
    (planning / "inception_v4.ckpt").touch()
    config = yaml.safe_load((harness.REPO / "tests" / "config.yaml").read_text())
    config.update(checkpoint=str(planning / "inception_v4.ckpt"), new_images=str(work / "year"))
    (planning / "config.yaml").write_text(yaml.safe_dump(config))
    argv = ["-m", "snakemake", "-s", str(harness.REPO / "Snakefile"), "-d", str(planning)]
    harness.wait_for_idle(args)
    child = harness.run_child([*argv, "-n", "--cores", "2", "classify", *CLASSIFY_RULES])
    jobs = (child.stdout + child.stderr).count("rule classify_shard:")
    profile = yaml.safe_load((harness.REPO / "profiles" / "slurm" / "config.yaml").read_text())
    limit = int(profile.get("slurm-array-limit", 1000))
    return {
        "files": n_files,
        "site_hours": args.year_hours,
        "planning_s": child.wall,
        "classify_shard_jobs": jobs,
        "array_sbatch_calls": math.ceil(jobs / limit),
    }


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------
def verdict(name: str, value: object) -> str:
    """``target >= 0.90: met`` for a figure with a target, else empty."""
    if name not in TARGETS or not isinstance(value, float):
        return ""
    sign, target = TARGETS[name]
    met = value >= target if sign == ">=" else value < target
    return f"target {sign} {target:g}: {'met' if met else 'NOT met'}"


def print_shard(rows: list[dict[str, object]], args: argparse.Namespace) -> None:
    frames = args.files * args.frames
    print(
        f"\none site-hour: {args.files} files x {args.frames} frames ({frames}), batch "
        f"{args.batch_size}, {args.threads} intra-op threads; computed in: job / steady"
    )
    columns = {"precision": "", "computed in": "", "job frames/s": ".3f", "job wall s": ".1f"}
    columns.update({"steady frames/s": ".3f", "job/steady": ".3f", "peak GiB": ".3f"})
    harness.print_table(rows, {**columns, "others": ".0%"})
    for row in rows:
        for name in ("job/steady", "peak GiB"):
            print(f"{row['precision']:9s} {name:11s} {row[name]:.3f}   {verdict(name, row[name])}")
    flags = harness.cpu_flags()
    if "bfloat16" in args.precision and not any(flag in flags for flag in harness.BF16_FLAGS):
        print(
            "note: this CPU has no avx512_bf16 / amx_bf16, so the bfloat16 row computed in "
            "float32: it is float32 in disguise, not a bfloat16 figure"
        )


def main() -> None:
    parser = harness.argument_parser(
        __doc__,
        wait_when="each",
        files=(60, "raw files in the site-hour"),
        frames=(20, "frames per raw file"),
        batch_size=16,
        threads=(2, "TensorFlow intra-op threads"),
        year_hours=(2000, "site-hours to plan"),
        files_per_hour=(50, "placeholder files an hour"),
    )
    parser.add_argument(
        "--precision",
        nargs="+",
        default=list(PRECISIONS),
        choices=PRECISIONS,
        help="the network's precisions, a job and a steady run each (default: both)",
    )
    parser.add_argument("--skip-planning", action="store_true", help="no station-year plan")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    print(f"CPU: {harness.cpu_description()}")
    work = Path(tempfile.mkdtemp(prefix="oath_bench_classify_"))
    try:
        run_worker("inputs", "float32", args, work)
        rows = [measure_shard(precision, args, work) for precision in args.precision]
        planning = {} if args.skip_planning else plan_year(work, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_shard(rows, args)
    print_phases(rows)
    if planning:
        print("\nplanning a station-year (snakemake -n classify):")
    for key, value in planning.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:22s} {shown}   {verdict(key, value)}".rstrip())


if __name__ == "__main__":
    main()
