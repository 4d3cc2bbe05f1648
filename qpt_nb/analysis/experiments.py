"""Notebook helpers for the uracil reproduction (notebook 03): saved runs and short runs.

* `find_runs(molecule, basis)`: saved run folders (``runs/``, ``bench/results/``) with
  config.json + history.jsonl (and, after evaluation, metrics.json / per_conformer.csv),
  the newest per kind: 'label-free' (loss energy or self_consistency) and
  'label-then-train' (loss supervised; its labelling time from labelling.json).
* `label_free_run(config, n_steps, test_set, labels)`: trains, monitors, evaluates.
* `label_then_train_run(...)`: labels the training conformers with PySCF first (timed:
  the label's own PySCF seconds, so a cached label still costs what it cost), then
  trains the supervised loss on them.

Every run returns a `PaperRun`: history (wall_s = training seconds), label_seconds
(labelling before training; 0 for label-free), metrics and per-conformer rows of
`qpt_nb.analysis.evaluation.evaluate`, or `error` when the run could not be done.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Optional

__all__ = ["PaperRun", "find_runs", "label_free_run", "label_then_train_run",
           "training_conformers", "LABELLING_FILE"]

LABELLING_FILE = "labelling.json"


@dataclasses.dataclass
class PaperRun:
    """One training run for the comparison (plain data)."""
    name: str
    kind: str                          # 'label-free' | 'label-then-train'
    config: object = None
    history: list = dataclasses.field(default_factory=list)
    label_seconds: float = 0.0
    n_labels: int = 0
    metrics: Optional[dict] = None     # evaluate(...).trained
    baseline: Optional[dict] = None    # evaluate(...).baseline_w0
    rows: list = dataclasses.field(default_factory=list)
    path: Optional[Path] = None        # where it was read from / saved to
    error: Optional[str] = None
    label_wall_seconds: Optional[float] = None   # wall time of the labelling in this session

    @property
    def total_seconds(self) -> float:
        """Labelling + training wall-clock seconds."""
        train = self.history[-1]["wall_s"] if self.history else 0.0
        return float(self.label_seconds) + float(train)

    @property
    def steps(self) -> int:
        return int(self.history[-1]["step"]) if self.history else 0


RUN_NAMES = {"energy": "label-free (QPT energy loss)",
             "self_consistency": "label-free (self-consistency)",
             "supervised": "label-then-train (supervised)"}


def _kind(loss: str) -> str:
    return "label-then-train" if loss == "supervised" else "label-free"


def _read_run(path: Path) -> Optional[PaperRun]:
    from qpt_nb.analysis.runs import read_history, read_rows
    from qpt_nb.learn.train import TrainConfig
    try:
        cfg = TrainConfig.from_json(json.loads((path / "config.json").read_text()))
    except (OSError, ValueError, TypeError):
        return None
    hist = read_history(path)
    if not hist:
        return None
    run = PaperRun(name=RUN_NAMES.get(cfg.loss, path.name), kind=_kind(cfg.loss), config=cfg,
                   history=hist, path=path)
    if (path / "metrics.json").is_file():
        m = json.loads((path / "metrics.json").read_text())
        run.metrics, run.baseline = m.get("trained"), m.get("baseline_w0")
    if (path / "per_conformer.csv").is_file():
        run.rows = read_rows(path / "per_conformer.csv")
    lab = path / LABELLING_FILE
    if lab.is_file():
        d = json.loads(lab.read_text())
        run.label_seconds, run.n_labels = float(d.get("label_seconds", 0.0)), int(d.get("n_labels", 0))
    elif run.kind == "label-then-train":
        return None                    # labelling time unknown: not comparable
    return run


def find_runs(molecule: str = "uracil", basis: Optional[str] = None, *,
              grid_level: Optional[int] = None, xc: Optional[str] = None,
              roots=None, max_depth: int = 3) -> dict:
    """{'label-free': PaperRun, 'label-then-train': PaperRun} of the newest saved
    runs of ``molecule`` (and ``basis``, ``grid_level``, ``xc`` when given) under
    ``roots`` (default: ``runs/`` and ``bench/results/`` of the project); missing
    kinds are absent."""
    if roots is None:
        from qpt_nb.analysis.runs import project_root
        top = project_root()
        roots = (top / "runs", top / "bench" / "results")
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for depth in range(1, max_depth + 1):
            found.extend(p.parent for p in root.glob("/".join(["*"] * depth) + "/config.json"))
    best = {}
    for path in sorted(set(found), key=lambda p: (p / "history.jsonl").stat().st_mtime
                       if (p / "history.jsonl").exists() else 0):
        run = _read_run(path)
        if run is None or run.config.molecule != molecule:
            continue
        cfg = run.config
        if basis is not None and cfg.basis.lower() != basis.lower():
            continue
        if grid_level is not None and int(cfg.grid_level) != int(grid_level):
            continue
        if xc is not None and cfg.xc.lower() != xc.lower():
            continue
        best[run.kind] = run                           # newest wins (sorted by mtime)
    return best


def training_conformers(config, n_steps: int) -> list:
    """The conformers a `Trainer` with ``config`` consumes in ``n_steps`` steps: its
    fixed data set (``config.dataset_size`` > 0) or the first conformers of its
    seeded stream (plus the prefetch queue), so their labels can be made first."""
    from qpt_nb.learn.conformers import ConformerStream
    if getattr(config, "dataset_size", 0):
        n = int(config.dataset_size)
    else:
        n = (math.ceil(int(n_steps) / config.reuse) + config.queue_size + 1) * config.batch_size
    stream = ConformerStream(config.molecule_object(), config.sampler, seed=config.seed,
                             **config.sampler_kwargs())
    return [next(stream) for _ in range(n)]


def _train(run: PaperRun, n_steps: int, test_set, labels, monitor_every: int, run_dir,
           progress: bool):
    from qpt_nb.analysis.evaluation import evaluate, make_monitor
    from qpt_nb.learn.train import Trainer
    tr = Trainer(run.config, run_dir)
    try:
        if test_set:
            tr.monitor = make_monitor(run.config, test_set, labels)
            tr.monitor_every = max(int(monitor_every), 1)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=int(n_steps), desc=run.name, unit="step")
        done = 0
        while done < n_steps:
            chunk = min(int(monitor_every), int(n_steps) - done)
            tr.run(chunk)
            done += chunk
            if bar is not None:
                bar.update(chunk)
        if bar is not None:
            bar.close()
        run.history = list(tr.history)
        if test_set:
            res = evaluate(tr, test_set, labels=labels)
            run.metrics, run.baseline, run.rows = res.trained, res.baseline_w0, res.rows
            if run_dir is not None:
                res.save(run_dir)
    finally:
        tr.close()
    return run


def label_free_run(config, n_steps: int, test_set=(), labels=None, *, monitor_every: int = 10,
                   run_dir=None, name: str = "label-free (QPT energy loss)",
                   progress: bool = False) -> PaperRun:
    """Trains ``config`` (a label-free loss) for ``n_steps``, monitoring the test
    errors every ``monitor_every`` steps, then evaluates it."""
    run = PaperRun(name=name, kind="label-free", config=config,
                   path=Path(run_dir) if run_dir is not None else None)
    try:
        return _train(run, n_steps, list(test_set), labels, monitor_every, run_dir, progress)
    except ValueError as exc:
        run.error = str(exc)
        return run


def label_then_train_run(config, n_steps: int, test_set=(), labels=None, *,
                         n_labels: Optional[int] = None, monitor_every: int = 10, run_dir=None,
                         name: str = "label-then-train (supervised)",
                         progress: bool = False) -> PaperRun:
    """PySCF labels for every training conformer first (timed), then the supervised
    loss on them.  ``config.loss`` is set to 'supervised'; ``n_labels`` fixes the
    data set size (``TrainConfig.dataset_size``: the first ``n_labels`` conformers of
    the seeded stream, cycled), else the stream's first conformers are labelled.

    The Trainer must attach the labels to its batches (``ref_fock``); if it cannot,
    the run's ``error`` says so and only the labelling time is reported.
    """
    from qpt_nb.dft.reference import label_many
    from qpt_nb.dft.tensors import choose_eri_kind
    config = dataclasses.replace(config, loss="supervised")
    if n_labels:
        if not hasattr(config, "dataset_size"):
            raise ValueError("this Trainer has no fixed data sets (TrainConfig.dataset_size)")
        config = dataclasses.replace(config, dataset_size=int(n_labels))
    run = PaperRun(name=name, kind="label-then-train", config=config,
                   path=Path(run_dir) if run_dir is not None else None)
    confs = training_conformers(config, n_steps)
    kind = choose_eri_kind(confs[0].to_pyscf(config.basis).nao_nr(), config.eri)
    t0 = time.perf_counter()
    labs = label_many(confs, config.basis, config.xc, config.grid_level, eri_kind=kind,
                      progress=progress, desc="training labels")
    run.label_seconds = float(sum(lab.seconds for lab in labs))
    run.n_labels = len(labs)
    run.label_wall_seconds = time.perf_counter() - t0
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / LABELLING_FILE).write_text(json.dumps(dict(
            label_seconds=run.label_seconds, n_labels=run.n_labels,
            note="sum of the PySCF seconds of each training label (cached labels keep theirs)")))
    try:
        return _train(run, n_steps, list(test_set), labels, monitor_every, run_dir, progress)
    except (ValueError, TypeError) as exc:
        run.error = (f"the Trainer cannot train the supervised loss here ({exc}); it needs PySCF "
                     "Fock labels attached to its batches")
        return run
