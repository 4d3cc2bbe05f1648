"""Label-free vs label-then-train: the pipelines of notebook 03 and bench/labels_vs_dft_loss.py.

* `find_runs(molecule, basis)`: saved run folders (``runs/``, ``bench/results/``) with
  config.json + history.jsonl (and, after evaluation, metrics.json / per_conformer.csv),
  the newest per kind: 'label-free' (loss energy or self_consistency) and
  'label-then-train' (loss supervised; its labelling time from labelling.json).
* `label_free_run(config, n_steps, test_set, labels)`: trains, monitors, evaluates.
* `label_then_train_run(...)`: labels the training conformers with PySCF first (timed),
  then trains the supervised loss on them with the `Trainer` (``dataset_size``: a
  fixed labelled set, cycled).

Both pipelines train with one `Trainer.run` call, for ``n_steps`` steps and/or a
budget of charged seconds (``budget_s``). The charged time is a `ChargedTime` on an
explicit ``clock`` (`CLOCKS`: wall-clock, or this process's CPU time), labelling
included and evaluations excluded; a cached label is charged the seconds it cost
when it was made, on the same clock (a label cached without its CPU seconds is redone
under the CPU clock). With a budget, the ``monitor`` is evaluated on a `Schedule` of
charged times into ``PaperRun.curve``; `crossing` and `crossing_summary` compare two
such curves (the wall-clock ratio of the paper, arXiv 2402.04030: 786 h / 31 h). A budget
run with a ``run_dir`` and ``resume=True`` continues where an earlier process stopped
(`qpt_nb.analysis.budget`).

Every run returns a `PaperRun`: history (wall_s = training seconds), label_seconds
(labelling before training; 0 for label-free), metrics and per-conformer rows of
`qpt_nb.analysis.evaluation.evaluate`, or `error` when the run could not be done.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import typing
from pathlib import Path
from typing import Callable, Optional

from qpt_nb.analysis import budget
from qpt_nb.analysis.runs import (
    PER_CONFORMER,
    project_root,
    read_config,
    read_history,
    read_metrics,
    read_rows,
)
from qpt_nb.analysis.timing import (  # noqa: F401
    CLOCKS,
    ChargedTime,
    Schedule,
    crossing,
    crossing_summary,
    loss_display_name,
)
from qpt_nb.fileio import save_json

__all__ = [
    "PaperRun",
    "find_runs",
    "project_root",
    "label_free_run",
    "label_then_train_run",
    "training_conformers",
    "LABELLING_FILE",
    "CLOCKS",
    "ChargedTime",
    "Schedule",
    "crossing",
    "crossing_summary",
    "override_config",
]

LABELLING_FILE = "labelling.json"


@dataclasses.dataclass
class PaperRun:
    """One training run for the comparison (plain data)."""

    name: str
    kind: str  # 'label-free' | 'label-then-train'
    config: object = None
    history: list = dataclasses.field(default_factory=list)
    label_seconds: float = 0.0
    n_labels: int = 0
    metrics: Optional[dict] = None  # evaluate(...).trained
    baseline: Optional[dict] = None  # evaluate(...).baseline_w0
    rows: list = dataclasses.field(default_factory=list)
    path: Optional[Path] = None  # where it was read from / saved to
    error: Optional[str] = None
    label_wall_seconds: Optional[float] = None  # wall time of the labelling in this session
    curve: list = dataclasses.field(default_factory=list)  # evaluations on a budget
    label_cycles: list = dataclasses.field(default_factory=list)  # PySCF cycles per label
    labels_converged: int = 0
    timing: dict = dataclasses.field(default_factory=dict)  # Trainer.timing, setup_s, ...

    @property
    def total_seconds(self) -> float:
        """Labelling + training wall-clock seconds."""
        train = self.history[-1]["wall_s"] if self.history else 0.0
        return float(self.label_seconds) + float(train)

    @property
    def steps(self) -> int:
        if "step" in self.timing:
            return int(self.timing["step"])
        return int(self.history[-1]["step"]) if self.history else 0


def _kind(loss: str) -> str:
    return "label-then-train" if loss == "supervised" else "label-free"


# ----------------------------------------------------------------------------- saved runs
def _read_run(path: Path) -> Optional[PaperRun]:
    try:
        cfg = read_config(path)
    except (OSError, ValueError, TypeError):
        return None
    hist = read_history(path)
    if not hist:
        return None
    run = PaperRun(
        name=loss_display_name(cfg.loss, path.name), kind=_kind(cfg.loss), config=cfg, history=hist, path=path
    )
    m = read_metrics(path)
    if m is not None:
        run.metrics, run.baseline = m.get("trained"), m.get("baseline_w0")
    if (path / PER_CONFORMER).is_file():
        run.rows = read_rows(path / PER_CONFORMER)
    lab = path / LABELLING_FILE
    if lab.is_file():
        d = json.loads(lab.read_text())
        run.label_seconds, run.n_labels = (float(d.get("label_seconds", 0.0)), int(d.get("n_labels", 0)))
    elif run.kind == "label-then-train":
        return None  # labelling time unknown: not comparable
    return run


def find_runs(
    molecule: str = "uracil",
    basis: Optional[str] = None,
    *,
    grid_level: Optional[int] = None,
    xc: Optional[str] = None,
    roots=None,
    max_depth: int = 3,
) -> dict:
    """{'label-free': PaperRun, 'label-then-train': PaperRun} of the newest saved
    runs of ``molecule`` (and ``basis``, ``grid_level``, ``xc`` when given) under
    ``roots`` (default: ``runs/`` and ``bench/results/`` of the project); missing
    kinds are absent."""
    if roots is None:
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
    for path in sorted(
        set(found),
        key=lambda p: (p / "history.jsonl").stat().st_mtime if (p / "history.jsonl").exists() else 0,
    ):
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
        best[run.kind] = run  # newest wins (sorted by mtime)
    return best


# ----------------------------------------------------------------------------- config overrides
FIXED_FIELDS = ("loss", "molecule", "xyz", "basis", "xc")  # what makes runs comparable


def override_config(cfg, items, fixed=FIXED_FIELDS):
    """``KEY=VALUE`` strings -> a copy of `cfg` with those TrainConfig fields replaced.

    Values are converted to the field's type (its annotation: ``Optional[int]`` takes an
    integer or ``none``); a key in `fixed`, an unknown key or a value that does not
    convert raises ValueError (naming the allowed keys)."""
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name for f in dataclasses.fields(cfg)} - set(fixed)
    changes = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"{item!r}: expected KEY=VALUE with KEY one of {sorted(fields)}")
        kind = hints.get(key, type(getattr(cfg, key)))
        if typing.get_origin(kind) is typing.Union:  # Optional[X]
            if value.lower() == "none":
                changes[key] = None
                continue
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        try:
            if kind is bool:
                changes[key] = value.lower() in ("1", "true", "yes")
            elif kind is tuple:  # e.g. phi_range=0,90
                changes[key] = tuple(float(v) for v in value.split(","))
            else:
                changes[key] = kind(value)
        except ValueError:
            raise ValueError(f"{item!r}: {key} needs a {kind.__name__}") from None
    return dataclasses.replace(cfg, **changes)


# ----------------------------------------------------------------------------- pipelines
def _n_training_conformers(config, n_steps: int) -> int:
    if getattr(config, "dataset_size", 0):
        return int(config.dataset_size)
    batches = config.data_schedule_object().n_batches(int(n_steps))  # the Trainer's own schedule
    return (batches + config.queue_size + 1) * config.batch_size


def training_conformers(config, n_steps: int) -> list:
    """The conformers a `Trainer` with ``config`` consumes in ``n_steps`` steps: its
    fixed data set (``config.dataset_size`` > 0) or the first conformers of its
    seeded stream (plus the prefetch queue), so their labels can be made first."""
    from qpt_nb.learn.conformers import ConformerStream

    stream = ConformerStream(
        config.molecule_object(), config.sampler, seed=config.seed, **config.sampler_kwargs()
    )
    return [next(stream) for _ in range(_n_training_conformers(config, n_steps))]


def _label_training_set(
    run: PaperRun, config, meter: ChargedTime, *, n=None, budget_s=None, threads=None, progress=False
):
    """Labels the first conformers of the Trainer's stream (into the label cache, where
    the Trainer finds them): `n` of them, or until `budget_s` charged seconds."""
    from qpt_nb.dft.reference import label
    from qpt_nb.learn.conformers import ConformerStream

    mol = config.molecule_object()
    stream = ConformerStream(mol, config.sampler, seed=config.seed, **config.sampler_kwargs())
    on_cpu = meter.clock is CLOCKS["cpu"]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="training labels", unit="conf")
    wall0 = time.perf_counter()
    while (run.n_labels < n) if n is not None else (run.label_seconds < budget_s):
        t0 = meter.clock()
        conformer = next(stream)
        kw = dict(config.dft_settings(), threads=threads, engine=config.label_engine)
        lab = label(conformer, config.basis, **kw)
        if lab.cached and on_cpu and not math.isfinite(lab.cpu_seconds):
            # made before labels kept their CPU seconds: its cost on this clock is unknown
            lab = label(conformer, config.basis, refresh=True, **kw)
        spent = meter.clock() - t0
        if lab.cached:  # it costs what it cost when it was made, on the meter's clock
            cost = lab.cpu_seconds if on_cpu else lab.seconds
            meter.charge(cost - spent)
            spent = cost
        run.label_seconds += spent
        run.n_labels += 1
        run.label_cycles.append(int(lab.n_iter))
        run.labels_converged += bool(lab.converged)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(s_per_label=f"{lab.seconds:.1f}", cached=lab.cached)
    if bar is not None:
        bar.close()
    run.label_wall_seconds = time.perf_counter() - wall0


def _train(
    run: PaperRun,
    n_steps,
    test_set,
    labels,
    *,
    monitor_every,
    run_dir,
    progress,
    meter: ChargedTime,
    budget_s=None,
    every_s=None,
    eval_at_s=None,
    monitor=None,
    on_eval=None,
    phase=None,
    fit_schedule=False,
    resume=False,
    eval_start=True,
    eval_turns=False,
) -> PaperRun:
    """Trains ``run.config`` with one `Trainer.run` (n_steps and/or budget_s), then
    evaluates on `test_set` when given; fills `run` in (``run.config`` ends as the Trainer's:
    with `fit_schedule` and a budget, its ``decay_steps`` is the fitted one). With `resume`,
    a budget run kept in `run_dir` continues where it stopped (`qpt_nb.analysis.budget`)."""
    from qpt_nb.analysis.evaluation import evaluate, make_monitor
    from qpt_nb.learn.train import Trainer

    before = meter.seconds
    state = budget.resumable(run_dir) if resume and budget_s is not None else None
    if state is not None:
        tr = Trainer.resume(run_dir)
        try:
            budget.check_same_run(tr.config, run.config, state, budget_s)
        except ValueError:
            tr.close()
            raise
        tr.build_dataset()  # L's labelled set, as its first epoch built it (restore: not charged)
        meter.restore(state["charged_s"], state["wall_s"])
        budget.restore_run(run, state)
        run.config = tr.config
        print(
            f"   [{run.name}] resumed from step {tr.step} at {state['charged_s']:.0f} charged s", flush=True
        )
    else:
        tr = Trainer(run.config, run_dir)
    try:
        if state is None:
            run.timing["setup_s"] = meter.seconds - before
        if test_set and monitor is None:
            with meter.paused():
                monitor = make_monitor(run.config, test_set, labels)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_steps, desc=run.name, unit="step")
        callback = None if bar is None else (lambda rec: bar.update(rec["step"] - bar.n))
        if budget_s is None:
            if monitor is not None:
                tr.monitor, tr.monitor_every = monitor, max(int(monitor_every), 1)
            tr.run(n_steps, callback)
        else:
            budget.train_on_budget(
                run,
                tr,
                n_steps,
                callback,
                meter,
                monitor,
                budget_s=budget_s,
                every_s=every_s,
                eval_at_s=eval_at_s,
                on_eval=on_eval,
                phase=phase,
                fit_schedule=fit_schedule,
                resumed=state,
                eval_start=eval_start,
                eval_turns=eval_turns,
            )
        if bar is not None:
            bar.update(tr.step - bar.n)
            bar.close()
        run.history, run.config = list(tr.history), tr.config
        run.timing.update(
            tr.timing,
            step=tr.step,
            trainer_label_seconds=tr.label_seconds,
            conformers=tr.data_stats().get("items_consumed"),
        )
        if test_set:
            res = evaluate(tr, test_set, labels=labels)
            run.metrics, run.baseline, run.rows = res.trained, res.baseline_w0, res.rows
            if run_dir is not None:
                res.save(run_dir)
    finally:
        tr.close()
    return run


def _check_length(n_steps, budget_s):
    if n_steps is None and budget_s is None:
        raise ValueError("A run needs n_steps or budget_s.")


def _train_or_error(run: PaperRun, n_steps, test_set, labels, **kw) -> PaperRun:
    """`_train`, turning a ValueError (a setting this pipeline cannot train) into ``run.error``."""
    kw = dict(dict(monitor_every=10, run_dir=None, progress=False), **kw)
    try:
        return _train(run, n_steps, list(test_set), labels, **kw)
    except ValueError as exc:
        run.error = str(exc)
        return run


def label_free_run(
    config,
    n_steps: Optional[int] = None,
    test_set=(),
    labels=None,
    *,
    name: Optional[str] = None,
    budget_s: Optional[float] = None,
    clock: Callable[[], float] = time.perf_counter,
    **train,
) -> PaperRun:
    """Trains ``config`` (a label-free loss) for ``n_steps`` and/or ``budget_s``
    charged seconds of ``clock``, then evaluates it on ``test_set`` (when given).

    ``train`` keywords: ``run_dir`` (save the run there), ``progress`` (a tqdm bar),
    ``monitor_every`` (without a budget, the test errors go into the history every that
    many steps; default 10); with a budget, ``monitor`` (default: `make_monitor` of the
    test set) is evaluated into ``run.curve`` after setup, at the `Schedule`
    (``every_s`` / ``eval_at_s``) and at the end, ``on_eval(run)`` after each evaluation;
    ``fit_schedule=True`` refits the cosine to the budget once the step rate is steady
    (`qpt_nb.learn.recipe.BudgetFit`; the fitted ``decay_steps`` ends in ``run.config``);
    ``resume=True`` with a ``run_dir`` and a budget continues the budget run kept there, if
    any (`qpt_nb.analysis.budget`: charged clock, curve and fitted schedule as they stood);
    ``eval_start=False`` skips the evaluation of the untrained network and ``eval_turns=True``
    evaluates only while no other budget run on the machine does (a lock file).
    """
    _check_length(n_steps, budget_s)
    name = name or loss_display_name(config.loss)
    run = PaperRun(name=name, kind="label-free", config=config, path=_path(train.get("run_dir")))
    return _train_or_error(
        run, n_steps, test_set, labels, meter=ChargedTime(clock), budget_s=budget_s, **train
    )


def _path(run_dir) -> Optional[Path]:
    return Path(run_dir) if run_dir is not None else None


def label_then_train_run(
    config,
    n_steps: Optional[int] = None,
    test_set=(),
    labels=None,
    *,
    name: Optional[str] = None,
    n_labels: Optional[int] = None,
    label_fraction: float = 0.5,
    label_threads: Optional[int] = None,
    budget_s: Optional[float] = None,
    clock: Callable[[], float] = time.perf_counter,
    **train,
) -> PaperRun:
    """PySCF labels for the training conformers first (charged), then the supervised
    loss on them (``config.loss`` is set to 'supervised').

    Which conformers: the first ones of the Trainer's seeded stream: ``n_labels`` of
    them, else (with ``budget_s``) as many as ``label_fraction`` of the budget allows,
    and the Trainer then cycles over that fixed set (``TrainConfig.dataset_size``);
    else those the Trainer consumes in ``n_steps`` (`training_conformers`). The
    labels go to the label cache, where the Trainer's batches find them (``ref_fock``);
    ``label_threads``: PySCF threads. A fresh label is charged its ``clock`` time, a
    cached one the seconds it cost when it was made on the same clock. Training, monitoring,
    evaluation and the ``train`` keywords as in `label_free_run`; the first budget
    evaluation has phase 'labelled'.
    """
    _check_length(n_steps, budget_s)
    config = dataclasses.replace(config, loss="supervised")
    fixed = n_labels is not None or budget_s is not None
    if n_labels is not None:
        config = dataclasses.replace(config, dataset_size=int(n_labels))
    run_dir, progress = train.get("run_dir"), train.get("progress", False)
    name = name or loss_display_name(config.loss)
    run = PaperRun(name=name, kind="label-then-train", config=config, path=_path(run_dir))
    meter = ChargedTime(clock)
    kept = budget.resumable(run_dir) if train.get("resume") and budget_s is not None else None
    if kept is not None:  # labelled before it stopped: `_train` restores the record
        run.config = dataclasses.replace(config, dataset_size=max(int(kept["labels"]["n_labels"]), 1))
        return _train_or_error(run, n_steps, test_set, labels, meter=meter, budget_s=budget_s, **train)
    if n_labels is None and budget_s is not None and not config.dataset_size:
        _label_training_set(
            run, config, meter, budget_s=budget_s * label_fraction, threads=label_threads, progress=progress
        )
    else:
        n = int(config.dataset_size) or _n_training_conformers(config, n_steps)
        _label_training_set(run, config, meter, n=n, threads=label_threads, progress=progress)
    if fixed:
        run.config = config = dataclasses.replace(config, dataset_size=max(run.n_labels, 1))
    run.timing["labels_end_s"] = meter.seconds
    if run_dir is not None:
        note = f"charged seconds of the {config.label_engine} training labels (a cached label: what it cost)"
        save_json(
            Path(run_dir) / LABELLING_FILE,
            dict(label_seconds=run.label_seconds, n_labels=run.n_labels, note=note),
        )
    return _train_or_error(
        run, n_steps, test_set, labels, meter=meter, budget_s=budget_s, phase="labelled", **train
    )
