"""Write files so that nobody, the next workflow run included, ever reads half of one.

Every writer in the package goes through :func:`atomic_path`: the content goes to a temporary
file beside the target, which is renamed into place only once complete, and removed when
writing fails. The temporary name is unique to the writing process, and the file is opened
normally (not with ``mkstemp``), so the result gets the usual permissions under the umask.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; rename it into place on success.

    The parent folder is created. ``suffix`` ends the temporary name, for writers that choose
    the format by extension.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: dict[str, Any]) -> None:
    """Standard JSON (no NaN or Infinity), one key a line."""
    write_text(path, json.dumps(obj, indent=1, allow_nan=False) + "\n")
