"""Atomic file writes: readers never see a half-written file (temp file, fsync, rename)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


def write_atomic(path: str | os.PathLike, writer: Callable[[IO[bytes]], Any], mode: int = 0o644) -> Path:
    """Call ``writer(fileobj)`` on a temp file beside ``path``, fsync it, rename it over ``path``.
    ``mode``: 0o644 by default, because VisualDL and the monitor (other users, other containers)
    read these files; 0o600 for a file that holds a secret."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # before any byte is written: a secret is never readable
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int = 0o644) -> Path:
    return write_atomic(path, lambda fh: fh.write(data), mode)


def write_json_atomic(path: str | os.PathLike, obj: Any, mode: int = 0o644) -> Path:
    data = json.dumps(obj, indent=2, allow_nan=False, default=str).encode("utf-8")
    return write_bytes_atomic(path, data + b"\n", mode)


def _fsync_dir(directory: Path) -> None:
    # The rename itself is durable only once the directory entry is flushed.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
