"""CDIIS, the one DIIS step of every SCF loop in qpt_nb (Pulay, Chem. Phys. Lett. 73, 393 (1980)).

The teaching loop (`qpt_nb.dft.scf.scf_loop`), the jitted fixed-iteration driver
(`qpt_nb.dft.scf.scf_fixed`, under `lax.scan`) and the device loop
(`qpt_nb.dft.scf_device.scf_device`, under `lax.while_loop`) all extrapolate the Fock
matrix with `diis_step`, so they follow the same trajectory to round-off (tested).

Shape glossary
--------------
N : number of atomic orbitals
M : DIIS space, the number of slots of the ring buffer (``max(diis_space, 1)``)

    fock    (N, N)     F[D_k] of iteration k, AO basis, Hartree
    error   (N, N)     e_k = X^T (F D S - S D F) X, the commutator of F and D in the
                       orthonormal basis (X the orthogonalizer, X^T S X = 1): zero at
                       self-consistency (`commutator_error`)
    state   `DIISState` of two (M, N, N) ring buffers: the last M Fock matrices and their
                       error vectors. Iteration k (0-based) writes slot k % M; slots not
                       written yet are masked out.

One step: store (F_k, e_k) in slot k % M, find the weights c (M,) minimising
|sum_i c_i e_i| subject to sum_i c_i = 1 (`diis_coefficients`), and return
F_ext = sum_i c_i F_i. The weights do not depend on the order of the slots, so the ring
buffer gives the extrapolation of a chronological history. With ``space=0`` DIIS is off
and F_ext = F_k (plain Roothaan iterations).

Everything is pure JAX: jittable, differentiable, and usable from a Python loop.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "DIISState",
    "diis_init",
    "diis_init_like",
    "commutator_error",
    "diis_coefficients",
    "diis_step",
    "diis_step_jit",
    "commutator_error_jit",
]


class DIISState(NamedTuple):
    """The DIIS history: ``focks`` and ``errors``, each an (M, N, N) ring buffer."""

    focks: jnp.ndarray
    errors: jnp.ndarray


def diis_init(n_ao: int, space: int, dtype=jnp.float64) -> DIISState:
    """An empty history of ``max(space, 1)`` slots for (n_ao, n_ao) matrices."""
    return diis_init_like(jnp.zeros((n_ao, n_ao), dtype), space)


def diis_init_like(density, space: int) -> DIISState:
    """An empty history of ``max(space, 1)`` slots for Fock matrices shaped like `density`:
    (N, N), or (2, N, N) for an unrestricted SCF (one set of weights for both spins on the
    stacked error vectors, as PySCF's UHF/UKS DIIS)."""
    zeros = jnp.zeros((max(int(space), 1),) + tuple(density.shape), density.dtype)
    return DIISState(zeros, zeros)


def commutator_error(fock, density, t):
    """DIIS error X^T (F D S - S D F) X (N, N) of `fock` and `density` (N, N) with the
    overlap S and orthogonalizer X of `t` (a `DFTTensors`): zero at self-consistency.
    A leading spin axis (2, N, N) gives both spins' errors."""
    fds = fock @ density @ t.overlap
    return t.orthogonalizer.T @ (fds - jnp.swapaxes(fds, -1, -2)) @ t.orthogonalizer


def diis_coefficients(errors, valid):
    """CDIIS weights c (M,) minimising |sum_i c_i e_i| subject to sum_i c_i = 1.

    Args:
      errors: (M, N, N) error vectors; valid: (M,) bool mask of filled slots.
    Returns (M,) weights, zero on invalid slots. The Gram matrix is scaled to unit
    diagonal maximum and regularised (1e-12) so it stays solvable at convergence.
    """
    m = errors.shape[0]
    flat = errors.reshape(m, -1)
    b = flat @ flat.T
    vv = valid[:, None] & valid[None, :]
    scale = jnp.max(jnp.where(valid, jnp.diagonal(b), 0.0))
    scale = jnp.where(scale > 0, scale, 1.0)
    b = jnp.where(vv, b / scale, 0.0) + jnp.eye(m) * jnp.where(valid, 1e-12, 1.0)
    ones = valid.astype(b.dtype)
    a = jnp.block([[b, ones[:, None]], [ones[None, :], jnp.zeros((1, 1))]])
    rhs = jnp.concatenate([jnp.zeros(m), jnp.ones(1)])
    return jnp.linalg.solve(a, rhs)[:m] * ones


def diis_step(state: DIISState, fock, error, k, *, space: int):
    """One CDIIS step of iteration `k` (0-based; an int or a traced int scalar).

    Args:
      state: the history (`diis_init` before the first step).
      fock: (N, N) F[D_k];  error: (N, N) its `commutator_error` (or (2, N, N) each, the
        Fock pair of an unrestricted SCF, with a history from `diis_init_like`).
      space: the DIIS space (static; 0 turns DIIS off). The buffers hold max(space, 1) slots.
    Returns:
      (F_ext (N, N) the extrapolated Fock matrix to diagonalise next, the new state).
    """
    m = state.focks.shape[0]
    slot = k % m
    focks = state.focks.at[slot].set(fock)
    errors = state.errors.at[slot].set(error)
    valid = jnp.arange(m) < jnp.minimum(k + 1, m)
    c = diis_coefficients(errors, valid) if space > 0 else jnp.eye(m)[slot]
    return jnp.tensordot(c, focks, axes=1), DIISState(focks, errors)


diis_step_jit = jax.jit(diis_step, static_argnames=("space",))
"""Jitted `diis_step` for a Python loop (compiled once per space and N; `k` is traced)."""

commutator_error_jit = jax.jit(commutator_error)
"""Jitted `commutator_error`."""
