#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine (safe to re-run):
#  - ImageMagick from Debian: the MagickWand library Wand drives, and the `convert` command the
#    rotation parity test compares against;
#  - chromium from Debian: the tests open the pages a user opens in a headless browser;
#  - .venv/: a Python virtualenv with the pinned packages of pyproject.toml and the oath package,
#    installed by uv.
# On a machine with an NVIDIA GPU (driver installed), `bash setup.sh --gpu` also installs
# TensorFlow's CUDA libraries; extraction then runs on the GPU with config gpu_batch_size.
set -euo pipefail
cd "$(dirname "$0")"
extras="dev,torch"  # torch: network.backend torch and its parity test (docs/torch_backend.md)
case "${1:-}" in
    "") ;;
    --gpu) extras="dev,torch,gpu" ;;
    *) echo "usage: bash setup.sh [--gpu]" >&2; exit 2 ;;
esac

debian_packages=()
if ! { ldconfig -p | grep -q 'libMagickWand-6.Q16.so' && convert -version 2>/dev/null | grep -q ImageMagick; }; then
    debian_packages+=(imagemagick libmagickwand-6.q16-6)
fi
command -v chromium >/dev/null 2>&1 || debian_packages+=(chromium)
if [ "${#debian_packages[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${debian_packages[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# uv (from PyPI) fetches and unpacks the wheels in parallel: ~20 s on a fresh 2-core machine for
# what pip takes ~105 s over (TensorFlow alone is 1.9 GB installed); the same pinned packages.
# --compile-bytecode: as pip does, write the .pyc files now; without them every job compiles
# TensorFlow, pandas and Snakemake from source again where PYTHONDONTWRITEBYTECODE is set.
.venv/bin/python -m pip install --quiet uv==0.13.9
# uv ignores PIP_FIND_LINKS: passed on, a folder holding the CPU torch wheel (CI's) is used.
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python \
    ${PIP_FIND_LINKS:+--find-links "$PIP_FIND_LINKS"} -e ".[$extras]"
echo "set-up done: run the demo with .venv/bin/snakemake --cores 4"
