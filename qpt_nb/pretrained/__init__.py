"""Pretrained QPT models shipped inside the package.

    import qpt_nb
    qpt_nb.pretrained.list()                        # ['water_sto-3g_b3lyp5_nano', ...]
    m = qpt_nb.pretrained.load("water")             # a unique molecule name or prefix is enough
    m.config, m.params, m.metadata["test_errors"]
    qpt_nb.predict("water_sto-3g_b3lyp5_nano", mol) # every model argument accepts a name

Each model is two files in this folder: ``NAME.npz``, the network parameters (float32 unless
rounding changed a recorded test error by 1 % or more, then float64; flat keys
``module|parameter``), and ``NAME.json``: the metadata, i.e. the `TrainConfig` ('config'),
optimiser steps, training CPU and wall seconds, the git commit, the held-out test errors
reached ('test_errors', `qpt_nb.analysis.metrics` keys: meV, uHa, %), how that test set was
drawn ('test_set'), the storage dtype and the SHA-256 of the ``.npz`` (checked on load).
``bench/train_pretrained.py`` trains a model and writes both files (`save`).

Layer: between `qpt_nb.learn` (whose `TrainConfig` `load` returns) and `qpt_nb.analysis`;
never imported by `qpt_nb.dft`.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Optional

import numpy as np

FOLDER = Path(__file__).resolve().parent
SEP = "|"  # joins the levels of a nested parameter dict into one .npz key
MAX_BYTES = 2 * 2**20  # the size each shipped .npz must stay under


@dataclasses.dataclass(frozen=True)
class PretrainedModel:
    """A shipped model: `name`, `config` (`TrainConfig`), `params` (float64 JAX pytree, the
    `Trainer`'s layout) and `metadata` (the ``NAME.json`` dict). Accepted wherever a run
    directory or a `Trainer` is (`qpt_nb.analysis.runs.resolve_model`)."""

    name: str
    config: object
    params: dict
    metadata: dict

    @property
    def steps(self) -> Optional[int]:
        return self.metadata.get("steps")

    def __repr__(self):
        err = self.metadata.get("test_errors", {})
        return (
            f"PretrainedModel({self.name!r}, steps={self.steps}, test energy MAE "
            f"{err.get('energy_mae_mev', float('nan')):.3g} meV)"
        )


def list(folder=None) -> builtins.list:  # noqa: A001 - the documented name
    """Names of the shipped models (sorted): every ``NAME.json`` with its ``NAME.npz``."""
    root = Path(folder) if folder is not None else FOLDER
    return sorted(p.stem for p in root.glob("*.json") if p.with_suffix(".npz").is_file())


def resolve_name(name: str, folder=None) -> str:
    """The full name of a shipped model from `name`: the full name, or a prefix / molecule
    name ('water') that matches exactly one. A molecule name shipped in several bases picks
    its STO-3G model (the toolkit's default basis): 'uracil' is uracil_sto-3g_b3lyp5_nano and
    the def2-SVP one is named in full ('uracil_def2-svp'). ValueError naming the choices
    otherwise."""
    names = list(folder)
    if not isinstance(name, str):
        raise TypeError(f"a pretrained model is named by a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key in names:
        return key
    hits = [n for n in names if n.startswith(key + "_") or n.startswith(key)]
    if len(hits) == 1:
        return hits[0]
    default = [n for n in hits if n.startswith(key + "_sto-3g_")]
    if len(default) == 1:
        return default[0]
    shipped = ", ".join(names) or "none"
    if not hits:
        raise ValueError(f"no pretrained model {name!r} (shipped: {shipped})")
    raise ValueError(f"pretrained name {name!r} is ambiguous: {', '.join(hits)}")


def is_name(name, folder=None) -> bool:
    """True when `name` resolves to exactly one shipped model."""
    try:
        resolve_name(name, folder)
    except (TypeError, ValueError):
        return False
    return True


def info(name: str, folder=None) -> dict:
    """The metadata (``NAME.json``) of a shipped model, without loading its parameters."""
    root = Path(folder) if folder is not None else FOLDER
    return json.loads((root / f"{resolve_name(name, folder)}.json").read_text())


def load(name: str, folder=None) -> PretrainedModel:
    """Config, float64 parameters and metadata of a shipped model (see the module docstring).

    ValueError for an unknown or ambiguous name, or when the ``.npz`` does not match the
    SHA-256 its metadata records (a damaged install).
    """
    import jax.numpy as jnp

    from qpt_nb.learn.config import TrainConfig

    root = Path(folder) if folder is not None else FOLDER
    full = resolve_name(name, folder)
    meta = json.loads((root / f"{full}.json").read_text())
    raw = (root / f"{full}.npz").read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if meta.get("sha256") and digest != meta["sha256"]:
        raise ValueError(
            f"{root / full}.npz is damaged: SHA-256 {digest[:12]}... != {meta['sha256'][:12]}..."
        )
    with np.load(io.BytesIO(raw)) as z:
        flat = {k: z[k] for k in z.files}
    params = unflatten({k: jnp.asarray(v, dtype=jnp.float64) for k, v in flat.items()})
    return PretrainedModel(full, TrainConfig.from_json(meta["config"]), params, meta)


def flatten(tree: dict, prefix: str = "") -> dict:
    """Nested dict of arrays -> {'a|b': array} (the .npz layout)."""
    out = {}
    for k, v in tree.items():
        if SEP in str(k):
            raise ValueError(f"parameter name {k!r} contains {SEP!r}")
        key = f"{prefix}{SEP}{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = np.asarray(v)
    return out


def unflatten(flat: dict) -> dict:
    """Inverse of `flatten`."""
    out: dict = {}
    for key, v in flat.items():
        *path, leaf = key.split(SEP)
        node = out
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = v
    return out


def encode_params(params, dtype) -> bytes:
    """The compressed ``.npz`` bytes of `params` stored as `dtype` (float32 or float64)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: np.asarray(v, dtype=dtype) for k, v in flatten(params).items()})
    return buf.getvalue()


def save(name: str, params, metadata: dict, *, dtype="float32", folder=None) -> Path:
    """Writes ``NAME.npz`` (`params` as `dtype`) and ``NAME.json`` (`metadata` plus dtype,
    size and SHA-256) atomically into `folder` (default: this package). Returns the .npz path.
    ValueError when the .npz would exceed `MAX_BYTES` (2 MB) or metadata lacks 'config'."""
    from qpt_nb.fileio import atomic_write_bytes, save_json

    if "config" not in metadata:
        raise ValueError("pretrained metadata needs the run's 'config' (TrainConfig.to_json()).")
    root = Path(folder) if folder is not None else FOLDER
    raw = encode_params(params, np.dtype(dtype))
    if len(raw) > MAX_BYTES:
        raise ValueError(f"{name}.npz would be {len(raw) / 2**20:.2f} MB > {MAX_BYTES / 2**20:.0f} MB")
    meta = dict(metadata, name=name, dtype=np.dtype(dtype).name, npz_bytes=len(raw))
    meta["sha256"] = hashlib.sha256(raw).hexdigest()
    atomic_write_bytes(root / f"{name}.npz", raw)
    save_json(root / f"{name}.json", meta)
    for suffix in (".npz", ".json"):  # package data: readable by every user of an install
        os.chmod(root / f"{name}{suffix}", 0o644)
    return root / f"{name}.npz"
