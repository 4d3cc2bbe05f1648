"""The closed-shell Kohn-Sham energy E[D] in JAX, and its gradient, the Fock matrix
(open shells: `qpt_nb.dft.uks`).

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
static), or, for a concrete array (not a tracer: the checks are skipped under
jit/grad/vmap), when it holds NaN or infinite entries (E[D] would be NaN without a
word) or is not symmetric: E[D] is defined for symmetric D, and an asymmetric one
gives a different energy without any error.
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

    Raises TypeError (`t` not a `DFTTensors`, density not numeric) or ValueError (shape;
    for a concrete density: NaN or infinite entries, or asymmetry beyond `SYMMETRY_TOL`)."""
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
    if getattr(t, "spin", 0) and tuple(density.shape) == (n, n):
        raise ValueError(
            f"these tensors are of an open-shell molecule (spin={t.spin}): the restricted E[D] "
            "does not apply; use qpt_nb.dft.uks (uks_energy, uks_energy_and_fock) with a "
            "(2, N, N) density (alpha, beta), or qpt_nb.scf, which picks it"
        )
    if tuple(density.shape) != (n, n):
        raise ValueError(
            f"{what} must be an ({n}, {n}) matrix for these tensors ({n} AOs), got "
            f"shape {tuple(density.shape)}"
        )
    if not isinstance(density, jax.core.Tracer):
        d = np.asarray(density)
        if np.issubdtype(d.dtype, np.number):
            bad = ~np.isfinite(d)
            if bad.any():
                i, j = (int(v) for v in np.argwhere(bad)[0])
                raise ValueError(
                    f"{what} holds {int(bad.sum())} non-finite entries (first: [{i}, {j}] = "
                    f"{d[i, j]}): E[D] of a NaN or infinite density is NaN; check where the "
                    "density came from (a diverged SCF or a model output)"
                )
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
    p, n = t.eri.shape[0], density.shape[-1]
    b = t.eri.reshape(p, n * n)  # a view: no transposed copy of the (P, N, N) tensor
    return ((b @ density.reshape(n * n)) @ b).reshape(n, n)


def exchange(density, t: DFTTensors, *, factor=None):
    """K[D] (N, N), Hartree: sum_kl (ik|jl) D_kl (dense or density-fitted).

    `factor` (N, k), optional, with D = factor factor^T (e.g. sqrt(2) C_occ): with density
    fitting K is then sum_P (B_P L)(B_P L)^T, (P, N, k) intermediates instead of (P, N, N),
    N/k times fewer flops and less memory, as PySCF's ``df.df_jk`` does with orbitals.
    Gradients flow through `density` only (K is linear in D: the VJP is K[K_bar]).
    """
    if t.eri_kind == "dense":
        if t.eri.size * t.eri.dtype.itemsize > DENSE_K_ROWS_BYTES:
            return _dense_exchange_rows(density, t)
        return jnp.einsum("ikjl,kl->ij", t.eri, density)
    if factor is not None:
        return _df_exchange_factored(density, factor, t)
    return _df_exchange(density, t)


# dense (ij|kl) tensors larger than this get K row by row: XLA's einsum over the (i, k, j, l)
# axes makes a transposed copy of the whole tensor (uracil/def2-SVP: 2.4 GB more per call)
DENSE_K_ROWS_BYTES = 64 * 2**20


def _dense_exchange_rows(density, t):
    """K_ij = sum_kl (ik|jl) D_kl one row i at a time, with no (N, N, N, N) intermediate,
    batched (vmap over conformers) or not, forward or backward (`_dense_k_rows`). Uracil/6-31G
    (80 AOs) at grid 1: the evaluation's peak memory 1.10 GB instead of 1.64, and its sandwich
    1.4 s instead of 2.0 (one thread)."""
    return _dense_k_rows(t.eri, density)


@jax.custom_vjp
def _dense_k_rows(eri, density):
    """Row i of K: (ij|kl)[i] read as a (k l, j) matrix is (ik|lj) = (ik|jl), so
    K_i = vec(D) @ that matrix, with no transpose. `lax.map` over the row index (not over
    the tensor's rows, whose batching rule under vmap would transpose the whole stack)."""
    n = density.shape[-1]
    flat = density.reshape(n * n)

    def row(i):
        return flat @ jax.lax.dynamic_index_in_dim(eri, i, 0, keepdims=False).reshape(n * n, n)

    return jax.lax.map(row, jnp.arange(n))


def _dense_k_rows_fwd(eri, density):
    return _dense_k_rows(eri, density), eri


def _dense_k_rows_bwd(eri, k_bar):
    # K is linear in D and self-adjoint ((ik|jl) = (ki|lj)): the pull-back of K_bar is K[K_bar].
    # The tensor is a constant of the sandwich (no cotangent); autodiff would keep each row.
    return None, _dense_k_rows(eri, k_bar)


_dense_k_rows.defvjp(_dense_k_rows_fwd, _dense_k_rows_bwd)


DF_BLOCK = 64  # auxiliary functions per block of the density-fitted K without orbitals


def _df_exchange(density, t):
    """sum_P B_P D B_P over blocks of `DF_BLOCK` auxiliary functions (`lax.scan`, then
    the remainder), so the (P, N, N) intermediate B_P D is never whole in memory."""
    p, n = t.eri.shape[0], density.shape[-1]

    def part(b):  # b: (q, N, N) block of B
        q = b.shape[0]
        bd = (b.reshape(q * n, n) @ density).reshape(q, n, n)  # B_P D
        # sum_{P,l} (B_P D)_il (B_P)_lj, B_P symmetric: one (N, qN) x (qN, N) product
        return jnp.transpose(bd, (1, 0, 2)).reshape(n, q * n) @ b.reshape(q * n, n)

    n_full = p // DF_BLOCK
    k = jnp.zeros((n, n), jnp.result_type(density, t.eri))
    if n_full:

        def body(acc, i):
            return acc + part(jax.lax.dynamic_slice_in_dim(t.eri, i * DF_BLOCK, DF_BLOCK, 0)), None

        k, _ = jax.lax.scan(body, k, jnp.arange(n_full))
    if p % DF_BLOCK:
        k = k + part(t.eri[n_full * DF_BLOCK :])
    return k


@jax.custom_vjp
def _df_exchange_factored(density, factor, t):
    p, n = t.eri.shape[0], factor.shape[0]
    bl = (t.eri.reshape(p * n, n) @ factor).reshape(p, n, -1)  # B_P L, (P, N, k)
    bl = jnp.transpose(bl, (1, 0, 2)).reshape(n, -1)  # (N, P k): a copy of the small tensor
    return bl @ bl.T


def _df_exchange_factored_fwd(density, factor, t):
    return _df_exchange_factored(density, factor, t), t


def _df_exchange_factored_bwd(t, k_bar):
    return _df_exchange(k_bar, t), None, None


_df_exchange_factored.defvjp(_df_exchange_factored_fwd, _df_exchange_factored_bwd)


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


def _block_density(ao, phi_d):
    """rho (B,) and grad rho (3, B) (None without AO gradients), float64, from AO values
    `ao` (n_deriv, B, N) and phi_d = phi D (B, N) in the grid precision:

      rho = sum_i phi_d,i phi_i,    grad rho = 2 sum_i phi_d,i grad phi_i.
    """
    rho = jnp.sum(phi_d * ao[0], axis=-1).astype(jnp.float64)
    if ao.shape[0] < 4:
        return rho, None
    return rho, 2.0 * jnp.einsum("xgi,gi->xg", ao[1:4], phi_d).astype(jnp.float64)


def _functional_grad(func, w):
    """(rho, sigma) -> (w v_rho, w v_sigma), the gradient of sum_g w_g e(rho_g, sigma_g)."""
    return jax.grad(lambda r, s: jnp.sum(w * func.energy_density(r, s)), argnums=(0, 1))


def _sigma(grad):
    return None if grad is None else jnp.sum(grad * grad, axis=0)


def _contract(ao, w_vrho, u, gga):
    """phi^T [ (w v_rho / 2) phi + sum_x u_x dphi/dx ] (N, N), float64 (the 'A' of V = A + A^T)."""
    lo = ao.dtype
    aow = (0.5 * w_vrho).astype(lo)[:, None] * ao[0]
    if gga:
        aow = aow + jnp.einsum("xg,xgi->gi", u.astype(lo), ao[1:4])
    return (ao[0].T @ aow).astype(jnp.float64)


def _phi_density(ao, d_lo, factor_lo):
    """phi D (B, N): directly, or as (phi L) L^T when D = L L^T with L (N, k), k < N/2."""
    if factor_lo is None:
        return ao[0] @ d_lo
    return (ao[0] @ factor_lo) @ factor_lo.T


def _xc_block(func, ao, w, d_lo, factor_lo=None):
    """One block's (E_xc (), A (N, N)); V_xc = A + A^T summed over blocks.

    The grid products run in the grid precision ao.dtype ('float64': exact to PySCF;
    'float32': as the research code's ``-xc_f32``), `d_lo` (N, N) included; rho, sigma
    and the functional with its derivatives are float64 (in float32 the derivatives of
    rho^(-8/3) overflow below libxc's density thresholds); block results accumulate in
    float64.  With `factor_lo` L (N, k),
    D = L L^T (occupied orbitals, L = sqrt(2) C_occ), phi D costs 2 B N k instead of
    B N^2, as PySCF's make_rho with mo_coeff.
    """
    rho, grad = _block_density(ao, _phi_density(ao, d_lo, factor_lo))
    sigma = jnp.zeros_like(rho) if grad is None else _sigma(grad)
    e = jnp.sum(w * func.energy_density(rho, sigma)).astype(jnp.float64)
    w_vrho, w_vsigma = _functional_grad(func, w)(rho, sigma)
    gga = grad is not None and func.needs_gradient
    return e, _contract(ao, w_vrho, 2.0 * w_vsigma * grad if gga else None, gga)


def _xc_block_vjp(func, ao, w, d_lo, e_bar, s_bar):
    """One block's contribution to dL/dD (N, N), float64, given e_bar = dL/dE_xc and
    s_bar = dL/dA (N, N) symmetric (A of `_xc_block`), by the explicit XC kernel:

      rho_S, grad rho_S: the density of S = s_bar on the block (like rho of D),
      (a, b) = (rho_S / 2, grad rho . grad rho_S)        cotangents of (w v_rho, w v_sigma),
      (rho_bar, sigma_bar) = Hess[sum w e] (a, b) + e_bar (w v_rho, w v_sigma),
      grad_bar = w v_sigma grad rho_S + 2 sigma_bar grad rho,
      dL/dD += phi^T [ rho_bar phi + 2 sum_x grad_bar_x dphi/dx ].

    Three (B, N) x (N, N) products (phi D recomputed, phi S, the result), against six
    for reverse-mode autodiff of `_xc_block` under a checkpoint.
    """
    lo = ao.dtype
    rho, grad = _block_density(ao, ao[0] @ d_lo)
    gga = grad is not None and func.needs_gradient
    sigma = jnp.zeros_like(rho) if grad is None else _sigma(grad)
    rho_s, grad_s = _block_density(ao, ao[0] @ s_bar.astype(lo))
    a = 0.5 * rho_s
    b = jnp.sum(grad * grad_s, axis=0) if gga else jnp.zeros_like(rho)
    (w_vrho, w_vsigma), (h_r, h_s) = jax.jvp(_functional_grad(func, w), (rho, sigma), (a, b))
    phi_bar = (h_r + e_bar * w_vrho).astype(lo)[:, None] * ao[0]
    if gga:
        grad_bar = w_vsigma * grad_s + 2.0 * (h_s + e_bar * w_vsigma) * grad
        phi_bar = phi_bar + jnp.einsum("xg,xgi->gi", (2.0 * grad_bar).astype(lo), ao[1:4])
    return (ao[0].T @ phi_bar).astype(jnp.float64)


def _grid_blocks(t: DFTTensors):
    """(block size, start indices) of the XC quadrature's blocks of grid points."""
    n_grid, block = t.weights.shape[-1], t.grid_block
    if block <= 0 or n_grid % block:
        block = n_grid
    return block, jnp.arange(0, n_grid, block)


def _block_slices(t: DFTTensors, start, block):
    ao = jax.lax.dynamic_slice_in_dim(t.ao, start, block, axis=1)
    return ao, jax.lax.dynamic_slice_in_dim(t.weights, start, block)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _xc_ev(density, factor, t, func):
    block, starts = _grid_blocks(t)
    d_lo = density.astype(t.ao.dtype)
    f_lo = None if factor is None else factor.astype(t.ao.dtype)

    def one_block(carry, start):
        e, a = _xc_block(func, *_block_slices(t, start, block), d_lo, f_lo)
        return (carry[0] + e, carry[1] + a), None

    init = (jnp.zeros((), jnp.float64), jnp.zeros(density.shape, jnp.float64))
    (e, a), _ = jax.lax.scan(one_block, init, starts)
    return e.astype(density.dtype), (a + a.T).astype(density.dtype)


def _unwrap(x):
    return x.value if isinstance(x, jax.custom_derivatives.CustomVJPPrimal) else x


def _xc_ev_fwd(density, factor, t, func):
    is_primal = lambda x: isinstance(x, jax.custom_derivatives.CustomVJPPrimal)  # noqa: E731
    if any(leaf.perturbed for leaf in jax.tree_util.tree_leaves(t, is_leaf=is_primal)):
        raise NotImplementedError(
            "The XC quadrature is differentiable in the density only: derivatives with respect "
            "to the DFTTensors (AO values, grid weights; e.g. nuclear forces) are not implemented."
        )
    density, factor = _unwrap(density), jax.tree_util.tree_map(_unwrap, factor, is_leaf=is_primal)
    t = jax.tree_util.tree_map(_unwrap, t, is_leaf=is_primal)
    return _xc_ev(density, factor, t, func), (density, factor, t)


def _xc_ev_bwd(func, res, cotangents):
    density, factor, t = res
    e_bar, v_bar = (
        jnp.zeros(shape, jnp.float64) if isinstance(c, jax.custom_derivatives.SymbolicZero) else c
        for c, shape in zip(cotangents, ((), density.shape))
    )
    block, starts = _grid_blocks(t)
    d_lo = density.astype(t.ao.dtype)
    s_bar = (v_bar + v_bar.T).astype(jnp.float64)
    e_bar = jnp.asarray(e_bar, jnp.float64)

    def one_block(acc, start):
        return acc + _xc_block_vjp(func, *_block_slices(t, start, block), d_lo, e_bar, s_bar), None

    d_bar, _ = jax.lax.scan(one_block, jnp.zeros(density.shape, jnp.float64), starts)
    # the factor only speeds up rho: gradients reach it through `density` (= L L^T)
    none = lambda tree: jax.tree_util.tree_map(lambda x: None, tree)  # noqa: E731
    return d_bar.astype(density.dtype), none(factor), none(t)


_xc_ev.defvjp(_xc_ev_fwd, _xc_ev_bwd, symbolic_zeros=True)


def xc_energy_and_potential(density, t: DFTTensors, xc: XCLike, *, occ_coeff=None):
    """(E_xc (), V_xc (N, N)) in Hartree, by the explicit quadrature formula.

    With e(rho, sigma) the energy density, w the weights and v_rho = de/drho,
    v_sigma = de/dsigma per point, u_g = 2 w v_sigma grad rho (3, G):

      V = A + A^T,   A = phi^T [ (w v_rho / 2) phi + sum_x u_x dphi/dx ]

    (PySCF's formula; one (G, N) x (G, N) matmul.)  The grid is processed in
    blocks of `t.grid_block` points under `lax.scan` so each block stays in cache.
    The grid work runs in `t.precision` (the AO values' dtype; 'float32' halves memory
    and is 2-8x faster on a CPU); the sums over blocks are float64.

    Reverse-mode differentiable in `density` through an explicit XC-kernel VJP
    (`_xc_block_vjp`: the hot path of training, 3 grid products per block instead of
    autodiff's 6); derivatives with respect to `t` raise NotImplementedError, and
    forward mode (jax.jvp, jax.jacfwd) is not supported.

    `occ_coeff` (N, n_occ), optional: the occupied orbitals C_occ of `density`
    (= 2 C_occ C_occ^T, the caller's contract). rho is then evaluated through them,
    (G x N)(N x n_occ) twice instead of (G x N)(N x N), where that is cheaper
    (2 n_occ < N); gradients still flow through `density` only.
    """
    return _xc_ev(density, _orbital_factor(occ_coeff, density), t, get_xc(xc))


def _orbital_factor(occ_coeff, density):
    """L = sqrt(2) C_occ with D = L L^T, where evaluating through it is cheaper than
    through D (2 n_occ < N); else None."""
    if occ_coeff is not None and 2 * occ_coeff.shape[-1] < density.shape[-1]:
        return jnp.sqrt(2.0) * occ_coeff
    return None


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _xc_energy(density, t, func):
    return xc_energy_and_potential(density, t, func)[0]


def _xc_energy_jvp(func, primals, tangents):
    density, t = primals
    d_density, d_t = tangents
    is_zero = lambda x: isinstance(x, jax.custom_derivatives.SymbolicZero)  # noqa: E731
    if not all(is_zero(x) for x in jax.tree_util.tree_leaves(d_t, is_leaf=is_zero)):
        raise NotImplementedError(
            "E_xc is differentiable in the density only: derivatives with respect to the "
            "DFTTensors (AO values, grid weights; e.g. nuclear forces) are not implemented."
        )
    e, v = xc_energy_and_potential(density, t, func)
    if is_zero(d_density):
        return e, jnp.zeros_like(e)
    return e, jnp.sum(v * d_density)


_xc_energy.defjvp(_xc_energy_jvp, symbolic_zeros=True)


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

    Example (water, STO-3G, grid level 1: PySCF's converged density gives PySCF's energy):
      >>> from qpt_nb.dft.molecule import Molecule
      >>> from qpt_nb.dft.reference import pyscf_scf
      >>> from qpt_nb.dft.tensors import dft_tensors
      >>> water = Molecule.builtin('water')
      >>> mf, _ = pyscf_scf(water, 'sto-3g', xc='b3lyp5', grid_level=1)
      >>> t = dft_tensors(water, 'sto-3g', grid_level=1)
      >>> round(float(energy(mf.make_rdm1(), t, 'b3lyp5')), 6), round(float(mf.e_tot), 6)
      (-75.279946, -75.279946)
    """
    return energy_components(density, t, xc)["total"]


def _symmetrize(m):
    return 0.5 * (m + jnp.swapaxes(m, -1, -2))


def energy_and_fock(density, t: DFTTensors, xc: XCLike = "b3lyp5", *, occ_coeff=None):
    """(E[D], F[D]) with the Fock matrix F = dE/dD = h + J - a_x/2 K + V_xc (Hartree).

    Computed explicitly (one J, one K and one XC quadrature): equal to the autodiff
    gradient `fock_autodiff` (tested), without autodiff's second pass over the
    two-electron integrals. Differentiable (the sandwich backpropagates through it).
    `occ_coeff`: optional occupied orbitals of `density` (see `xc_energy_and_potential`);
    rho on the grid and, with density fitting, K are then evaluated through them.
    """
    func = get_xc(xc)
    density = check_density(density, t)
    veff = coulomb(density, t)
    if func.hyb != 0:
        veff = veff - 0.5 * func.hyb * exchange(density, t, factor=_orbital_factor(occ_coeff, density))
    e = jnp.sum(density * t.hcore) + 0.5 * jnp.sum(density * veff) + t.e_nuc
    fk = t.hcore + veff
    if func.family != "hf":
        exc, vxc = xc_energy_and_potential(density, t, func, occ_coeff=occ_coeff)
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
