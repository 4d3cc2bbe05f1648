"""PySCF reference labels for geometries, cached on disk.

    lab = label(mol, 'sto-3g', 'b3lyp5', grid_level=3)
    lab.energy, lab.fock, lab.mo_energy, lab.seconds

Settings (the QH9 benchmark's): restricted Kohn-Sham, ``conv_tol = 1e-13``,
``diis_space = 8``, the same basis, functional and grid level as the JAX tensors,
and, with ``eri_kind='df'``, ``mf.density_fit(auxbasis=pyscf.df.make_auxbasis(pmol))``,
which is exactly what `qpt_nb.tensors.dft_tensors(eri='df')` fits with.

Frame. Every label is computed for ``mol.canonical()`` (centre of mass at the
origin, principal axes along x, y, z), not for the orientation given. The model's
tensors (`qpt_nb.qpt.prepare_conformer`) are built in that frame, and a Fock
matrix or MO coefficient vector compared entry by entry must be expressed in
the same AO frame: p, d, ... functions change under a rotation. The energy and
the orbital energies do not depend on the frame (up to the grid error of
PySCF's lab-fixed angular grids). `qpt_nb.evaluate.rotation_to_input` maps a
canonical-frame density back to the input orientation.

Cache. One ``.npz`` per label in ``cache_dir`` (argument), else the environment
variable ``QPT_NB_CACHE``, else ``~/.cache/qpt_nb/labels``. The file name is a
SHA-256 of (symbols, canonical coordinates rounded to 1e-10 Angstrom, charge,
spin, basis, xc, grid level, eri kind, auxiliary basis, conv_tol, diis_space,
PySCF version). Files are written atomically (temporary file + ``os.replace``),
so concurrent writers and interrupted runs never leave a half-written label; an
unreadable file is recomputed. The wall time of the original PySCF run is
stored with the label, so a cached read still reports it (``cached=True``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from .checkpoint import atomic_write_bytes

CONV_TOL = 1e-13
DIIS_SPACE = 8
ERI_LABEL_KINDS = ("dense", "df")
_ARRAYS = ("fock", "mo_energy", "mo_coeff", "density", "overlap")


@dataclasses.dataclass(frozen=True)
class Label:
  """A converged PySCF RKS calculation of one geometry, in its canonical frame.

  energy:    total energy, Hartree.
  fock:      (N, N) Kohn-Sham matrix F[D] of the converged density, Hartree.
  mo_energy: (N,) orbital energies (eigenvalues of `fock` with `overlap`), Hartree.
  mo_coeff:  (N, N) AO coefficients, columns are orbitals (F C = S C eps).
  density:   (N, N) converged density matrix, D = 2 C_occ C_occ^T.
  overlap:   (N, N) AO overlap S.
  n_occ:     number of doubly occupied orbitals.
  converged: PySCF's flag;  n_cycles: SCF iterations.
  seconds:   wall time of the original PySCF run (also when read from the cache).
  cached:    True when this object was read from the disk cache.
  key:       the cache key (hex).
  """
  energy: float
  fock: np.ndarray
  mo_energy: np.ndarray
  mo_coeff: np.ndarray
  density: np.ndarray
  overlap: np.ndarray
  n_occ: int
  converged: bool
  n_cycles: int
  seconds: float
  cached: bool = False
  key: str = ""

  @property
  def homo(self) -> float:
    """HOMO energy, Hartree."""
    return float(self.mo_energy[self.n_occ - 1])

  @property
  def lumo(self) -> float:
    """LUMO energy, Hartree (nan without virtual orbitals)."""
    return float(self.mo_energy[self.n_occ]) if self.n_occ < len(self.mo_energy) else float("nan")


def label_threads() -> int:
  """OpenMP threads for PySCF labels: ``$QPT_NB_LABEL_THREADS``, else half the cores.

  On a small shared machine (2 cores, JAX training beside it) PySCF's default of
  all cores oversubscribes them: water/STO-3G took 2 s instead of 0.08 s."""
  env = os.environ.get("QPT_NB_LABEL_THREADS")
  if env:
    return max(int(env), 1)
  return max((os.cpu_count() or 1) // 2, 1)


def default_cache_dir() -> Path:
  """``$QPT_NB_CACHE`` if set, else ``~/.cache/qpt_nb/labels``."""
  env = os.environ.get("QPT_NB_CACHE")
  return Path(env).expanduser() if env else Path.home() / ".cache" / "qpt_nb" / "labels"


def _check_kind(eri_kind: str) -> str:
  if eri_kind not in ERI_LABEL_KINDS:
    raise ValueError(f"eri_kind must be one of {ERI_LABEL_KINDS}, got {eri_kind!r} "
                     "(resolve 'auto' with qpt_nb.tensors.choose_eri_kind).")
  return eri_kind


def cache_key(mol, basis: str, xc: str, grid_level: int, eri_kind: str = "dense", *,
              auxbasis: Optional[str] = None, conv_tol: float = CONV_TOL,
              diis_space: int = DIIS_SPACE) -> str:
  """SHA-256 (hex) identifying the label of `mol` (any orientation) with these settings."""
  import pyscf
  from .xc import get_xc
  can = mol.canonical()
  coords = np.round(np.asarray(can.coords_angstrom, dtype=np.float64), 10) + 0.0  # -0.0 -> 0.0
  payload = dict(symbols=list(can.symbols), coords=[f"{v:.10f}" for v in coords.ravel()],
                 charge=int(mol.charge), spin=int(mol.spin), basis=str(basis).lower(),
                 xc=get_xc(xc).name, grid_level=int(grid_level), eri_kind=eri_kind,
                 auxbasis=auxbasis, conv_tol=float(conv_tol), diis_space=int(diis_space),
                 pyscf=pyscf.__version__)
  return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _save(path: Path, lab: Label) -> None:
  """Writes the label as .npz atomically (`checkpoint.atomic_write_bytes`)."""
  buf = io.BytesIO()
  np.savez(buf, energy=lab.energy, n_occ=lab.n_occ, converged=lab.converged,
           n_cycles=lab.n_cycles, seconds=lab.seconds, **{k: getattr(lab, k) for k in _ARRAYS})
  atomic_write_bytes(path, buf.getvalue())


def _load(path: Path, key: str) -> Optional[Label]:
  try:
    with np.load(path) as z:
      return Label(energy=float(z["energy"]), n_occ=int(z["n_occ"]),
                   converged=bool(z["converged"]), n_cycles=int(z["n_cycles"]),
                   seconds=float(z["seconds"]), cached=True, key=key,
                   **{k: np.array(z[k]) for k in _ARRAYS})
  except Exception:      # truncated, not a zip (BadZipFile), missing keys: recompute
    return None


def make_rks(pmol, xc: str, grid_level: int, eri_kind: str = "dense", *,
             auxbasis: Optional[str] = None, conv_tol: float = CONV_TOL,
             diis_space: int = DIIS_SPACE):
  """A PySCF RKS object with the label settings (not run).

  `pmol` is a built ``pyscf.gto.Mole``; with eri_kind='df' the auxiliary basis is
  `auxbasis` or ``pyscf.df.make_auxbasis(pmol)`` (what `dft_tensors` fits with).
  """
  from pyscf import df, dft
  from .xc import get_xc
  mf = dft.RKS(pmol, xc=get_xc(xc).name)
  if _check_kind(eri_kind) == "df":
    mf = mf.density_fit(auxbasis=auxbasis or df.make_auxbasis(pmol))
  mf.grids.level = int(grid_level)
  mf.conv_tol = float(conv_tol)
  mf.diis_space = int(diis_space)
  mf.verbose = 0
  return mf


def compute_label(mol, basis: str, xc: str, grid_level: int, *, eri_kind: str = "dense",
                  auxbasis: Optional[str] = None, conv_tol: float = CONV_TOL,
                  diis_space: int = DIIS_SPACE, threads: Optional[int] = None) -> Label:
  """Runs PySCF for ``mol.canonical()`` (no cache) with `threads` OpenMP threads
  (default `label_threads()`). See `label`."""
  from pyscf import lib
  can = mol.canonical()
  with lib.with_omp_threads(label_threads() if threads is None else int(threads)):
    t0 = time.perf_counter()
    pmol = can.to_pyscf(basis)
    if pmol.nelectron % 2 or mol.spin:
      raise ValueError(f"Labels are closed-shell RKS only: {pmol.nelectron} electrons, "
                       f"spin={mol.spin}.")
    mf = make_rks(pmol, xc, grid_level, eri_kind, auxbasis=auxbasis, conv_tol=conv_tol,
                  diis_space=diis_space)
    mf.kernel()
    seconds = time.perf_counter() - t0
    dm = mf.make_rdm1()
    s = mf.get_ovlp()
    fock = mf.get_fock(dm=dm)
    fock = 0.5 * (fock + fock.T)
    # orbitals of the Fock matrix of the converged density (self-consistent to conv_tol)
    mo_energy, mo_coeff = mf.eig(fock, s)
  return Label(energy=float(mf.e_tot), fock=np.asarray(fock), mo_energy=np.asarray(mo_energy),
               mo_coeff=np.asarray(mo_coeff), density=np.asarray(dm), overlap=np.asarray(s),
               n_occ=pmol.nelectron // 2, converged=bool(mf.converged), n_cycles=int(mf.cycles),
               seconds=seconds, cached=False)


def label(mol, basis: str = "sto-3g", xc: str = "b3lyp5", grid_level: int = 3, *,
          eri_kind: str = "dense", cache_dir=None, use_cache: bool = True,
          auxbasis: Optional[str] = None, conv_tol: float = CONV_TOL,
          diis_space: int = DIIS_SPACE, threads: Optional[int] = None) -> Label:
  """PySCF RKS label of `mol` in its canonical frame, read from / written to the cache.

  Args:
    mol: `qpt_nb.Molecule` (Angstrom, any orientation; the label is for
      ``mol.canonical()``, the frame of `prepare_conformer`'s tensors).
    basis, xc, grid_level: as for the JAX tensors (xc by PySCF's meaning).
    eri_kind: 'dense' (exact integrals) or 'df' (density fitting, auxiliary
      basis `auxbasis` or PySCF's `make_auxbasis`): match `DFTTensors.eri_kind`.
    cache_dir: folder of the cache (default: `default_cache_dir()`).
    use_cache: False computes and does not touch the cache.
    threads: OpenMP threads for PySCF (default `label_threads()`).

  Returns:
    `Label` (Hartree; matrices (N, N) in the canonical frame's AO basis).
  """
  _check_kind(eri_kind)
  if not use_cache:
    return compute_label(mol, basis, xc, grid_level, eri_kind=eri_kind, auxbasis=auxbasis,
                         conv_tol=conv_tol, diis_space=diis_space, threads=threads)
  key = cache_key(mol, basis, xc, grid_level, eri_kind, auxbasis=auxbasis, conv_tol=conv_tol,
                  diis_space=diis_space)
  path = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
  path = path / f"{key}.npz"
  if path.is_file():
    lab = _load(path, key)
    if lab is not None:
      return lab
  lab = compute_label(mol, basis, xc, grid_level, eri_kind=eri_kind, auxbasis=auxbasis,
                      conv_tol=conv_tol, diis_space=diis_space, threads=threads)
  lab = dataclasses.replace(lab, key=key)
  try:
    _save(path, lab)
  except OSError:
    pass                 # a read-only cache must not stop the calculation
  return lab


def label_many(mols: Iterable, basis: str = "sto-3g", xc: str = "b3lyp5", grid_level: int = 3,
               *, eri_kind: str = "dense", cache_dir=None, progress: bool = False,
               desc: str = "PySCF labels", **kw) -> list:
  """`label` for each molecule (in order), with an optional tqdm progress bar."""
  mols = list(mols)
  it = mols
  if progress:
    from tqdm.auto import tqdm
    it = tqdm(mols, desc=desc, unit="conf")
  out = []
  for m in it:
    out.append(label(m, basis, xc, grid_level, eri_kind=eri_kind, cache_dir=cache_dir, **kw))
    if progress:
      it.set_postfix(s_per_label=f"{out[-1].seconds:.1f}", cached=out[-1].cached)
  return out
