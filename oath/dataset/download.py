"""Fetch the large inputs: the OATH tarball and the Inception-v4 checkpoint (oath.dataset.unpack
unpacks them).

``download`` streams a URL into ``<dest>.part``, resuming an interrupted transfer with an HTTP
``Range`` request, retrying transient failures a bounded number of times, and renaming the part
file onto ``dest`` only once the whole file is there and (when a checksum is given) verified.
A file at ``dest`` is therefore always complete; a ``.part`` file is what the next run resumes.

Every failure raises ``DownloadError``, whose message says what to download by hand and where
to save it, for users behind a proxy or offline compute nodes.
Only the standard library is used.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import shlex
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, TextIO

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20  # bytes per read and per hash update
RETRY_BACKOFF_S = 2.0  # first wait after a failed attempt; doubles each time
MAX_BACKOFF_S = 60.0
MAX_RESTARTS = 2  # how often a server may force a start from byte 0 (bad 206/416) per call
USER_AGENT = "oath-pipeline (Python urllib)"
PART_SUFFIX = ".part"

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)\s*/\s*(\d+|\*)", re.IGNORECASE)
_RETRY_HTTP_CODES = frozenset({408, 425, 429})


class DownloadError(RuntimeError):
    """A download or unpack failed; the message gives the cause and the manual fix.

    ``url`` and ``dest`` say what to fetch by hand and where to save it; ``cause`` is the bare
    reason (also in the message).
    """

    def __init__(
        self, cause: str, *, url: str | None = None, dest: str | Path | None = None
    ) -> None:
        self.cause = cause
        self.url = url
        self.dest = None if dest is None else Path(dest)
        super().__init__(_compose_message(cause, url, self.dest))


class _RestartFromZero(Exception):
    """The server cannot continue the part file; discard it and fetch from byte 0."""


class _Truncated(ConnectionError):
    """The server closed the connection before sending the announced number of bytes."""


def _compose_message(cause: str, url: str | None, dest: Path | None) -> str:
    text = cause.rstrip(". ") + "."
    if url and dest:
        command = f"curl -fL -o {shlex.quote(str(dest))} {shlex.quote(url)}"
        text += (
            f" Download {url} by hand and save it as {dest} (for example: {command}), "
            "then run again."
        )
    elif dest:
        text += f" Delete {dest}, download it again from its source, and run again."
    return text


def part_path(dest: str | Path) -> Path:
    """Where ``download`` keeps an unfinished transfer of ``dest``: ``<dest>.part``."""
    dest = Path(dest)
    return dest.with_name(dest.name + PART_SUFFIX)


def sha256_file(path: str | Path, chunk_size: int = CHUNK_SIZE) -> str:
    """SHA-256 of a file as lower-case hex, read in chunks (constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _normalise_digest(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    digest = sha256.strip().lower()
    if not _HEX_DIGEST.fullmatch(digest):
        raise ValueError(
            f"sha256 must be 64 hexadecimal digits, got {sha256!r}; "
            "copy the checksum exactly, or leave it unset to skip the check."
        )
    return digest


def _reason_of(exc: BaseException) -> BaseException | str:
    """The underlying error of a urllib failure (URLError wraps socket errors)."""
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return exc.reason
    return exc


def _is_transient(exc: BaseException) -> bool:
    """Worth another attempt: network trouble and server-side HTTP errors, not 404 or bad URLs."""
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in _RETRY_HTTP_CODES or exc.code >= 500
    reason = _reason_of(exc)
    if isinstance(reason, str):  # e.g. "unknown url type"
        return False
    return not isinstance(reason, ssl.SSLCertVerificationError)


def _describe(exc: BaseException, timeout: float) -> str:
    """One plain sentence for a network failure."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered HTTP {exc.code} {exc.reason}"
    reason = _reason_of(exc)
    if isinstance(reason, str):
        return reason
    if isinstance(reason, TimeoutError):
        return f"no answer from the server within {timeout:g} s (timed out)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused (the server is down, or the host or port in the URL is wrong)"
    if isinstance(reason, socket.gaierror):
        return f"cannot resolve the host name ({reason.strerror}); is there an internet connection?"
    if isinstance(reason, _Truncated):
        return str(reason)
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate check failed ({reason.verify_message})"
    if isinstance(reason, (ConnectionError, http.client.HTTPException)):
        return f"connection lost ({type(reason).__name__}: {reason})"
    return f"{type(reason).__name__}: {reason}"


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a ``Content-Range: bytes a-b/N`` header; None where absent."""
    match = _CONTENT_RANGE.fullmatch(header.strip()) if header else None
    if not match:
        return None, None
    first = int(match[1]) if match[1] else None
    total = int(match[3]) if match[3] != "*" else None
    return first, total


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Progress:
    """A throttled progress line on stderr: bytes, percent (when the size is known), MB/s.

    On a terminal one line is redrawn at most every 0.5 s; in a log file one line is written
    at most every 30 s, so cluster logs do not fill up. A final line is always written.
    """

    def __init__(self, label: str, total: int | None, start: int, stream: TextIO | None = None):
        self.label = label
        self.total = total
        self.start = start
        self.current = start
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.interval = 0.5 if self.tty else 30.0
        self.began = self.last = time.monotonic()
        self.width = 0

    def update(self, current: int) -> None:
        self.current = current
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._show(now, final=False)

    def close(self) -> None:
        self._show(time.monotonic(), final=True)

    def _line(self, now: float) -> str:
        rate = (self.current - self.start) / max(now - self.began, 1e-6) / 1e6
        done = self.current / 1e6
        if self.total:
            percent = 100.0 * self.current / self.total
            return (
                f"{self.label}: {done:.1f} / {self.total / 1e6:.1f} MB ({percent:.1f}%) "
                f"{rate:.1f} MB/s"
            )
        return f"{self.label}: {done:.1f} MB {rate:.1f} MB/s"

    def _show(self, now: float, *, final: bool) -> None:
        line = self._line(now)
        try:
            if self.tty:
                self.stream.write("\r" + line.ljust(self.width) + ("\n" if final else ""))
                self.width = len(line)
            else:
                self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # a closed or broken stderr must not fail the download
            pass


def _check_complete_after_416(
    exc: urllib.error.HTTPError, url: str, part: Path, offset: int, expected: str | None
) -> None:
    """A 416 to our resume: return if the part file is already whole, else start over."""
    _, total = _content_range(exc.headers.get("Content-Range"))
    exc.close()
    if total == offset:
        log.info("%s: %d bytes already in %s (HTTP 416 to resume); complete", url, offset, part)
        return
    if total is None and expected and sha256_file(part) == expected:
        log.info("%s: %s already holds the expected file (HTTP 416 to resume)", url, part)
        return
    raise _RestartFromZero(
        f"the server refused to resume at byte {offset} (HTTP 416, size "
        f"{'unknown' if total is None else total})"
    ) from None


def _copy_body(
    response: Any,
    part: Path,
    mode: str,
    offset: int,
    bar: _Progress | None,
    *,
    url: str,
    dest: Path,
) -> int:
    """Append (or write) the response body to the part file; return the bytes it now holds."""
    received = offset
    try:
        out = open(part, mode)
    except OSError as exc:
        raise DownloadError(
            f"cannot write {part} ({exc.strerror or exc})", url=url, dest=dest
        ) from None
    with out:
        while True:
            chunk = response.read(CHUNK_SIZE)  # network errors propagate to the caller
            if not chunk:
                break
            try:
                out.write(chunk)
            except OSError as exc:
                raise DownloadError(
                    f"cannot write {part} ({exc.strerror or exc})", url=url, dest=dest
                ) from None
            received += len(chunk)
            if bar is not None:
                bar.update(received)
        out.flush()
        os.fsync(out.fileno())
    return received


def _fetch_once(
    url: str, dest: Path, *, timeout: float, expected: str | None, progress: bool
) -> None:
    """One request: continue ``<dest>.part`` from its size (or from 0) until the server stops.

    Returns when the part file holds the whole file as far as the server's headers tell. Network
    failures propagate as OSError/HTTPException (the caller decides whether to retry); problems
    with the local file raise DownloadError at once.
    """
    part = part_path(dest)
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise
        _check_complete_after_416(exc, url, part, offset, expected)
        return

    with response:
        status = response.status or 200  # file:// URLs have no status
        length = _int_header(response.headers.get("Content-Length"))
        if status == 206:
            first, total = _content_range(response.headers.get("Content-Range"))
            if first is not None and first != offset:
                raise _RestartFromZero(f"the server resumed at byte {first}, not at {offset}")
            if total is None and length is not None:
                total = offset + length
            mode = "ab"
        else:
            if offset:
                log.info(
                    "%s: the server ignored the Range request (HTTP %d); starting over from 0",
                    url,
                    status,
                )
            offset, total, mode = 0, length, "wb"
        if offset:
            log.info("%s: resuming at byte %d of %s", url, offset, total or "unknown")

        bar = _Progress(dest.name, total, offset) if progress else None
        try:
            received = _copy_body(response, part, mode, offset, bar, url=url, dest=dest)
        finally:
            if bar is not None:
                bar.close()

    if total is not None and received < total:
        raise _Truncated(f"the connection closed after {received} of {total} bytes")
    if total is not None and received > total:
        raise _RestartFromZero(f"received {received} bytes, more than the announced {total}")


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    progress: bool = True,
) -> str:
    """Download ``url`` to ``dest`` resumably and return the file's SHA-256 (hex).

    Bytes go to ``<dest>.part``; an existing part file is continued with ``Range: bytes=N-``
    (206 appends; 200 means the server ignored the range, so the file restarts from 0; 416 means
    the part is already complete, which is checked, or unusable, so it restarts). Transient
    failures (timeouts, resets, short reads, HTTP 408/429/5xx) are retried up to ``retries``
    times with doubling waits, each time resuming. ``timeout`` bounds the connect and each read,
    in seconds. The computed SHA-256 is always logged. Only a complete file whose checksum
    matches ``sha256`` (when given) is renamed onto ``dest``; on a mismatch the part file is
    deleted and nothing is left at ``dest``. If ``dest`` already exists and matches ``sha256``,
    nothing is fetched.

    Raises DownloadError (message: cause, URL, destination, manual fix); ValueError for a
    malformed ``sha256`` or negative ``retries``.
    """
    dest = Path(dest)
    expected = _normalise_digest(sha256)
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, got {retries}")
    dest.parent.mkdir(parents=True, exist_ok=True)

    if expected and dest.is_file():
        digest = sha256_file(dest)
        if digest == expected:
            log.info(
                "%s: already present with the expected sha256 %s; not downloading", dest, digest
            )
            return digest
        log.warning(
            "%s: exists but its sha256 %s is not the expected %s; downloading again",
            dest,
            digest,
            expected,
        )
        dest.unlink()

    log.info("downloading %s to %s", url, dest)
    _fetch_with_retries(
        url, dest, timeout=timeout, expected=expected, retries=retries, progress=progress
    )
    return _verify_and_place(url, dest, expected)


def _fetch_with_retries(
    url: str, dest: Path, *, timeout: float, expected: str | None, retries: int, progress: bool
) -> None:
    """_fetch_once until the part file is whole: transient failures wait and resume."""
    part = part_path(dest)
    failures = restarts = 0
    while True:
        try:
            _fetch_once(url, dest, timeout=timeout, expected=expected, progress=progress)
            break
        except _RestartFromZero as exc:
            part.unlink(missing_ok=True)
            restarts += 1
            if restarts > MAX_RESTARTS:
                raise DownloadError(
                    f"{exc}, again after {MAX_RESTARTS} fresh starts", url=url, dest=dest
                ) from None
            log.warning("%s: %s; discarding %s and starting over", url, exc, part)
        except ValueError as exc:  # urllib's "unknown url type" and similar
            raise DownloadError(f"bad URL ({exc})", url=url, dest=dest) from None
        except (OSError, http.client.HTTPException) as exc:
            cause = _describe(exc, timeout)
            log.debug("%s: attempt failed", url, exc_info=True)
            if not _is_transient(exc):
                raise DownloadError(cause, url=url, dest=dest) from None
            failures += 1
            kept = part.stat().st_size if part.is_file() else 0
            if failures > retries:
                kept_note = (
                    f"; {kept} bytes kept in {part}, which the next run resumes" if kept else ""
                )
                raise DownloadError(
                    f"{cause}; gave up after {failures} attempt(s){kept_note}", url=url, dest=dest
                ) from None
            delay = min(RETRY_BACKOFF_S * 2 ** (failures - 1), MAX_BACKOFF_S)
            log.warning(
                "%s: %s; retry %d of %d in %.1f s%s",
                url,
                cause,
                failures,
                retries,
                delay,
                f", resuming at byte {kept}" if kept else "",
            )
            time.sleep(delay)


def _verify_and_place(url: str, dest: Path, expected: str | None) -> str:
    """Hash the part file; rename it onto ``dest`` when it matches ``expected`` (if given)."""
    part = part_path(dest)
    digest = sha256_file(part)
    log.info("%s: sha256 %s", dest, digest)
    if expected and digest != expected:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"checksum mismatch for {url}: expected sha256 {expected}, computed {digest}; "
            f"the downloaded file was deleted (the server's file changed, or the configured "
            f"checksum is wrong)",
            url=url,
            dest=dest,
        )
    os.replace(part, dest)
    log.info("%s: complete", dest)
    return digest


def archive_name(url: str) -> str:
    """File name an archive is saved under: the last part of its URL's path."""
    import urllib.parse

    name = Path(urllib.parse.urlparse(url).path).name
    if not name:
        raise ValueError(f"{url}: the URL names no file; give the archive's own URL")
    return name
