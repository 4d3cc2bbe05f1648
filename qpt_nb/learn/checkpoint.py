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
  if hashlib.sha256(payload).hexdigest().encode() != head[len(MAGIC):]:
    raise CheckpointError(f"{path} is corrupt (checksum mismatch: truncated or modified).")
  return pickle.loads(payload)
