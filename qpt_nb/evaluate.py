"""Evaluation of a trained QPT against PySCF (REFERENCE section 5), monitors, initial guesses.

    res = evaluate('runs/uracil', 20)            # run dir, Trainer or (TrainConfig, params)
    print(res.table());  res.save('runs/uracil')

For every test conformer: PySCF labels (`qpt_nb.reference`, same basis, functional,
grid level and ERI kind as the tensors), the QPT sandwich with the trained W and
with W = 0 (the untrained 3-iteration baseline from minao), the Fock matrix rebuilt
from the final density D_n (F[D_n], as the research code does) and its orbitals.
Everything is compared in the canonical (principal-axes) frame of each conformer.

Units: energies in the metrics in meV (1 Ha = 27211.386 meV), matrix and orbital
energy errors in micro-Hartree (uHa), psi in percent.

Metrics (keys of ``metrics.json['trained']`` and ``['baseline_w0']``):
  energy_mae_mev, energy_max_mev   |E[D_n] - E_ref|, mean and max
  hamiltonian_mae_uha              mean over the N^2 entries of |F[D_n] - F_ref|
  mo_energy_mae_occ_uha            mean |eps_i - eps_i^ref| over occupied i (QHNet/QH9)
  mo_energy_mae_all_uha            the same over all orbitals (the research code)
  psi_occ_percent                  mean over occupied i of |<c_i, c_i^ref>| / (|c_i||c_i^ref|)
                                   x 100, the plain dot product of AO coefficient vectors
                                   (REFERENCE section 5; no S metric), in the canonical frame
  homo_mae_mev, lumo_mae_mev, gap_mae_mev
  n_conformers

Test sets are drawn with seed `TEST_SEED` = 12345; training runs use small seeds
(0, 1, ...), so for the 'md' sampler the test conformers come from a different
trajectory than any training conformer.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import json
import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from .energy import energy_and_fock
from .linalg import solve_fock
from .qpt import predict_correction, prepare_conformer, sandwich_outputs
from .reference import Label, label_many
from .sandwich import refine
from .xc import get_xc

MEV_PER_HARTREE = 27211.386
UHA_PER_HARTREE = 1e6
TEST_SEED = 12345
METRIC_KEYS = ("energy_mae_mev", "energy_max_mev", "hamiltonian_mae_uha", "mo_energy_mae_occ_uha",
               "mo_energy_mae_all_uha", "psi_occ_percent", "homo_mae_mev", "lumo_mae_mev",
               "gap_mae_mev", "n_conformers")
CSV_COLUMNS = ("index", "reference_energy_ha", "predicted_energy_ha", "baseline_energy_ha",
               "energy_error_mev", "baseline_energy_error_mev", "hamiltonian_mae_uha",
               "gap_error_mev", "label_seconds")
_LABELS = dict(energy_mae_mev="energy MAE (meV)", energy_max_mev="energy max error (meV)",
               hamiltonian_mae_uha="Hamiltonian MAE (uHa)",
               mo_energy_mae_occ_uha="occ. orbital energy MAE (uHa)",
               mo_energy_mae_all_uha="all orbital energy MAE (uHa)",
               psi_occ_percent="occ. orbital similarity psi (%)", homo_mae_mev="HOMO MAE (meV)",
               lumo_mae_mev="LUMO MAE (meV)", gap_mae_mev="gap MAE (meV)",
               n_conformers="conformers")


# ----------------------------------------------------------------------------- inputs
def resolve_model(model_or_run, config=None):
  """(TrainConfig, params, step) from a run dir, a `Trainer`, a (TrainConfig, params)
  tuple, or bare params together with `config`. step is None when unknown."""
  from .train import CHECKPOINT, TrainConfig, Trainer, load_run
  if isinstance(model_or_run, Trainer):
    return model_or_run.config, model_or_run.params, model_or_run.step
  if isinstance(model_or_run, (str, Path)):
    run = Path(model_or_run)
    if not run.is_dir():
      raise FileNotFoundError(f"No run directory {run}.")
    cfg, params = load_run(run)
    from . import checkpoint
    step = checkpoint.load(run / CHECKPOINT).get("step")
    return cfg, params, step
  if isinstance(model_or_run, tuple) and len(model_or_run) == 2 and isinstance(model_or_run[0], TrainConfig):
    return model_or_run[0], model_or_run[1], None
  if config is not None:
    return config, model_or_run, None
  raise ValueError("Expected a run directory, a Trainer, a (TrainConfig, params) tuple, "
                   "or params with config=.")


def sampler_kwargs(config) -> dict:
  """Sampler keyword arguments of a TrainConfig (as the Trainer uses them)."""
  if config.sampler in ("md", "normal_modes"):
    return dict(temperature=config.temperature)
  return dict(sigma=config.sigma)


def make_test_set(mol, n: int, *, sampler: str = "md", seed: int = TEST_SEED, **kw) -> list:
  """`n` conformers of `mol` (list of `Molecule`, Angstrom, input frame).

  Drawn with `seed` (default 12345, far from the small training seeds, so an 'md'
  test set is a different trajectory). For 'md' the frames are `stride` = 50 MD
  steps (25 fs) apart unless `stride` is given, so they are less correlated than
  the training stream's. `kw` go to the sampler (temperature, sigma, ...).
  """
  from .conformers import ConformerStream
  if isinstance(n, bool) or int(n) != n or n < 1:
    raise ValueError(f"A test set needs n >= 1 conformers, got {n!r}.")
  if sampler == "md":
    kw.setdefault("stride", 50)
  stream = ConformerStream(mol, sampler, seed=seed, chunk=int(n), **kw)
  return [next(stream) for _ in range(int(n))]


# ----------------------------------------------------------------------------- physics
def _pair_outputs(ws, batch, n_refine, mix):
  f = get_xc(batch.xc)
  t = batch.tensors

  def one(w):
    d = refine(batch.init.h_init + w, t, f, n_refine, mix=mix)
    e, fk = energy_and_fock(d, t, f)
    eps, c, _ = solve_fock(fk, t.orthogonalizer, t.n_occ)
    return dict(energy=e, fock=fk, mo_energy=eps, mo_coeff=c, density=d)

  return jax.vmap(one)(ws)


@functools.partial(jax.jit, static_argnames=("n_refine", "mix"))
def outputs_for_corrections(ws, batch, n_refine: int = 3, mix: float = 0.5) -> dict:
  """Sandwich outputs for K corrections `ws` (K, N, N) of one (unbatched) conformer.

  Returns a dict of arrays with leading axis K: energy (K,) E[D_n] in Hartree,
  fock (K, N, N) F[D_n], mo_energy (K, N), mo_coeff (K, N, N), density (K, N, N).
  """
  return _pair_outputs(ws, batch, n_refine, mix)


@functools.partial(jax.jit, static_argnames=("model", "n_refine", "mix"))
def _predict_pair(params, batch, model, n_refine, mix):
  w = predict_correction(params, batch, model)
  return _pair_outputs(jnp.stack([w, jnp.zeros_like(w)]), batch, n_refine, mix)


def predict_pair(params, batch, *, model="nano", n_refine: int = 3, mix: float = 0.5) -> dict:
  """`outputs_for_corrections` for [trained W, W = 0] (one jitted call, one compile per shape)."""
  out = _predict_pair(params, batch, model, int(n_refine), float(mix))
  return {k: np.asarray(v) for k, v in out.items()}


def psi_similarity(c_pred, c_ref, n_occ: int) -> float:
  """Mean over occupied i of |<c_i, c_i^ref>| / (|c_i| |c_i^ref|) x 100 (plain dot product)."""
  a, b = np.asarray(c_pred)[:, :n_occ], np.asarray(c_ref)[:, :n_occ]
  cos = np.abs((a * b).sum(0)) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))
  return float(100.0 * cos.mean())


def conformer_errors(ref: Label, energy, fock, mo_energy, mo_coeff) -> dict:
  """Errors of one prediction against its label (same frame, same AO order).

  Returns energy_error_mev (signed, E - E_ref), hamiltonian_mae_uha,
  mo_energy_mae_occ_uha, mo_energy_mae_all_uha, psi_occ_percent and signed
  homo/lumo/gap_error_mev.
  """
  n = ref.n_occ
  eps, eps_ref = np.asarray(mo_energy), np.asarray(ref.mo_energy)
  d_eps = eps - eps_ref
  has_lumo = n < len(eps)
  homo = d_eps[n - 1]
  lumo = d_eps[n] if has_lumo else np.nan
  return dict(
      energy_error_mev=float(energy - ref.energy) * MEV_PER_HARTREE,
      hamiltonian_mae_uha=float(np.abs(np.asarray(fock) - ref.fock).mean()) * UHA_PER_HARTREE,
      mo_energy_mae_occ_uha=float(np.abs(d_eps[:n]).mean()) * UHA_PER_HARTREE,
      mo_energy_mae_all_uha=float(np.abs(d_eps).mean()) * UHA_PER_HARTREE,
      psi_occ_percent=psi_similarity(mo_coeff, ref.mo_coeff, n),
      homo_error_mev=float(homo) * MEV_PER_HARTREE,
      lumo_error_mev=float(lumo) * MEV_PER_HARTREE,
      gap_error_mev=float(lumo - homo) * MEV_PER_HARTREE)


def summarize(errors: list) -> dict:
  """Aggregates per-conformer `conformer_errors` dicts into the METRIC_KEYS dict."""
  def col(k):
    return np.asarray([e[k] for e in errors], dtype=np.float64)
  e = np.abs(col("energy_error_mev"))
  return dict(energy_mae_mev=float(e.mean()), energy_max_mev=float(e.max()),
              hamiltonian_mae_uha=float(col("hamiltonian_mae_uha").mean()),
              mo_energy_mae_occ_uha=float(col("mo_energy_mae_occ_uha").mean()),
              mo_energy_mae_all_uha=float(col("mo_energy_mae_all_uha").mean()),
              psi_occ_percent=float(col("psi_occ_percent").mean()),
              homo_mae_mev=float(np.abs(col("homo_error_mev")).mean()),
              lumo_mae_mev=float(np.abs(col("lumo_error_mev")).mean()),
              gap_mae_mev=float(np.abs(col("gap_error_mev")).mean()),
              n_conformers=len(errors))


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass
class EvalResult:
  """Metrics of the trained model and of W = 0, per-conformer rows, the test set."""
  trained: dict
  baseline_w0: dict
  rows: list
  metadata: dict
  test_set: list

  def table(self) -> str:
    """Plain-text table: metric | trained | W = 0 baseline."""
    lines = [f"{'metric':34s} {'trained':>14s} {'W=0 baseline':>14s}"]
    for k in METRIC_KEYS:
      a, b = self.trained[k], self.baseline_w0[k]
      fmt = (lambda v: f"{v:14d}") if k == "n_conformers" else (lambda v: f"{v:14.4f}")
      lines.append(f"{_LABELS[k]:34s} {fmt(a)} {fmt(b)}")
    return "\n".join(lines)

  def to_json(self) -> dict:
    return dict(trained=self.trained, baseline_w0=self.baseline_w0, metadata=self.metadata)

  def save(self, run_dir) -> dict:
    """Writes metrics.json, per_conformer.csv, test_set.xyz and PNG plots into `run_dir`.

    History plots are added when `run_dir` holds a history.jsonl. Returns
    {'metrics': Path, 'per_conformer': Path, 'test_set': Path, 'plots': [Path, ...]}.
    """
    from .checkpoint import atomic_write_text, save_json
    from .molecule import write_xyz_frames
    from .report import read_history, save_run_plots
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    save_json(run / "metrics.json", self.to_json())
    lines = [",".join(CSV_COLUMNS)]
    for r in self.rows:
      lines.append(",".join(str(r[c]) for c in CSV_COLUMNS))
    atomic_write_text(run / "per_conformer.csv", "\n".join(lines) + "\n")
    write_xyz_frames(run / "test_set.xyz", self.test_set,
                     comments=[f"test conformer {i} seed={self.metadata.get('test_seed')} Angstrom"
                               for i in range(len(self.test_set))])
    plots = save_run_plots(run, read_history(run), self.rows)
    return dict(metrics=run / "metrics.json", per_conformer=run / "per_conformer.csv",
                test_set=run / "test_set.xyz", plots=plots)


def read_rows(path) -> list:
  """per_conformer.csv back into a list of dicts (floats, 'index' as int)."""
  with open(path, newline="") as fh:
    return [{k: (int(v) if k == "index" else float(v)) for k, v in r.items()}
            for r in csv.DictReader(fh)]


def evaluate(model_or_run, test_set, *, basis: Optional[str] = None, xc: Optional[str] = None,
             grid_level: Optional[int] = None, config=None, labels=None, cache_dir=None,
             progress: bool = False, seed: int = TEST_SEED) -> EvalResult:
  """Compares the trained sandwich (and W = 0) with PySCF on `test_set`.

  Args:
    model_or_run: run directory, `Trainer`, (TrainConfig, params), or params with config=.
    test_set: list of `Molecule` conformers, or an int n: `make_test_set` of the
      run's molecule with its sampler and `seed`.
    basis, xc, grid_level: override the run's settings (default: the run's).
    labels: optional precomputed `Label`s (one per conformer, canonical frame).
    cache_dir: label cache folder (see `qpt_nb.reference`).
    progress: tqdm bars for labelling and prediction.

  Returns:
    `EvalResult`. Per-conformer rows hold CSV_COLUMNS (Hartree, meV, uHa, s);
    metadata records the settings, `seed` as 'test_seed', and timings (s).
  """
  cfg, params, step = resolve_model(model_or_run, config)
  basis = basis or cfg.basis
  xc = get_xc(xc or cfg.xc).name
  grid_level = cfg.grid_level if grid_level is None else int(grid_level)
  if isinstance(test_set, (int, np.integer)) and not isinstance(test_set, bool):
    test_set = make_test_set(cfg.molecule_object(), test_set, sampler=cfg.sampler, seed=seed,
                             **sampler_kwargs(cfg))
  test_set = list(test_set)
  if not test_set:
    raise ValueError("The test set is empty.")
  if labels is not None and len(labels) != len(test_set):
    raise ValueError(f"{len(labels)} labels for {len(test_set)} test conformers.")

  t0 = time.perf_counter()
  first = prepare_conformer(test_set[0], basis, xc, grid_level, eri=cfg.eri)
  kind, n_ao = first.tensors.eri_kind, int(first.tensors.n_ao)
  if labels is None:
    labels = label_many(test_set, basis, xc, grid_level, eri_kind=kind, cache_dir=cache_dir,
                        progress=progress)
  it = range(len(test_set))
  if progress:
    from tqdm.auto import tqdm
    it = tqdm(it, desc="QPT predictions", unit="conf")
  rows, trained, base, times = [], [], [], []
  for i in it:
    t1 = time.perf_counter()
    batch = first if i == 0 else prepare_conformer(test_set[i], basis, xc, grid_level, eri=cfg.eri)
    t2 = time.perf_counter()
    out = predict_pair(params, batch, model=cfg.model, n_refine=cfg.n_refine, mix=cfg.mix)
    times.append((t2 - t1, time.perf_counter() - t2))
    lab = labels[i]
    if lab.fock.shape != (n_ao, n_ao):
      raise ValueError(f"Label {i} has {lab.fock.shape[0]} AOs, the tensors {n_ao}: other basis?")
    errs = [conformer_errors(lab, *(out[k][j] for k in ("energy", "fock", "mo_energy", "mo_coeff")))
            for j in (0, 1)]
    trained.append(errs[0])
    base.append(errs[1])
    rows.append(dict(index=i, reference_energy_ha=lab.energy,
                     predicted_energy_ha=float(out["energy"][0]),
                     baseline_energy_ha=float(out["energy"][1]),
                     energy_error_mev=errs[0]["energy_error_mev"],
                     baseline_energy_error_mev=errs[1]["energy_error_mev"],
                     hamiltonian_mae_uha=errs[0]["hamiltonian_mae_uha"],
                     gap_error_mev=errs[0]["gap_error_mev"], label_seconds=lab.seconds))
  pre = np.asarray(times)
  steady = pre[1:] if len(pre) > 1 else pre
  meta = dict(molecule=cfg.molecule, basis=basis, xc=xc, grid_level=grid_level, eri_kind=kind,
              model=cfg.model if isinstance(cfg.model, str) else repr(cfg.model), loss=cfg.loss,
              n_refine=cfg.n_refine, train_seed=cfg.seed, train_sampler=cfg.sampler, step=step,
              test_seed=seed, n_ao=n_ao,
              label_seconds_mean=float(np.mean([lab.seconds for lab in labels])),
              labels_cached=int(sum(bool(lab.cached) for lab in labels)),
              labels_converged=int(sum(bool(lab.converged) for lab in labels)),
              precompute_seconds_mean=float(steady[:, 0].mean()),
              predict_seconds_mean=float(steady[:, 1].mean()),
              first_predict_seconds=float(pre[0, 1]), eval_seconds=time.perf_counter() - t0,
              units=dict(energy="meV", hamiltonian="uHa", mo_energy="uHa", psi="%"),
              frame="canonical (principal axes) frame of each conformer",
              psi_definition="plain dot product of AO coefficient vectors, no S metric")
  return EvalResult(summarize(trained), summarize(base), rows, meta, test_set)


# ----------------------------------------------------------------------------- monitor
@functools.partial(jax.jit, static_argnames=("model", "n_refine", "mix"))
def _monitor_outputs(params, batch, model, n_refine, mix):
  e, d, _ = sandwich_outputs(params, batch, model=model, n_refine=n_refine, mix=mix)
  f = get_xc(batch.xc)
  fk = jax.vmap(lambda di, ti: energy_and_fock(di, ti, f)[1])(d, batch.tensors)
  return e, fk


MONITOR_MAX_BYTES = 4 * 2**30


def make_monitor(config, test_set, labels=None, *, cache_dir=None):
  """A fast `Trainer.monitor`: callable(params) -> dict(energy_mae_mev, hamiltonian_mae_uha).

  The conformers are precomputed and stacked once; each call is one jitted,
  vmapped sandwich over them (compiled on the first call). `labels` (canonical
  frame, one per conformer) are computed (cached) when not given.
  """
  test_set = list(test_set)
  if not test_set:
    raise ValueError("make_monitor needs at least one test conformer.")
  items = [prepare_conformer(m, config.basis, config.xc, config.grid_level, eri=config.eri)
           for m in test_set]
  nbytes = len(items) * items[0].tensors.nbytes()
  if nbytes > MONITOR_MAX_BYTES:
    raise ValueError(
        f"The monitor keeps its {len(items)} conformers in memory ({nbytes / 2**30:.1f} GiB > "
        f"{MONITOR_MAX_BYTES / 2**30:.0f} GiB): monitor fewer conformers (e.g. 10-20) and use "
        "evaluate(), which streams them, for the full test set.")
  # stacked on the host (NumPy): no small XLA compile per leaf shape
  batch = jax.tree_util.tree_map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *items)
  if labels is None:
    labels = label_many(test_set, config.basis, config.xc, config.grid_level,
                        eri_kind=batch.tensors.eri_kind, cache_dir=cache_dir)
  labels = list(labels)[:len(test_set)]
  e_ref = np.asarray([lab.energy for lab in labels])
  f_ref = np.stack([lab.fock for lab in labels])
  model, n_refine, mix = config.model, int(config.n_refine), float(config.mix)

  def monitor(params) -> dict:
    e, fk = _monitor_outputs(params, batch, model, n_refine, mix)
    return dict(energy_mae_mev=float(np.abs(np.asarray(e) - e_ref).mean() * MEV_PER_HARTREE),
                hamiltonian_mae_uha=float(np.abs(np.asarray(fk) - f_ref).mean() * UHA_PER_HARTREE))

  return monitor


# ----------------------------------------------------------------------------- initial guesses
def rotation_to_input(mol, basis: str) -> np.ndarray:
  """AO transformation U (N, N) from the canonical frame of `mol` to its input frame.

  With x_can = (x - c) R (`principal_axes`), a canonical-frame density or MO
  coefficient matrix maps to the input frame as D_in = U D_can U^T, C_in = U C_can.
  U is block diagonal (per shell, the real-spherical-harmonic rotation of its l,
  PySCF's `ao_rotation_matrix`), orthogonal, and exact: the density on any point
  of space is unchanged (tested pointwise).
  """
  from pyscf.gto.mole import ao_rotation_matrix
  from .molecule import principal_axes
  _, rot = principal_axes(mol.coords_angstrom, mol.masses)
  return np.asarray(ao_rotation_matrix(mol.canonical().to_pyscf(basis), rot)).T


def initial_guess(run_or_params, mol, *, config=None) -> np.ndarray:
  """Density matrix (N, N) of the trained sandwich for `mol`, in `mol`'s INPUT frame.

  Seeds PySCF for the same geometry: ``mf.kernel(dm0=initial_guess(run, mol))``
  with ``mf`` built from ``mol.to_pyscf(basis)``. D_n is computed in the canonical
  frame and rotated back with `rotation_to_input`.
  """
  cfg, params, _ = resolve_model(run_or_params, config)
  batch = prepare_conformer(mol, cfg.basis, cfg.xc, cfg.grid_level, eri=cfg.eri)
  d = predict_pair(params, batch, model=cfg.model, n_refine=cfg.n_refine, mix=cfg.mix)["density"][0]
  u = rotation_to_input(mol, cfg.basis)
  d = u @ d @ u.T
  return 0.5 * (d + d.T)


def guess_speedup(run, test_set, *, config=None, guesses=("minao", "atom", "huckel"),
                  conv_tol: float = 1e-10) -> dict:
  """PySCF iterations and wall time from the model's guess vs PySCF's own guesses.

  Each conformer is solved in its input frame with the run's basis, functional,
  grid level and ERI kind (RKS, DIIS space 8, `conv_tol`). Returns
  {'rows': [{index, guess, cycles, seconds, converged, energy}], 'summary':
  {guess: {mean_cycles, mean_seconds, converged}}, 'model_guess_seconds': mean
  seconds to make the model's guess (precompute + network + sandwich)}.
  """
  from pyscf import lib
  from .reference import label_threads, make_rks
  from .tensors import choose_eri_kind
  cfg, params, _ = resolve_model(run, config)
  rows, make_s = [], []
  for i, mol in enumerate(test_set):
    pmol = mol.to_pyscf(cfg.basis)
    kind = choose_eri_kind(pmol.nao_nr(), cfg.eri)
    t0 = time.perf_counter()
    dm0 = initial_guess((cfg, params), mol)
    make_s.append(time.perf_counter() - t0)
    for g in ("model",) + tuple(guesses):
      mf = make_rks(pmol, cfg.xc, cfg.grid_level, kind, conv_tol=conv_tol)
      if g != "model":
        mf.init_guess = g
      t0 = time.perf_counter()
      with lib.with_omp_threads(label_threads()):
        mf.kernel(dm0=dm0 if g == "model" else None)
      rows.append(dict(index=i, guess=g, cycles=int(mf.cycles), seconds=time.perf_counter() - t0,
                       converged=bool(mf.converged), energy=float(mf.e_tot)))
  summary = {}
  for g in ("model",) + tuple(guesses):
    sel = [r for r in rows if r["guess"] == g]
    summary[g] = dict(mean_cycles=float(np.mean([r["cycles"] for r in sel])),
                      mean_seconds=float(np.mean([r["seconds"] for r in sel])),
                      converged=int(sum(r["converged"] for r in sel)))
  steady = make_s[1:] if len(make_s) > 1 else make_s
  return dict(rows=rows, summary=summary, model_guess_seconds=float(np.mean(steady)))


def load_metrics(run_dir) -> dict:
  """metrics.json of a run."""
  return json.loads((Path(run_dir) / "metrics.json").read_text())
