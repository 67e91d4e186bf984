#!/usr/bin/env bash
# What only the tests need from the system, beside bash setup.sh (safe to re-run; needs root or
# sudo where something is missing, Debian/Ubuntu's apt-get):
#  - chromium: the tests open the pages a user opens in a headless browser;
#  - ImageMagick's `convert`: the rotation parity test compares Wand against it;
#  - SLURM, MUNGE and the ordinary user the test cluster runs jobs as
#    (tests/cluster/install_slurm.sh);
#  - into .venv/ (no root): pytest and the linters (extra dev), and PyTorch (extra torch: the
#    torch backend's parity test runs on the CPU). uv takes a local folder of wheels where
#    PIP_FIND_LINKS names one (a CPU build of torch, ~0.9 GB installed); else PyPI's torch,
#    a CUDA build of several GB.
# Without them the tests that need them skip, saying which is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ||
    packages+=(chromium)
convert -version 2>/dev/null | grep -q ImageMagick || packages+=(imagemagick)
if [ "${#packages[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup_tests: installing ${packages[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
bash tests/cluster/install_slurm.sh
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python \
    ${PIP_FIND_LINKS:+--find-links "$PIP_FIND_LINKS"} -e ".[dev,torch]"
