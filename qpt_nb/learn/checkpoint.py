"""Atomic, verified checkpoints: write to a temporary file, fsync, then rename.

A checkpoint file holds a pickled dict of NumPy arrays (JAX arrays are moved to
the host) behind a header line with the SHA-256 of the payload, so a truncated
or corrupted file is detected and reported, never silently loaded.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import jax
import numpy as np

from qpt_nb.fileio import atomic_write_bytes

MAGIC = b"QPTNB-CKPT-1 "


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or incompatible."""


def save(path, tree) -> None:
    """Saves a pytree of arrays and Python scalars atomically with a checksum."""
    host = jax.tree_util.tree_map(lambda x: np.asarray(x) if hasattr(x, "shape") else x, tree)
    payload = pickle.dumps(host, protocol=pickle.HIGHEST_PROTOCOL)
    digest = hashlib.sha256(payload).hexdigest().encode()
    atomic_write_bytes(path, MAGIC + digest + b"\n" + payload)


def load(path):
    """Loads a checkpoint written by `save`; `CheckpointError` if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    raw = path.read_bytes()
    head, sep, payload = raw.partition(b"\n")
    if not head.startswith(MAGIC) or not sep:
        raise CheckpointError(f"{path} is not a qpt_nb checkpoint (bad header).")
    if hashlib.sha256(payload).hexdigest().encode() != head[len(MAGIC) :]:
        raise CheckpointError(f"{path} is corrupt (checksum mismatch: truncated or modified).")
    return pickle.loads(payload)


def all_finite(tree) -> bool:
    """True when every floating-point leaf of `tree` is finite (no NaN, no inf)."""
    for leaf in jax.tree_util.tree_leaves(tree):
        a = np.asarray(leaf)
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            return False
    return True


def previous_path(path) -> Path:
    """Where `save_keeping_previous` keeps the checkpoint it replaces: ``NAME.prev`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".prev")


def save_keeping_previous(path, tree, *, params_key=None) -> None:
    """`save`, keeping the checkpoint it replaces as `previous_path(path)`.

    Refuses (CheckpointError) to write a tree with a non-finite floating-point leaf, so a
    diverged run can never overwrite a good model. The old file is moved aside with
    ``os.replace`` (atomic) only after the new one has been written to a temporary file,
    so at every moment at least one complete, verified checkpoint exists.
    """
    import os

    path = Path(path)
    if not all_finite(tree if params_key is None else tree[params_key]):
        raise CheckpointError(f"Refusing to write {path}: the parameters are not finite (NaN or inf).")
    tmp = path.with_name(f".{path.name}.new")
    save(tmp, tree)
    if path.is_file():
        os.replace(path, previous_path(path))
    os.replace(tmp, path)


def load_latest(path):
    """`load` of `path`; when `path` is missing but `previous_path(path)` exists (a kill
    between the two renames of `save_keeping_previous`), the previous checkpoint, with a
    warning. A corrupt `path` is never skipped silently: the CheckpointError names the
    intact previous checkpoint, if there is one, and how to use it."""
    import warnings

    path = Path(path)
    prev = previous_path(path)
    if not path.is_file() and prev.is_file():
        data = load(prev)
        warnings.warn(
            f"No checkpoint at {path}; using the previous one, {prev} (step {data.get('step')}).",
            RuntimeWarning,
            stacklevel=2,
        )
        return data
    try:
        return load(path)
    except CheckpointError as exc:
        if prev.is_file():
            try:
                step = load(prev).get("step")
            except CheckpointError:
                raise exc from None
            raise CheckpointError(
                f"{exc} The previous checkpoint {prev} (step {step}) is intact: "
                f"copy it to {path} to continue from it."
            ) from None
        raise


def remove_orphans(folder) -> list:
    """Deletes temporary files that killed checkpoint writes left in `folder` (``.NAME.*.tmp``
    and ``.NAME.new``); call it only while holding the folder's `RunLock`. Returns the paths."""
    removed = []
    for p in list(Path(folder).glob(".*.tmp")) + list(Path(folder).glob(".*.new")):
        try:
            p.unlink()
            removed.append(p)
        except OSError:
            pass
    return removed
