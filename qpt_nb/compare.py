"""Side-by-side runs of qpt_nb's SCF and PySCF's, with timings (used by the demo,
the explorer widget and the benchmarks)."""
from __future__ import annotations

import time
from typing import Optional

import numpy as np


def pyscf_scf(mol, basis: str, xc: str, grid_level: int, *, conv_tol: float = 1e-10,
              density_fit: bool = False, auxbasis: Optional[str] = None, diis_space: int = 8):
  """Converged PySCF RKS (or RHF for xc='hf' via RKS) and its wall time in seconds."""
  from pyscf import dft
  pm = mol.to_pyscf(basis)
  mf = dft.RKS(pm, xc=xc)
  if density_fit:
    mf = mf.density_fit(auxbasis=auxbasis)
  mf.grids.level = grid_level
  mf.conv_tol = conv_tol
  mf.diis_space = diis_space
  mf.verbose = 0
  t0 = time.perf_counter()
  mf.kernel()
  return mf, time.perf_counter() - t0


def compare_with_pyscf(mol, basis: str = "sto-3g", xc: str = "b3lyp5", grid_level: int = 3, *,
                       conv_tol: float = 1e-10, eri: str = "auto", pyscf: bool = True,
                       warmup: bool = True) -> dict:
  """Runs qpt_nb's SCF (after one warm-up run that compiles) and PySCF's.

  Returns a dict with energies (Hartree), their difference, iteration counts and
  seconds: 'qpt_compile_s' (first run minus second), 'qpt_s' (second run,
  precompute included), 'pyscf_s' (`kernel()`), and their ratio 'speedup'.
  """
  from .scf import scf
  row = dict(molecule=mol.name or "xyz", basis=basis, xc=xc, grid_level=grid_level)
  t0 = time.perf_counter()
  res = scf(mol, basis, xc, grid_level, conv_tol=conv_tol, eri=eri)
  first = time.perf_counter() - t0
  if warmup:
    t0 = time.perf_counter()
    res = scf(mol, basis, xc, grid_level, conv_tol=conv_tol, eri=eri)
    second = time.perf_counter() - t0
  else:
    second = first
  row.update(qpt_energy=res.energy, qpt_converged=res.converged, qpt_iter=res.n_iter,
             qpt_s=second, qpt_compile_s=max(first - second, 0.0),
             qpt_precompute_s=res.timings.get("precompute", np.nan), eri=res.tensors.eri_kind,
             n_ao=res.tensors.n_ao, n_grid=res.tensors.n_grid, result=res)
  if pyscf:
    mf, t_py = pyscf_scf(mol, basis, xc, grid_level, conv_tol=conv_tol,
                         density_fit=res.tensors.eri_kind == "df")
    row.update(pyscf_energy=float(mf.e_tot), pyscf_converged=bool(mf.converged),
               pyscf_iter=int(mf.cycles), pyscf_s=t_py, speedup=t_py / second,
               difference=res.energy - float(mf.e_tot))
  return row


def format_comparison(row: dict) -> str:
  """Human-readable summary of `compare_with_pyscf`'s dict."""
  lines = [f"{row['molecule']} / {row['basis']} / {row['xc']} / grid level {row['grid_level']}"
           f"  ({row['n_ao']} AOs, {row['n_grid']} grid points, ERI: {row['eri']})",
           f"  qpt_nb (JAX) : E = {row['qpt_energy']:.8f} Ha  converged={row['qpt_converged']} "
           f"in {row['qpt_iter']} iterations, {row['qpt_s']:.2f} s "
           f"(precompute {row['qpt_precompute_s']:.2f} s; compile {row['qpt_compile_s']:.2f} s extra on first call)"]
  if "pyscf_energy" in row:
    lines += [f"  PySCF        : E = {row['pyscf_energy']:.8f} Ha  converged={row['pyscf_converged']} "
              f"in {row['pyscf_iter']} iterations, {row['pyscf_s']:.2f} s",
              f"  difference   : {row['difference']:+.2e} Ha;  speed-up {row['speedup']:.1f}x"]
  return "\n".join(lines)
