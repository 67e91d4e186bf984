#!/usr/bin/env bash
# Start a one-node SLURM cluster (munged, slurmctld, slurmd) from plain folders under DIR, for
# the cluster tests and for trying the profiles/ by hand. No systemd, no slurmdbd.
#
#   tests/cluster/install_slurm.sh             # once: Debian's slurmctld slurmd slurm-client munge
#   tests/cluster/slurm_up.sh /tmp/oath-slurm  # start (about a second); prints sinfo
#   tests/cluster/slurm_down.sh /tmp/oath-slurm  # stop every daemon by its PID file
#
# Everything lives under DIR: etc/slurm.conf, munge/ (key, socket, log, pid), state/, spool/,
# log/ (slurmctld.log, slurmd.log, jobcomp.txt: one line per finished job), run/ (pid files).
# Partitions "debug" (default) and "gpu" share the one node, which offers a count-only GPU
# generic resource (gres/gpu, no device file).
# Needs root: slurmd runs jobs as their submitting user, and /etc/slurm/slurm.conf becomes a
# symlink to DIR/etc/slurm.conf (the slurm executor's job step drops SLURM_CONF inside jobs, so
# the client tools must find the file at the default path). An /etc/slurm/slurm.conf that is a
# real file (a site's own SLURM) is never replaced: the script stops instead.
# On any failure it prints the daemons' logs and stops what it had started.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # daemons and slurmd -C live there

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR   (a scratch folder; created if missing)" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "slurm_up: must run as root (slurmd, munged as user munge, /etc/slurm/slurm.conf)" >&2
    exit 2
fi
for tool in munged slurmctld slurmd sbatch squeue; do
    command -v "$tool" >/dev/null || {
        echo "slurm_up: $tool not found; run tests/cluster/install_slurm.sh" >&2
        exit 2
    }
done

HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
BASE=$(cd "$1" && pwd)
MSOCK=$BASE/munge/munge.socket.2
CONF=$BASE/etc/slurm.conf
SYSCONF=/etc/slurm/slurm.conf
HOST=$(hostname -s)

# A Unix socket path holds at most 107 bytes.
if [ ${#MSOCK} -gt 100 ]; then
    echo "slurm_up: $BASE is too deep for munge's socket path; use a shorter folder" >&2
    exit 2
fi

failed() {
    local rc=$?
    echo "slurm_up: FAILED (exit $rc); daemon logs follow, then everything started is stopped" >&2
    for log in munge/munged.log log/slurmctld.log log/slurmd.log; do
        [ -s "$BASE/$log" ] && { echo "--- $BASE/$log" >&2; tail -n 25 "$BASE/$log" >&2; }
    done
    "$HERE/slurm_down.sh" "$BASE" >&2 || true
    exit "$rc"
}
trap failed ERR

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll every 0.2 s
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq $((seconds * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "slurm_up: timed out after ${seconds}s waiting for $what" >&2
    return 1
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Refuse to start a second cluster beside a running one: same ports, same /etc/slurm/slurm.conf.
for pidfile in "$BASE/munge/munged.pid" "$BASE/run/slurmctld.pid" "$BASE/run/slurmd.pid"; do
    if pid_alive "$pidfile"; then
        echo "slurm_up: $pidfile names a live process; run slurm_down.sh $BASE first" >&2
        exit 1
    fi
done
for port in 6817 6818; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "slurm_up: port $port is taken: another SLURM is running on this machine" >&2
        exit 1
    fi
done
if [ -e "$SYSCONF" ] && [ ! -L "$SYSCONF" ]; then
    echo "slurm_up: $SYSCONF is a real file (a site SLURM?); not replacing it" >&2
    exit 1
fi

mkdir -p "$BASE"/{etc,munge,state,spool,log,run}
rm -f "$BASE"/run/*.pid "$BASE/munge/munged.pid" "$MSOCK" "$MSOCK.lock"
chmod 0755 "$BASE"

# 1. munged as user munge, with its own key and socket. munged wants its folder writable by it
# alone and reachable by every user (0755, every parent searchable): a private parent folder
# (0700, e.g. pytest's tmp_path) makes it fail with "Socket is inaccessible".
chown munge:munge "$BASE/munge"
chmod 0755 "$BASE/munge"
if ! runuser -u munge -- test -x "$BASE/munge"; then
    echo "slurm_up: user munge cannot reach $BASE (a parent folder is private); use e.g. /tmp/x" >&2
    false
fi
if [ ! -s "$BASE/munge/munge.key" ]; then
    dd if=/dev/urandom of="$BASE/munge/munge.key" bs=1 count=1024 status=none
fi
chown munge:munge "$BASE/munge/munge.key"
chmod 0400 "$BASE/munge/munge.key"
runuser -u munge -- /usr/sbin/munged --socket="$MSOCK" --key-file="$BASE/munge/munge.key" \
    --pid-file="$BASE/munge/munged.pid" --log-file="$BASE/munge/munged.log" \
    --seed-file="$BASE/munge/munged.seed" --num-threads=10
check_munge() { munge -n -S "$MSOCK" | unmunge -S "$MSOCK"; }
wait_for 20 munged check_munge

# 2. slurm.conf for this host. slurmd -C reports the node as slurmd will see it (CPUs, sockets,
# cores, RealMemory in MB); keep 512 MB back for the daemons and the Snakemake main process.
NODE=$(slurmd -C | head -n 1)
case "$NODE" in
    "NodeName=$HOST "*) ;;
    *) echo "slurm_up: slurmd -C gave '$NODE', not NodeName=$HOST" >&2; false ;;
esac
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE")
NODE=$(sed "s/RealMemory=[0-9]*/RealMemory=$((MEM - 512))/" <<<"$NODE")
# The node offers OVERCOMMIT times its cores (SlurmdParameters=config_overrides below), as a
# cluster would have room for several runs' jobs at once: the tests' runs share this machine
# with each other anyway, and with SLURM counting only the real cores, their jobs waited in
# the queue for each other (~80 s of a 4-minute profile run) while the cores idled.
OVERCOMMIT=${OATH_SLURM_OVERCOMMIT:-4}
CPUS=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$NODE")
CORES=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$NODE")
NODE=$(sed -e "s/CPUs=[0-9]*/CPUs=$((CPUS * OVERCOMMIT))/" \
    -e "s/CoresPerSocket=[0-9]*/CoresPerSocket=$((CORES * OVERCOMMIT))/" <<<"$NODE")
# A GPU generic resource with no GPU behind it: jobs that ask for --gres=gpu:N are scheduled on
# it as on a GPU node, and run on the CPU. Two, so that two runs' GPU jobs fit. SLURM 22.05
# drops a GPU gres that names no file ("Removing file-less GPU"), so each names an empty
# placeholder file under DIR/dev (no device: with task/none nothing is bound to it).
GPUS=2
mkdir -p "$BASE/dev"
for i in $(seq 0 $((GPUS - 1))); do : >"$BASE/dev/gpu$i"; done
cat >"$BASE/etc/gres.conf" <<GRES
NodeName=$HOST Name=gpu File=$BASE/dev/gpu[0-$((GPUS - 1))]
GRES
cat >"$CONF" <<CONF
# Written by tests/cluster/slurm_up.sh: a one-node test cluster, state under $BASE.
ClusterName=oath
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MSOCK
CredType=cred/munge
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/run/slurmctld.pid
SlurmdPidFile=$BASE/run/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
# No cgroups here (no systemd): track job processes by parent PID, no CPU binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Cores and memory are consumable, so jobs share the node side by side. Without DefMemPerCPU a
# job that names no memory would take the whole node and jobs would run one at a time.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
SchedulerType=sched/backfill
GresTypes=gpu
# Take the node's cores from the line below, not from the hardware (see OVERCOMMIT above).
SlurmdParameters=config_overrides
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue for MinJobAge seconds: without slurmdbd (no sacct)
# squeue is how Snakemake learns that a job ended, so this must exceed its polling interval.
MinJobAge=600
# No accounting database: sacct does not work. Every finished job is still recorded, one line
# each, in the job completion file (the tests read it to show that SLURM ran the jobs).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/filetxt
JobCompLoc=$BASE/log/jobcomp.txt
$NODE Gres=gpu:$GPUS NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
# The same node as partition "gpu", for the README's GPU recipe (docs/cluster.md).
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
CONF
mkdir -p /etc/slurm
ln -sfn "$CONF" "$SYSCONF"
export SLURM_CONF=$CONF

# 3. slurmctld (-c: start clean, forget jobs of an earlier cluster in this folder), then slurmd.
/usr/sbin/slurmctld -c
ctld_up() { scontrol ping | grep -q 'is UP'; }
wait_for 30 slurmctld ctld_up
/usr/sbin/slurmd
node_ready() { sinfo -h -o %t | grep -qE '^(idle|mix|alloc)'; }
wait_for 30 "node $HOST to be idle" node_ready

trap - ERR
echo "slurm_up: cluster 'oath' up under $BASE (SLURM_CONF=$CONF, linked from $SYSCONF)"
sinfo
