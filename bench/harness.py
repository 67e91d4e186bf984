"""What every benchmark under bench/ shares: the checkout, an idle wait, timing, the CPU, tables.

A bench script imports it as ``import harness`` (Python puts the script's folder first on the
path) and keeps only what it measures:

- :data:`REPO`, the checkout; importing this module makes ``import oath`` work from it even
  outside the project's virtualenv, and :func:`child_env` does the same for child processes;
- :func:`argument_parser` (or :func:`add_wait_idle_option`) and :func:`wait_for_idle`: the
  standard ``--wait-idle SECONDS`` option, and the wait before the first timing, which prints
  how busy the machine was;
  :func:`busy_cpu_seconds` and :func:`wait_until_idle` underneath;
- :func:`run_child` / :func:`run_children`: Python children in fresh processes, each with its
  wall time, its own CPU seconds and peak RSS (``wait4`` on that child only), its output, and
  how much of the machine other processes used meanwhile;
- :func:`timed`: a block timed in this process (wall, CPU, kernel seconds, minor page faults);
- :func:`cpu_description`: the CPU model, logical CPUs and its bfloat16 instructions;
- :func:`print_table`: rows printed as a Markdown table, ready for docs/performance.md.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the checkout's oath, also where it is not installed
    sys.path.insert(1, str(REPO))

IDLE_THRESHOLD = 0.15
"""Share of the CPUs other work may use for the machine to count as idle."""
DEFAULT_WAIT_IDLE = 240.0
"""Seconds ``--wait-idle`` waits at most by default."""
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""The /proc/cpuinfo flags of the instructions TensorFlow's bfloat16 path needs on a CPU."""


# ------------------------------------------------------------------------------------------
# Idle wait
# ------------------------------------------------------------------------------------------
def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (from /proc/stat); NaN if unknown."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_until_idle(
    max_wait: float, threshold: float = IDLE_THRESHOLD, window: float = 3.0, pause: float = 10.0
) -> float:
    """Wait (up to ``max_wait`` s) until the machine uses under ``threshold`` of its CPUs.

    Measures ``window`` seconds at a time, ``pause`` seconds apart; returns the share of the
    CPUs in use in the last window (at least one window is measured, even for ``max_wait`` 0).
    """
    deadline = time.time() + max_wait
    while True:
        before = busy_cpu_seconds()
        time.sleep(window)
        busy = (busy_cpu_seconds() - before) / (window * (os.cpu_count() or 1))
        if busy < threshold or time.time() + pause > deadline:
            return busy
        time.sleep(pause)


def add_wait_idle_option(
    parser: argparse.ArgumentParser, default: float = DEFAULT_WAIT_IDLE, when: str = "first"
) -> None:
    """Add the standard ``--wait-idle SECONDS`` option (``when``: before which timing)."""
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=default,
        metavar="SECONDS",
        help=f"before {'each' if when == 'each' else 'the first'} timing, wait up to SECONDS "
        "for other work to fall under "
        f"{IDLE_THRESHOLD:.0%} of the CPUs; 0 only measures how busy the machine is "
        f"(default {default:g})".replace("%", "%%"),
    )


def argument_parser(
    doc: str, wait_when: str = "first", **int_options: int | tuple[int, str]
) -> argparse.ArgumentParser:
    """A bench script's parser: its docstring's first line as description, ``--wait-idle``,
    and an integer option per keyword (``batch_size=16`` adds ``--batch-size``, default 16;
    ``images=(64, "images per shard")`` adds a help text too)."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    for name, value in int_options.items():
        default, text = value if isinstance(value, tuple) else (value, "")
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=default,
            help=f"{text} (default {default})".lstrip(),
        )
    add_wait_idle_option(parser, when=wait_when)
    return parser


def wait_for_idle(args: argparse.Namespace) -> float:
    """Wait as ``--wait-idle`` says, print how busy the machine was, return that share."""
    started = time.time()
    busy = wait_until_idle(args.wait_idle)
    waited = time.time() - started
    cpus = os.cpu_count() or 1
    if busy < IDLE_THRESHOLD:
        print(f"idle wait: other work used {busy:.0%} of the {cpus} CPUs (waited {waited:.0f} s)")
    else:
        print(
            f"idle wait: the machine was still {busy:.0%} busy ({cpus} CPUs) after {waited:.0f} s;"
            " figures from this run are not for quoting (rerun with a longer --wait-idle)"
        )
    sys.stdout.flush()
    return busy


# ------------------------------------------------------------------------------------------
# Child processes
# ------------------------------------------------------------------------------------------
def child_env(**extra: str) -> dict[str, str]:
    """This process's environment for a Python child that imports the checkout's ``oath``:
    ``PYTHONPATH`` starts with :data:`REPO`, TensorFlow's C++ log says warnings and errors
    only (unless set already); ``extra`` variables are set on top."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


@dataclass(frozen=True)
class ChildRun:
    """One child process, measured from outside.

    ``peak_gib`` is the kernel's maximum RSS of the child (``wait4``); Linux counts the
    parent's own peak at the moment of the spawn into it, so for a child of a large parent
    measure inside the child (its ``VmHWM``) instead; ``parent_peak_gib`` says that floor.
    """

    start: float  # epoch seconds at the spawn
    wall: float
    cpu: float  # the child's user + system seconds (its own threads, not its children's)
    peak_gib: float
    parent_peak_gib: float
    others: float  # share of all CPUs other processes used while the children ran
    stdout: str
    stderr: str = field(repr=False)

    @property
    def end(self) -> float:
        return self.start + self.wall


def _reap(proc: subprocess.Popen) -> tuple[float, bytes, resource.struct_rusage]:
    """Read a child's stdout to the end and reap it: its end time, stdout and own usage."""
    stdout = proc.stdout.read() if proc.stdout else b""
    # wait4 gives this child's own usage and peak RSS (RUSAGE_CHILDREN would be the max over
    # all children so far).
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stdout:
        proc.stdout.close()
    return end, stdout, usage


def run_children(
    argvs: Sequence[Sequence[str]],
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log: str | Path | None = None,
) -> list[ChildRun]:
    """Run Python children side by side (``sys.executable`` + each argv) and measure each.

    Each child's stdout is read whole by its own thread, which reaps it when it ends; stderr
    goes to a temporary file. With ``log``, both streams are appended to that file as they
    come instead (a long run can be followed there) and come back empty. A child that fails
    ends the benchmark with its command and the tail of its stderr.
    """
    env = dict(child_env() if env is None else env)
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    with tempfile.TemporaryDirectory(prefix="bench_child_") as tmp, ExitStack() as files:
        if log is None:
            outputs = [
                files.enter_context(open(Path(tmp) / f"{i}.err", "w+b")) for i in range(len(argvs))
            ]
        else:
            outputs = [files.enter_context(open(log, "a+b"))] * len(argvs)
        busy_before = busy_cpu_seconds()
        starts, procs = [], []
        for argv, output in zip(argvs, outputs, strict=True):
            starts.append(time.time())
            stdout = subprocess.PIPE if log is None else output
            procs.append(
                subprocess.Popen(
                    [sys.executable, *argv], stdout=stdout, stderr=output, env=env, cwd=cwd
                )
            )
        with ThreadPoolExecutor(max_workers=len(procs)) as pool:
            reaped = list(pool.map(_reap, procs))
        busy = busy_cpu_seconds() - busy_before
        errors = []
        for argv, proc, output in zip(argvs, procs, outputs, strict=True):
            output.seek(0)
            text = output.read().decode(errors="replace")
            errors.append("" if log else text)
            if proc.returncode != 0:
                sys.stderr.write(text[-4000:])
                where = f" (its output: {log})" if log else ""
                raise SystemExit(
                    f"child {list(argv)} failed with exit code {proc.returncode}{where}"
                )
    own = sum(usage.ru_utime + usage.ru_stime for _, _, usage in reaped)
    window = max(end for end, _, _ in reaped) - min(starts)
    others = max(0.0, busy - own) / (window * (os.cpu_count() or 1))
    return [
        ChildRun(
            start=start,
            wall=end - start,
            cpu=usage.ru_utime + usage.ru_stime,
            peak_gib=usage.ru_maxrss / 2**20,  # ru_maxrss is in KiB on Linux
            parent_peak_gib=parent_peak,
            others=others,
            stdout=stdout.decode(),
            stderr=error,
        )
        for start, (end, stdout, usage), error in zip(starts, reaped, errors, strict=True)
    ]


def run_child(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log: str | Path | None = None,
) -> ChildRun:
    """Run one Python child (``sys.executable`` + ``argv``); see :func:`run_children`."""
    return run_children([argv], env, cwd, log)[0]


# ------------------------------------------------------------------------------------------
# In-process timing
# ------------------------------------------------------------------------------------------
@dataclass
class Timing:
    """A block timed in this process; filled in when the block ends."""

    wall: float = math.nan
    cpu: float = math.nan  # user + system seconds of this process (all its threads)
    system: float = math.nan  # kernel seconds alone
    minor_faults: int = 0


@contextmanager
def timed() -> Iterator[Timing]:
    """Time the ``with`` block: ``with timed() as t: ...``, then ``t.wall``, ``t.cpu``, ..."""
    timing = Timing()
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    try:
        yield timing
    finally:
        timing.wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        timing.system = after.ru_stime - before.ru_stime
        timing.cpu = after.ru_utime - before.ru_utime + timing.system
        timing.minor_faults = after.ru_minflt - before.ru_minflt


# ------------------------------------------------------------------------------------------
# The machine and the output
# ------------------------------------------------------------------------------------------
def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where unknown)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_description() -> str:
    """The CPU in one line: model, logical CPUs, and which bfloat16 instructions it has."""
    from oath.network.device import cpu_model

    flags = cpu_flags()
    bf16 = [name for name in BF16_FLAGS if name in flags]
    has = f"bfloat16 instructions: {', '.join(bf16)}" if bf16 else "no avx512_bf16 / amx_bf16"
    return f"{cpu_model()}, {os.cpu_count()} logical CPUs, {has}"


def print_table(rows: Sequence[Mapping[str, object]], columns: Mapping[str, str]) -> None:
    """Print ``rows`` as a Markdown table.

    ``columns`` maps each column's header (a key of every row) to its format spec (``".3f"``,
    ``""`` for as is); columns of numbers are right-aligned.
    """
    cells = [[format(row[name], spec) for name, spec in columns.items()] for row in rows]
    numeric = [
        all(isinstance(row[name], int | float) for row in rows) and bool(rows) for name in columns
    ]
    widths = [
        max([len(name), 3, *(len(line[i]) for line in cells)]) for i, name in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        padded = [
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * (w - 1) + (":" if right else "-") for w, right in zip(widths, numeric, strict=True)
    ]
    print(line(list(columns)))
    print(line(rule))
    for values in cells:
        print(line(values))
    sys.stdout.flush()
