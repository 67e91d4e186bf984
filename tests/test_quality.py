"""Quality gates a reviewer would otherwise run by hand: formatters, linters, pinned envs."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from .conftest import REPO

BIN = REPO / ".venv" / "bin"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_envs_pin_the_same_versions_as_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(
        re.fullmatch(r"([\w.-]+)==([\w.]+)", dep).groups()
        for dep in project["dependencies"]
        if "==" in dep
    )
    pins = {name.lower(): version for name, version in pins.items()}
    for env in sorted((REPO / "envs").glob("*.yaml")):
        pip = next(
            d["pip"] for d in yaml.safe_load(env.read_text())["dependencies"] if isinstance(d, dict)
        )
        for requirement in pip:
            if requirement.startswith("-e"):
                continue
            name, version = requirement.split("==")
            assert pins.get(name.lower()) == version, f"{env.name}: {requirement} vs pyproject"


def test_min_version_matches_the_pinned_snakemake():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = next(d for d in project["dependencies"] if d.startswith("snakemake=="))
    minimum = re.search(r'min_version\("([\d.]+)"\)', (REPO / "Snakefile").read_text()).group(1)
    assert pinned.split("==")[1].startswith(minimum)


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed in .venv (run setup.sh)")
    return str(path)


def test_snakefmt_leaves_the_workflow_unchanged():
    done = run(tool("snakefmt"), "--check", "Snakefile", "rules/")
    assert done.returncode == 0, done.stdout + done.stderr


def test_snakemake_lint_is_clean():
    done = run(sys.executable, "-m", "snakemake", "--lint")
    assert done.returncode == 0 and "good condition" in done.stdout + done.stderr, (
        done.stdout + done.stderr
    )


def test_ruff_is_clean():
    done = run(tool("ruff"), "check", "oath", "scripts", "tests", "bench")
    assert done.returncode == 0, done.stdout + done.stderr
