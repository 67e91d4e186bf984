"""oath.dataset.download against HTTP servers started here on 127.0.0.1: resume, checksums,
timeouts,
refused connections, and archives that try to write outside their folder. No real URL is used."""

from __future__ import annotations

import hashlib
import io
import random
import re
import socket
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oath.dataset import download as dl
from oath.dataset.download import DownloadError, download, part_path, sha256_file
from oath.dataset.unpack import UnsafeArchiveError, fetch_and_unpack, safe_extract

PAYLOAD = random.Random(1804).randbytes(300_000)
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()
CUT = 100_000
HANG_LIMIT_S = 5.0  # a hanging handler gives up by itself after this, even without teardown


@dataclass
class Behaviour:
    """What the test server does; tests change it before requesting."""

    payloads: dict[str, bytes] = field(default_factory=dict)
    cut_after: int | None = None  # send this many body bytes, then close the connection ...
    cut_requests: int = 1  # ... on this many first requests
    ignore_range: bool = False
    hang: bool = False  # accept the request and never answer
    ranges: list[str | None] = field(default_factory=list)  # Range header of each request
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


class Handler(BaseHTTPRequestHandler):
    """Serves in-memory payloads with Range support, and misbehaves as told."""

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        state: Behaviour = self.server.behaviour  # type: ignore[attr-defined]
        with state.lock:
            state.ranges.append(self.headers.get("Range"))
            number = len(state.ranges)
        if state.hang:
            state.release.wait(HANG_LIMIT_S)
            return
        data = state.payloads.get(self.path.lstrip("/"))
        if data is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and not state.ignore_range:
            start = int(match[1])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if state.cut_after is not None and number <= state.cut_requests:
            body = body[: state.cut_after]  # then the connection closes: a short read
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[Behaviour]:
    """A threaded HTTP server on 127.0.0.1 (free port) for one test, shut down afterwards."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state = Behaviour(payloads={"oath.tgz": PAYLOAD})
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.behaviour = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()  # let hanging handlers return
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """Retry waits of milliseconds instead of seconds."""
    monkeypatch.setattr(dl, "RETRY_BACKOFF_S", 0.01)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/oath.tgz"


# --- download -----------------------------------------------------------------------------


def test_a_cut_download_resumes_with_a_range_request(server, tmp_path):
    server.cut_after = CUT
    dest = tmp_path / "resources" / "oath.tgz"
    digest = download(server.url("oath.tgz"), dest, sha256=PAYLOAD_SHA, timeout=2, progress=False)
    assert server.ranges == [None, f"bytes={CUT}-"]
    assert digest == PAYLOAD_SHA
    assert dest.read_bytes() == PAYLOAD
    assert not part_path(dest).exists()


def test_a_run_that_gives_up_keeps_the_part_file_and_the_next_run_resumes(server, tmp_path):
    server.cut_after, server.cut_requests = CUT, 2
    dest = tmp_path / "oath.tgz"
    with pytest.raises(DownloadError, match="gave up after 2 attempt") as caught:
        download(server.url("oath.tgz"), dest, timeout=2, retries=1, progress=False)
    assert "next run resumes" in str(caught.value)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == PAYLOAD[: 2 * CUT]  # two cut requests, both kept

    assert download(server.url("oath.tgz"), dest, sha256=PAYLOAD_SHA, progress=False)
    assert server.ranges == [None, f"bytes={CUT}-", f"bytes={2 * CUT}-"]
    assert dest.read_bytes() == PAYLOAD


def test_a_server_ignoring_range_restarts_from_zero(server, tmp_path):
    server.ignore_range = True
    dest = tmp_path / "oath.tgz"
    part_path(dest).write_bytes(b"x" * CUT)  # stale bytes that must not survive
    assert download(server.url("oath.tgz"), dest, progress=False) == PAYLOAD_SHA
    assert server.ranges == [f"bytes={CUT}-"]
    assert dest.read_bytes() == PAYLOAD


def test_a_complete_part_file_answered_416_is_verified_and_kept(server, tmp_path):
    dest = tmp_path / "oath.tgz"
    part_path(dest).write_bytes(PAYLOAD)
    assert download(server.url("oath.tgz"), dest, sha256=PAYLOAD_SHA, progress=False)
    assert server.ranges == [f"bytes={len(PAYLOAD)}-"]
    assert dest.read_bytes() == PAYLOAD and not part_path(dest).exists()


def test_a_wrong_checksum_fails_and_leaves_nothing_behind(server, tmp_path):
    dest = tmp_path / "oath.tgz"
    wrong = "0" * 64
    with pytest.raises(DownloadError) as caught:
        download(server.url("oath.tgz"), dest, sha256=wrong, progress=False)
    message = str(caught.value)
    assert wrong in message and PAYLOAD_SHA in message and "mismatch" in message
    assert server.url("oath.tgz") in message and str(dest) in message
    assert not dest.exists() and not part_path(dest).exists()


def test_a_verified_file_already_in_place_is_not_fetched_again(server, tmp_path):
    dest = tmp_path / "oath.tgz"
    dest.write_bytes(PAYLOAD)
    assert download(server.url("oath.tgz"), dest, sha256=PAYLOAD_SHA.upper()) == PAYLOAD_SHA
    assert server.ranges == []


def test_a_server_that_never_answers_times_out_with_the_manual_fix(server, tmp_path):
    server.hang = True
    dest = tmp_path / "oath.tgz"
    began = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download(server.url("oath.tgz"), dest, timeout=0.5, retries=1, progress=False)
    elapsed = time.monotonic() - began
    message = str(caught.value)
    assert "timed out" in message and "gave up after 2 attempt" in message
    assert f"Download {server.url('oath.tgz')} by hand and save it as {dest}" in message
    assert len(server.ranges) == 2
    assert elapsed < 3.0, f"took {elapsed:.1f} s"
    assert not dest.exists() and not part_path(dest).exists()


def test_a_refused_connection_gives_the_manual_fix(tmp_path):
    url = closed_port_url()
    dest = tmp_path / "oath.tgz"
    with pytest.raises(DownloadError) as caught:
        download(url, dest, timeout=0.5, retries=1, progress=False)
    message = str(caught.value)
    assert "connection refused" in message
    assert f"Download {url} by hand and save it as {dest}" in message
    assert caught.value.url == url and caught.value.dest == dest
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no soup


def test_http_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.url("missing.tgz"), tmp_path / "x.tgz", retries=3, progress=False)
    assert len(server.ranges) == 1


def test_progress_goes_to_stderr_throttled_and_can_be_switched_off(server, tmp_path, capsys):
    download(server.url("oath.tgz"), tmp_path / "a.tgz")
    err = capsys.readouterr().err
    assert "a.tgz: 0.3 / 0.3 MB (100.0%)" in err and "MB/s" in err
    assert err.count("\n") == 1  # not a tty: just the final line for a fast download
    download(server.url("oath.tgz"), tmp_path / "b.tgz", progress=False)
    assert capsys.readouterr().err == ""


def test_the_checksum_is_logged(server, tmp_path, caplog):
    with caplog.at_level("INFO", logger="oath.dataset.download"):
        download(server.url("oath.tgz"), tmp_path / "a.tgz", progress=False)
    assert PAYLOAD_SHA in caplog.text


def test_a_file_url_works_for_local_mirrors(tmp_path):
    source = tmp_path / "mirror.tgz"
    source.write_bytes(PAYLOAD)
    dest = tmp_path / "copy.tgz"
    assert download(source.as_uri(), dest, sha256=PAYLOAD_SHA, progress=False) == PAYLOAD_SHA
    assert sha256_file(dest) == PAYLOAD_SHA


def test_a_malformed_checksum_is_refused_before_any_request(tmp_path):
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        download("http://127.0.0.1:9/never", tmp_path / "x", sha256="abc")


# --- safe_extract -------------------------------------------------------------------------

GOOD_FILES = {
    "oath/classifications/classifications.csv": b"class2,class6,picNum,label,angle\n0,0,1,arc,0\n",
    "oath/images/cropped_scaled/00001.png": b"\x89PNG fake",
    "oath/features/README": b"features\n",
}


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, io.BytesIO]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, io.BytesIO(data)


def write_tar(path: Path, members: list[tuple[tarfile.TarInfo, io.BytesIO | None]]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            archive.addfile(info, data)
    return path


def special(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def good_tarball(path: Path) -> Path:
    folder = tarfile.TarInfo("oath")
    folder.type = tarfile.DIRTYPE
    folder.mode = 0o755
    return write_tar(path, [(folder, None)] + [file_member(n, d) for n, d in GOOD_FILES.items()])


def test_a_normal_tgz_unpacks_to_the_expected_tree(tmp_path):
    tarball = good_tarball(tmp_path / "oath.tgz")
    target = tmp_path / "data"
    names = safe_extract(tarball, target)
    assert names == ["oath", *GOOD_FILES]
    found = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()}
    assert found == set(GOOD_FILES)
    for name, data in GOOD_FILES.items():
        assert (target / name).read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "oath.tgz"]  # no staging left


def test_fetch_and_unpack_over_http(server, tmp_path):
    tgz = good_tarball(tmp_path / "made.tgz").read_bytes()
    server.payloads["oath_v1.1.tgz"] = tgz
    target = tmp_path / "resources" / "oath"
    names = fetch_and_unpack(
        server.url("oath_v1.1.tgz"),
        tmp_path / "resources" / "oath.tgz",
        target,
        sha256=hashlib.sha256(tgz).hexdigest(),
        progress=False,
    )
    assert len(names) == 4
    assert (target / "oath/images/cropped_scaled/00001.png").read_bytes() == b"\x89PNG fake"


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (lambda tmp: file_member("../evil", b"pwned"), "outside the target"),
        (lambda tmp: file_member("oath/../../evil", b"pwned"), "outside the target"),
        (lambda tmp: file_member(str(tmp / "abs_evil"), b"pwned"), "absolute path"),
        (lambda tmp: special("oath/link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (lambda tmp: special("oath/hard", tarfile.LNKTYPE, "oath/a.txt"), "hard link"),
        (lambda tmp: special("oath/fifo", tarfile.FIFOTYPE), "FIFO"),
        (lambda tmp: special("oath/tty", tarfile.CHRTYPE), "device file"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "hardlink", "fifo", "device"],
)
def test_an_unsafe_member_is_refused_and_nothing_is_written(tmp_path, member, reason):
    info, data = member(tmp_path)
    tarball = write_tar(tmp_path / "bad.tgz", [file_member("oath/a.txt", b"fine"), (info, data)])
    with tarfile.open(tarball) as check:
        assert check.getnames()[1] == info.name  # the archive really holds that name
    target = tmp_path / "unpacked"
    with pytest.raises(UnsafeArchiveError) as caught:
        safe_extract(tarball, target, url="http://127.0.0.1:9/bad.tgz")
    message = str(caught.value)
    assert repr(info.name) in message and reason in message and str(tarball) in message
    assert "http://127.0.0.1:9/bad.tgz" in message
    assert caught.value.member == info.name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tgz"]  # not even oath/a.txt
    assert not (tmp_path.parent / "evil").exists()


def test_a_non_empty_target_is_left_alone(tmp_path):
    tarball = good_tarball(tmp_path / "oath.tgz")
    target = tmp_path / "data"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        safe_extract(tarball, target)
    assert [p.name for p in target.iterdir()] == ["mine.txt"]


def test_a_truncated_tarball_is_reported_as_damaged_and_nothing_is_left(tmp_path):
    whole = good_tarball(tmp_path / "whole.tgz").read_bytes()
    tarball = tmp_path / "cut.tgz"
    tarball.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DownloadError, match="damaged or incomplete"):
        safe_extract(tarball, tmp_path / "data")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.tgz", "whole.tgz"]


def test_a_leftover_staging_folder_is_cleaned_up(tmp_path):
    tarball = good_tarball(tmp_path / "oath.tgz")
    stale = tmp_path / ".data.unpacking-1-dead"
    (stale / "oath").mkdir(parents=True)
    safe_extract(tarball, tmp_path / "data")
    assert not stale.exists()
