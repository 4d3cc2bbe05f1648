"""The closed-shell Kohn-Sham energy E[D] in JAX, and its gradient, the Fock matrix.

For a density matrix D (N, N) in the AO basis (trace(D S) = number of electrons):

    E[D] = tr(D h) + 1/2 tr(D J[D]) - a_x/4 tr(D K[D]) + E_xc[rho_D] + E_nuc

    J[D]_ij = sum_kl (ij|kl) D_kl          (Coulomb)
    K[D]_ij = sum_kl (ik|jl) D_kl          (exchange)
    rho(r)  = sum_ij D_ij phi_i(r) phi_j(r)
    E_xc    = sum_g w_g e_xc(rho(r_g), |grad rho(r_g)|^2)

with a_x the exact-exchange fraction of the functional.  The Fock (Kohn-Sham)
matrix is F = dE/dD (automatic differentiation), which equals PySCF's
``mf.get_fock(dm=D)`` for a symmetric D.  All energies in Hartree.

Functions take the functional as a name or `qpt_nb.dft.xc.XCFunctional` and the
per-geometry tensors as `qpt_nb.dft.tensors.DFTTensors`; they are pure and jittable
(pass the functional as a static argument when jitting).

Checks (`check_density`): `energy`, `energy_components`, `energy_and_fock`, `fock`
and `xc_potential` raise TypeError when `t` is not a `DFTTensors` and ValueError when
the density is not (N, N) for the tensors' N AOs (always, also under jit: shapes are
static), or, for a concrete array (not a tracer: the check is skipped under
jit/grad/vmap), when it is not symmetric: E[D] is defined for symmetric D, and an
asymmetric one gives a different energy without any error.
"""

from __future__ import annotations

import functools
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np

from qpt_nb.dft.tensors import DFTTensors
from qpt_nb.dft.xc import XCFunctional, get_xc

XCLike = Union[str, XCFunctional]

# |D - D^T| above this (relative to max(1, max |D|)) is an error, not round-off.
SYMMETRY_TOL = 1e-6


def check_density(density, t: DFTTensors, what: str = "density"):
    """`density` as an array, after checking it against `t` (see the module docstring).

    Raises TypeError (`t` not a `DFTTensors`, density not numeric) or ValueError (shape,
    or asymmetry of a concrete density beyond `SYMMETRY_TOL`)."""
    if not isinstance(t, DFTTensors):
        raise TypeError(
            f"t must be the DFTTensors of the molecule (qpt_nb.dft_tensors(mol, ...)), got {type(t).__name__}"
        )
    if not hasattr(density, "shape") or not hasattr(density, "dtype"):
        try:
            density = jnp.asarray(density)
        except (TypeError, ValueError):
            raise TypeError(f"{what} must be an (N, N) array, got {type(density).__name__}") from None
    n = t.overlap.shape[-1]
    if t.overlap.ndim != 2:
        raise ValueError(
            f"t is a stacked batch of tensors (overlap shape {tuple(t.overlap.shape)}): "
            "evaluate one conformer at a time, e.g. under jax.vmap"
        )
    if tuple(density.shape) != (n, n):
        raise ValueError(
            f"{what} must be an ({n}, {n}) matrix for these tensors ({n} AOs), got "
            f"shape {tuple(density.shape)}"
        )
    if not isinstance(density, jax.core.Tracer):
        d = np.asarray(density)
        if np.issubdtype(d.dtype, np.number):
            asym = float(np.max(np.abs(d - d.T))) if d.size else 0.0
            scale = max(1.0, float(np.max(np.abs(d)))) if d.size else 1.0
            if asym > SYMMETRY_TOL * scale:
                raise ValueError(
                    f"{what} is not symmetric (max |D - D^T| = {asym:.3g}): E[D] is defined "
                    "for a symmetric density matrix; pass 0.5 * (D + D.T) if that is what "
                    "you mean"
                )
    return density


def coulomb(density, t: DFTTensors):
    """J[D] (N, N), Hartree: sum_kl (ij|kl) D_kl (dense or density-fitted)."""
    if t.eri_kind == "dense":
        n = density.shape[-1]
        return (t.eri.reshape(n * n, n * n) @ density.reshape(n * n)).reshape(n, n)
    fit = jnp.einsum("pkl,kl->p", t.eri, density)
    return jnp.einsum("p,pij->ij", fit, t.eri)


def exchange(density, t: DFTTensors):
    """K[D] (N, N), Hartree: sum_kl (ik|jl) D_kl (dense or density-fitted)."""
    if t.eri_kind == "dense":
        return jnp.einsum("ikjl,kl->ij", t.eri, density)
    bd = jnp.matmul(t.eri, density)  # (P, N, N): B_P D
    return jnp.einsum("pil,pjl->ij", bd, t.eri)  # sum_P B_P D B_P^T


def xc_energy(density, t: DFTTensors, xc: XCLike):
    """E_xc[rho_D] (Hartree) by quadrature on the grid; 0 for Hartree-Fock.

    Differentiable (custom JVP): dE_xc = sum_ij V_ij dD_ij with V from
    `xc_energy_and_potential`, so jax.grad gives V_xc at the cost of one extra
    grid matmul, and higher derivatives (the XC kernel) work through it.
    """
    func = get_xc(xc)
    if func.family == "hf":
        return jnp.zeros((), density.dtype)
    if func.needs_gradient and t.ao.shape[0] < 4:
        raise ValueError(
            f"Functional {func.name!r} needs AO gradients: build the tensors with xc={func.name!r} "
            "or without xc=."
        )
    return _xc_energy(density, t, func)


def xc_energy_and_potential(density, t: DFTTensors, xc: XCLike):
    """(E_xc (), V_xc (N, N)) in Hartree, by the explicit quadrature formula.

    With e(rho, sigma) the energy density, w the weights and v_rho = de/drho,
    v_sigma = de/dsigma per point, u_g = 2 w v_sigma grad rho (3, G):

      V = A + A^T,   A = phi^T [ (w v_rho / 2) phi + sum_x u_x dphi/dx ]

    (PySCF's formula; one (G, N) x (G, N) matmul.)  The grid is processed in
    blocks of `t.grid_block` points under `lax.scan` so each block stays in cache.
    """
    func = get_xc(xc)
    n_grid, block = t.weights.shape[-1], t.grid_block
    if block <= 0 or n_grid % block:
        block = n_grid

    def one_block(carry, start):
        ao = jax.lax.dynamic_slice_in_dim(t.ao, start, block, axis=1)
        w = jax.lax.dynamic_slice_in_dim(t.weights, start, block)
        phi_d = ao[0] @ density
        rho = jnp.sum(phi_d * ao[0], axis=-1)
        grad = 2.0 * jnp.einsum("xgi,gi->xg", ao[1:4], phi_d) if ao.shape[0] >= 4 else None
        sigma = jnp.zeros_like(rho) if grad is None else jnp.sum(grad * grad, axis=0)
        e, (w_vrho, w_vsigma) = jax.value_and_grad(
            lambda r, s: jnp.sum(w * func.energy_density(r, s)), argnums=(0, 1)
        )(rho, sigma)
        aow = 0.5 * w_vrho[:, None] * ao[0]
        if grad is not None and func.needs_gradient:
            aow = aow + jnp.einsum("xg,xgi->gi", 2.0 * w_vsigma * grad, ao[1:4])
        return (carry[0] + e, carry[1] + ao[0].T @ aow), None

    init = (jnp.zeros((), density.dtype), jnp.zeros_like(density))
    # jax.checkpoint: reverse mode recomputes each cache-sized block instead of storing
    # every block's intermediates (a full copy of the AO array): the XC kernel
    # (derivative of V_xc, the hot path of training) runs 4x faster.
    (e, a), _ = jax.lax.scan(jax.checkpoint(one_block), init, jnp.arange(0, n_grid, block))
    return e, a + a.T


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _xc_energy(density, t, func):
    return xc_energy_and_potential(density, t, func)[0]


@_xc_energy.defjvp
def _xc_energy_jvp(func, primals, tangents):
    density, t = primals
    d_density = tangents[0]
    e, v = xc_energy_and_potential(density, t, func)
    return e, jnp.sum(v * d_density)


def energy_components(density, t: DFTTensors, xc: XCLike) -> dict:
    """Energy terms (Hartree) of `density`: 'one_electron', 'coulomb',
    'exact_exchange', 'xc', 'nuclear' and their sum 'total'."""
    func = get_xc(xc)
    density = check_density(density, t)
    parts = {
        "one_electron": jnp.sum(density * t.hcore),
        "coulomb": 0.5 * jnp.sum(density * coulomb(density, t)),
        "exact_exchange": (
            -0.25 * func.hyb * jnp.sum(density * exchange(density, t))
            if func.hyb != 0
            else jnp.zeros((), density.dtype)
        ),
        "xc": xc_energy(density, t, func),
        "nuclear": t.e_nuc,
    }
    parts["total"] = sum(parts.values())
    return parts


def energy(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
    """Total Kohn-Sham energy E[D] (Hartree), differentiable in `density` (N, N).

    Example (water, STO-3G, PySCF's converged density gives PySCF's energy):
      >>> energy(res.density, t, 'b3lyp5')   # doctest: +SKIP
      Array(-75.3125..., dtype=float64)
    """
    return energy_components(density, t, xc)["total"]


def _symmetrize(m):
    return 0.5 * (m + jnp.swapaxes(m, -1, -2))


def energy_and_fock(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
    """(E[D], F[D]) with the Fock matrix F = dE/dD = h + J - a_x/2 K + V_xc (Hartree).

    Computed explicitly (one J, one K and one XC quadrature): equal to the autodiff
    gradient `fock_autodiff` (tested), without autodiff's second pass over the
    two-electron integrals. Differentiable (the sandwich backpropagates through it).
    """
    func = get_xc(xc)
    density = check_density(density, t)
    veff = coulomb(density, t)
    if func.hyb != 0:
        veff = veff - 0.5 * func.hyb * exchange(density, t)
    e = jnp.sum(density * t.hcore) + 0.5 * jnp.sum(density * veff) + t.e_nuc
    fk = t.hcore + veff
    if func.family != "hf":
        exc, vxc = xc_energy_and_potential(density, t, func)
        e, fk = e + exc, fk + vxc
    return e, _symmetrize(fk)


def fock(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
    """Kohn-Sham matrix F[D] = dE/dD (N, N), Hartree; equals PySCF's get_fock(dm=D)."""
    return energy_and_fock(density, t, xc)[1]


def fock_autodiff(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
    """F[D] by automatic differentiation of `energy` (the definition; slower)."""
    return _symmetrize(jax.grad(energy)(density, t, get_xc(xc)))


def xc_potential(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
    """V_xc[D] = dE_xc/dD (N, N) in the AO basis, Hartree (zero for Hartree-Fock)."""
    func = get_xc(xc)
    density = check_density(density, t)
    if func.family == "hf":
        return jnp.zeros_like(density)
    return xc_energy_and_potential(density, t, func)[1]


energy_and_fock_jit = jax.jit(energy_and_fock, static_argnums=(2,))
"""Jitted `energy_and_fock` (compiled once per functional and tensor shapes; pass the
functional the same way each time, as a name or as `get_xc`'s `XCFunctional`)."""
