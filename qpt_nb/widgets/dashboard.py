"""`TrainingDashboard`: drive a `qpt_nb.learn.train.Trainer` from a notebook and watch it learn.

    tr = Trainer(TrainConfig(molecule='water', grid_level=1, warmup_steps=20))
    test = qpt_nb.analysis.evaluation.make_test_set(tr.mol, 8, sampler='wiggle')
    dash = TrainingDashboard(tr, test, refresh_every=10)
    dash                      # Start / Pause / Step buttons, live plots
    dash.run(200)             # or train from code (blocking), refreshing every 10 steps

Buttons run `Trainer.run` in a background thread, so the notebook stays
responsive; the dashboard redraws every ``refresh_every`` steps (from the run's
callback) and Pause stops the run at the next such step (its ``should_stop``).
The first step compiles the network (status "compiling ..."). With a test set
the trainer gets a monitor (`qpt_nb.analysis.evaluation.make_monitor`, PySCF labels from the
cache) that records the test energy and Hamiltonian errors every refresh, and
each refresh also evaluates every test conformer
(`qpt_nb.analysis.evaluation.conformer_rows`, scored as `evaluate` scores them),
sortable, with the selected conformer's geometry
and its predicted vs PySCF orbital energies.

State is a plain `DashboardState`; plots come from `qpt_nb.viz`.
"""

from __future__ import annotations

import dataclasses
import html
import threading
import traceback
from typing import Callable, Optional

import numpy as np

from qpt_nb import viz
from qpt_nb.widgets.orbital import MoleculeView, set_output_html, set_png

__all__ = ["TrainingDashboard", "DashboardState", "SORT_KEYS"]

SORT_KEYS = {"index": "index", "|energy error|": "energy_error_mev", "Hamiltonian MAE": "hamiltonian_mae_uha"}


@dataclasses.dataclass
class DashboardState:
    """What the dashboard shows (plain data).

    status: 'idle' | 'labelling' | 'compiling' | 'running' | 'pausing' | 'paused' | 'error'.
    step: the trainer's step at the last refresh; refreshes: how many redraws so far.
    rows: per-conformer rows (index, reference_energy_ha, predicted_energy_ha,
    energy_error_mev, hamiltonian_mae_uha, mo_energy_mae_occ_uha, ...) at
    ``rows_step``; predicted_mo_energy: {index: (N,) Hartree} for those rows;
    reference_mo_energy: {index: ((N,) PySCF orbital energies, n_occ)}.
    selected: chosen test conformer (index); sort_by: row key used to order them.
    error: message of an exception raised while training (the thread stops).
    """

    status: str = "idle"
    step: int = 0
    refreshes: int = 0
    rows: list = dataclasses.field(default_factory=list)
    rows_step: Optional[int] = None
    predicted_mo_energy: dict = dataclasses.field(default_factory=dict)
    reference_mo_energy: dict = dataclasses.field(default_factory=dict)
    selected: Optional[int] = None
    sort_by: str = "index"
    error: Optional[str] = None
    last_record: dict = dataclasses.field(default_factory=dict)


class TrainingDashboard:
    """Start / Pause / Step control of a `Trainer`, live curves and per-conformer errors.

    Args:
      trainer: a `qpt_nb.learn.train.Trainer` (its ``run(n, callback)`` continues).
      test_set: optional list of `Molecule` test conformers (e.g. from
        `qpt_nb.analysis.evaluation.make_test_set`); enables test curves and per-conformer errors.
      refresh_every: redraw (and monitor / evaluate) every this many steps.
      step_size: steps per press of Step (default: refresh_every).
      max_steps: Start stops at this step (None: run until Pause).
      labels: optional PySCF labels of the test set (else computed, cached on disk).
      evaluate_conformers: evaluate every test conformer at each refresh (rows);
        False keeps only the monitor's mean errors.
      evaluate_fn: optional ``evaluate_fn(trainer) -> rows`` replacing the built-in
        evaluation (then no monitor or labels are set up); a row may carry
        'predicted_mo_energy', 'reference_mo_energy' (Hartree) and 'n_occ' for
        the orbital-energy panel.
    """

    def __init__(
        self,
        trainer,
        test_set=None,
        *,
        refresh_every: int = 10,
        step_size: Optional[int] = None,
        max_steps: Optional[int] = None,
        labels=None,
        evaluate_conformers: bool = True,
        evaluate_fn: Optional[Callable] = None,
    ):
        import ipywidgets as W

        if int(refresh_every) < 1:
            raise ValueError(f"refresh_every must be >= 1, got {refresh_every}")
        self.trainer = trainer
        self.test_set = list(test_set) if test_set is not None else []
        self.refresh_every = int(refresh_every)
        self.step_size = int(step_size) if step_size else self.refresh_every
        self.max_steps = max_steps
        self.labels = list(labels) if labels is not None else None
        self.evaluate_conformers = bool(evaluate_conformers) and bool(self.test_set)
        self.evaluate_fn = evaluate_fn
        self.state = DashboardState(step=int(trainer.step))
        self._lock = threading.Lock()  # one training thread at a time
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._batches = None  # precomputed test conformers
        self._prepared = False
        self._compiling = False  # the run in progress starts with the compile

        self.start_button = W.Button(description="Start", icon="play", button_style="success")
        self.pause_button = W.Button(description="Pause", icon="pause", disabled=True)
        self.step_button = W.Button(description=f"Step {self.step_size}", icon="step-forward")
        self.status_w = W.HTML()
        self.stats_w = W.HTML()
        self.curves_w = W.Image(format="png")
        self.per_conf_w = W.Image(format="png")
        self.sort_w = W.Dropdown(
            options=list(SORT_KEYS), value="index", description="sort by", layout=W.Layout(width="230px")
        )
        self.conformer_w = W.Dropdown(options=[], description="conformer", layout=W.Layout(width="300px"))
        self.geometry_out = W.Output(layout=W.Layout(width="340px", min_height="270px"))
        self.orbitals_w = W.Image(format="png")

        self.start_button.on_click(lambda _: self.start())
        self.pause_button.on_click(lambda _: self.pause())
        self.step_button.on_click(lambda _: self.step())
        self.sort_w.observe(self._on_sort, names="value")
        self.conformer_w.observe(self._on_conformer, names="value")

        controls = W.HBox([self.start_button, self.pause_button, self.step_button, self.status_w])
        children = [controls, self.stats_w, self.curves_w]
        if self.test_set:
            children += [
                W.HTML("<b>Test conformers</b> (errors against PySCF)"),
                W.HBox([self.sort_w, self.conformer_w]),
                self.per_conf_w,
                W.HBox([self.geometry_out, self.orbitals_w]),
            ]
        self.widget = W.VBox(children)
        self._set_status("idle")
        self.refresh()

    # ------------------------------------------------------------------ public control
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, max_steps: Optional[int] = None):
        """Trains in a background thread until `pause` (or ``max_steps``)."""
        if self.running:
            return
        limit = max_steps if max_steps is not None else self.max_steps
        self._launch(None if limit is None else max(int(limit) - self.trainer.step, 0))

    def pause(self):
        """Stops the background thread at the next refresh step."""
        if self.running:
            self._stop.set()
            self._set_status("pausing")

    def step(self, n: Optional[int] = None):
        """Runs ``n`` (default ``step_size``) steps in the background, then refreshes."""
        if self.running:
            return
        self._launch(int(n) if n is not None else self.step_size)

    def run(self, n: int):
        """Runs ``n`` steps in the calling thread (blocking), refreshing every
        ``refresh_every`` steps.  Returns the state."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("the dashboard is training in the background; pause it first")
        self._stop.clear()
        self._loop(int(n))
        return self.state

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Waits for the background thread; True when it has finished."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        return not self.running

    # ------------------------------------------------------------------ training loop
    def _launch(self, n: Optional[int]):
        if not self._lock.acquire(blocking=False):  # already training
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, args=(n,), daemon=True, name="qpt_nb-dashboard")
        self._thread.start()

    def _loop(self, n: Optional[int]):
        """Trains with one `Trainer.run`; the caller holds ``_lock``, released here at the end."""
        self._buttons(running=True)
        try:
            self.state.error = None
            self._prepare()
            tr = self.trainer
            self._compiling = tr.timing.get("steps", 0) == 0
            self._set_status("compiling" if self._compiling else "running")
            tr.run(n, callback=self._on_record, should_stop=self._should_stop)
            if self.state.step != tr.step:
                self.refresh()
            self._set_status("paused" if self._stop.is_set() else "idle")
        except Exception as exc:  # shown in the widget; the thread ends
            self.state.error = f"{type(exc).__name__}: {exc}"
            self._traceback = traceback.format_exc()
            self._set_status("error")
        finally:
            self._buttons(running=False)
            self._lock.release()

    def _on_record(self, rec: dict):
        """`Trainer.run`'s callback: redraws after the first (compiling) step and once per
        ``refresh_every`` steps."""
        self.state.last_record = rec
        step = int(rec["step"])
        if self._compiling:
            self._compiling = False
            if self.state.status == "compiling":
                self._set_status("running")
            self.refresh()
        elif step // self.refresh_every > self.state.step // self.refresh_every:
            self.refresh()

    def _should_stop(self) -> bool:
        """`Trainer.run`'s should_stop: Pause takes effect at a refresh step."""
        return self._stop.is_set() and self.trainer.step % self.refresh_every == 0

    def _prepare(self):
        """Labels the test set and installs the monitor (once)."""
        if self._prepared or not self.test_set or self.evaluate_fn is not None:
            self._prepared = True
            return
        from qpt_nb.analysis.evaluation import make_monitor
        from qpt_nb.dft.reference import label_many
        from qpt_nb.learn.batch import prepare_conformer

        cfg = self.trainer.config
        self._set_status("labelling")
        self._batches = [prepare_conformer(m, cfg.basis, **cfg.dft_settings()) for m in self.test_set]
        if self.labels is None:
            kind = self._batches[0].tensors.eri_kind
            self.labels = label_many(self.test_set, cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level, eri=kind)
        if self.trainer.monitor is None:
            self.trainer.monitor = make_monitor(cfg, self.test_set, self.labels)
        if not self.trainer.monitor_every:
            self.trainer.monitor_every = self.refresh_every
        self._prepared = True

    # ------------------------------------------------------------------ evaluation
    def evaluate_rows(self) -> list:
        """Per-conformer errors of the current parameters (also stored in the state)."""
        if not self.test_set:
            return []
        if not self._prepared:
            self._prepare()
        if self.evaluate_fn is not None:
            rows = [dict(r) for r in self.evaluate_fn(self.trainer)]
        else:
            from qpt_nb.analysis.evaluation import conformer_rows

            rows = conformer_rows(self.trainer.config, self.trainer.params, self._batches, self.labels)
        s = self.state
        s.predicted_mo_energy = {
            r["index"]: np.asarray(r.pop("predicted_mo_energy")) for r in rows if "predicted_mo_energy" in r
        }
        s.reference_mo_energy = {
            r["index"]: (np.asarray(r.pop("reference_mo_energy")), int(r.pop("n_occ")))
            for r in rows
            if "reference_mo_energy" in r
        }
        s.rows, s.rows_step = rows, self.trainer.step
        return rows

    # ------------------------------------------------------------------ drawing
    def refresh(self):
        """Redraws curves, statistics and (with a test set) the per-conformer panels."""
        s = self.state
        s.step = int(self.trainer.step)
        s.refreshes += 1
        hist = list(self.trainer.history)
        if hist:
            s.last_record = hist[-1]
        set_png(self.curves_w, viz.training_curves(hist))
        self.stats_w.value = self._stats_html()
        if (
            self.evaluate_conformers
            and (self._prepared or self.evaluate_fn is not None)
            and s.step > 0
            and s.rows_step != s.step
        ):
            self.evaluate_rows()
        if self.test_set:
            self._draw_rows()

    def _stats_html(self) -> str:
        tr, rec = self.trainer, self.state.last_record
        tm = getattr(tr, "timing", {}) or {}
        cells = [("step", f"{tr.step}")]
        if rec:
            cells += [
                ("loss", f"{rec.get('loss', float('nan')):.6f}"),
                ("steps/s", f"{rec.get('steps_per_s', 0.0):.2f}"),
                ("waiting for data", f"{100 * rec.get('wait_fraction', 0.0):.1f} %"),
                ("wall", f"{rec.get('wall_s', 0.0):.1f} s"),
            ]
            for k, lab in (("test_energy_mae_mev", "test E MAE"), ("test_hamiltonian_mae_uha", "test H MAE")):
                last = next((r[k] for r in reversed(tr.history) if k in r), None)
                if last is not None:
                    cells.append((lab, f"{last:.3g} {'meV' if k.endswith('mev') else 'uHa'}"))
        if tm.get("compile_s"):
            cells.append(("compile", f"{tm['compile_s']:.1f} s"))
        return (
            "<div style='font-family:monospace'>"
            + " &nbsp;|&nbsp; ".join(f"{a}: <b>{b}</b>" for a, b in cells)
            + "</div>"
        )

    def _draw_rows(self):
        s = self.state
        rows = s.rows
        key = SORT_KEYS[self.sort_w.value]
        s.sort_by = key
        set_png(self.per_conf_w, viz.per_conformer_errors(rows, sort_by=key, selected=s.selected))
        order = viz.sort_rows(rows, key)
        options = [
            (
                f"#{rows[i]['index']}: {rows[i]['energy_error_mev']:+.2f} meV, "
                f"H {rows[i]['hamiltonian_mae_uha']:.0f} uHa",
                rows[i]["index"],
            )
            for i in order
        ]
        if not options:
            options = [(f"#{i} (not evaluated yet)", i) for i in range(len(self.test_set))]
        sel = s.selected if s.selected is not None else options[0][1]
        self._setting_options = True
        try:
            self.conformer_w.options = options
            self.conformer_w.value = sel
        finally:
            self._setting_options = False
        self._draw_selected(sel)

    def _on_sort(self, change):
        self._draw_rows()

    def _on_conformer(self, change):
        if getattr(self, "_setting_options", False) or change["new"] is None:
            return
        self.select(change["new"])

    def select(self, index: int):
        """Shows test conformer ``index``: geometry and predicted vs PySCF orbital energies."""
        if not 0 <= int(index) < len(self.test_set):
            raise ValueError(f"conformer index {index} out of range 0..{len(self.test_set) - 1}")
        self.state.selected = int(index)
        if self.conformer_w.value != int(index) and any(v == int(index) for _, v in self.conformer_w.options):
            self._setting_options = True
            try:
                self.conformer_w.value = int(index)
            finally:
                self._setting_options = False
        if self.state.rows:
            set_png(
                self.per_conf_w,
                viz.per_conformer_errors(self.state.rows, sort_by=self.state.sort_by, selected=int(index)),
            )
        self._draw_selected(int(index))

    def _draw_selected(self, index: int):
        self.state.selected = index
        mol = self.test_set[index]
        mv = MoleculeView(mol, 320, 250, title=f"test conformer {index}")
        set_output_html(self.geometry_out, mv.html(), f"test conformer {index}")
        eps = self.state.predicted_mo_energy.get(index)
        ref = self.state.reference_mo_energy.get(index)
        if eps is not None and ref is not None:
            set_png(
                self.orbitals_w,
                viz.orbital_energy_comparison(
                    eps,
                    ref[0],
                    ref[1],
                    labels=("QPT", "PySCF"),
                    title=f"conformer {index} at step {self.state.rows_step}",
                ),
            )

    # ------------------------------------------------------------------ widget plumbing
    def _set_status(self, status: str):
        self.state.status = status
        text = {
            "idle": "idle",
            "labelling": "labelling the test set with PySCF ...",
            "compiling": "compiling ... (first step, ~10-30 s)",
            "running": "running",
            "pausing": "pausing at the next refresh ...",
            "paused": "paused",
            "error": "error",
        }.get(status, status)
        color = {"error": "#a00", "compiling": "#b60", "labelling": "#b60", "running": "#070"}.get(
            status, "#333"
        )
        msg = f"<span style='color:{color}'><b>{html.escape(text)}</b></span>"
        if status == "error" and self.state.error:
            msg += f" <span style='color:#a00'>{html.escape(self.state.error)}</span>"
        self.status_w.value = msg

    def _buttons(self, running: bool):
        self.start_button.disabled = running
        self.step_button.disabled = running
        self.pause_button.disabled = not running

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
