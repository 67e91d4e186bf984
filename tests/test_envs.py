"""envs/*.yaml build what their rules' jobs need, from a copy of the file.

Snakemake creates a conda environment from a copy of `envs/<stage>.yaml` under
`.snakemake/conda/`, so an env file may name nothing relative to the checkout; its jobs reach
the `oath` package through the script's own folder, which Snakemake's script directive puts on
sys.path (`scripts/oath` links to `../oath`). Conda channels are out of reach here, so the test
installs each file's pip list alone (uv, from PyPI or its cache) into a fresh virtualenv and
imports there, as Snakemake's preamble would, every module the scripts of that file's rules
import. The conda part (python, imagemagick) is not solved here.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from .conftest import REPO

ENVS = REPO / "envs"
UV = REPO / ".venv" / "bin" / "uv"


def get_rule_envs() -> dict[str, set[Path]]:
    """Env file name -> the scripts of the rules that name it (every rule in rules/*.smk)."""
    envs: dict[str, set[Path]] = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for rule in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            conda = re.search(r"^\s+conda:\s*\n\s+\"\.\./envs/([\w.]+)\"", rule, re.M)
            script = re.search(r"^\s+script:\s*\n\s+\"\.\./(scripts/[\w.]+)\"", rule, re.M)
            name = rule.split(":", 1)[0]
            assert conda, f"{smk.name}: rule {name} names no envs/ file"
            if script:
                envs.setdefault(conda.group(1), set()).add(REPO / script.group(1))
    return envs


def get_pip_list(env: Path) -> list[str]:
    dependencies = yaml.safe_load(env.read_text())["dependencies"]
    return next(d["pip"] for d in dependencies if isinstance(d, dict))


def get_imports(script: Path) -> list[str]:
    """The script's import statements, as written."""
    tree = ast.parse(script.read_text())
    return [ast.unparse(n) for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]


def test_every_rule_env_exists_and_is_self_contained():
    envs = get_rule_envs()
    assert set(envs) == {p.name for p in ENVS.glob("*.yaml")}, "an env file no rule uses"
    for name in envs:
        text = (ENVS / name).read_text()
        # a copied env file has no checkout around it: no -e, no relative paths
        assert not re.search(r"^\s*-\s*(-e|\.|/)", text, re.M), f"{name} points into the checkout"
        assert "--sw-deployment-method" not in text, f"{name}: Snakemake 9 spells it --sdm"
        assert all("==" in r for r in get_pip_list(ENVS / name)), f"{name}: unpinned package"
    assert (REPO / "scripts" / "oath").resolve() == (REPO / "oath").resolve()


def install_and_import(env: str, scripts: set[Path], root: Path) -> str:
    """Install the env's pip list alone into a fresh virtualenv; import what its scripts
    import with only the scripts' folder added to sys.path. The failure text, or ''."""
    venv = root / env.removesuffix(".yaml")
    made = subprocess.run(
        [str(UV), "venv", "-q", "-p", sys._base_executable, str(venv)],
        capture_output=True,
        text=True,
    )
    python = str(venv / "bin" / "python")
    install = [str(UV), "pip", "install", "-q", "--python", python, *get_pip_list(ENVS / env)]
    done = made if made.returncode else subprocess.run(install, capture_output=True, text=True)
    if done.returncode:
        return f"{env}: could not install its pip list:\n{done.stderr[-2000:]}"
    statements = sorted({s for script in scripts for s in get_imports(script)})
    code = "\n".join([f"import sys; sys.path.append({str(REPO / 'scripts')!r})", *statements])
    # -I: no current folder, PYTHONPATH or user site on the path, as in a conda job
    done = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, cwd=root)
    if done.returncode:
        return f"{env} ({', '.join(sorted(s.name for s in scripts))}):\n{done.stderr[-1500:]}"
    return ""


def test_each_env_pip_list_alone_imports_its_rules_scripts(tmp_path):
    if not UV.exists():
        pytest.skip("uv is not installed in .venv (run setup.sh)")
    envs = get_rule_envs()
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = pool.map(lambda e: install_and_import(e, envs[e], tmp_path), sorted(envs))
        failures = [f for f in failures if f]
    assert not failures, "\n\n".join(failures)
