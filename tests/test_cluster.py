"""The workflow on a real one-node SLURM cluster, started by these tests.

profiles/slurm (executor plugin; the whole demo) and profiles/generic (sbatch through
cluster-generic; up to the merged features) must give the same results as a local run, through
jobs that SLURM really ran, in as few submissions as the dry-run promises; a job that fails on
the cluster stops the run with its log's path, and a rerun redoes only what failed.

Needs root, Debian's SLURM (tests/cluster/install_slurm.sh) and the two executor plugins;
skips with the reason otherwise, and fails instead of skipping when OATH_REQUIRE_CLUSTER=1
(CI, which installs SLURM first). The cluster lives under /tmp/oath-slurm-*: munge must be able
to reach it, which pytest's private tmp_path does not allow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import re
import shlex
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from oath.network.featurefile import read_features

from .workflow import (
    N_FITS,
    REPO,
    RIDGE_ONLY,
    place_demo_checkpoint,
    plan,
    planned_jobs,
    write_config,
)

pytestmark = pytest.mark.cluster

PROFILES = REPO / "profiles"
CLUSTER_SCRIPTS = REPO / "tests" / "cluster"
SNAKEMAKE_TIMEOUT = 900
SYSTEM_SLURM_CONF = Path("/etc/slurm/slurm.conf")
USER = "oath-user"  # added by tests/cluster/install_slurm.sh


# The whole demo: every stage, as a user runs it.
TARGET = "all"


def get_missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "the test cluster needs root (slurmd, munged as user munge, /etc/slurm)"
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel"):
        if shutil.which(tool, path=search) is None:
            return f"SLURM is not installed ({tool} missing): run tests/cluster/install_slurm.sh"
    for plugin in ("snakemake_executor_plugin_slurm", "snakemake_executor_plugin_cluster_generic"):
        if importlib.util.find_spec(plugin) is None:
            return f"{plugin} is not installed in this Python (see pyproject.toml)"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return f"the ordinary user {USER} is missing: run tests/cluster/install_slurm.sh"
    if get_user_interpreter() is None:
        return f"{USER} can run no Python {sys.version_info[0]}.{sys.version_info[1]}"
    if SYSTEM_SLURM_CONF.exists() and not SYSTEM_SLURM_CONF.is_symlink():
        return f"{SYSTEM_SLURM_CONF} belongs to a site SLURM; the tests start their own cluster"
    return None


def can_run_as_user(*command: str) -> bool:
    done = subprocess.run(["runuser", "-u", USER, "--", *command], capture_output=True, check=False)
    return done.returncode == 0


def get_user_interpreter() -> str | None:
    """A Python of this minor version that the ordinary user can run: this .venv's own, or,
    where its base interpreter lies in a private folder (pyenv under /root), the system's."""
    if can_run_as_user(sys.executable, "-c", ""):
        return sys.executable
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    for folder in ("/usr/bin", "/usr/local/bin"):
        candidate = str(Path(folder) / version)
        if Path(candidate).is_file() and can_run_as_user(candidate, "-c", ""):
            return candidate
    return None


def make_user_python(root: Path) -> str:
    """The user's Python with this .venv's packages, read-only: the .venv itself, or a venv
    on the system's interpreter whose one .pth file adds the .venv's site-packages (and the
    .pth files there, the editable oath among them)."""
    interpreter = get_user_interpreter()
    assert interpreter is not None
    if interpreter == sys.executable:
        return interpreter
    venv = root / "venv"
    subprocess.run([interpreter, "-m", "venv", "--without-pip", str(venv)], check=True)
    (purelib,) = (venv / "lib").glob("python3.*/site-packages")
    shared = sysconfig.get_paths()["purelib"]
    (purelib / "shared_venv.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    return str(venv / "bin" / "python")


@dataclass
class Cluster:
    root: Path

    def finished_jobs(self) -> dict[str, str]:
        """SLURM job id -> final state, from the job completion log slurmctld writes."""
        path = self.root / "log" / "jobcomp.txt"
        text = path.read_text() if path.is_file() else ""
        return dict(re.findall(r"JobId=(\d+) .*?JobState=(\w+)", text))


@pytest.fixture(scope="session")
def slurm_cluster(request) -> Cluster:
    """A one-node SLURM for the whole session, stopped by PID at the end whatever happened."""
    missing = get_missing_prerequisite()
    if missing:
        # CI installs SLURM first (README's test command): there a skip would hide a failure.
        if os.environ.get("OATH_REQUIRE_CLUSTER") == "1" or os.environ.get("CI") == "true":
            pytest.fail(f"OATH_REQUIRE_CLUSTER=1 but {missing}")
        pytest.skip(missing)
    root = Path(tempfile.mkdtemp(prefix="oath-slurm-", dir="/tmp"))

    def stop() -> None:
        down = subprocess.run(
            ["bash", str(CLUSTER_SCRIPTS / "slurm_down.sh"), str(root)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if down.returncode == 0:
            shutil.rmtree(root, ignore_errors=True)
        else:  # keep the folder and its logs for whoever looks next
            print(f"slurm_down.sh failed, {root} kept:\n{down.stdout}{down.stderr}")

    request.addfinalizer(stop)  # before starting: a half-started cluster is stopped too
    up = subprocess.run(
        ["bash", str(CLUSTER_SCRIPTS / "slurm_up.sh"), str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if up.returncode != 0:
        pytest.fail(f"tests/cluster/slurm_up.sh failed:\n{up.stdout}\n{up.stderr}")
    return Cluster(root)


def run_snakemake(
    workdir: Path,
    profile: str,
    *args: str,
    check: bool = True,
    checkout: Path = REPO,
    python: str = sys.executable,
) -> subprocess.CompletedProcess:
    """Snakemake with a profile, started from the working directory as a user would (the
    SLURM executor puts its logs under the directory it was started from); as the ordinary
    user when the working directory is theirs."""
    command = [
        python,
        "-m",
        "snakemake",
        "-s",
        str(checkout / "Snakefile"),
        "-d",
        str(workdir),
        "--profile",
        str(checkout / "profiles" / profile),
        *args,
    ]
    env = None
    if workdir.owner() == USER:
        home = pwd.getpwnam(USER).pw_dir
        # their own home and caches: the session's graph cache lies in root's private tmp
        env = {k: v for k, v in os.environ.items() if k != "OATH_CACHE_DIR"}
        env.update(HOME=home, USER=USER, LOGNAME=USER)
        command = ["runuser", "-u", USER, "--", *command]
    done = subprocess.run(
        command,
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=SNAKEMAKE_TIMEOUT,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"snakemake --profile {profile} {' '.join(args)} failed:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
        )
    return done


def get_local_rules() -> set[str]:
    """Rules run on the submitting host: the Snakefile's localrules, and `localrule: True`."""
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", (REPO / "Snakefile").read_text(), re.M)
    local = set(re.findall(r"\w+", block.group(1))) if block else set()
    for path in (REPO / "rules").glob("*.smk"):
        for rule in re.split(r"^\s*rule ", path.read_text(), flags=re.M)[1:]:
            if re.search(r"^\s*localrule:\s*True", rule, re.M):
                local.add(rule.split(":", 1)[0].strip())
    return local


def count_planned_submissions(dry_run_text: str) -> int:
    """Cluster submissions a dry-run plans: one per group job, one per ungrouped non-local
    job (grouped jobs are printed indented under their "Group job" line)."""
    groups = re.findall(r"Group job \S+ \(jobs", dry_run_text)
    single = re.findall(r"^(?:\[[^\]]*\]\s*)?rule (\w+):", dry_run_text, re.M)
    return len(groups) + sum(rule not in get_local_rules() for rule in single)


@dataclass
class ClusterRun:
    workdir: Path
    target: str
    log: str
    planned_submissions: int
    seconds: float


def get_gpu_recipe() -> list[str]:
    """docs/cluster.md's options that send extraction and classify shards to GPU nodes."""
    text = (REPO / "docs" / "cluster.md").read_text()
    line = re.search(
        r"^\.venv/bin/snakemake --profile profiles/slurm (--set-resources .*)$", text, re.M
    )
    assert line, "docs/cluster.md has no GPU recipe line"
    return shlex.split(line.group(1))


def make_user_checkout() -> tuple[Path, Path, str]:
    """A copy of the checkout (tracked files, no .venv), a working folder and a Python with
    this .venv's packages, owned by the ordinary user, under /tmp (pytest's own folders are
    private to root)."""
    root = Path(tempfile.mkdtemp(prefix="oath-user-", dir="/tmp"))
    root.chmod(0o755)
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    checkout, workdir = root / "checkout", root / "work"
    for name in filter(None, tracked):
        source = REPO / name
        if source.exists() or source.is_symlink():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name, follow_symlinks=False)
    workdir.mkdir()
    python = make_user_python(root)
    subprocess.run(["chown", "-R", f"{USER}:", str(root)], check=True)
    return checkout, workdir, python


def run_demo_on_cluster(
    workdir: Path,
    profile: str,
    checkpoint: Path,
    target: str = TARGET,
    *args: str,
    checkout: Path = REPO,
    python: str = sys.executable,
) -> ClusterRun:
    write_config(workdir, **RIDGE_ONLY)  # the comparison's classifiers are not what runs differ in
    place_demo_checkpoint(workdir, checkpoint)
    if checkout != REPO:  # the user's run: what the test wrote becomes theirs
        subprocess.run(["chown", "-R", f"{USER}:", str(workdir)], check=True)
    dry = run_snakemake(workdir, profile, "-n", target, *args, checkout=checkout, python=python)
    start = time.monotonic()
    done = run_snakemake(workdir, profile, target, *args, checkout=checkout, python=python)
    return ClusterRun(
        workdir,
        target,
        done.stdout + done.stderr,
        count_planned_submissions(dry.stdout + dry.stderr),
        time.monotonic() - start,
    )


def run_classify_array(root: Path, checkpoint: Path) -> tuple[Path, str]:
    """`classify` of two site-hours of raw frames through profiles/slurm, with a model
    written beforehand: the working directory and Snakemake's log."""
    from .test_stream import CLASSIFY_RULES, archive, write_model

    workdir, inbox = root / "work", root / "archive"
    for site, hour in (("gill", 6), ("fsmi", 6)):
        archive(inbox, site, hour, n_files=1)
    write_model(checkpoint, workdir / "results" / "predictions" / "model.npz")
    write_config(workdir, checkpoint=str(checkpoint), new_images=str(inbox))
    # one thread a shard, so the array's tasks run side by side on the test node
    done = run_snakemake(
        workdir,
        "slurm",
        "classify",
        *CLASSIFY_RULES,
        "--slurm-no-account",
        "--set-threads",
        "classify_shard=1",
    )
    return workdir, done.stdout + done.stderr


@dataclass
class FailedClusterRun:
    """A copy of the finished demo run with one source image made unreadable, run through
    profiles/slurm (it fails), then the image mended: what a test needs to judge it."""

    plan_before: dict[str, int]  # snakemake -n on the finished copy
    failed: subprocess.CompletedProcess  # the run with the bad image
    untouched: dict[Path, bool]  # other shards' outputs: same bytes after the failed run?
    plan_after: dict[str, int]  # snakemake -n once the image is mended
    rotations_after: list[str]  # the rotate_shard wildcards of that plan


def run_failed_job(finished: Path, workdir: Path) -> FailedClusterRun:
    shutil.copytree(finished, workdir, symlinks=True)
    plan_before = planned_jobs(workdir, TARGET)
    source = next(workdir.glob("resources/demo/*/images/cropped_scaled/00020.png"))
    good_image = source.read_bytes()
    # Shard 00000-00019 (rotated images, features if extracted) must survive.
    results = workdir / "results"
    kept = [*results.glob("rotated/0000*.png"), *results.glob("features/shards/*.h5")]
    before = {p: p.read_bytes() for p in kept if "00020-00039" not in p.name}
    source.write_bytes(b"this is not a PNG\n" * 64)
    failed = run_snakemake(workdir, "slurm", TARGET, check=False)
    untouched = {path: path.read_bytes() == data for path, data in before.items()}
    source.write_bytes(good_image)
    mended = plan(workdir, TARGET)
    return FailedClusterRun(
        plan_before, failed, untouched, mended.jobs, mended.wildcards("rotate_shard")
    )


@dataclass
class ClusterRuns:
    reference: Path  # the same demo run locally
    slurm: ClusterRun  # profiles/slurm, the whole demo
    generic: ClusterRun  # profiles/generic, up to the merged features
    classify: tuple[Path, str]  # run_classify_array's working directory and log
    failed: FailedClusterRun  # a copy of the local demo run with a bad image, on SLURM


@pytest.fixture(scope="session")
def cluster_runs(slurm_cluster, random_checkpoint, tmp_path_factory, request) -> ClusterRuns:
    """The tiny demo (tests/config.yaml: 36 images, 2 shards) through both cluster profiles and
    a classify job array, all at once, and the demo locally meanwhile; as soon as that is done,
    a copy of it with a bad image on SLURM: most of a cluster run is waiting for status polls,
    time the other runs fill."""
    generic_dir, classify_dir, failed_dir = (
        tmp_path_factory.mktemp(n) for n in ("generic", "classify-array", "failed-job")
    )
    checkout, slurm_dir, python = make_user_checkout()
    request.addfinalizer(lambda: shutil.rmtree(checkout.parent, ignore_errors=True))
    with ThreadPoolExecutor(max_workers=4) as pool:
        # the ordinary user's run, extraction on the GPU partition as docs/cluster.md says
        slurm = pool.submit(
            run_demo_on_cluster,
            slurm_dir,
            "slurm",
            random_checkpoint,
            TARGET,
            *get_gpu_recipe(),
            checkout=checkout,
            python=python,
        )
        # profiles/generic as far as the merged features: its submissions (the shard and the
        # evaluate groups, a single rule) are checked there; the fits' results on a cluster,
        # on profiles/slurm (the fits would add ~25 CPU-s to the suite and check nothing new)
        generic = pool.submit(
            run_demo_on_cluster, generic_dir, "generic", random_checkpoint, "features"
        )
        classify = pool.submit(run_classify_array, classify_dir, random_checkpoint)
        reference, _ = request.getfixturevalue("demo_run")
        failed = pool.submit(run_failed_job, reference, failed_dir / "run")
        return ClusterRuns(
            reference, slurm.result(), generic.result(), classify.result(), failed.result()
        )


def png_without_timestamps(data: bytes) -> bytes:
    """A PNG's bytes less the chunks that record when it was written (ImageMagick's tIME and
    date:create / date:modify text), which differ between any two runs."""
    kept, at = [data[:8]], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunk = data[at : at + 12 + length]
        if chunk[4:8] != b"tIME" and not chunk[8:].startswith(b"date:"):
            kept.append(chunk)
        at += 12 + length
    return b"".join(kept)


def assert_same_results(reference: Path, run: ClusterRun) -> None:
    """Equal rotated images (every PNG byte but the time stamps), Logits and ridge accuracies,
    as far as the run's target went."""
    workdir = run.workdir
    ref_rotated = sorted((reference / "results" / "rotated").glob("*.png"))
    rotated = sorted((workdir / "results" / "rotated").glob("*.png"))
    assert [p.name for p in rotated] == [p.name for p in ref_rotated] and len(rotated) == 36
    for ours, theirs in zip(rotated, ref_rotated, strict=True):
        ours_data, theirs_data = ours.read_bytes(), theirs.read_bytes()
        assert png_without_timestamps(ours_data) == png_without_timestamps(theirs_data), ours
    if run.target == "rotate":
        return
    ref_features = read_features(reference / "results" / "features" / "auroral_feat.h5")
    features = read_features(workdir / "results" / "features" / "auroral_feat.h5")
    assert features.filenames == ref_features.filenames
    np.testing.assert_array_equal(features.logits, ref_features.logits)
    if run.target == "features":
        return
    ref_fits = sorted((reference / "results" / "ridge").glob("*/*/split_*.json"))
    fits = sorted((workdir / "results" / "ridge").glob("*/*/split_*.json"))
    assert [p.relative_to(workdir) for p in fits] == [p.relative_to(reference) for p in ref_fits]
    assert len(fits) == N_FITS  # label sets x splits
    for ours, theirs in zip(fits, ref_fits, strict=True):
        accuracy = json.loads(ours.read_text())["accuracy"]
        assert accuracy == json.loads(theirs.read_text())["accuracy"], ours
    assert (workdir / "results" / "report" / "summary.md").is_file()


def assert_run_by_slurm(cluster: Cluster, job_ids: list[str], planned: int) -> None:
    assert job_ids, "no SLURM job ids in Snakemake's log"
    assert len(job_ids) == planned, f"{len(job_ids)} submissions, dry-run planned {planned}"
    finished = cluster.finished_jobs()
    assert {job: finished.get(job) for job in job_ids} == dict.fromkeys(job_ids, "COMPLETED")


def test_slurm_profile_matches_local_run_in_few_submissions(slurm_cluster, cluster_runs):
    slurm_run = cluster_runs.slurm
    assert_same_results(cluster_runs.reference, slurm_run)
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", slurm_run.log)
    assert_run_by_slurm(slurm_cluster, job_ids, slurm_run.planned_submissions)
    slurm_logs = {p.stem for p in (slurm_run.workdir / "logs" / "slurm").rglob("*.log")}
    assert set(job_ids) <= slurm_logs
    # The rotations (and extractions) of both shards went in one submission: group "shard".
    (group_log,) = (slurm_run.workdir / "logs" / "slurm").glob("group_shard_*/*.log")
    assert "rotate_shard" in group_log.parent.name  # the group's rules, sorted, in its name
    seconds, target = slurm_run.seconds, slurm_run.target
    print(f"profiles/slurm: {target} in {seconds:.0f} s, {len(job_ids)} submissions")


def show_job(job: str) -> dict[str, str]:
    """`scontrol show job`'s fields (finished jobs stay listed for MinJobAge, 600 s)."""
    done = subprocess.run(
        ["scontrol", "show", "job", job], capture_output=True, text=True, check=True
    )
    return dict(re.findall(r"(\w+)=(\S*)", done.stdout))


def test_slurm_run_as_ordinary_user_sends_extraction_to_the_gpu_gres(slurm_cluster, cluster_runs):
    """The user's jobs ran as that user; the submissions that extract (the shard groups) went
    to partition gpu with one GPU of the gres, the others to the default partition."""
    slurm_run = cluster_runs.slurm
    assert slurm_run.workdir.owner() == USER
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", slurm_run.log)
    jobs = {job: show_job(job) for job in job_ids}
    assert {job["UserId"].split("(")[0] for job in jobs.values()} == {USER}
    on_gpu = {job for job, fields in jobs.items() if fields["Partition"] == "gpu"}
    assert on_gpu, "no job went to partition gpu"
    for job in on_gpu:
        assert jobs[job]["TresPerNode"] == "gres:gpu:1", jobs[job]
    for job in set(job_ids) - on_gpu:
        assert jobs[job]["Partition"] == "debug" and "gpu" not in jobs[job].get("TresPerNode", "")
    extracting = list((slurm_run.workdir / "logs" / "slurm").glob("group_shard_*/*.log"))
    assert {p.stem for p in extracting} == on_gpu
    assert all(p.owner() == USER for p in (slurm_run.workdir / "results").rglob("*.h5"))


def test_generic_profile_matches_local_run(slurm_cluster, cluster_runs):
    run = cluster_runs.generic
    assert_same_results(cluster_runs.reference, run)
    job_ids = re.findall(r"Submitted (?:group )?job \S+ with external jobid '(\d+)'", run.log)
    assert_run_by_slurm(slurm_cluster, job_ids, run.planned_submissions)
    for job in job_ids:
        assert len(list((run.workdir / "logs" / "cluster").glob(f"*-{job}.log"))) == 1, job
    print(f"profiles/generic: {run.target} in {run.seconds:.0f} s, {len(job_ids)} submissions")


def is_shard_work_planned(planned: dict[str, int]) -> bool:
    """Whether a plan rotates or extracts anything (what follows may change as rules are
    added; the shards may not)."""
    return any(rule.startswith(("rotate_shard", "extract_shard", "make_demo")) for rule in planned)


def test_failed_cluster_job_names_its_log_and_reruns_alone(slurm_cluster, cluster_runs):
    run = cluster_runs.failed
    assert not is_shard_work_planned(run.plan_before)  # the copy of a finished run is complete
    text = run.failed.stdout + run.failed.stderr
    assert run.failed.returncode != 0, text[-3000:]
    assert "logs/rotate_shard/00020-00039.log" in text, text[-3000:]  # the rule's own log
    job_ids = re.findall(r"submitted with SLURM jobid (\d+)", text)
    assert len(job_ids) == 1  # only the stale shard's group was submitted
    assert f"/{job_ids[0]}.log" in text  # ... and SLURM's log of it
    assert slurm_cluster.finished_jobs()[job_ids[0]] == "FAILED"
    assert run.untouched and all(run.untouched.values())  # the other shards' outputs kept

    # the image mended: only its shard is to be redone
    assert run.plan_after.get("rotate_shard") == 1
    assert run.rotations_after == ["shard=00020-00039"]
    assert run.plan_after.get("extract_shard", 0) == 1
    assert "make_demo_dataset" not in run.plan_after
    assert "make_demo_checkpoint" not in run.plan_after


def test_classify_shards_go_to_slurm_as_one_job_array(slurm_cluster, cluster_runs):
    """Two site-hour shards: one array submission (tasks 1-2), then the gathering job."""
    import pandas as pd

    workdir, log = cluster_runs.classify
    assert re.search(r"Submitted array job .* The individual task IDs are 1-2", log), log[-3000:]
    assert log.count("Submitted array job") == 1
    table = pd.read_csv(workdir / "results" / "predictions" / "predictions.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
