"""Shared fixtures: tiny synthetic data sets in the OATH layout, and the ../shared fixtures."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from oath.demo import write_demo_dataset
from oath.inception_v4 import CACHE_DIR_ENV

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def graph_cache(tmp_path_factory) -> Path:
    """The network graph cache of this test session (shared by its workflow runs too), so
    tests neither read nor fill the user's ~/.cache/oath-pipeline."""
    folder = tmp_path_factory.mktemp("graph_cache")
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
