"""A job's terminal shows one summary line; library chatter goes to its log file, not away."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_job(tmp_path, body: str) -> tuple[subprocess.CompletedProcess, str]:
    log = tmp_path / "job.log"
    code = textwrap.dedent(
        f"""
        import os, warnings
        from oath.logs import log_to_file, summary
        log_to_file({str(log)!r})
        """
    ) + textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return done, log.read_text()


def test_library_output_goes_to_the_log_and_the_summary_to_the_terminal(tmp_path):
    done, log = run_job(
        tmp_path,
        """
        os.write(2, b"E0000 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\\n")
        warnings.warn("Ill-conditioned matrix (rcond=1e-9): result may not be accurate.")
        print("a library's print")
        summary("extract_shard 00000-00255: 256 images")
        """,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert done.stderr == "oath: extract_shard 00000-00255: 256 images\n"
    assert "failed call to cuInit" in log
    assert "Ill-conditioned matrix" in log and "UserWarning" in log
    assert "a library's print" in log
    assert "extract_shard 00000-00255: 256 images" in log


def test_a_failing_job_names_its_error_on_the_terminal_and_logs_the_traceback(tmp_path):
    done, log = run_job(tmp_path, "raise ValueError('shard.h5: no Logits dataset')")
    assert done.returncode != 0
    assert "oath: failed: shard.h5: no Logits dataset" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Traceback" in log and "shard.h5: no Logits dataset" in log


def test_repeated_warnings_are_counted_once_in_the_log(tmp_path):
    done, log = run_job(
        tmp_path,
        """
        from scipy.linalg import LinAlgWarning
        for rcond in (1e-9, 2e-9, 3e-9):
            warnings.warn(f"Ill-conditioned matrix (rcond={rcond})", LinAlgWarning)
        """,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert log.count("Ill-conditioned matrix") == 1
    assert "3 LinAlgWarning warning(s): ill-conditioned ridge solves" in log
