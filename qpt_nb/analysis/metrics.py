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

Open shells (a UKS label, arrays with a leading spin axis): the energy, Hamiltonian,
orbital-energy and psi metrics above run over both spins (each spin's occupied orbitals
n_alpha, n_beta), HOMO is the higher of the two spins' and LUMO the lower; and
`SPIN_METRIC_KEYS` adds the spin-resolved errors:

  hamiltonian_mae_alpha_uha, hamiltonian_mae_beta_uha     |F_s[D_n] - F_s,ref|, per spin
  mo_energy_mae_occ_alpha_uha, mo_energy_mae_occ_beta_uha  occupied orbitals, per spin
  spin_square_mae                                          |<S^2> - <S^2>_ref| (dimensionless)
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


SPIN_METRIC_KEYS = (
    "hamiltonian_mae_alpha_uha",
    "hamiltonian_mae_beta_uha",
    "mo_energy_mae_occ_alpha_uha",
    "mo_energy_mae_occ_beta_uha",
    "spin_square_mae",
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
    hamiltonian_mae_alpha_uha="Hamiltonian MAE, alpha (uHa)",
    hamiltonian_mae_beta_uha="Hamiltonian MAE, beta (uHa)",
    mo_energy_mae_occ_alpha_uha="occ. orbital energy MAE, alpha (uHa)",
    mo_energy_mae_occ_beta_uha="occ. orbital energy MAE, beta (uHa)",
    spin_square_mae="<S^2> MAE",
)


def _occupied_cosines(c_pred, c_ref, n_occ: int) -> np.ndarray:
    """|<c_i, c_i^ref>| / (|c_i| |c_i^ref|) (n_occ,) of the occupied columns (plain dot product)."""
    a, b = np.asarray(c_pred)[:, :n_occ], np.asarray(c_ref)[:, :n_occ]
    return np.abs((a * b).sum(0)) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))


def _mean_abs(x) -> float:
    """mean |x|, 0 for an empty array (a spin with no occupied orbital, e.g. H's beta)."""
    return float(np.abs(x).mean()) if np.size(x) else 0.0


def psi_similarity(c_pred, c_ref, n_occ: int) -> float:
    """Mean over occupied i of |<c_i, c_i^ref>| / (|c_i| |c_i^ref|) x 100 (plain dot product)."""
    return float(100.0 * _occupied_cosines(c_pred, c_ref, n_occ).mean())


def conformer_errors(ref: Label, energy, fock, mo_energy, mo_coeff) -> dict:
    """Errors of one prediction against its label (same frame, same AO order).

    Returns energy_error_mev (signed, E - E_ref), hamiltonian_mae_uha,
    mo_energy_mae_occ_uha, mo_energy_mae_all_uha, psi_occ_percent and signed
    homo/lumo/gap_error_mev; for an open-shell label also hamiltonian_mae_alpha/beta_uha,
    mo_energy_mae_occ_alpha/beta_uha and the signed spin_square_error (arrays with a leading
    spin axis, see the module docstring; `summarize` turns them into `SPIN_METRIC_KEYS`).
    """
    eps, eps_ref = np.asarray(mo_energy), np.asarray(ref.mo_energy)
    fock, c = np.asarray(fock), np.asarray(mo_coeff)
    spins = bool(ref.unrestricted)
    if eps.shape != eps_ref.shape or fock.shape != np.shape(ref.fock):
        raise ValueError(
            f"prediction {fock.shape} and label {np.shape(ref.fock)} differ in shape: an open-shell "
            "label needs an open-shell prediction (alpha, beta) and the reverse"
        )
    occ = ref.occupations if spins else (ref.n_occ,)
    if not spins:
        eps, eps_ref, fock, c = eps[None], eps_ref[None], fock[None], c[None]
    f_ref, c_ref = np.asarray(ref.fock).reshape(fock.shape), np.asarray(ref.mo_coeff).reshape(c.shape)
    d_eps = eps - eps_ref  # (S, N)
    d_occ = np.concatenate([d_eps[s, :n] for s, n in enumerate(occ)])
    cos = np.concatenate([_occupied_cosines(c[s], c_ref[s], n) for s, n in enumerate(occ)])
    n_mo = eps.shape[-1]
    homo = max(eps[s, n - 1] for s, n in enumerate(occ) if n > 0) - max(
        eps_ref[s, n - 1] for s, n in enumerate(occ) if n > 0
    )
    virt = [s for s, n in enumerate(occ) if n < n_mo]
    lumo = min(eps[s, occ[s]] for s in virt) - min(eps_ref[s, occ[s]] for s in virt) if virt else np.nan
    h_abs = np.abs(fock - f_ref).mean(axis=(-2, -1))  # (S,)
    out = dict(
        energy_error_mev=float(energy - ref.energy) * MEV_PER_HARTREE,
        hamiltonian_mae_uha=float(h_abs.mean()) * UHA_PER_HARTREE,
        mo_energy_mae_occ_uha=float(np.abs(d_occ).mean()) * UHA_PER_HARTREE,
        mo_energy_mae_all_uha=float(np.abs(d_eps).mean()) * UHA_PER_HARTREE,
        psi_occ_percent=float(100.0 * cos.mean()),
        homo_error_mev=float(homo) * MEV_PER_HARTREE,
        lumo_error_mev=float(lumo) * MEV_PER_HARTREE,
        gap_error_mev=float(lumo - homo) * MEV_PER_HARTREE,
    )
    if spins:
        from qpt_nb.dft.uks import spin_square

        s2 = spin_square(c, ref.overlap, *occ)[0] - spin_square(c_ref, ref.overlap, *occ)[0]
        out.update(
            hamiltonian_mae_alpha_uha=float(h_abs[0]) * UHA_PER_HARTREE,
            hamiltonian_mae_beta_uha=float(h_abs[1]) * UHA_PER_HARTREE,
            mo_energy_mae_occ_alpha_uha=_mean_abs(d_eps[0, : occ[0]]) * UHA_PER_HARTREE,
            mo_energy_mae_occ_beta_uha=_mean_abs(d_eps[1, : occ[1]]) * UHA_PER_HARTREE,
            spin_square_error=float(s2),
        )
    return out


def summarize(errors: list) -> dict:
    """Aggregates per-conformer `conformer_errors` dicts into the METRIC_KEYS dict."""

    def col(k):
        return np.asarray([e[k] for e in errors], dtype=np.float64)

    e = np.abs(col("energy_error_mev"))
    spin = {}
    if errors and "spin_square_error" in errors[0]:  # open shell: the spin-resolved errors
        spin = {k: float(col(k).mean()) for k in SPIN_METRIC_KEYS[:-1]}
        spin["spin_square_mae"] = float(np.abs(col("spin_square_error")).mean())
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
        **spin,
    )
