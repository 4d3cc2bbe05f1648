"""Generalised eigenproblem H C = S C eps, with gradients safe at degeneracies.

The overlap is factorised once per geometry, S = L L^T, and X = L^-T is stored in
`DFTTensors.orthogonalizer`.  Then

    H' = X^T H X,    H' Q = Q eps,    C = X Q,    D = 2 C_occ C_occ^T.

`eigh_guarded` differentiates the symmetric eigensolve with the textbook
first-order perturbation formulas, with two guards:

* eigenvector tangents use F_ij = 1 / (eps_j - eps_i), set to 0 when
  |eps_j - eps_i| < `DEGENERACY_TOL` (the derivative of an eigenvector inside a
  degenerate subspace is undefined; the subspace itself is what matters);
* the density tangent is computed from the occupied-virtual block only,
  dP = 2 (Q_v M Q_o^T + Q_o M^T Q_v^T),  M_ai = (Q^T dH' Q)_ai / (eps_i - eps_a),
  which is exact whatever degeneracies lie inside the occupied or virtual
  space; only a closed HOMO-LUMO gap (|eps_i - eps_a| < tol) is guarded.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

DEGENERACY_TOL = 1e-10


def _safe_inverse_gap(gap):
    """1/gap with zero where |gap| < DEGENERACY_TOL (double-where, NaN-free)."""
    small = jnp.abs(gap) < DEGENERACY_TOL
    return jnp.where(small, 0.0, 1.0 / jnp.where(small, 1.0, gap))


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def eigh_guarded(h, n_occ: int, occupation: float = 2.0):
    """Eigen-decomposition of a symmetric matrix plus its aufbau density.

    Args:
      h: (N, N) symmetric matrix in an orthonormal basis (Hartree).
      n_occ: number of occupied orbitals (static).
      occupation: electrons per occupied orbital (static): 2 for a closed shell, 1 for
        one spin of an unrestricted determinant.

    Returns:
      eps (N,) ascending eigenvalues, q (N, N) eigenvectors (columns),
      p (N, N) = occupation q[:, :n_occ] q[:, :n_occ]^T.
    """
    eps, q = jnp.linalg.eigh(h)
    qo = q[:, :n_occ]
    return eps, q, occupation * qo @ qo.T


@eigh_guarded.defjvp
def _eigh_guarded_jvp(n_occ, occupation, primals, tangents):
    (h,), (dh,) = primals, tangents
    eps, q, p = eigh_guarded(h, n_occ, occupation)
    dh = 0.5 * (dh + dh.T)
    dmo = q.T @ dh @ q
    deps = jnp.diagonal(dmo)
    f = _safe_inverse_gap(eps[None, :] - eps[:, None])
    f = f * (1.0 - jnp.eye(eps.shape[0]))
    dq = q @ (f * dmo)
    qo, qv = q[:, :n_occ], q[:, n_occ:]
    m = dmo[n_occ:, :n_occ] * _safe_inverse_gap(eps[None, :n_occ] - eps[n_occ:, None])
    dp = occupation * (qv @ m @ qo.T + qo @ m.T @ qv.T)
    return (eps, q, p), (deps, dq, dp)


def solve_fock(fock, orthogonalizer, n_occ: int, occupation: float = 2.0):
    """Solves F C = S C eps through the orthogonaliser X = L^-T.

    Args:
      fock: (N, N) Fock / Kohn-Sham matrix in the AO basis, Hartree.
      orthogonalizer: (N, N) X with X^T S X = 1.
      n_occ: number of occupied orbitals (static).
      occupation: electrons per occupied orbital (static; 1 for one spin of UKS).

    Returns:
      mo_energy (N,) Hartree, mo_coeff (N, N) AO coefficients (columns), and the
      density matrix D = occupation C_occ C_occ^T (N, N).
    """
    x = orthogonalizer
    hp = x.T @ fock @ x
    eps, q, p = eigh_guarded(0.5 * (hp + hp.T), n_occ, float(occupation))
    return eps, x @ q, x @ p @ x.T


def density_from_fock(fock, orthogonalizer, n_occ: int):
    """Closed-shell aufbau density D (N, N) of a Fock matrix (see `solve_fock`)."""
    return solve_fock(fock, orthogonalizer, n_occ)[2]


def spin_square(mo_coeff, overlap, n_alpha: int, n_beta: int) -> tuple:
    """(<S^2>, 2S + 1) of a UKS/UHF determinant (PySCF's ``scf.uhf.spin_square``):

        <S^2> = S_z (S_z + 1) + n_beta - sum_ij |<a_i|b_j>|^2,   S_z = (n_alpha - n_beta) / 2

    `mo_coeff` (2, N, N), `overlap` (N, N). Exact (S(S+1)) for a pure spin state."""
    c = np.asarray(mo_coeff)
    ca, cb = c[0][:, :n_alpha], c[1][:, :n_beta]
    d = np.stack([ca @ ca.T, cb @ cb.T])
    ss = float(density_spin_square(d, np.asarray(overlap), n_alpha, n_beta))
    return ss, float(np.sqrt(ss + 0.25) * 2)


def density_spin_square(density, overlap, n_alpha: int, n_beta: int):
    """<S^2> of the determinant with spin densities `density` (2, N, N) (D_s = C_s,occ
    C_s,occ^T): S_z (S_z + 1) + n_beta - tr(D_a S D_b S), since sum_ij |<a_i|b_j>|^2 =
    tr(D_a S D_b S). `overlap` (N, N). Works on arrays and tracers (jnp), e.g. on the
    sandwich's D_n during training."""
    sz = 0.5 * (n_alpha - n_beta)
    xp = np if isinstance(density, np.ndarray) else jnp
    return sz * (sz + 1) + n_beta - xp.sum((density[0] @ overlap) * (density[1] @ overlap).T)


class FrontierOrbitals:
    """Mixin of every result that holds orbital energies: ``mo_energy`` (N,) in Hartree,
    ascending, and ``n_occ`` doubly occupied orbitals (or, unrestricted, (2, N) and
    ``occupations`` (n_alpha, n_beta)). The one definition of the frontier
    orbitals that labels, predictions and SCF results share."""

    def _spin_channels(self):
        """[(orbital energies (N,), occupied count)] per spin: one channel for a restricted
        result; (alpha, beta) for an unrestricted one (mo_energy (2, N), `occupations`)."""
        eps = np.asarray(self.mo_energy)
        if eps.ndim == 2:
            return list(zip(eps, self.occupations))
        return [(eps, self.n_occ)]

    @property
    def spin_square(self) -> tuple:
        """(<S^2>, 2S + 1) of an unrestricted determinant (`qpt_nb.dft.uks.spin_square`,
        PySCF's ``scf.uhf.spin_square``); (0, 1) for a restricted one."""
        if np.ndim(self.mo_energy) != 2:
            return 0.0, 1.0
        return spin_square(self.mo_coeff, self._ao_overlap(), *self.occupations)

    def _ao_overlap(self) -> np.ndarray:
        """(N, N) AO overlap of the frame `mo_coeff` is in (each class says where it lives)."""
        raise NotImplementedError

    @property
    def homo(self) -> float:
        """HOMO energy, Hartree (the higher of the two spins' for an unrestricted result)."""
        return max(float(e[n - 1]) for e, n in self._spin_channels() if n > 0)

    @property
    def lumo(self) -> float:
        """LUMO energy, Hartree (nan without virtual orbitals)."""
        v = [float(e[n]) for e, n in self._spin_channels() if n < len(e)]
        return min(v) if v else float("nan")

    @property
    def gap(self) -> float:
        """HOMO-LUMO gap, Hartree (nan without virtual orbitals)."""
        return self.lumo - self.homo
