"""Atomic file writes: the one way qpt_nb writes a file that must never be half-written.

Write to a temporary file in the same folder, fsync, then ``os.replace`` (atomic on
POSIX and Windows), so a reader sees the old file or the new one, never a mix, and
a killed writer leaves the old file intact. Checkpoints, label caches, metrics,
configs and benchmark results all go through here.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> None:
    """Writes `data` to `path` atomically (tmp file in the same folder + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def save_json(path, obj) -> None:
    """Writes `obj` as indented, key-sorted JSON, atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
