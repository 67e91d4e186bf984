#!/usr/bin/env bash
# Stop the cluster that tests/cluster/slurm_up.sh DIR started: cancel its jobs, then stop
# slurmd, slurmctld and munged by their PID files under DIR (TERM, then KILL after 10 s), and
# remove the /etc/slurm/slurm.conf symlink when it points into DIR. Safe to run after a failed
# or partial start, and more than once; it never looks for processes by name.
#
#   tests/cluster/slurm_down.sh DIR
set -uo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # daemons and slurmd -C live there

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR   (the folder given to slurm_up.sh)" >&2
    exit 2
fi
[ -d "$1" ] || { echo "slurm_down: $1 does not exist; nothing to stop"; exit 0; }
BASE=$(cd "$1" && pwd)
CONF=$BASE/etc/slurm.conf
SYSCONF=/etc/slurm/slurm.conf
status=0

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# 1. Jobs still queued or running would leave slurmstepd and their commands behind.
if pid_alive "$BASE/run/slurmctld.pid" && [ -f "$CONF" ]; then
    export SLURM_CONF=$CONF
    jobs=$(timeout 10 squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        echo "slurm_down: cancelling jobs $jobs"
        # shellcheck disable=SC2086  # one argument per job id
        timeout 10 scancel $jobs 2>/dev/null
        for _ in $(seq 50); do
            [ -z "$(timeout 5 squeue -h -t running,completing,pending -o %A 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
fi

# 2. The daemons, last started first.
for pidfile in run/slurmd.pid run/slurmctld.pid munge/munged.pid; do
    pidfile=$BASE/$pidfile
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "slurm_down: $pidfile ($pid) ignored TERM for 10 s; sending KILL" >&2
            kill -KILL "$pid" 2>/dev/null
            sleep 0.5
        fi
    fi
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm_down: $pidfile ($pid) is still alive" >&2
        status=1
    else
        rm -f "$pidfile"
    fi
done

# 3. The system-wide config link, only when it is ours.
if [ -L "$SYSCONF" ] && [ "$(readlink "$SYSCONF")" = "$CONF" ]; then
    rm -f "$SYSCONF"
fi
[ "$status" = 0 ] && echo "slurm_down: stopped the cluster under $BASE"
exit "$status"
