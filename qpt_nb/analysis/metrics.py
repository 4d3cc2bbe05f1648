"""Errors of a predicted Hamiltonian against a PySCF label, as the field computes them.

Conventions of the Hamiltonian-prediction literature (SchNOrb; QHNet and QH9) and
of the QPT research code (graphcore-research/pyscf-ipu, arXiv 2402.04030 Table 1):

  energy_mae_mev, energy_max_mev   |E[D_n] - E_ref|, mean and max, meV
  hamiltonian_mae_uha              mean over the N^2 entries of |F[D_n] - F_ref|, uHa
                                   (the research code rebuilds F from the final density)
  mo_energy_mae_occ_uha            mean |eps_i - eps_i^ref| over occupied i (QHNet/QH9)
  mo_energy_mae_all_uha            the same over all orbitals (the research code)
  psi_occ_percent                  mean over occupied i of |<c_i, c_i^ref>| / (|c_i||c_i^ref|)
                                   x 100, the plain dot product of AO coefficient vectors
                                   (no S metric), in the canonical frame
  homo_mae_mev, lumo_mae_mev, gap_mae_mev
  n_conformers
"""

from __future__ import annotations

import numpy as np

from qpt_nb.dft.reference import Label
from qpt_nb.units import MEV_PER_HARTREE, UHA_PER_HARTREE

METRIC_KEYS = (
    "energy_mae_mev",
    "energy_max_mev",
    "hamiltonian_mae_uha",
    "mo_energy_mae_occ_uha",
    "mo_energy_mae_all_uha",
    "psi_occ_percent",
    "homo_mae_mev",
    "lumo_mae_mev",
    "gap_mae_mev",
    "n_conformers",
)


METRIC_LABELS = dict(
    energy_mae_mev="energy MAE (meV)",
    energy_max_mev="energy max error (meV)",
    hamiltonian_mae_uha="Hamiltonian MAE (uHa)",
    mo_energy_mae_occ_uha="occ. orbital energy MAE (uHa)",
    mo_energy_mae_all_uha="all orbital energy MAE (uHa)",
    psi_occ_percent="occ. orbital similarity psi (%)",
    homo_mae_mev="HOMO MAE (meV)",
    lumo_mae_mev="LUMO MAE (meV)",
    gap_mae_mev="gap MAE (meV)",
    n_conformers="conformers",
)


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
        gap_error_mev=float(lumo - homo) * MEV_PER_HARTREE,
    )


def summarize(errors: list) -> dict:
    """Aggregates per-conformer `conformer_errors` dicts into the METRIC_KEYS dict."""

    def col(k):
        return np.asarray([e[k] for e in errors], dtype=np.float64)

    e = np.abs(col("energy_error_mev"))
    return dict(
        energy_mae_mev=float(e.mean()),
        energy_max_mev=float(e.max()),
        hamiltonian_mae_uha=float(col("hamiltonian_mae_uha").mean()),
        mo_energy_mae_occ_uha=float(col("mo_energy_mae_occ_uha").mean()),
        mo_energy_mae_all_uha=float(col("mo_energy_mae_all_uha").mean()),
        psi_occ_percent=float(col("psi_occ_percent").mean()),
        homo_mae_mev=float(np.abs(col("homo_error_mev")).mean()),
        lumo_mae_mev=float(np.abs(col("lumo_error_mev")).mean()),
        gap_mae_mev=float(np.abs(col("gap_error_mev")).mean()),
        n_conformers=len(errors),
    )
