"""qpt_nb's SCF side by side with PySCF's: energies, iterations and seconds of one molecule.

    >>> row = compare_with_pyscf(Molecule.builtin("water"), "sto-3g", grid_level=1)
    >>> abs(row["difference"]) < 1e-8, row["qpt_converged"], row["pyscf_converged"]
    (True, True, True)

The PySCF side is `qpt_nb.dft.reference.pyscf_scf` (the label's RKS settings, in the input
frame); `qpt-nb scf` prints `format_comparison` of one row.
"""

from __future__ import annotations

import time

import numpy as np

from qpt_nb.dft.molecule import Molecule  # noqa: F401 - the doc example's
from qpt_nb.dft.reference import pyscf_scf
from qpt_nb.dft.scf import scf


def compare_with_pyscf(
    mol,
    basis: str = "sto-3g",
    *,
    xc: str = "b3lyp5",
    grid_level: int = 3,
    conv_tol: float = 1e-10,
    eri: str = "auto",
    pyscf: bool = True,
    warmup: bool = True,
) -> dict:
    """Runs qpt_nb's SCF (after one warm-up run that compiles) and PySCF's.

    Returns a dict with energies (Hartree), their difference, iteration counts and
    seconds: 'qpt_compile_s' (first run minus second), 'qpt_s' (second run,
    precompute included), 'pyscf_s' (`kernel()`), and their ratio 'speedup'.
    """
    row = dict(molecule=mol.name or "xyz", basis=basis, xc=xc, grid_level=grid_level)
    t0 = time.perf_counter()
    res = scf(mol, basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri=eri)
    first = time.perf_counter() - t0
    if warmup:
        t0 = time.perf_counter()
        res = scf(mol, basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri=eri)
        second = time.perf_counter() - t0
    else:
        second = first
    row.update(
        qpt_energy=res.energy,
        qpt_converged=res.converged,
        qpt_iter=res.n_iter,
        qpt_s=second,
        qpt_compile_s=max(first - second, 0.0),
        qpt_precompute_s=res.timings.get("precompute", np.nan),
        eri=res.tensors.eri_kind,
        n_ao=res.tensors.n_ao,
        n_grid=res.tensors.n_grid,
        result=res,
    )
    if pyscf:
        mf, t_py = pyscf_scf(
            mol, basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri=res.tensors.eri_kind
        )
        row.update(
            pyscf_energy=float(mf.e_tot),
            pyscf_converged=bool(mf.converged),
            pyscf_iter=int(mf.cycles),
            pyscf_s=t_py,
            speedup=t_py / second,
            difference=res.energy - float(mf.e_tot),
        )
    return row


def format_comparison(row: dict) -> str:
    """Human-readable summary of `compare_with_pyscf`'s dict."""
    lines = [
        f"{row['molecule']} / {row['basis']} / {row['xc']} / grid level {row['grid_level']}"
        f"  ({row['n_ao']} AOs, {row['n_grid']} grid points, ERI: {row['eri']})",
        f"  qpt_nb (JAX) : E = {row['qpt_energy']:.8f} Ha  converged={row['qpt_converged']} "
        f"in {row['qpt_iter']} iterations, {row['qpt_s']:.2f} s "
        f"(precompute {row['qpt_precompute_s']:.2f} s; compile {row['qpt_compile_s']:.2f} s extra on first call)",
    ]
    if "pyscf_energy" in row:
        lines += [
            f"  PySCF        : E = {row['pyscf_energy']:.8f} Ha  converged={row['pyscf_converged']} "
            f"in {row['pyscf_iter']} iterations, {row['pyscf_s']:.2f} s",
            f"  difference   : {row['difference']:+.2e} Ha;  speed-up {row['speedup']:.1f}x",
        ]
    return "\n".join(lines)
