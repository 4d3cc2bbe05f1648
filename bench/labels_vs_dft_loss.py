"""The headline: accuracy vs wall-clock time of label-trained vs label-free (DFT-loss) training.

Same network preset, same conformer sampler ('md' when tblite is installed, else
'wiggle'), same optimiser, same held-out test set (`evaluate.make_test_set`, seed 12345,
labels from `reference.label` at the QH9 settings; test labels are not charged to anyone):

  L  labels: samples conformers (Trainer's stream, seed 0), labels each with PySCF
     (`reference.label(use_cache=False)`: real time, charged), precomputes the network
     inputs (charged), then trains loss='supervised' (|H_init + W - F_ref|^2) cycling
     over the labelled set. By default labelling stops after half of the budget
     (--n-labels fixes the count instead).
  Q  label-free: `Trainer` with loss='energy' (the DFT energy E[D3]), fresh conformers.
  SC self-consistency: `Trainer` with loss='self_consistency' (label-free too).

Each pipeline is paused and evaluated on the test set (energy MAE, meV; Hamiltonian MAE
of F[D3], uHa; evaluation time not charged) every --eval-every seconds of charged time, or
at the --eval-at minutes after its training starts (L: after labelling). Charged time is
wall-clock by default; --clock cpu charges the process's CPU time instead (all threads,
prefetch and PySCF included), so single-threaded pipelines can run side by side on one
machine without charging each other for the sharing. The JSON is rewritten after every
evaluation (complete=false until the end), so an interrupted run keeps its curves, and
--test-cache DIR stores the precomputed test tensors on disk for every process to reuse.
Reported: the wall-clock ratio  t_L(best) / t_Q(reaches L's best), per metric (the
paper: 786 h / 31 h = 25x), and one figure of both metrics against charged wall-clock.

  python bench/labels_vs_dft_loss.py          # quick: water/sto-3g grid 1, 8 test conformers, 30 s each
  python bench/labels_vs_dft_loss.py --full   # uracil/sto-3g grid 3, 100 test conformers, 60 min each

  # the three pipelines side by side on a 2-core machine, one thread each, CPU-time charged:
  export OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
  python bench/labels_vs_dft_loss.py --full --prelabel-only --test-cache /tmp/qpt_test
  for P in L Q SC; do python bench/labels_vs_dft_loss.py --full --clock cpu --label-threads 1 \
      --test-cache /tmp/qpt_test --pipelines $P --tag $P & done; wait
  python bench/labels_vs_dft_loss.py --full --combine bench/results/labels_vs_dft_loss_{L,Q,SC}.json

  # a label-free variant (L and the test set unchanged): train Q on the coarser grid 1
  python bench/labels_vs_dft_loss.py --full --clock cpu --pipelines Q --tag Q_grid1 \
      --set grid_level=1 decay_steps=8000
"""
from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "labels_vs_dft_loss"
QUICK = dict(molecule="water", basis="sto-3g", grid_level=1, n_test=8, budget_s=30.0,
             eval_every_s=5.0, warmup_steps=100)
FULL = dict(molecule="uracil", basis="sto-3g", grid_level=3, n_test=100, budget_s=3600.0,
            eval_every_s=300.0, warmup_steps=100, eval_at_min=(2, 5, 10, 20, 30, 45))
CLOCKS = dict(wall=time.perf_counter, cpu=time.process_time)
clock = CLOCKS["wall"]  # the charging clock; main() sets it from --clock
PAPER_RATIO = 786.0 / 31.0


# ----------------------------------------------------------------------------- evaluation
@functools.partial(__import__("jax").jit, static_argnames=("model", "n_refine", "mix"))
def _outputs(params, batch, model, n_refine, mix):
  import jax
  from qpt_nb.dft.kohn_sham import energy_and_fock
  from qpt_nb.learn.losses import sandwich_outputs
  from qpt_nb.dft.xc import get_xc
  e, d, _ = sandwich_outputs(params, batch, model=model, n_refine=n_refine, mix=mix)
  f = get_xc(batch.xc)
  return e, jax.vmap(lambda di, ti: energy_and_fock(di, ti, f)[1])(d, batch.tensors)


class ChunkedMonitor:
  """Energy MAE (meV) and Hamiltonian MAE of F[D3] (uHa) on a test set, in chunks.

  Like `evaluate.make_monitor`, but the test set is evaluated `chunk` conformers at a
  time and only as many precomputed chunks are kept as fit in `keep_gb` (uracil/STO-3G at
  grid level 3 is about 0.25 GB per conformer); the others are re-precomputed per call.
  """

  def __init__(self, cfg, test_set, labels, chunk=8, keep_gb=4.0, cache_dir=None):
    import numpy as np
    self.cfg, self.mols = cfg, list(test_set)
    self.cache_dir = Path(cache_dir) if cache_dir else None
    self.e_ref = np.asarray([lab.energy for lab in labels])
    self.f_ref = [np.asarray(lab.fock) for lab in labels]
    self.slices = [slice(i, i + chunk) for i in range(0, len(self.mols), chunk)]
    self.kept, used = {}, 0.0
    for i, s in enumerate(self.slices):
      b = self._make(s)
      used += b.tensors.nbytes() / 1e9
      if used > keep_gb:
        break
      self.kept[i] = b

  def _path(self, s):
    """Disk-cache file of one chunk: keyed by its geometries and the DFT settings."""
    import numpy as np
    c, h = self.cfg, hashlib.sha256()
    h.update(repr((c.basis, c.xc, c.grid_level, c.eri)).encode())
    for m in self.mols[s]:
      h.update(np.ascontiguousarray(m.coords_angstrom, dtype=np.float64).tobytes())
      h.update(repr(m.symbols).encode())
    return self.cache_dir / f"{h.hexdigest()[:32]}.pkl"

  def _make(self, s):
    import jax
    from qpt_nb.learn.losses import prepare_conformer, stack_batch
    c = self.cfg
    path = self._path(s) if self.cache_dir else None
    if path is not None and path.exists():
      with open(path, "rb") as fh:
        return pickle.load(fh)
    b = stack_batch(prepare_conformer(m, c.basis, c.xc, c.grid_level, eri=c.eri)
                    for m in self.mols[s])
    if path is not None:  # atomic: several processes may fill the same cache
      path.parent.mkdir(parents=True, exist_ok=True)
      tmp = path.with_suffix(f".{os.getpid()}.tmp")
      with open(tmp, "wb") as fh:
        pickle.dump(jax.device_get(b), fh, protocol=pickle.HIGHEST_PROTOCOL)
      os.replace(tmp, path)
    return b

  def fill_cache(self):
    """Precomputes every chunk into the disk cache (no-op without one)."""
    if self.cache_dir:
      for s in self.slices:
        if not self._path(s).exists():
          self._make(s)

  def __call__(self, params) -> dict:
    import numpy as np
    from qpt_nb.analysis.evaluation import MEV_PER_HARTREE, UHA_PER_HARTREE
    c, de, dh = self.cfg, [], []
    for i, s in enumerate(self.slices):
      b = self.kept.get(i) or self._make(s)
      e, fk = _outputs(params, b, c.model, int(c.n_refine), float(c.mix))
      de.append(np.abs(np.asarray(e) - self.e_ref[s]))
      dh += [np.abs(np.asarray(f) - r).mean() for f, r in zip(fk, self.f_ref[s])]
    return dict(energy_mae_mev=float(np.concatenate(de).mean() * MEV_PER_HARTREE),
                hamiltonian_mae_uha=float(np.mean(dh) * UHA_PER_HARTREE))


class Schedule:
  """Charged times (s) at which a pipeline is evaluated.

  every_s: an evaluation every `every_s` after `start`; eval_at_s: evaluations at
  these offsets after `start` instead (e.g. denser early on). The last evaluation,
  at the budget, is the pipeline's own."""

  def __init__(self, start, budget_s, every_s, eval_at_s=None):
    if eval_at_s:
      self.times = sorted(start + a for a in eval_at_s if start + a < budget_s)
    else:
      n = int(max(budget_s - start, 0) // every_s)
      self.times = [start + every_s * (k + 1) for k in range(n)]

  def due(self, charged) -> bool:
    """True (once) when `charged` has passed the next evaluation time."""
    if self.times and charged >= self.times[0]:
      while self.times and charged >= self.times[0]:
        self.times.pop(0)
      return True
    return False


def _log(curve, name, charged, step, monitor, params, progress=None, **extra):
  t0 = time.perf_counter()
  m = monitor(params)
  rec = dict(t_s=charged, step=int(step), eval_s=time.perf_counter() - t0,
             wall_s=time.perf_counter() - _T_START, **m, **extra)
  curve.append(rec)
  print(f"   [{name}] t={charged:8.1f}s step={step:6d}  E MAE {m['energy_mae_mev']:10.3f} meV  "
        f"H MAE {m['hamiltonian_mae_uha']:10.1f} uHa", flush=True)
  if progress is not None:
    progress(name, curve)


_T_START = time.perf_counter()


# ----------------------------------------------------------------------------- pipelines
def _strip(batch):
  """Drops the grid / ERI arrays the supervised loss never reads (keeps memory flat)."""
  import dataclasses
  import jax.numpy as jnp
  t = dataclasses.replace(batch.tensors, eri=jnp.zeros((1,)), ao=jnp.zeros((1, 1, 1)),
                          weights=jnp.zeros((1,)))
  return dataclasses.replace(batch, tensors=t)


def run_labels(cfg, budget_s, eval_every_s, monitor, n_labels=None, label_fraction=0.5,
               label_threads=None, eval_at_s=None, progress=None):
  """Pipeline L: sample, label (PySCF, no cache), precompute, train loss='supervised'."""
  import dataclasses
  import numpy as np
  from qpt_nb.dft import reference
  from qpt_nb.learn.conformers import ConformerStream
  from qpt_nb.learn.losses import prepare_conformer, stack_batch
  from qpt_nb.dft.tensors import choose_eri_kind
  from qpt_nb.learn.train import init_state, make_update
  cfg = dataclasses.replace(cfg, loss="supervised")
  mol = cfg.molecule_object()
  kind = choose_eri_kind(mol.to_pyscf(cfg.basis).nao_nr(), cfg.eri)
  stream = ConformerStream(mol, cfg.sampler, seed=cfg.seed, **cfg.sampler_kwargs())
  label_budget = budget_s * label_fraction if n_labels is None else float("inf")
  charged, data, label_s, prep_s, curve, cycles = 0.0, [], 0.0, 0.0, [], []
  while (n_labels is None and charged < label_budget) or (n_labels is not None and len(data) < n_labels):
    t0 = clock()
    m = next(stream)
    lab = reference.label(m, cfg.basis, cfg.xc, cfg.grid_level, eri_kind=kind, use_cache=False,
                          threads=label_threads)
    t1 = clock()
    cycles.append((lab.n_cycles, lab.converged))
    data.append(_strip(prepare_conformer(m, cfg.basis, cfg.xc, cfg.grid_level, eri=cfg.eri,
                                         ref_fock=lab.fock)))
    t2 = clock()
    label_s += t1 - t0
    prep_s += t2 - t1
    charged += t2 - t0
  print(f"   [L] {len(data)} conformers labelled in {label_s:.1f} s "
        f"({label_s / len(data):.2f} s each, {np.mean([c for c, _ in cycles]):.1f} PySCF cycles, "
        f"{sum(ok for _, ok in cycles)} converged), inputs precomputed in {prep_s:.1f} s", flush=True)
  t0 = clock()
  update = make_update(cfg)
  state = init_state(cfg, stack_batch([data[0]]))
  charged += clock() - t0
  _log(curve, "L", charged, 0, monitor, state.params, progress, phase="labelled")
  sched = Schedule(charged, budget_s, eval_every_s, eval_at_s)
  rng, order, pos, steps = np.random.default_rng(cfg.seed), [], 0, 0
  while charged < budget_s:
    if pos >= len(order):
      order, pos = rng.permutation(len(data)), 0
    t0 = clock()
    state, metrics = update(state, stack_batch([data[order[pos]]]))
    float(metrics["loss"])
    charged += clock() - t0
    pos, steps = pos + 1, steps + 1
    if sched.due(charged) or charged >= budget_s:
      _log(curve, "L", charged, steps, monitor, state.params, progress)
  return dict(curve=curve, n_labels=len(data), label_s=label_s, precompute_s=prep_s,
              label_s_each=label_s / len(data), steps=steps,
              label_cycles=[c for c, _ in cycles], labels_converged=sum(ok for _, ok in cycles),
              epochs=steps / len(data), labels_end_s=label_s + prep_s)


def run_trainer(cfg, loss, tag, budget_s, eval_every_s, monitor, eval_at_s=None,
                progress=None, save_dir=None):
  """Pipelines Q (loss='energy') and SC (loss='self_consistency') with the Trainer.

  save_dir: the final state is saved there as a run directory (config.json and checkpoint,
  not charged), for `qpt-nb evaluate` or `bench/guess_speedup.py --run`."""
  import dataclasses
  from qpt_nb.learn.train import Trainer
  cfg = dataclasses.replace(cfg, loss=loss)
  t0 = clock()
  tr = Trainer(cfg)
  charged = clock() - t0
  setup = charged
  curve = []
  _log(curve, tag, charged, 0, monitor, tr.params, progress)
  sched = Schedule(charged, budget_s, eval_every_s, eval_at_s)
  while True:
    t0 = clock()
    tr.run(1)
    charged += clock() - t0
    if sched.due(charged) or charged >= budget_s:
      _log(curve, tag, charged, tr.step, monitor, tr.params, progress)
    if charged >= budget_s:
      break
  stats = tr.data_stats()
  if save_dir is not None:
    from qpt_nb.learn import checkpoint as ckpt
    tr.run_dir = Path(save_dir)
    tr.run_dir.mkdir(parents=True, exist_ok=True)
    save_json(tr.run_dir / "config.json", cfg.to_json())
    print(f"   [{tag}] saved to {tr.save()}", flush=True)
  tr.close()
  return dict(curve=curve, steps=tr.step, setup_s=setup, wait_s=tr.timing["wait_s"],
              compile_s=tr.timing["compile_s"], conformers=stats.get("items_consumed"))


def crossing(ref_curve, other_curve, key):
  """(best of ref, time ref first reached it, time other first reached it or None, ratio).

  Only evaluations after at least one optimiser step count (at step 0 every pipeline
  has the same untrained network, so the same metrics)."""
  ref_curve = [r for r in ref_curve if r["step"] > 0]
  other_curve = [r for r in other_curve if r["step"] > 0] or other_curve
  if not ref_curve:
    return dict(best=None, t_ref_s=None, t_other_s=None, ratio=None,
                other_best=min(r[key] for r in other_curve),
                note="L did not reach a training step within its budget (labelling used it)")
  best = min(r[key] for r in ref_curve)
  t_ref = min(r["t_s"] for r in ref_curve if r[key] <= best)
  hits = [r["t_s"] for r in other_curve if r[key] <= best]
  t_other = min(hits) if hits else None
  return dict(best=best, t_ref_s=t_ref, t_other_s=t_other,
              ratio=(t_ref / t_other) if t_other else None,
              other_best=min(r[key] for r in other_curve))


def report(runs, budget):
  """Prints final/best metrics and the L-vs-Q/SC crossing ratios; returns the summary."""
  summary = {}
  print()
  for key, unit in (("energy_mae_mev", "meV"), ("hamiltonian_mae_uha", "uHa")):
    for name, r in runs.items():
      last = r["curve"][-1]
      print(f"{name:3s} {key:20s} final {last[key]:12.3f} {unit}   best "
            f"{min(c[key] for c in r['curve']):12.3f} {unit}   steps {r['steps']}"
            + ("   (interrupted)" if r.get("partial") else ""))
    if "L" in runs:
      for other in ("Q", "SC"):
        if other in runs:
          c = crossing(runs["L"]["curve"], runs[other]["curve"], key)
          summary[f"{other}_vs_L_{key}"] = c
          if c.get("note"):
            msg = f"{other} vs L on {key}: {c['note']}"
          elif c["ratio"]:
            msg = (f"{other} reaches L's best {key} ({c['best']:.3f} {unit}, L needed "
                   f"{c['t_ref_s']:.0f} s) after {c['t_other_s']:.0f} s: ratio {c['ratio']:.2f}x")
          else:
            msg = (f"{other} does NOT reach L's best {key} ({c['best']:.3f} {unit}, at {c['t_ref_s']:.0f} s) "
                   f"within {budget:.0f} s (its best {c['other_best']:.3f} {unit})")
            # The converse: how soon L reaches the best accuracy the other pipeline reached.
            back = crossing(runs[other]["curve"], runs["L"]["curve"], key)
            summary[f"L_vs_{other}_{key}"] = back
            if back.get("ratio"):
              msg += (f"\n    converse: L reaches {other}'s best ({back['best']:.3f} {unit}, {other} needed "
                      f"{back['t_ref_s']:.0f} s) after {back['t_other_s']:.0f} s: to that accuracy {other} is "
                      + (f"{back['ratio']:.2f}x slower" if back["ratio"] >= 1
                         else f"{1 / back['ratio']:.2f}x faster"))
          print("  " + msg + f"   [paper: {PAPER_RATIO:.0f}x]")
  if "L" in runs and not runs["L"].get("partial"):
    L = runs["L"]
    print(f"L: {L['n_labels']} labels, {L['label_s_each']:.2f} s each ({L['label_s']:.0f} s in all), "
          f"{L['steps']} steps = {L['epochs']:.1f} epochs")
  for name in ("Q", "SC"):
    if name in runs and not runs[name].get("partial"):
      r = runs[name]
      print(f"{name}: {r['steps']} steps on {r['conformers']} fresh conformers, compile "
            f"{r['compile_s']:.1f} s, waiting for data {r['wait_s']:.1f} s")
  return summary


def parse_overrides(cfg, items):
  """`KEY=VALUE` strings -> a copy of `cfg` with those TrainConfig fields replaced.

  Values are converted to the field's current type; an unknown key or a value that does not
  convert raises SystemExit with the list of fields."""
  import dataclasses
  fixed = {"loss", "molecule", "xyz", "basis", "xc"}      # what the comparison holds fixed
  fields = {f.name for f in dataclasses.fields(cfg)} - fixed
  changes = {}
  for item in items:
    key, sep, value = item.partition("=")
    if not sep or key not in fields:
      raise SystemExit(f"--set {item!r}: expected KEY=VALUE with KEY one of {sorted(fields)}")
    current = getattr(cfg, key)
    try:
      if isinstance(current, bool):
        changes[key] = value.lower() in ("1", "true", "yes")
      else:
        changes[key] = type(current)(value) if current is not None else value
    except ValueError:
      raise SystemExit(f"--set {item!r}: {key} needs a {type(current).__name__}") from None
  return dataclasses.replace(cfg, **changes)


# ----------------------------------------------------------------------------- driver
def main(argv=None):
  p = common.make_parser(__doc__, NAME)
  p.add_argument("--molecule")
  p.add_argument("--basis")
  p.add_argument("--xc", default="b3lyp5")
  p.add_argument("--grid-level", type=int)
  p.add_argument("--model", default="nano")
  p.add_argument("--sampler", help="default: md if tblite is installed, else wiggle")
  p.add_argument("--n-test", type=int)
  p.add_argument("--budget-min", type=float, help="charged minutes per pipeline (full: 60)")
  p.add_argument("--eval-every-min", type=float, help="minutes between evaluations (full: at "
                 "2, 5, 10, 20, 30, 45 min after training starts, and at the end)")
  p.add_argument("--n-labels", type=int, help="labelled conformers for L (default: label "
                 "until --label-fraction of the budget is spent)")
  p.add_argument("--label-fraction", type=float, default=0.5)
  p.add_argument("--label-threads", type=int, help="PySCF threads (default reference.label_threads())")
  p.add_argument("--pipelines", default="L,Q,SC", help="subset of L,Q,SC")
  p.add_argument("--eval-at", type=float, nargs="+", metavar="MIN",
                 help="evaluate at these charged minutes after training starts (L: after "
                      "labelling) instead of every --eval-every-min")
  p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                 help="charged time: wall-clock (default) or the process's CPU time")
  p.add_argument("--test-cache", metavar="DIR",
                 help="keep the precomputed test tensors in DIR (about 0.25 GB per uracil "
                      "conformer at grid 3), shared by processes run side by side")
  p.add_argument("--monitor-gb", type=float, default=4.0, help="test tensors kept in memory")
  p.add_argument("--save-runs", metavar="DIR",
                 help="save Q's and SC's final states as run directories DIR/Q, DIR/SC")
  p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                 help="TrainConfig fields for the label-free pipelines Q and SC only, e.g. "
                      "decay_steps=2600 or grid_level=1 (the test set and L keep the defaults)")
  p.add_argument("--prelabel-only", action="store_true",
                 help="only label the test set into the cache ($QPT_NB_CACHE) and stop")
  p.add_argument("--combine", nargs="+", metavar="JSON",
                 help="merge the pipelines of earlier runs' JSON files (e.g. L, Q and SC run in "
                      "separate 10-minute device calls with --pipelines) and report them together")
  args = p.parse_args(argv)
  if args.combine:
    return combine(args)
  global clock
  clock = CLOCKS[args.clock]
  sel = dict(FULL if args.full else QUICK)
  for k in ("molecule", "basis", "grid_level", "n_test"):
    if getattr(args, k) is not None:
      sel[k] = getattr(args, k)
  budget = args.budget_min * 60 if args.budget_min else sel["budget_s"]
  every = args.eval_every_min * 60 if args.eval_every_min else sel["eval_every_s"]
  json_path, png_path = common.out_paths(args, NAME)

  import qpt_nb  # noqa: F401
  from qpt_nb.dft import reference
  from qpt_nb.analysis.evaluation import make_test_set
  from qpt_nb.dft.tensors import choose_eri_kind
  from qpt_nb.learn.train import TrainConfig
  sampler = args.sampler
  if sampler is None:
    try:
      import tblite  # noqa: F401
      sampler = "md"
    except ImportError:
      sampler = "wiggle"
  cfg = TrainConfig(molecule=sel["molecule"], basis=sel["basis"], xc=args.xc,
                    grid_level=sel["grid_level"], model=args.model, sampler=sampler,
                    warmup_steps=sel["warmup_steps"], checkpoint_every=10 ** 9, log_every=10 ** 9)
  mol = cfg.molecule_object()
  free_cfg = parse_overrides(cfg, args.overrides)
  eval_at_min = args.eval_at or (sel.get("eval_at_min") if not args.eval_every_min else None)
  when = (f"evaluation at {', '.join(f'{m:g}' for m in eval_at_min)} min after training starts"
          if eval_at_min else f"evaluation every {every:.0f} s")
  print(f"{cfg.molecule}/{cfg.basis}/{cfg.xc} grid {cfg.grid_level}, model {cfg.model}, sampler "
        f"{sampler}, budget {budget:.0f} s ({args.clock} time) per pipeline, {when}", flush=True)
  if args.overrides:
    print(f"Q and SC train with {', '.join(args.overrides)}", flush=True)
  t0 = time.perf_counter()
  test = make_test_set(mol, sel["n_test"], sampler=sampler, **cfg.sampler_kwargs())
  kind = choose_eri_kind(mol.to_pyscf(cfg.basis).nao_nr(), cfg.eri)
  test_labels = reference.label_many(test, cfg.basis, cfg.xc, cfg.grid_level, eri_kind=kind)
  if args.prelabel_only:
    ChunkedMonitor(cfg, test, test_labels, keep_gb=0.0, cache_dir=args.test_cache).fill_cache()
    print(f"{len(test)} test labels in {reference.default_cache_dir()}"
          + (f", test tensors in {args.test_cache}" if args.test_cache else ""))
    return None
  monitor = ChunkedMonitor(cfg, test, test_labels, keep_gb=args.monitor_gb,
                           cache_dir=args.test_cache)
  test_info = dict(seconds=[lab.seconds for lab in test_labels], cached=[lab.cached for lab in test_labels],
                   cycles=[lab.n_cycles for lab in test_labels],
                   converged=[lab.converged for lab in test_labels])
  print(f"test set: {len(test)} conformers labelled/loaded in {time.perf_counter() - t0:.1f} s "
        f"(not charged; PySCF {sum(lab.seconds for lab in test_labels) / len(test):.1f} s and "
        f"{sum(test_info['cycles']) / len(test):.1f} cycles per label, "
        f"{sum(test_info['converged'])}/{len(test)} converged, {sum(test_info['cached'])} from cache)",
        flush=True)

  runs, info = {}, dict(common.machine_info(), clock=args.clock)
  settings = dict(vars(args), **dict(sel, budget_s=budget, eval_every_s=every, sampler=sampler))

  def save(summary=None, complete=False, partial=None):
    """(Re)writes the JSON: finished runs, plus the curve of the one in progress."""
    shown = dict(runs)
    if partial is not None:
      name, curve = partial
      shown[name] = dict(curve=list(curve), steps=curve[-1]["step"], partial=True)
    common.write_json(json_path, dict(benchmark=NAME, mode="full" if args.full else "quick",
                                      complete=complete, settings=settings,
                                      config=cfg.to_json(), machine=info, runs=shown,
                                      test_labels=test_info, summary=summary or {},
                                      paper_ratio=PAPER_RATIO))

  progress = lambda name, curve: save(partial=(name, curve))  # noqa: E731
  eval_at = [60.0 * m for m in eval_at_min] if eval_at_min else None
  wanted = args.pipelines.split(",")
  if "L" in wanted:
    print("-- L: labels + supervised", flush=True)
    runs["L"] = run_labels(cfg, budget, every, monitor, n_labels=args.n_labels,
                           label_fraction=args.label_fraction, label_threads=args.label_threads,
                           eval_at_s=eval_at, progress=progress)
  if "Q" in wanted:
    print("-- Q: label-free, DFT energy loss", flush=True)
    runs["Q"] = run_trainer(free_cfg, "energy", "Q", budget, every, monitor, eval_at, progress,
                            save_dir=Path(args.save_runs) / "Q" if args.save_runs else None)
  if "SC" in wanted:
    print("-- SC: label-free, self-consistency loss", flush=True)
    runs["SC"] = run_trainer(free_cfg, "self_consistency", "SC", budget, every, monitor, eval_at,
                             progress,
                             save_dir=Path(args.save_runs) / "SC" if args.save_runs else None)

  summary = report(runs, budget)
  info = dict(common.machine_info(), clock=args.clock)
  print("machine:", common.machine_line(info))
  save(summary, complete=True)
  _plot(runs, summary, png_path, f"{cfg.molecule}/{cfg.basis}/{cfg.xc}, {cfg.model}, "
        f"{len(test)} test conformers", clock_name=args.clock)
  print(f"wrote {json_path} and {png_path}")
  return runs, summary


def combine(args):
  """--combine: one report, JSON and figure from the pipelines of several result files."""
  import json
  runs, first, budget, complete = {}, None, 0.0, True
  for path in args.combine:
    d = json.loads(Path(path).read_text())
    first = first or d
    runs.update(d["runs"])
    complete = complete and d.get("complete", True)
    budget = max(budget, d["settings"]["budget_s"])
  summary = report(runs, budget)
  json_path, png_path = common.out_paths(args, NAME)
  common.write_json(json_path, dict(first, runs=runs, summary=summary, combined_from=args.combine, complete=complete,
                                    machine=first["machine"]))
  c = first["config"]
  _plot(runs, summary, png_path, f"{c['molecule']}/{c['basis']}/{c['xc']}, {c['model']}, "
        f"{first['settings']['n_test']} test conformers", clock_name=first["settings"].get("clock", "wall"))
  print(f"wrote {json_path} and {png_path}")
  return runs, summary


def _plot(runs, summary, path, title, clock_name="wall"):
  plt = common.pyplot()
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  styles = dict(L="C0", Q="C3", SC="C2")
  names = dict(L="L: PySCF labels + supervised", Q="Q: DFT energy loss (label-free)",
               SC="SC: self-consistency (label-free)")
  scale, unit = (60.0, "min") if max((r["curve"][-1]["t_s"] for r in runs.values()),
                                     default=0) > 600 else (1.0, "s")
  for ax, (key, label) in zip(axes, (("energy_mae_mev", "energy MAE (meV)"),
                                     ("hamiltonian_mae_uha", "Hamiltonian MAE of F[D3] (uHa)"))):
    for name, r in runs.items():
      ax.plot([c["t_s"] / scale for c in r["curve"]], [c[key] for c in r["curve"]], "o-",
              ms=3, color=styles[name], label=names[name])
    if "labels_end_s" in runs.get("L", {}):
      ax.axvline(runs["L"]["labels_end_s"] / scale, color=styles["L"], ls=":", lw=1,
                 label="L: labelling done")
      c = summary.get(f"Q_vs_L_{key}")
      if c and c.get("best") is not None:
        ax.axhline(c["best"], color="gray", ls="--", lw=1, label="best of L")
    ax.set_yscale("log")
    what = "CPU time (one core per pipeline)" if clock_name == "cpu" else "wall-clock"
    ax.set_xlabel(f"{what}, labelling included ({unit})")
    ax.set_ylabel(label)
    ax.legend(fontsize=7)
  fig.suptitle(title)
  common.save_figure(fig, path)


if __name__ == "__main__":
  main()
