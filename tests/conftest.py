"""Shared fixtures: tiny synthetic data sets in the OATH layout, and the ../shared fixtures."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from oath.demo.dataset import write_demo_dataset
from oath.network.inception_v4 import CACHE_DIR_ENV

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Test files with SLURM runs first, then those with workflow runs (the ones that wait
    for the shared demo run last among them), then those that run the network in-process,
    then the rest, each group in collection order:
    pytest-xdist hands out whole files in this order, so the long ones start at once and the
    short ones fill the other worker, instead of one long file running alone at the end."""

    def weight(item: pytest.Item) -> int:
        same_file = items_of_file[item.path]
        marks = {m.name for i in same_file for m in i.iter_markers()}
        if "cluster" in marks:
            return 0
        if "e2e" in marks:
            return 2 if any("demo_run" in i.fixturenames for i in same_file) else 1
        return 3 if "network" in marks else 4

    items_of_file: dict[Path, list[pytest.Item]] = {}
    for item in items:
        items_of_file.setdefault(item.path, []).append(item)
    items.sort(key=weight)  # stable: collection order within a group


def session_dir(tmp_path_factory) -> Path:
    """A folder of this test session that every pytest-xdist worker sees (each worker has its
    own basetemp below it); the basetemp itself without xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session", autouse=True)
def graph_cache(tmp_path_factory) -> Path:
    """The network graph cache of this test session (shared by its workflow runs and all
    workers; the cache writes atomically), so tests neither read nor fill the user's
    ~/.cache/oath-pipeline."""
    folder = session_dir(tmp_path_factory) / "graph_cache"
    folder.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_ENV, str(folder))
        yield folder


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout; tests that need it skip cleanly where it is absent."""
    if not (SHARED / "fixtures" / "inception_v4").is_dir():
        pytest.skip("../shared/fixtures/inception_v4 is not beside this checkout")
    return SHARED


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """A 24-image synthetic data set (64 px), drawn once per session."""
    root = tmp_path_factory.mktemp("demo") / "oath"
    write_demo_dataset(root, n_images=24, seed=7, image_size=64)
    return root


@pytest.fixture
def dataset(tmp_path, demo_template) -> Path:
    """A private copy of the tiny data set that a test may damage."""
    root = tmp_path / "oath"
    shutil.copytree(demo_template, root)
    return root


@pytest.fixture(scope="session")
def convert_cli() -> str:
    """Path of the real ImageMagick convert (some machines have a stand-in that only converts)."""
    convert = shutil.which("convert")
    try:
        version = subprocess.run(
            [convert or "convert", "-version"], capture_output=True, text=True, timeout=20
        )
    except (OSError, subprocess.TimeoutExpired):
        version = None
    if version is None or "ImageMagick" not in version.stdout:
        pytest.skip("ImageMagick's convert is not installed (apt-get install imagemagick)")
    return convert


def build_once(tmp_path_factory, name: str, build) -> Path:
    """``build(folder)`` run once per test session for every pytest-xdist worker: the first
    worker to ask builds under the session folder (the others wait on its lock), the folder
    is marked finished last, so a session that failed half-way builds again."""
    shared = session_dir(tmp_path_factory)
    folder, finished = shared / name, shared / f"{name}.finished"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not finished.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            finished.touch()
    return folder


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> Path:
    """The random-weight Inception-v4 checkpoint of the default seed (1804: the demo's, and
    the parity fixture's values), written once per session: its V2 prefix. Tests only read it."""
    from oath.network.checkpoint import write_random_checkpoint

    folder = build_once(
        tmp_path_factory, "random-checkpoint", lambda f: write_random_checkpoint(f / "inception_v4")
    )
    return folder / "inception_v4"


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> tuple[Path, str]:
    """The tiny demo of tests/config.yaml (36 images, 2 shards), run once per test session
    as a user runs it (profiles/local on 2 cores): the working directory and the terminal's
    text. The first worker to ask runs it (the others wait and reuse it). Tests only read it;
    one that changes it works on a copy (shutil.copytree)."""
    from .workflow import REPO, snakemake, write_config

    def run(workdir: Path) -> None:
        write_config(workdir)
        done = snakemake(workdir, "--profile", str(REPO / "profiles" / "local"), "--cores", "2")
        (workdir.parent / "demo-run.terminal.txt").write_text(done.stdout + done.stderr)

    workdir = build_once(tmp_path_factory, "demo-run", run)
    return workdir, (workdir.parent / "demo-run.terminal.txt").read_text()
