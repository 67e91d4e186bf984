"""bench/harness.py: what every benchmark script measures with must measure the right thing."""

import resource
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import harness  # noqa: E402


def test_each_child_gets_its_own_cpu_and_peak_memory():
    # Linux carries a process's peak RSS into its children, across exec: a child's reported
    # peak is at least this process's (a pytest worker's, whatever its earlier tests left), so
    # the hungry child takes 0.2 GiB beyond that floor to be seen.
    floor = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    burn = (
        f"b = bytearray({int((floor + 0.2) * 2**30)}); b[:: 4096] = b'x' * len(b[:: 4096]); "
        "sum(range(10**7)); print('hungry')"
    )
    hungry, idle = harness.run_children([["-c", burn], ["-c", "import time; time.sleep(0.3)"]])
    assert hungry.stdout == "hungry\n"
    assert hungry.cpu > 0.1 and hungry.peak_gib > floor + 0.15
    # wait4 on each child: the other's CPU and memory are not counted in (RUSAGE_CHILDREN
    # would); the idle child shows the inherited floor only
    assert idle.cpu < hungry.cpu
    assert idle.peak_gib < max(0.1, 1.01 * idle.parent_peak_gib) < hungry.peak_gib
    assert 0.3 <= idle.wall and 0 <= hungry.others <= 1


def test_a_failed_child_ends_the_benchmark_with_its_error(capsys):
    with pytest.raises(SystemExit, match="exit code 3"):
        harness.run_child(["-c", "import sys; print('what went wrong', file=sys.stderr); exit(3)"])
    assert "what went wrong" in capsys.readouterr().err


def test_a_logged_child_appends_both_streams_and_names_the_log(tmp_path, capsys):
    log = tmp_path / "terminal.txt"
    log.write_text("earlier run\n")
    talk = "import sys; print('out', flush=True); print('err', file=sys.stderr)"
    child = harness.run_child(["-c", talk], log=log)
    assert (child.stdout, child.stderr) == ("", "")
    assert log.read_text() == "earlier run\nout\nerr\n"
    with pytest.raises(SystemExit, match=f"exit code 1 \\(its output: {log}\\)"):
        harness.run_child(["-c", "raise ValueError('bad input')"], log=log)
    assert "ValueError: bad input" in capsys.readouterr().err


def test_child_env_imports_the_checkout():
    env = harness.child_env(EXTRA="1")
    assert env["PYTHONPATH"].split(":")[0] == str(harness.REPO) and env["EXTRA"] == "1"
    child = harness.run_child(["-c", "import oath; print(oath.__file__)"], env, cwd="/")
    assert child.stdout.strip() == str(harness.REPO / "oath" / "__init__.py")


def test_timed_counts_this_process():
    with harness.timed() as block:
        touched = bytearray(64 * 2**20)
        touched[::4096] = b"x" * len(touched[::4096])
    assert block.wall > 0 and block.cpu > 0 and block.minor_faults > 10_000


def test_markdown_table(capsys):
    harness.print_table(
        [
            {"mode": "float32", "s/image": 0.25, "jobs": 3},
            {"mode": "bf16", "s/image": 1.5, "jobs": 12},
        ],
        {"mode": "", "s/image": ".3f", "jobs": "d"},
    )
    assert capsys.readouterr().out.splitlines() == [
        "| mode    | s/image | jobs |",
        "| ------- | ------: | ---: |",
        "| float32 |   0.250 |    3 |",
        "| bf16    |   1.500 |   12 |",
    ]


def test_cpu_description_names_the_bfloat16_instructions(monkeypatch):
    monkeypatch.setattr(harness, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert harness.cpu_description().endswith("logical CPUs, bfloat16 instructions: amx_bf16")
    monkeypatch.setattr(harness, "cpu_flags", lambda: {"avx2"})
    assert harness.cpu_description().endswith("no avx512_bf16 / amx_bf16")


def test_the_standard_options_and_the_idle_wait(monkeypatch, capsys):
    parser = harness.argument_parser(
        "First line.\n\nMore.", images=(64, "per shard"), batch_size=16
    )
    args = parser.parse_args(["--batch-size", "4", "--wait-idle", "0"])
    assert (args.images, args.batch_size, args.wait_idle) == (64, 4, 0)
    assert 0 <= harness.wait_until_idle(0, window=0.2) <= 1.5
    waits = []
    monkeypatch.setattr(harness, "wait_until_idle", lambda s: waits.append(s) or 0.6)
    assert harness.wait_for_idle(args) == 0.6 and waits == [0]
    assert "still 60% busy" in capsys.readouterr().out
