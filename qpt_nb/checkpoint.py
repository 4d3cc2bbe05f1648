"""Atomic, verified checkpoints: write to a temporary file, fsync, then rename.

A checkpoint file holds a pickled dict of NumPy arrays (JAX arrays are moved to
the host) behind a header line with the SHA-256 of the payload, so a truncated
or corrupted file is detected and reported, never silently loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
from pathlib import Path

import jax
import numpy as np

MAGIC = b"QPTNB-CKPT-1 "


class CheckpointError(ValueError):
  """A checkpoint is missing, corrupt or incompatible."""


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
  atomic_write_bytes(path, text.encode())


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
  if hashlib.sha256(payload).hexdigest().encode() != head[len(MAGIC):]:
    raise CheckpointError(f"{path} is corrupt (checksum mismatch: truncated or modified).")
  return pickle.loads(payload)


def save_json(path, obj) -> None:
  atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
