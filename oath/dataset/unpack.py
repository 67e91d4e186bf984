"""Unpack the downloaded archives safely.

``safe_extract`` unpacks a tar archive only after checking every member: no absolute paths, no
``..`` escapes, no links, no device files. It unpacks into a hidden sibling folder and renames
that into place, so an interrupted unpack never leaves a half-filled target. Failures raise
``UnsafeArchiveError`` or ``DownloadError`` (oath.dataset.download), whose messages say what to
fetch by
hand and where to put it.
"""

from __future__ import annotations

import gzip
import logging
import os
import secrets
import shutil
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path, PureWindowsPath

from oath.dataset.download import DownloadError, download

log = logging.getLogger(__name__)

_UNPACK_MARK = ".unpacking-"


class UnsafeArchiveError(DownloadError):
    """An archive member would write outside the target or is a link/device; nothing unpacked."""

    def __init__(
        self,
        cause: str,
        *,
        member: str | None = None,
        archive: str | Path | None = None,
        url: str | None = None,
    ) -> None:
        self.member = member
        self.archive = None if archive is None else Path(archive)
        super().__init__(cause, url=url, dest=archive)


def _unsafe_reason(member: tarfile.TarInfo, root: str) -> str | None:
    """Why a member must not be unpacked under ``root``, or None if it is a plain file/folder."""
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name) or PureWindowsPath(name).drive:
        return "has an absolute path"
    joined = os.path.normpath(os.path.join(root, name))
    if os.path.commonpath([root, joined]) != root:
        return "points outside the target folder (..)"
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device file"
    if member.isfifo():
        return "is a FIFO"
    if not (member.isfile() or member.isdir()):
        return f"has an unsupported type ({member.type!r})"
    return None


_ARCHIVE_READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


def safe_extract(tarball: str | Path, target: str | Path, *, url: str | None = None) -> list[str]:
    """Unpack a .tar/.tgz/.tar.gz (or .tar.bz2/.tar.xz) into ``target``; return member names.

    Every member is checked before anything is written: absolute names, names escaping
    ``target``, symbolic and hard links, devices and FIFOs are refused with UnsafeArchiveError
    naming the member and the archive. The archive is then unpacked with tarfile's ``data``
    filter into a hidden sibling folder, which is renamed onto ``target`` at the end; an
    interrupted unpack leaves no partial ``target`` (a leftover hidden folder is removed by the
    next call). ``target`` must not exist or be an empty folder. ``url``, when given, is named in
    error messages as where to fetch the archive again.
    """
    tarball = Path(tarball)
    target = Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(
            f"{target}: exists and is not an empty folder; delete it (or choose another target) "
            f"to unpack {tarball} there."
        )
    try:
        archive = tarfile.open(tarball, "r:*")
    except FileNotFoundError:
        raise DownloadError(f"{tarball}: no such file", url=url, dest=tarball) from None
    except (*_ARCHIVE_READ_ERRORS, OSError) as exc:
        raise DownloadError(
            f"{tarball}: not a readable tar archive ({exc}); it is damaged or incomplete",
            url=url,
            dest=tarball,
        ) from None
    with archive:
        try:
            members = archive.getmembers()
        except (*_ARCHIVE_READ_ERRORS, OSError) as exc:
            raise DownloadError(
                f"{tarball}: damaged or incomplete tar archive ({exc})", url=url, dest=tarball
            ) from None
        root = os.path.abspath(target)
        refused = [(m.name, reason) for m in members if (reason := _unsafe_reason(m, root))]
        if refused:
            listed = "; ".join(f"member {name!r} {reason}" for name, reason in refused[:5])
            more = f" (and {len(refused) - 5} more)" if len(refused) > 5 else ""
            raise UnsafeArchiveError(
                f"{tarball}: refusing to unpack into {target}: {listed}{more}; nothing was "
                "written. This is not the archive the workflow expects",
                member=refused[0][0],
                archive=tarball,
                url=url,
            )

        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(f".{target.name}{_UNPACK_MARK}*"):
            log.warning("removing %s, left by an interrupted unpack", stale)
            shutil.rmtree(stale, ignore_errors=True)
        staging = (
            target.parent / f".{target.name}{_UNPACK_MARK}{os.getpid()}-{secrets.token_hex(4)}"
        )
        staging.mkdir()
        log.info("unpacking %s (%d members) into %s", tarball, len(members), target)
        try:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(staging, members=members, filter="data")
            else:  # Python < 3.11.4: the checks above already refused what the filter would
                archive.extractall(staging, members=members)
            if target.is_dir():
                target.rmdir()  # empty, checked above; fails loudly if something appeared
            staging.rename(target)
        except _ARCHIVE_READ_ERRORS as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise DownloadError(
                f"{tarball}: damaged or incomplete tar archive ({exc}); nothing was unpacked",
                url=url,
                dest=tarball,
            ) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    log.info("unpacked %s into %s", tarball, target)
    return [m.name for m in members]


def fetch_and_unpack(
    url: str,
    tarball: str | Path,
    target: str | Path,
    *,
    sha256: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    progress: bool = True,
) -> list[str]:
    """``download`` the archive at ``url`` to ``tarball``, then ``safe_extract`` it to ``target``.

    A ``tarball`` already present with the expected ``sha256`` is not fetched again. Returns the
    unpacked member names.
    """
    download(url, tarball, sha256=sha256, timeout=timeout, retries=retries, progress=progress)
    return safe_extract(tarball, target, url=url)


def unpack_expecting(
    archive: str | Path, target: str | Path, expected: Sequence[str | Path]
) -> list[str]:
    """:func:`safe_extract`, then check the archive held the files the workflow promised."""
    members = safe_extract(archive, target)
    missing = [str(path) for path in expected if not Path(path).exists()]
    if missing:
        raise DownloadError(
            f"{archive} unpacked to {target} but holds no {', '.join(missing)}; the archive "
            "is not the expected one",
            dest=archive,
        )
    return members
