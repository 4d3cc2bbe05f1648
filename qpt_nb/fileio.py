"""Atomic file writes: the one way qpt_nb writes a file that must never be half-written.

Write to a temporary file in the same folder, fsync, then ``os.replace`` (atomic on
POSIX and Windows), so a reader sees the old file or the new one, never a mix, and
a killed writer leaves the old file intact. Checkpoints, label caches, metrics,
configs and benchmark results all go through here.

Caches whose silent corruption would change results (the Hessians of the normal-mode
sampler) use `save_npy_checksummed` / `load_npy_checksummed`: an ``.npy`` plus a
``.sha256`` sidecar, verified on every read (`ChecksumError` on a mismatch).
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


def read_json(path, *, missing: str):
    """The JSON in `path`: FileNotFoundError with the message `missing` when there is no such
    file, ValueError naming the path when it is not valid JSON (e.g. truncated)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(missing)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON (truncated?): {exc}") from None


# ----------------------------------------------------------------------------- checksummed arrays
class ChecksumError(ValueError):
    """A checksummed file that is unreadable, not what it should be, or whose SHA-256
    does not match; the message names the file and the reason."""


def checksum_path(path) -> Path:
    """The SHA-256 sidecar of `path`: ``<path>.sha256`` (``sha256sum`` format)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def save_npy_checksummed(path, array) -> str:
    """Writes `array` as ``.npy`` to `path` atomically, then its SHA-256 to
    `checksum_path(path)` (also atomically; ``sha256sum -c`` can verify it). Returns the
    hex digest. A reader that finds a mismatch treats the file as invalid."""
    import hashlib
    import io

    import numpy as np

    path = Path(path)
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    atomic_write_text(checksum_path(path), f"{digest}  {path.name}\n")
    return digest


def load_npy_checksummed(path, *, require_checksum: bool = False):
    """(array, verified) from a file written by `save_npy_checksummed`.

    The bytes are read once, hashed and parsed (no pickles). `verified` is False for a
    file without a sidecar (written before checksums; accepted unless `require_checksum`).
    Raises ChecksumError naming the file and the reason: unreadable, checksum mismatch,
    malformed sidecar, missing sidecar (`require_checksum`), not an .npy array."""
    import hashlib
    import io

    import numpy as np

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ChecksumError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    side = checksum_path(path)
    verified = False
    if side.is_file():
        try:
            stored = side.read_text().split()[0].strip().lower()
        except (OSError, UnicodeDecodeError, IndexError):
            raise ChecksumError(f"{path}: its checksum file {side.name} is unreadable or empty") from None
        if len(stored) != 64 or any(c not in "0123456789abcdef" for c in stored):
            raise ChecksumError(f"{path}: its checksum file {side.name} holds no SHA-256 digest")
        actual = hashlib.sha256(data).hexdigest()
        if actual != stored:
            raise ChecksumError(
                f"{path}: SHA-256 mismatch (file {actual[:12]}..., recorded "
                f"{stored[:12]}...): the file was modified or corrupted"
            )
        verified = True
    elif require_checksum:
        raise ChecksumError(f"{path}: no checksum file {side.name}")
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # truncated, not .npy, pickled objects
        raise ChecksumError(f"{path}: not a readable .npy array ({type(exc).__name__}: {exc})") from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise ChecksumError(f"{path}: not a single .npy array")
    return array, verified
