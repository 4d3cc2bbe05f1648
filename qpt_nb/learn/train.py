"""Label-free training of the QPT: pure `update`, a steppable `Trainer`, resumable runs.

    state = init_state(config, example_batch)
    state, metrics = update(state, batch)          # pure, jitted

`Trainer` wraps this for notebooks and the command line: fresh conformers are
sampled on the fly (`qpt_nb.learn.conformers`), precomputed in the background
(`qpt_nb.learn.prefetch`) and stepped on in the order of the run's data schedule
(`qpt_nb.learn.schedule`: by default the research code's sliding window, each batch
for `reuse` steps spread over `reuse` rounds); `run(n)` continues where the last call
stopped; checkpoints are written atomically and `Trainer.resume(run_dir)` reproduces an
uninterrupted run with the same seed, step for step.

Parameter averaging: with ``TrainConfig.ema_decay`` > 0 the state also carries an
exponential moving average of the parameters, ``ema <- d ema + (1 - d) params`` after
every step with ``d = min(ema_decay, (1 + step) / (10 + step))`` (the warm-up of
TensorFlow's ExponentialMovingAverage with num_updates, so early averages are not
dominated by the initialisation). `Trainer.params` is the average (what the monitor,
`evaluate`, `predict` and shipped models use); `Trainer.raw_params` the optimiser's.

Run directory: config.json, history.jsonl (one line per logged step),
checkpoint.ckpt, and after evaluation metrics.json, per_conformer.csv,
test_set.xyz and PNG plots.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import time
import warnings
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qpt_nb.dft.uks import SPIN_CONTAMINATION, spin_contamination
from qpt_nb.fileio import atomic_write_text, save_json
from qpt_nb.learn import checkpoint as ckpt
from qpt_nb.learn.batch import QPTBatch, prepare_conformer, stack_batch, without_grid
from qpt_nb.learn.config import TrainConfig
from qpt_nb.learn.conformers import ConformerStream
from qpt_nb.learn.losses import loss_fn, sandwich_settings
from qpt_nb.learn.network import count_params
from qpt_nb.learn.parallel import data_mesh, replicate, shard_batch
from qpt_nb.learn.prefetch import Prefetcher
from qpt_nb.learn.runlock import RunLock

CHECKPOINT = "checkpoint.ckpt"
JUMP_WINDOW = 20  # logged losses the divergence warning compares against
HISTORY = "history.jsonl"


class TrainingDiverged(ValueError):
    """A step produced a non-finite loss or gradient; the last finite state is kept."""


class TrainState(NamedTuple):
    """params, opt_state: pytrees; step: int32 scalar (optimiser steps taken);
    ema_params: the parameters' moving average (equal to params when ema_decay is 0)."""

    params: dict
    opt_state: tuple
    step: jnp.ndarray
    ema_params: dict


def make_schedule(cfg: TrainConfig):
    """Linear warm-up to `lr` over `warmup_steps`, cosine decay to `final_lr` at `decay_steps`."""
    warm = max(int(cfg.warmup_steps), 1)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=cfg.lr,
        warmup_steps=warm,
        decay_steps=max(int(cfg.decay_steps), warm + 1),
        end_value=cfg.final_lr,
    )


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """clip_by_global_norm -> AdamW(b1, b2, eps, weight_decay) with the schedule."""
    return optax.chain(
        optax.clip_by_global_norm(cfg.clip_norm),
        optax.adamw(make_schedule(cfg), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay),
    )


def init_state(cfg: TrainConfig, example: QPTBatch) -> TrainState:
    """Initial parameters (seeded by cfg.seed) and optimiser state."""
    init_fn, _ = cfg.network()
    params = init_fn(jax.random.PRNGKey(cfg.seed), example)
    return TrainState(params, make_optimizer(cfg).init(params), jnp.zeros((), jnp.int32), params)


def ema_update(ema, params, step, decay: float):
    """The moving average after optimiser step `step` (0-based): ``d ema + (1 - d) params``
    with ``d = min(decay, (1 + step) / (10 + step))``; decay 0 returns `params`."""
    if decay == 0.0:
        return params
    d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
    return jax.tree_util.tree_map(lambda e, p: (d * e + (1.0 - d) * p).astype(p.dtype), ema, params)


_UPDATE_FIELDS = (
    "molecule",  # with xyz, charge and spin: the config must validate; spin picks the readouts
    "xyz",
    "charge",
    "spin",
    "spin_readout",
    "loss",
    "model",
    "n_refine",
    "mix",
    "mix_every",
    "ema_decay",
    "lr",
    "warmup_steps",
    "decay_steps",
    "final_lr",
    "b1",
    "b2",
    "eps",
    "weight_decay",
    "clip_norm",
)


def make_update(cfg: TrainConfig) -> Callable:
    """Returns the pure, jitted `update(state, batch) -> (state, metrics)`.

    metrics: 'loss' (Hartree for the energy loss, Hartree^2 otherwise),
    'grad_norm', 'lr'; for an open shell's energy loss also 'spin_square', the batch's
    largest <S^2> of the sandwich density D_n. Cached by the settings it depends on, so a new or
    resumed Trainer with the same settings reuses the compiled function.
    """
    return _make_update(tuple((k, getattr(cfg, k)) for k in _UPDATE_FIELDS))


@functools.lru_cache(maxsize=16)
def _make_update(key) -> Callable:
    cfg = TrainConfig(**dict(key))
    opt = make_optimizer(cfg)
    schedule = make_schedule(cfg)
    _, apply_fn = cfg.network()
    loss = functools.partial(loss_fn, apply_fn, loss=cfg.loss, aux=True, **sandwich_settings(cfg))

    @jax.jit
    def update(state: TrainState, batch: QPTBatch):
        (value, extra), grads = jax.value_and_grad(loss, has_aux=True)(state.params, batch)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = dict(loss=value, grad_norm=optax.global_norm(grads), lr=schedule(state.step), **extra)
        ema = ema_update(state.ema_params, params, state.step, cfg.ema_decay)
        return TrainState(params, opt_state, state.step + 1, ema), metrics

    return update


def _chunks(it, size):
    while True:
        yield [next(it) for _ in range(size)]


class Trainer:
    """Steppable training loop for notebooks and the CLI.

    Example (water/STO-3G, the loss on grid level 0):
      >>> tr = Trainer(TrainConfig(molecule='water', grid_level=0, warmup_steps=2, log_every=10))
      >>> _ = tr.run(3)
      >>> _ = tr.run(2)    # continues from step 3
      >>> tr.step, sorted(tr.schedule.batch_at(s) for s in (3, 4, 5))   # round 2: batches 0, 1, 2
      (5, [0, 1, 2])
      >>> tr.close()
    """

    def __init__(
        self, config: TrainConfig, run_dir=None, *, _state: Optional[TrainState] = None, _history=None
    ):
        self.config = config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.mol = config.molecule_object()
        self.history: list = list(_history or [])
        self._wall_offset = self.history[-1]["wall_s"] if self.history else 0.0
        self._last_jump_warning = -(10**9)  # step of the last loss-jump warning
        self._last_spin_warning = -(10**9)  # step of the last spin-contamination warning
        self.monitor: Optional[Callable] = None  # monitor(params) -> dict of test metrics
        self.monitor_every = 0
        self.timing = dict(step_s=0.0, wait_s=0.0, compile_s=0.0, steps=0)
        self.label_seconds = 0.0
        # plain JSON-able data a driver keeps with the checkpoint (`save`), restored by `resume`
        # (e.g. a budget run's charged seconds and curve, `qpt_nb.analysis.budget`)
        self.extra: dict = {}
        self._built: dict = {}  # supervised conformers of a fixed data set, by geometry (make_batch)
        self._update = make_update(config)
        self.schedule = config.data_schedule_object()
        self._stream = None
        self._window: dict = {}  # batch index -> sharded QPTBatch, the schedule's live batches
        self._next_batch = 0  # index of the next batch the stream yields
        self.mesh = data_mesh(config.devices)
        self._lock = None
        if self.run_dir is not None:
            self._lock = RunLock(self.run_dir).acquire()  # RunLocked if another process has it
            ckpt.remove_orphans(self.run_dir)
        state = _state if _state is not None else init_state(config, self._example())
        self.state = replicate(state, self.mesh)
        if self.run_dir is not None:
            save_json(self.run_dir / "config.json", config.to_json())
            if _state is None:  # a fresh run: resumable from its first second
                atomic_write_text(self.run_dir / HISTORY, "")
                self.save()

    # ---------------------------------------------------------------- data
    def make_batch(self, mols) -> QPTBatch:
        """Precomputes and stacks conformers (runs in the prefetch workers).

        For the supervised loss each conformer is labelled with PySCF, or qpt_nb's SCF
        (`TrainConfig.label_engine`; `qpt_nb.dft.reference.label`, disk-cached); the seconds spent labelling are
        added to `self.label_seconds` (only fresh labels count). The tensors are built
        on the training grid (`TrainConfig.loss_grid_level`) in `TrainConfig.precision`;
        labels, monitors and evaluations stay on `grid_level` in float64.

        The supervised loss reads no grid, so its conformers keep only the network
        inputs, H_init and the label (`batch.without_grid`); on a fixed data set
        (``dataset_size`` > 0, label-then-train) each one is built once and kept in
        memory, so later epochs cost only the optimiser steps.
        """
        c = self.config
        items = []
        for m in mols:
            key = m.coords_angstrom.tobytes() if c.loss == "supervised" and c.dataset_size else None
            if key is not None and key in self._built:
                items.append(self._built[key])
                continue
            b = prepare_conformer(
                m, c.basis, xc=c.xc, grid_level=c.loss_grid_level, eri=c.eri, precision=c.precision
            )
            if c.loss == "supervised":
                from qpt_nb.dft.reference import label

                lab = label(
                    m,
                    c.basis,
                    xc=c.xc,
                    grid_level=c.grid_level,
                    eri=b.tensors.eri_kind,
                    engine=c.label_engine,
                )
                if not lab.cached:
                    self.label_seconds += lab.seconds
                b = without_grid(dataclasses.replace(b, ref_fock=jnp.asarray(lab.fock)))
                if key is not None:
                    self._built[key] = b
            items.append(b)
        return stack_batch(items)

    def _example(self) -> QPTBatch:
        return self.make_batch([self.mol])

    def _open_stream(self):
        """Starts precomputing at the first batch the schedule still needs at this step (a
        resumed run rebuilds its window: at most `reuse` precomputes)."""
        c = self.config
        self._next_batch = self.schedule.live_batches(self.step).start
        first = self._next_batch * c.batch_size
        kw = c.sampler_kwargs()
        if c.dataset_size > 0:  # a fixed data set, cycled (e.g. label-then-train)
            pool = list(
                itertools.islice(ConformerStream(self.mol, c.sampler, seed=c.seed, **kw), c.dataset_size)
            )
            conformers = (pool[i % len(pool)] for i in itertools.count(first))
        else:
            conformers = iter(ConformerStream(self.mol, c.sampler, seed=c.seed, start=first, **kw))
        source = _chunks(conformers, c.batch_size)
        self._stream = Prefetcher(
            source, self.make_batch, workers=c.prefetch_workers, queue_size=c.queue_size
        )

    def _batch_for(self, step: int) -> QPTBatch:
        """The sharded batch optimiser step `step` trains on (`DataSchedule.batch_at`). Batches
        are taken from the prefetcher in index order, sharded once and kept while the schedule
        needs them (`DataSchedule.live_batches`), so the order never depends on timing."""
        want = self.schedule.batch_at(step)
        live = self.schedule.live_batches(step)
        for k in [k for k in self._window if k < live.start]:
            del self._window[k]
        while want not in self._window:
            self._window[self._next_batch] = shard_batch(next(self._stream), self.mesh)
            self._next_batch += 1
        return self._window[want]

    def build_dataset(self) -> int:
        """Builds every conformer of a fixed supervised data set now (``dataset_size`` > 0;
        `make_batch` keeps them), as its first epoch would; returns how many are built. A
        resumed label-then-train run calls it so that rebuilding is not mixed into its steps."""
        c = self.config
        if not (c.loss == "supervised" and c.dataset_size):
            return 0
        stream = ConformerStream(self.mol, c.sampler, seed=c.seed, **c.sampler_kwargs())
        pool = list(itertools.islice(stream, c.dataset_size))
        for i in range(0, len(pool), c.batch_size):
            self.make_batch(pool[i : i + c.batch_size])
        return len(self._built)

    @property
    def data_ready(self) -> bool:
        """True once the data pipeline runs at its steady rate: a step has been taken (the
        update compiled) and, on a fixed supervised data set, every conformer has been
        built once (later epochs reuse them, `make_batch`)."""
        c = self.config
        if self.timing["steps"] == 0:
            return False
        return not (c.loss == "supervised" and c.dataset_size) or len(self._built) >= c.dataset_size

    def reschedule(self, *, decay_steps: int, warmup_steps: Optional[int] = None) -> TrainConfig:
        """Refits the cosine schedule of this run in place (`make_schedule`), keeping the
        parameters, the optimiser moments, the step count and the built data: the learning rate
        from the next step on follows the new schedule. Used to fit the schedule to a time
        budget once the step rate is known (`qpt_nb.learn.recipe.BudgetFit`). The next step
        recompiles the update. Returns the new config (also written to config.json)."""
        warm = self.config.warmup_steps if warmup_steps is None else int(warmup_steps)
        if int(decay_steps) <= max(warm, 1):
            raise ValueError(f"decay_steps={decay_steps} must exceed warmup_steps={warm}.")
        self.config = dataclasses.replace(self.config, decay_steps=int(decay_steps), warmup_steps=warm)
        self._update = make_update(self.config)
        if self.run_dir is not None:
            save_json(self.run_dir / "config.json", self.config.to_json())
        return self.config

    # ---------------------------------------------------------------- loop
    @property
    def step(self) -> int:
        return int(self.state.step)

    @property
    def params(self):
        """The model's parameters: the moving average when ``ema_decay`` > 0 (what the
        monitor, evaluation, predictions and shipped models use), else the optimiser's."""
        return self.state.ema_params

    @property
    def raw_params(self):
        """The optimiser's parameters (not averaged)."""
        return self.state.params

    @property
    def n_params(self) -> int:
        return count_params(self.state.params)

    def run(
        self,
        n_steps: Optional[int],
        callback: Optional[Callable[[dict], None]] = None,
        *,
        should_stop: Optional[Callable[[], bool]] = None,
        max_seconds: Optional[float] = None,
    ) -> list:
        """Runs up to `n_steps` more optimiser steps (None: no step limit); returns the
        logged records. This is the one training loop: the CLI, the dashboard, the
        experiments and the benchmarks all call it.

        `callback(record)` is called after every logged step with the metrics
        (floats), 'step', 'wall_s' (cumulative training time), 'steps_per_s' and
        'wait_fraction' (share of time spent waiting for precomputed data).

        The run ends early when `should_stop()` returns True or when `max_seconds`
        of wall-clock time have passed since the call; both are checked after every
        step (after its logging and checkpoint), so at least one step is taken.
        `should_stop` may do work of its own between steps (a notebook's Pause, an
        evaluation on a time schedule); that time is not in `timing` or 'wall_s'.
        With `n_steps=None` one of the two is required. With a run_dir, a checkpoint
        is written at the end when a step was taken.
        """
        if n_steps is None:
            if should_stop is None and max_seconds is None:
                raise ValueError("n_steps=None needs should_stop or max_seconds, else the run never ends.")
        elif int(n_steps) < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}.")
        if self._stream is None:
            self._open_stream()
        c, logged, taken = self.config, [], 0
        start = time.perf_counter()
        for _ in itertools.count() if n_steps is None else range(int(n_steps)):
            t0 = time.perf_counter()
            batch = self._batch_for(self.step)
            t1 = time.perf_counter()
            before = self.state
            self.state, metrics = self._update(self.state, batch)
            metrics = {k: float(v) for k, v in metrics.items()}  # blocks: one sync per step
            t2 = time.perf_counter()
            if not (np.isfinite(metrics["loss"]) and np.isfinite(metrics["grad_norm"])):
                self.state = before
                self._diverged(metrics)
            if self.timing["steps"] == 0:
                self.timing["compile_s"] = t2 - t1
            self.timing["wait_s"] += t1 - t0
            self.timing["step_s"] += t2 - t0
            self.timing["steps"] += 1
            taken += 1
            step = self.step
            if step % c.log_every == 0 or step == 1:
                rec = self._record(step, metrics)
                self._check_jump(rec)
                self._check_spin(rec)
                if self.monitor is not None and self.monitor_every and step % self.monitor_every == 0:
                    rec.update({f"test_{k}": v for k, v in self.monitor(self.params).items()})
                self.history.append(rec)
                logged.append(rec)
                if self.run_dir is not None:
                    with open(self.run_dir / HISTORY, "a") as fh:
                        fh.write(json.dumps(rec) + "\n")
                if callback is not None:
                    callback(rec)
            if self.run_dir is not None and step % c.checkpoint_every == 0:
                self.save()
            if should_stop is not None and should_stop():
                break
            if max_seconds is not None and time.perf_counter() - start >= max_seconds:
                break
        if self.run_dir is not None and taken:
            self.save()
        return logged

    def _diverged(self, metrics):
        """Stops the run: the state of the last finite step is kept (and saved, so the good
        checkpoint is never replaced by a diverged one)."""
        step = self.step + 1
        where = ""
        if self.run_dir is not None:
            self.save()
            where = f"; the checkpoint in {self.run_dir} holds step {self.step}"
        raise TrainingDiverged(
            f"training diverged at step {step}: loss {metrics['loss']}, gradient norm "
            f"{metrics['grad_norm']} (lr {metrics['lr']:.3g}){where}. Lower the learning rate "
            "(--lr) or clip harder (--clip-norm), then resume."
        )

    def _check_jump(self, rec: dict):
        """Marks a loss far above the recent range (rec['loss_jump'] = True, and a
        RuntimeWarning): more than 10 interquartile ranges (and 1 mHa for the energy loss)
        above the median of the recent logged losses, once enough exist. The window spans at
        least `JUMP_WINDOW` records and four conformer batches (4 * reuse steps), so that
        the spread of energies across conformers (a dihedral scan spans tenths of a
        Hartree) is part of the range; one warning per batch at most."""
        cfg = self.config
        window = max(JUMP_WINDOW, -(-4 * cfg.reuse // max(cfg.log_every, 1)))
        recent = [r["loss"] for r in self.history[-window:]]
        if len(recent) < window:
            return
        q1, med, q3 = np.percentile(recent, [25, 50, 75])
        floor = 1e-3 if cfg.loss == "energy" else 1e-9
        if rec["loss"] - med > max(10.0 * (q3 - q1), floor):
            rec["loss_jump"] = True
            if rec["step"] - self._last_jump_warning < cfg.reuse:
                return
            self._last_jump_warning = rec["step"]
            kept = (
                f" The checkpoint it replaces is kept as {CHECKPOINT}.prev in {self.run_dir}."
                if self.run_dir is not None
                else ""
            )
            warnings.warn(
                f"step {rec['step']}: the loss {rec['loss']:.6g} jumped far above its recent median "
                f"{med:.6g}; the learning rate ({rec['lr']:.3g}) may be too large.{kept}",
                RuntimeWarning,
                stacklevel=3,
            )

    def _check_spin(self, rec: dict):
        """Open shells: marks a logged step whose sandwich density is spin-contaminated
        (rec['spin_contaminated'] = True when |<S^2> - S(S+1)| > `SPIN_CONTAMINATION`, the
        limit `qpt_nb.dft.uks.warn_spin_contamination` uses), with a RuntimeWarning once per
        batch: the conformer may have drifted where the UKS state mixes in higher spins
        (a stretched bond), or the model pushes D_n there."""
        if "spin_square" not in rec:
            return
        if spin_contamination(rec["spin_square"], self.config.spin) <= SPIN_CONTAMINATION:
            return
        s = 0.5 * self.config.spin
        rec["spin_contaminated"] = True
        if rec["step"] - self._last_spin_warning < self.config.reuse:
            return
        self._last_spin_warning = rec["step"]
        warnings.warn(
            f"step {rec['step']}: spin contamination in the sandwich density, <S^2> = "
            f"{rec['spin_square']:.3f} against {s * (s + 1):.3f} for 2S = {self.config.spin} "
            f"(limit {SPIN_CONTAMINATION}); check the conformers (a stretched bond mixes in "
            "higher spin states) or lower the learning rate.",
            RuntimeWarning,
            stacklevel=3,
        )

    @property
    def steady_steps_per_s(self) -> float:
        """Optimiser steps per second of this process's steps after the first (which
        compiles); 0.0 before the second step."""
        tm = self.timing
        return (tm["steps"] - 1) / max(tm["step_s"] - tm["compile_s"], 1e-9) if tm["steps"] > 1 else 0.0

    def _record(self, step, metrics) -> dict:
        tm = self.timing
        return dict(
            step=step,
            **metrics,
            wall_s=self._wall_offset + tm["step_s"],
            steps_per_s=self.steady_steps_per_s,
            wait_fraction=tm["wait_s"] / max(tm["step_s"], 1e-9),
        )

    # ---------------------------------------------------------------- persistence
    def save(self) -> Path:
        """Writes the checkpoint atomically (also called every `checkpoint_every` steps)."""
        if self.run_dir is None:
            raise ValueError("This Trainer has no run_dir to save to.")
        path = self.run_dir / CHECKPOINT
        ckpt.save_keeping_previous(
            path,
            dict(
                state=self.state._asdict(),
                config=self.config.to_json(),
                step=self.step,
                extra=self.extra,
                format=1,
            ),
            params_key="state",
        )
        return path

    @classmethod
    def resume(cls, run_dir, *, config: Optional[TrainConfig] = None) -> "Trainer":
        """Continues the run in `run_dir` from its checkpoint.

        Raises `CheckpointError` (a ValueError) if the checkpoint is missing or
        corrupt, and ValueError if `config` names an incompatible molecule or
        settings. The history is truncated to the checkpoint's step.
        """
        run_dir = Path(run_dir)
        lock = RunLock(run_dir).acquire()  # before reading: no writer in between
        try:
            data = ckpt.load_latest(run_dir / CHECKPOINT)
        except BaseException:
            lock.release()
            raise
        saved = TrainConfig.from_json(data["config"])
        if config is not None:
            _check_compatible(saved, config)
            saved = dataclasses.replace(config)
        history = [r for r in read_history(run_dir) if r.get("step", 0) <= data["step"]]
        fields = {k: v for k, v in data["state"].items() if k in TrainState._fields}
        fields.setdefault("ema_params", fields["params"])  # checkpoints from before averaging
        state = TrainState(**fields)
        state = jax.tree_util.tree_map(jnp.asarray, state)
        try:
            tr = cls(saved, run_dir, _state=state, _history=history)
        finally:
            lock.release()  # the Trainer holds its own
        tr.extra = dict(data.get("extra") or {})
        atomic_write_text(run_dir / HISTORY, "".join(json.dumps(r) + "\n" for r in history))
        return tr

    def close(self):
        """Stops the prefetch workers and releases the run directory."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        self._window.clear()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def data_stats(self) -> dict:
        """Prefetch statistics: items made, wait seconds, ..."""
        return self._stream.stats() if self._stream is not None else {}


def _check_compatible(saved: TrainConfig, new: TrainConfig):
    for key in ("molecule", "xyz", "charge", "spin", "basis", "xc", "model", "eri"):
        if getattr(saved, key) != getattr(new, key):
            raise ValueError(
                f"Cannot resume: the run was trained with {key}={getattr(saved, key)!r}, "
                f"not {getattr(new, key)!r}."
            )


def read_history(run_dir) -> list:
    """Records of ``run_dir/history.jsonl`` (empty list if absent; bad lines skipped)."""
    path = Path(run_dir) / HISTORY
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out
