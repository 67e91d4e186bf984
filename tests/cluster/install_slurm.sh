#!/usr/bin/env bash
# Install Debian's SLURM (slurmctld, slurmd, client tools) and MUNGE for the cluster tests,
# without letting the packages start system daemons: tests/cluster/slurm_up.sh starts its own
# from a scratch folder. Also adds the ordinary user `oath-user` (no password, no sudo) as whom
# tests/test_cluster.py submits a workflow run, as a user of a real cluster's login node would.
# Idempotent: returns at once when everything is already there.
# Needs root (or sudo) and apt; Debian 12 ships slurm 22.05 and munge 0.5.
set -euo pipefail

TEST_USER=oath-user
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ! id "$TEST_USER" >/dev/null 2>&1; then
    $sudo useradd --create-home --shell /bin/bash "$TEST_USER"
    echo "install_slurm: added the ordinary user $TEST_USER"
fi

packages=(slurmctld slurmd slurm-client munge)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "install_slurm: ${packages[*]} already installed"
    exit 0
fi

# Package scripts would start munge/slurmctld/slurmd through invoke-rc.d; a policy-rc.d that
# answers 101 ("action not allowed") stops them. Put ours in place for this install only and
# put back whatever was there before (Docker images often ship one already).
policy=/usr/sbin/policy-rc.d
backup=""
if [ -e "$policy" ]; then
    backup=$(mktemp)
    $sudo cp -p "$policy" "$backup"
fi
restore_policy() {
    if [ -n "$backup" ]; then
        $sudo cp -p "$backup" "$policy" && $sudo rm -f "$backup"
    else
        $sudo rm -f "$policy"
    fi
}
trap restore_policy EXIT
printf '#!/bin/sh\n# tests/cluster/install_slurm.sh: no daemons during install\nexit 101\n' |
    $sudo tee "$policy" >/dev/null
$sudo chmod 0755 "$policy"

echo "install_slurm: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${packages[@]}" >/dev/null
echo "install_slurm: $(slurmctld -V)"
