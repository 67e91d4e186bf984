#!/usr/bin/env bash
# Status command of profiles/generic: prints exactly one of success, failed, running for the
# SLURM job id given as the only argument (snakemake-executor-plugin-cluster-generic calls it
# for every submitted job, every few seconds). Other schedulers: map their states the same way
# (PBS: qstat -f; LSF: bjobs; HTCondor: condor_q / condor_history).
set -uo pipefail

jobid=${1:?usage: status.sh SLURM_JOB_ID}

# squeue knows running jobs and, for MinJobAge seconds (slurm.conf, default 300), finished ones.
if out=$(squeue --noheader --jobs="$jobid" --states=all --format=%T 2>&1); then
    state=$(head -n 1 <<<"$out")
elif grep -q 'Invalid job id' <<<"$out"; then
    state=""  # no longer known to slurmctld
else
    # slurmctld busy or restarting: say running and let Snakemake ask again later.
    echo "status.sh: squeue failed for job $jobid: $out" >&2
    echo running
    exit 0
fi

# Aged out of squeue: ask the accounting database (works only where slurmdbd runs).
if [ -z "$state" ]; then
    state=$(sacct --noheader --parsable2 --allocations --jobs="$jobid" --format=State \
        2>/dev/null | head -n 1)
    state=${state%% *}  # "CANCELLED by 0" -> CANCELLED
fi

case "$state" in
    COMPLETED)
        echo success ;;
    PENDING | CONFIGURING | RUNNING | COMPLETING | SUSPENDED | REQUEUED | REQUEUE_FED | \
        REQUEUE_HOLD | RESIZING | RESV_DEL_HOLD | SIGNALING | STAGE_OUT | STOPPED)
        echo running ;;
    "")
        # Neither squeue nor sacct knows the job: its outcome is lost. Report a failure, so
        # that Snakemake checks and redoes it rather than trusting outputs nobody vouched for.
        echo "status.sh: job $jobid unknown to squeue and sacct" >&2
        echo failed ;;
    *)
        # FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, PREEMPTED, BOOT_FAIL, DEADLINE
        echo failed ;;
esac
