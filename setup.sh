#!/usr/bin/env bash
# One-time set-up of what the workflow needs (safe to re-run), as an ordinary user:
#  - from the system: Python >= 3.11 with venv, and ImageMagick's MagickWand library (6 or 7),
#    which Wand drives. Where MagickWand is missing, Debian/Ubuntu's packages are installed with
#    apt-get when that is possible (root, or sudo); otherwise the script stops before it writes
#    anything and says the ways out (docs/install.md);
#  - .venv/: a Python virtualenv with the pinned packages of pyproject.toml and the oath package,
#    installed by uv.
# What only the tests need (chromium, SLURM) is installed by tests/setup_tests.sh.
# On a machine with an NVIDIA GPU (driver installed), `bash setup.sh --gpu` also installs
# TensorFlow's CUDA libraries; extraction then runs on the GPU with config gpu_batch_size.
set -euo pipefail
cd "$(dirname "$0")"
target="."  # the main job's packages; the tests' own (pytest, torch) come from tests/setup_tests.sh
case "${1:-}" in
    "") ;;
    --gpu) target=".[gpu]" ;;
    *) echo "usage: bash setup.sh [--gpu]" >&2; exit 2 ;;
esac

python=${PYTHON:-python3}
if ! "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup.sh: needs Python >= 3.11 with venv and ensurepip as '$python' (Debian:" \
        "python3-venv; a cluster: 'module load python/3.11'); or give one: PYTHON=python3.12 bash setup.sh" >&2
    exit 1
fi

# Where Wand looks for MagickWand (wand/api.py): MAGICK_HOME, then the library search path,
# under the names of ImageMagick 7 and 6.
has_magickwand() {
    "$python" - <<'PY'
import ctypes.util, glob, itertools, os, sys
suffixes = [a + b for a, b in itertools.product(
    ("", "-7", "-7.Q8", "-7.Q16", "-6", "-Q16", "-Q8", "-6.Q16"), ("", "HDRI", "HDRI-2"))]
suffixes += os.environ.get("WAND_MAGICK_LIBRARY_SUFFIX", "").split(";")
home = os.environ.get("MAGICK_HOME")
for suffix in set(suffixes):
    if home and glob.glob(os.path.join(home, "lib*", f"libMagickWand{suffix}.so*")):
        sys.exit(0)
    if ctypes.util.find_library(f"MagickWand{suffix}"):
        sys.exit(0)
sys.exit(1)
PY
}

if ! has_magickwand; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if command -v apt-get >/dev/null && { [ -z "$sudo" ] || command -v sudo >/dev/null; }; then
        echo "setup.sh: installing ImageMagick's MagickWand library from Debian (apt-get)"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq imagemagick \
            libmagickwand-6.q16-6 >/dev/null
    else
        cat >&2 <<'MSG'
setup.sh: ImageMagick's MagickWand library (6 or 7) was not found, and it cannot be installed
here (no root, no sudo, or no apt-get). Nothing was installed. Three ways out (docs/install.md):
  1. the cluster's module or the system package: e.g. `module load ImageMagick`, or ask for
     Debian's libmagickwand-6.q16-6 / Fedora's ImageMagick-libs; if it lives outside the library
     path, set MAGICK_HOME to its prefix; then run bash setup.sh again;
  2. a conda environment: `conda create -p ./im -c conda-forge imagemagick`, then
     MAGICK_HOME=$PWD/im bash setup.sh (or run the workflow with --sdm conda);
  3. the container (Containerfile; container/build.sh), with everything inside it.
MSG
        exit 1
    fi
fi

[ -x .venv/bin/python ] || "$python" -m venv .venv
# uv (from PyPI) fetches and unpacks the wheels in parallel: ~20 s on a fresh 2-core machine for
# what pip takes ~105 s over (TensorFlow alone is 1.9 GB installed); the same pinned packages.
# --compile-bytecode: as pip does, write the .pyc files now; without them every job compiles
# TensorFlow, pandas and Snakemake from source again where PYTHONDONTWRITEBYTECODE is set.
.venv/bin/python -m pip install --quiet uv==0.13.9
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -e "$target"
if ! .venv/bin/python -c "import wand.image" 2>/dev/null; then
    echo "setup.sh: .venv/ is ready, but Wand cannot load MagickWand:" >&2
    .venv/bin/python -c "import wand.image" 2>&1 | tail -n 1 >&2
    echo "set MAGICK_HOME to ImageMagick's prefix (docs/install.md)" >&2
    exit 1
fi
echo "set-up done: run the demo with .venv/bin/snakemake --cores 4"
