#!/usr/bin/env bash
# Build the container image `oath-pipeline` (container/Containerfile) with podman, from a Debian 12
# base made here by debootstrap when no registry is reachable, running the demo inside the build.
# Needs root (debootstrap, podman with chroot isolation) and Debian's debootstrap and podman:
#   apt-get install -y debootstrap podman
#   bash container/build.sh                   # image localhost/oath-pipeline:latest
#   podman save --format docker-archive -o oath.tar oath-pipeline   # for Apptainer:
#   apptainer build oath.sif docker-archive://oath.tar
# RUN_DEMO=0 skips the demo run inside the build; CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
# lends the build this machine's CA bundle (where a proxy re-signs TLS to PyPI). Prints the
# build time and the image size.
set -euo pipefail
cd "$(dirname "$0")/.."
base=localhost/oath-debian12-minbase
if ! podman image exists "$base"; then
    rootfs=$(mktemp -d /tmp/oath-rootfs-XXXXXX)
    trap 'rm -rf "$rootfs"' EXIT
    echo "build: debootstrap Debian 12 (bookworm, minbase) into $rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >/dev/null
    tar -C "$rootfs" -c . | podman import - "$base"
fi
# Only the tracked files go into the image (no .venv, results or caches of this checkout).
context=$(mktemp -d /tmp/oath-context-XXXXXX)
trap 'rm -rf "$context" ${rootfs:+"$rootfs"}' EXIT
git ls-files -z | tar -c --null -T - | tar -x -C "$context"
start=$(date +%s)
volume=()
[ -n "${CA_BUNDLE:-}" ] && volume=(--volume "$(realpath "$CA_BUNDLE"):/run/host-ca.crt:ro")
podman build --isolation=chroot "${volume[@]}" --build-arg BASE="$base" --build-arg RUN_DEMO="${RUN_DEMO:-1}" \
    -f container/Containerfile -t oath-pipeline "$context"
echo "build: $(($(date +%s) - start)) s; image $(podman image inspect oath-pipeline --format '{{.Size}}') bytes"
