"""The QPT 'sandwich': DFT iterations around a predicted Hamiltonian (arXiv 2402.04030, Sec. 3).

Pure physics; knows nothing about the network. With H = H_init + W:

    D1  = aufbau(H)
    D2' = aufbau(F[D1]);   D2 = (D1 + D2') / 2        (the one 0.5 density mix)
    D3  = aufbau(F[D2])                                (no mixing)
    loss = E[D3]

`refine` generalises this to `n_refine` eigen-solves (n_refine = 3 above), the
mix applied at the second one.  Gradients flow through every eigen-solve
(`qpt_nb.dft.linalg.eigh_guarded`).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from qpt_nb.dft.kohn_sham import XCLike, coulomb, energy, energy_and_fock, exchange, xc_potential
from qpt_nb.dft.linalg import density_from_fock, solve_fock
from qpt_nb.dft.tensors import DFTTensors
from qpt_nb.dft.xc import get_xc


class InitialIteration(NamedTuple):
    """The first (network-free) DFT iteration from the minao guess D0.

    All (N, N), Hartree except dm0: dm0, coulomb J(D0), exchange K(D0),
    vxc V_xc(D0) and h_init = H_core + J - a_x/2 K + V_xc = F[D0]."""

    dm0: jnp.ndarray
    coulomb: jnp.ndarray
    exchange: jnp.ndarray
    vxc: jnp.ndarray
    h_init: jnp.ndarray


def initial_iteration(t: DFTTensors, xc: XCLike = "b3lyp5") -> InitialIteration:
    """One DFT iteration from `t.dm0` (PySCF's minao guess): H_init = F[D0] and its parts."""
    func = get_xc(xc)
    d0 = t.dm0
    j, k = coulomb(d0, t), exchange(d0, t)
    v = xc_potential(d0, t, func)
    return InitialIteration(d0, j, k, v, t.hcore + j - 0.5 * func.hyb * k + v)


def mix_schedule(n_refine: int, mix: float = 0.5, mix_at: Optional[int] = 2) -> jnp.ndarray:
    """Weights alpha_k (n_refine - 1,) of the new density at eigen-solves 2..n_refine:
    D_k = alpha_k aufbau(F[D_{k-1}]) + (1 - alpha_k) D_{k-1}; alpha = 1 - mix at solve `mix_at`
    (the research code's one mix), or at every solve when `mix_at` is None."""
    alpha = jnp.ones(max(n_refine - 1, 0))
    if mix_at is None:
        return alpha * (1.0 - mix)
    if 2 <= mix_at <= n_refine:
        alpha = alpha.at[mix_at - 2].set(1.0 - mix)
    return alpha


def refine(
    h, t: DFTTensors, xc: XCLike = "b3lyp5", n_refine: int = 3, *, mix: float = 0.5, mix_at: Optional[int] = 2
):
    """Density after `n_refine` DFT eigen-solves starting from Hamiltonian `h` (N, N).

    The density is mixed at solve `mix_at` (`mix_schedule`; None: at every solve).

    Returns D_{n_refine} (N, N). Fixed iteration count under `lax.scan`.
    """
    if n_refine < 1:
        raise ValueError(f"n_refine must be >= 1, got {n_refine}.")
    func = get_xc(xc)
    d1 = density_from_fock(h, t.orthogonalizer, t.n_occ)

    def step(d, alpha):
        d_new = density_from_fock(energy_and_fock(d, t, func)[1], t.orthogonalizer, t.n_occ)
        return alpha * d_new + (1.0 - alpha) * d, None

    d, _ = jax.lax.scan(step, d1, mix_schedule(n_refine, mix, mix_at))
    return d


class SandwichOutputs(NamedTuple):
    """What the sandwich gives for one conformer (leading axes when vmapped over a batch).

    energy: E[D_n], Hartree.  density: D_n (N, N).  w: the symmetrised correction
    (W + W^T)/2 (N, N), Hartree.  With ``orbitals=True`` also fock: F[D_n] (N, N), Hartree;
    mo_energy: (N,) its eigenvalues, Hartree; mo_coeff: (N, N) its orbitals (columns);
    otherwise these three are None.
    """

    energy: jnp.ndarray
    density: jnp.ndarray
    w: jnp.ndarray
    fock: Optional[jnp.ndarray] = None
    mo_energy: Optional[jnp.ndarray] = None
    mo_coeff: Optional[jnp.ndarray] = None


def sandwich_outputs(
    w,
    t: DFTTensors,
    xc: XCLike = "b3lyp5",
    *,
    h_init=None,
    n_refine: int = 3,
    mix: float = 0.5,
    mix_at: Optional[int] = 2,
    orbitals: bool = True,
) -> SandwichOutputs:
    """The one inference path of a Hamiltonian correction W (N, N), Hartree, for one conformer.

    H = H_init + (W + W^T)/2, D_n = `refine`(H) (n_refine eigen-solves, the density mixed as
    `mix_schedule` says), E[D_n]; with ``orbitals=True`` also F[D_n] and its eigenpairs
    (the predicted Hamiltonian and orbitals, as the research code reports them,
    graphcore-research/pyscf-ipu ``pyscf_ipu/direct/train.py``). The training losses, the
    evaluation, the monitor, `predict` and the initial guesses all run this function
    (`qpt_nb.learn.losses.model_outputs` vmaps it over a batch). `h_init`: F[D0] (N, N)
    when already known (`initial_iteration`), else computed.
    """
    func = get_xc(xc)
    if h_init is None:
        h_init = initial_iteration(t, func).h_init
    w = 0.5 * (w + jnp.swapaxes(w, -1, -2))
    d = refine(h_init + w, t, func, n_refine, mix=mix, mix_at=mix_at)
    if not orbitals:
        return SandwichOutputs(energy(d, t, func), d, w)
    e, fk = energy_and_fock(d, t, func)
    eps, c, _ = solve_fock(fk, t.orthogonalizer, t.n_occ)
    return SandwichOutputs(e, d, w, fk, eps, c)


def sandwich_energy(
    w, t: DFTTensors, xc: XCLike = "b3lyp5", n_refine: int = 3, *, mix: float = 0.5, h_init=None
):
    """E[D_n] (Hartree) for the Hamiltonian H_init + W; W (N, N) is the correction.

    W = 0 gives the plain n-iteration DFT sandwich (the untrained baseline).
    Returns (energy, density D_n); `sandwich_outputs` with ``orbitals=False``.
    """
    out = sandwich_outputs(w, t, xc, h_init=h_init, n_refine=n_refine, mix=mix, orbitals=False)
    return out.energy, out.density
