"""Run directories: the one reader of what `Trainer` and `evaluate` write, and their rules.

A run directory holds ``config.json`` (`TrainConfig`), ``history.jsonl`` (one
`Trainer` record per logged step), ``checkpoint.ckpt`` and, after evaluation,
``metrics.json``, ``per_conformer.csv``, ``test_set.xyz`` and PNG plots.

    cfg, params, step = load_run('runs/uracil')
    history = read_history('runs/uracil')

The rules of a run directory live here too: where a new run goes (`new_run_dir`), whether a
path can hold one (`check_out_dir`), and how far the run in it got (`trained_steps`).
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp

from qpt_nb.learn import checkpoint as ckpt
from qpt_nb.learn.train import CHECKPOINT, HISTORY, TrainConfig, Trainer, read_history  # noqa: F401

METRICS = "metrics.json"
PER_CONFORMER = "per_conformer.csv"


def load_run(run_dir, *, raw: bool = False):
    """(TrainConfig, params, step) of a saved run, from its checkpoint.

    params are the moving average (`Trainer.params`) when the run kept one, else (or with
    ``raw=True``) the optimiser's parameters.

    Raises FileNotFoundError without the directory and `CheckpointError` (a
    ValueError) when its checkpoint is missing or corrupt.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"No run directory {run}.")
    data = ckpt.load(run / CHECKPOINT)
    state = data["state"]
    params = state["params"] if raw else state.get("ema_params", state["params"])
    params = jax.tree_util.tree_map(jnp.asarray, params)
    return TrainConfig.from_json(data["config"]), params, data.get("step")


def read_config(run_dir) -> TrainConfig:
    """The `TrainConfig` of a run directory (its config.json). FileNotFoundError without
    one; ValueError (or TypeError) when it is not a TrainConfig."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"No config.json in {run_dir}.")
    return TrainConfig.from_json(json.loads(path.read_text()))


def new_run_dir(config, prefix: str = "") -> Path:
    """Where a new run of `config` goes when the user names no directory:
    ``runs/[PREFIX-]MOLECULE-BASIS-MODEL-YYYYmmdd-HHMMSS``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    head = f"{prefix}-" if prefix else ""
    return Path("runs") / f"{head}{config.molecule}-{config.basis}-{config.model}-{stamp}"


def check_out_dir(out: Path) -> None:
    """A usable run directory, checked before anything compiles: ValueError for a path that
    is a file, lies under a file, or cannot be written."""
    out = Path(out)
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            where = "is" if parent == out else f"lies under {parent}, which is"
            raise ValueError(f"--out {out} {where} a file, not a directory.")
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: cannot write to {existing} (permission denied).")


def trained_steps(out) -> int:
    """Optimiser steps the checkpoint in `out` holds (0 without one: a run killed before
    its first step, or a fresh folder, may be started again). ValueError for an unreadable
    checkpoint."""
    path = Path(out) / CHECKPOINT
    if not (path.exists() or ckpt.previous_path(path).exists()):
        return 0
    try:
        return int(ckpt.load_latest(path).get("step", 0))
    except ckpt.CheckpointError:
        raise ValueError(
            f"{out} holds an unreadable checkpoint: move it away, or use another --out."
        ) from None


def read_metrics(run_dir) -> Optional[dict]:
    """``metrics.json`` of a run ({'trained', 'baseline_w0', 'metadata'}), or None."""
    path = Path(run_dir) / METRICS
    return json.loads(path.read_text()) if path.is_file() else None


def resolve_model(model_or_run, config=None):
    """(TrainConfig, params, step) from a run dir, a `Trainer`, a shipped model (its name,
    e.g. 'water', or a `qpt_nb.pretrained.PretrainedModel`), a (TrainConfig, params) tuple,
    or bare params together with `config`. step is None when unknown. A string names a run
    directory when one exists there, else a pretrained model."""
    from qpt_nb import pretrained

    if isinstance(model_or_run, Trainer):
        return model_or_run.config, model_or_run.params, model_or_run.step
    if isinstance(model_or_run, pretrained.PretrainedModel):
        return model_or_run.config, model_or_run.params, model_or_run.steps
    if isinstance(model_or_run, str) and not Path(model_or_run).exists() and pretrained.is_name(model_or_run):
        m = pretrained.load(model_or_run)
        return m.config, m.params, m.steps
    if isinstance(model_or_run, str) and not Path(model_or_run).exists():
        shipped = ", ".join(pretrained.list()) or "none"
        raise FileNotFoundError(
            f"No run directory {model_or_run} (nor a pretrained model: shipped {shipped})."
        )
    if isinstance(model_or_run, (str, Path)):
        return load_run(model_or_run)
    if (
        isinstance(model_or_run, tuple)
        and len(model_or_run) == 2
        and isinstance(model_or_run[0], TrainConfig)
    ):
        return model_or_run[0], model_or_run[1], None
    if config is not None:
        return config, model_or_run, None
    raise ValueError(
        "Expected a run directory, a Trainer, a (TrainConfig, params) tuple, or params with config=."
    )


def read_rows(path) -> list:
    """per_conformer.csv back into a list of dicts (floats, 'index' as int)."""
    with open(path, newline="") as fh:
        return [{k: (int(v) if k == "index" else float(v)) for k, v in r.items()} for r in csv.DictReader(fh)]


def project_root(start=None) -> Path:
    """The folder holding ``pyproject.toml`` above ``start`` (default: the current
    directory, e.g. ``notebooks/``), else ``start`` itself."""
    here = Path(start or Path.cwd()).resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").is_file():
            return p
    return here
