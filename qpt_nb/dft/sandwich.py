"""The QPT 'sandwich': DFT iterations around a predicted Hamiltonian (arXiv 2402.04030, Sec. 3).

Pure physics; knows nothing about the network. With H = H_init + W:

    D1  = aufbau(H)
    D2' = aufbau(F[D1]);   D2 = (D1 + D2') / 2        (the one 0.5 density mix)
    D3  = aufbau(F[D2])                                (no mixing)
    loss = E[D3]

`refine` generalises this to `n_refine` eigen-solves (n_refine = 3 above), the
mix applied at the second one.  Gradients flow through every eigen-solve
(`qpt_nb.dft.linalg.eigh_guarded`).

Open shells (tensors with ``t.spin != 0``): the same iterations with a spin axis, as
unrestricted Kohn-Sham (`qpt_nb.dft.uks`): H_init, W, H and every Fock matrix are pairs
(2, N, N) (alpha, beta), D_k = (D_alpha, D_beta) from `uks_aufbau` (n_alpha, n_beta
orbitals), and the loss is E[D_alpha, D_beta] (`uks_energy`). The research code is
closed-shell; the unrestricted sandwich is this toolkit's extension of it.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from qpt_nb.dft.kohn_sham import XCLike, coulomb, exchange, xc_potential
from qpt_nb.dft.tensors import DFTTensors
from qpt_nb.dft.uks import initial_density, scf_aufbau, scf_energy, scf_fock, uks_xc_energy_and_potential
from qpt_nb.dft.xc import get_xc


class InitialIteration(NamedTuple):
    """The first (network-free) DFT iteration from the minao guess D0.

    Hartree except dm0. Closed shell, all (N, N): dm0, coulomb J(D0), exchange K(D0),
    vxc V_xc(D0) and h_init = H_core + J - a_x/2 K + V_xc = F[D0]. Open shell, with the
    spin axis first: dm0 (2, N, N) (the minao guess halved per spin), coulomb J(D0_a + D0_b)
    (N, N), exchange (2, N, N) K(D0_s), vxc (2, N, N) V_xc,s and h_init (2, N, N) the UKS
    Fock pair F_s = H_core + J - a_x K_s + V_xc,s."""

    dm0: jnp.ndarray
    coulomb: jnp.ndarray
    exchange: jnp.ndarray
    vxc: jnp.ndarray
    h_init: jnp.ndarray


def initial_iteration(t: DFTTensors, xc: XCLike = "b3lyp5") -> InitialIteration:
    """One DFT iteration from `t.dm0` (PySCF's minao guess): H_init = F[D0] and its parts
    (restricted, or unrestricted for open-shell tensors: see `InitialIteration`)."""
    func = get_xc(xc)
    d0 = initial_density(t)
    if d0.ndim == 2:
        j, k = coulomb(d0, t), exchange(d0, t)
        v = xc_potential(d0, t, func)
        return InitialIteration(d0, j, k, v, t.hcore + j - 0.5 * func.hyb * k + v)
    j = coulomb(d0[0] + d0[1], t)
    k = jnp.stack([exchange(d0[0], t), exchange(d0[1], t)])
    v = uks_xc_energy_and_potential(d0, t, func)[1] if func.family != "hf" else jnp.zeros_like(k)
    return InitialIteration(d0, j, k, v, t.hcore + j - func.hyb * k + v)


def check_correction_shape(w, h_init) -> None:
    """ValueError unless the correction W has H_init's shape: (N, N) for a closed shell,
    (2, N, N) for an open one (a closed-shell model on a radical, or the reverse, would
    otherwise broadcast into a wrong answer). Static shapes: works under jit and vmap."""
    if tuple(w.shape) != tuple(h_init.shape):
        kind = {2: "closed-shell (N, N)", 3: "open-shell (2, N, N)"}
        raise ValueError(
            f"the correction W has shape {tuple(w.shape)} but H_init {tuple(h_init.shape)}: a "
            f"{kind.get(len(w.shape), 'other')} model on a {kind.get(len(h_init.shape), 'other')} "
            "molecule; a model predicts for molecules of the spin it was trained on"
        )


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
    """Density after `n_refine` DFT eigen-solves starting from Hamiltonian `h` (N, N),
    or (2, N, N) (alpha, beta) for open-shell tensors.

    The density is mixed at solve `mix_at` (`mix_schedule`; None: at every solve).

    Returns D_{n_refine}, shaped like `h`. Fixed iteration count under `lax.scan`.
    """
    if n_refine < 1:
        raise ValueError(f"n_refine must be >= 1, got {n_refine}.")
    func = get_xc(xc)
    d1 = scf_aufbau(h, t)[2]

    def step(d, alpha):
        d_new = scf_aufbau(scf_fock(d, t, func)[1], t)[2]
        return alpha * d_new + (1.0 - alpha) * d, None

    d, _ = jax.lax.scan(step, d1, mix_schedule(n_refine, mix, mix_at))
    return d


class SandwichOutputs(NamedTuple):
    """What the sandwich gives for one conformer (leading axes when vmapped over a batch).

    energy: E[D_n], Hartree.  density: D_n (N, N).  w: the symmetrised correction
    (W + W^T)/2 (N, N), Hartree.  With ``orbitals=True`` also fock: F[D_n] (N, N), Hartree;
    mo_energy: (N,) its eigenvalues, Hartree; mo_coeff: (N, N) its orbitals (columns);
    otherwise these three are None. Open shells: a leading spin axis (2, ...) on every
    array but the energy.
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
    """The one inference path of a Hamiltonian correction W (N, N), Hartree, for one conformer
    ((2, N, N), one per spin, for open-shell tensors).

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
    check_correction_shape(w, h_init)
    w = 0.5 * (w + jnp.swapaxes(w, -1, -2))
    d = refine(h_init + w, t, func, n_refine, mix=mix, mix_at=mix_at)
    if not orbitals:
        return SandwichOutputs(scf_energy(d, t, func), d, w)
    e, fk = scf_fock(d, t, func)
    eps, c, _ = scf_aufbau(fk, t)
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
