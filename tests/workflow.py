"""Run the Snakemake workflow in a scratch folder, the way a user would, and read its plans."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from oath.network.checkpoint import FIXTURE_CHECKPOINT_SEED

REPO = Path(__file__).resolve().parents[1]


def e2e_config() -> dict:
    """tests/config.yaml, the end-to-end runs' configuration."""
    return yaml.safe_load((REPO / "tests" / "config.yaml").read_text())


# For runs that test something besides the protocol comparison: the published ridge alone
# (the session's demo run compares with the default classifiers, as a user's demo does; the
# logistic probe is ~10 CPU-s of every run on these tiny data).
RIDGE_ONLY = {"compare": {"classifiers": ["ridge_published"]}}

# ridge fits of one feature file: one job per label set and split
N_FITS = len(e2e_config()["labels"]) * e2e_config()["ridge"]["n_splits"]


def write_config(workdir: Path, **overrides) -> None:
    config = e2e_config()
    config.update(overrides)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def place_demo_checkpoint(workdir: Path, checkpoint: Path) -> None:
    """Put the session's random checkpoint (conftest ``random_checkpoint``, the demo's seed)
    where the workflow's make_demo_checkpoint would write it, as a finished earlier run left
    it: a run that tests something else need not draw 163 MB of weights again (the demo run
    does). Hard links where the file system allows; the workflow never writes them in place."""
    seed = e2e_config()["demo_checkpoint_seed"]
    # random_checkpoint is written with the default seed: under another seed's name the run
    # would go on with weights its config does not ask for.
    assert seed == FIXTURE_CHECKPOINT_SEED, "tests/config.yaml demo_checkpoint_seed changed"
    target = workdir / "resources" / "checkpoints" / f"demo_seed{seed}" / "inception_v4.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".index", ".data-00000-of-00001"):
        source, link = Path(f"{checkpoint}{suffix}"), Path(f"{target}{suffix}")
        try:
            os.link(source, link)
        except OSError:
            shutil.copy2(source, link)


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(workdir),
            *([] if "--cores" in args else ["--cores", "2"]),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
        )
    return done


@dataclass
class Plan:
    """What one `snakemake -n` would run (one Snakemake start, read both ways)."""

    text: str

    @property
    def jobs(self) -> dict[str, int]:
        """Rule -> job count; {} when nothing is to be done."""
        if "Nothing to be done" in self.text:
            return {}
        table = self.text.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
        jobs = {}
        for line in table.splitlines():
            match = re.fullmatch(r"\s*(\w+)\s+(\d+)\s*", line)
            if match and match.group(1) != "total":
                jobs[match.group(1)] = int(match.group(2))
        return jobs

    def wildcards(self, rule: str) -> list[str]:
        """The wildcards (as `snakemake -n` prints them) of each job of one rule."""
        blocks = re.split(r"^\s*(?:local)?rule ", self.text, flags=re.MULTILINE)
        return sorted(
            match.group(1)
            for block in blocks
            if block.startswith(f"{rule}:")
            for match in [re.search(r"^\s+wildcards: (.*)$", block, re.MULTILINE)]
            if match
        )


def plan(workdir: Path, *targets: str) -> Plan:
    done = snakemake(workdir, "-n", *targets)
    return Plan(done.stdout + done.stderr)


def planned_jobs(workdir: Path, *targets: str) -> dict[str, int]:
    """Rule -> job count that `snakemake -n` would run; {} when nothing is to be done."""
    return plan(workdir, *targets).jobs


def set_angle(dataset: Path, pic_num: int, angle: str) -> None:
    """Give one picNum of a data set's classifications.csv a new rotation angle."""
    path = dataset / "classifications" / "classifications.csv"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        fields = line.split(",")
        if fields[2:3] == [str(pic_num)]:
            fields[-1] = angle
            lines[i] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")


@contextlib.contextmanager
def put_back_afterwards(path: Path) -> Iterator[None]:
    """Restore ``path``'s bytes and time stamps when the block ends, as if never touched."""
    original, stat = path.read_bytes(), path.stat()
    try:
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
