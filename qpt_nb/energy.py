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

Functions take the functional as a name or `qpt_nb.xc.XCFunctional` and the
per-geometry tensors as `qpt_nb.tensors.DFTTensors`; they are pure and jittable
(pass the functional as a static argument when jitting).
"""
from __future__ import annotations

import functools
from typing import Union

import jax
import jax.numpy as jnp

from .tensors import DFTTensors
from .xc import XCFunctional, get_xc

XCLike = Union[str, XCFunctional]


def _xc(xc: XCLike) -> XCFunctional:
  return xc if isinstance(xc, XCFunctional) else get_xc(xc)


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
  bd = jnp.matmul(t.eri, density)              # (P, N, N): B_P D
  return jnp.einsum("pil,pjl->ij", bd, t.eri)  # sum_P B_P D B_P^T


def density_on_grid(density, t: DFTTensors):
  """rho (G,) in electrons/Bohr^3 and, with AO gradients, sigma = |grad rho|^2 (G,).

  rho_g = sum_ij D_ij phi_i(g) phi_j(g);  grad rho_g = 2 sum_ij D_ij grad phi_i(g) phi_j(g).
  Returns (rho, sigma) with sigma None when `t.ao` has no gradient rows.
  """
  phi_d = t.ao[0] @ density                      # (G, N)
  rho = jnp.einsum("gi,gi->g", phi_d, t.ao[0])
  if t.ao.shape[0] < 4:
    return rho, None
  grad = 2.0 * jnp.einsum("xgi,gi->xg", t.ao[1:4], phi_d)
  return rho, jnp.sum(grad * grad, axis=0)


def xc_energy(density, t: DFTTensors, xc: XCLike):
  """E_xc[rho_D] (Hartree) by quadrature on the grid; 0 for Hartree-Fock."""
  f = _xc(xc)
  if f.family == "hf":
    return jnp.zeros((), density.dtype)
  if f.needs_gradient and t.ao.shape[0] < 4:
    raise ValueError(f"Functional {f.name!r} needs AO gradients: build the tensors with xc={f.name!r} "
                     "or without xc=.")
  rho, sigma = density_on_grid(density, t)
  if sigma is None:
    sigma = jnp.zeros_like(rho)
  return jnp.sum(t.weights * f.energy_density(rho, sigma))


def energy_components(density, t: DFTTensors, xc: XCLike) -> dict:
  """Energy terms (Hartree) of `density`: 'one_electron', 'coulomb',
  'exact_exchange', 'xc', 'nuclear' and their sum 'total'."""
  f = _xc(xc)
  parts = {
      "one_electron": jnp.sum(density * t.hcore),
      "coulomb": 0.5 * jnp.sum(density * coulomb(density, t)),
      "exact_exchange": (-0.25 * f.hyb * jnp.sum(density * exchange(density, t))
                         if f.hyb != 0 else jnp.zeros((), density.dtype)),
      "xc": xc_energy(density, t, f),
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
  """(E[D], F[D]) with F = dE/dD symmetrised: h + J - a_x/2 K + V_xc."""
  e, g = jax.value_and_grad(energy)(density, t, _xc(xc))
  return e, _symmetrize(g)


def fock(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
  """Kohn-Sham matrix F[D] = dE/dD (N, N), Hartree; equals PySCF's get_fock(dm=D)."""
  return energy_and_fock(density, t, xc)[1]


def xc_potential(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
  """V_xc[D] = dE_xc/dD (N, N) in the AO basis, Hartree."""
  return _symmetrize(jax.grad(xc_energy)(density, t, _xc(xc)))


@functools.partial(jax.jit, static_argnums=(2,))
def _energy_and_fock_jit(density, t, xc):
  return energy_and_fock(density, t, xc)


def energy_and_fock_jit(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
  """Jitted `energy_and_fock` (compiled once per functional and tensor shapes)."""
  return _energy_and_fock_jit(density, t, _xc(xc))
