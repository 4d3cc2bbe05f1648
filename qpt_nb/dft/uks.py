"""Unrestricted Kohn-Sham (UKS) and Hartree-Fock (UHF): the energy, the Fock pair, aufbau, <S^2>.

The spin axis comes first in every array (alpha, beta):

    density  (2, N, N)  D_alpha, D_beta (each D_s = C_s,occ C_s,occ^T, AO basis)
    fock     (2, N, N)  F_s = dE/dD_s = h + J[D_a + D_b] - a_x K[D_s] + V_xc,s, Hartree
    rho      (2, G)     spin densities on the grid, Bohr^-3
    sigma    (3, G)     (grad rho_a.grad rho_a, grad rho_a.grad rho_b, grad rho_b.grad rho_b), Bohr^-8

    E[D_a, D_b] = sum(D h) + 1/2 sum(D J[D]) - a_x/2 sum_s sum(D_s K[D_s]) + E_xc[rho_a, rho_b] + E_nn
    (D = D_a + D_b; PySCF's ``dft.UKS`` / ``scf.UHF``, pyscf/dft/uks.py ``get_veff``)

E_xc is the spin-polarised functional of `qpt_nb.dft.xc_spin` (libxc's polarised forms);
V_xc,s = dE_xc/dD_s is contracted explicitly on the grid (`uks_xc_energy_and_potential`).
`qpt_nb.scf` runs the UKS iteration when the molecule has spin != 0 (or ``unrestricted=True``,
which for a closed shell gives the restricted energy): the density's leading spin axis is
what the SCF loops dispatch on. n_alpha = n_beta + 2S, and the tensors' ``n_occ`` is n_beta.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from qpt_nb.dft.kohn_sham import XCLike, check_density, coulomb, energy, energy_and_fock, exchange
from qpt_nb.dft.linalg import density_spin_square, solve_fock, spin_square  # noqa: F401 (re-exported)
from qpt_nb.dft.tensors import DFTTensors
from qpt_nb.dft.xc import get_xc


def spin_occupations(t: DFTTensors) -> tuple:
    """(n_alpha, n_beta) of the tensors' molecule: n_beta = t.n_occ, n_alpha = n_beta + 2S."""
    return int(t.n_occ) + int(getattr(t, "spin", 0)), int(t.n_occ)


def check_spin_density(density, t: DFTTensors, what: str = "density"):
    """`density` as a (2, N, N) array; ValueError naming `what` for another shape or, for a
    concrete array, NaN entries."""
    d = jnp.asarray(density)
    n = t.overlap.shape[-1]
    if d.shape != (2, n, n):
        raise ValueError(f"{what} must be (2, N, N) = (2, {n}, {n}) (alpha, beta), got shape {d.shape}")
    if not isinstance(d, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(d))):
        raise ValueError(f"{what} holds NaN or infinite entries")
    return d


def uks_xc_energy(density, t: DFTTensors, xc: XCLike):
    """E_xc[rho_a, rho_b] (Hartree) of a (2, N, N) density by quadrature; 0 for 'hf'.
    The energy of `uks_xc_energy_and_potential` (differentiable: jax.grad gives V_xc)."""
    func = get_xc(xc)
    if func.family == "hf":
        return jnp.zeros((), jnp.float64)
    if func.needs_gradient and t.ao.shape[0] < 4:
        raise ValueError(
            f"Functional {func.name!r} needs AO gradients: build the tensors with xc={func.name!r}."
        )
    return uks_xc_energy_and_potential(density, t, func)[0]


def uks_xc_energy_and_potential(density, t: DFTTensors, xc: XCLike):
    """(E_xc, V_xc (2, N, N)) with V_xc,s = dE_xc/dD_s, Hartree, explicitly:

        V_s = A_s + A_s^T,  A_s = phi^T [ (w v_rho,s / 2) phi + sum_x u_s,x dphi/dx ],
        u_a = w (2 v_aa grad rho_a + v_ab grad rho_b)   (u_b likewise)

    with v = dE/d(rho, sigma) of the polarised functional by autodiff on the grid points
    (elementwise, cheap), the AO contractions those of the closed-shell
    `qpt_nb.dft.kohn_sham` (its ``_contract``), so no autodiff pass over the (G, N) AO
    arrays (7x faster than differentiating the quadrature, same numbers), over the grid in
    the closed-shell quadrature's blocks (``t.grid_block`` points, `lax.scan`).

    Reverse-mode differentiable in `density` by an explicit rule (`_uks_xc_ev`): since
    V = dE_xc/dD, the cotangent of (E, V) pulls back as e_bar V + K[v_bar], with the XC
    kernel K = d^2 E_xc / dD dD applied by one forward-mode pass over V (forward over
    reverse), about 3x the forward pass, where reverse over reverse cost 25x; for the energy
    alone (v_bar zero) the pull-back is e_bar V, no extra grid work. Forward mode (jax.jvp)
    is not supported, and derivatives with respect to `t` raise NotImplementedError."""
    return _uks_xc_ev(density, t, get_xc(xc))


def _uks_xc_raw(density, t: DFTTensors, func):
    """(E_xc, V_xc) of `uks_xc_energy_and_potential`, without its derivative rule."""
    from qpt_nb.dft.kohn_sham import _block_slices, _grid_blocks

    block, starts = _grid_blocks(t)  # the closed-shell quadrature's blocks of grid points
    d_lo = density.astype(t.ao.dtype)

    def one_block(carry, start):
        e, a = _uks_xc_block(func, *_block_slices(t, start, block), d_lo)
        return (carry[0] + e, carry[1] + a), None

    init = (jnp.zeros((), jnp.float64), jnp.zeros(density.shape, jnp.float64))
    (e, a), _ = jax.lax.scan(one_block, init, starts)
    return e, a + jnp.swapaxes(a, -1, -2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _uks_xc_ev(density, t, func):
    return _uks_xc_raw(density, t, func)


def _uks_xc_ev_fwd(density, t, func):
    from qpt_nb.dft.kohn_sham import _unwrap

    is_primal = lambda x: isinstance(x, jax.custom_derivatives.CustomVJPPrimal)  # noqa: E731
    if any(leaf.perturbed for leaf in jax.tree_util.tree_leaves(t, is_leaf=is_primal)):
        raise NotImplementedError(
            "The UKS XC quadrature is differentiable in the density only: derivatives with respect "
            "to the DFTTensors (AO values, grid weights; e.g. nuclear forces) are not implemented."
        )
    density = _unwrap(density)
    t = jax.tree_util.tree_map(_unwrap, t, is_leaf=is_primal)
    out = _uks_xc_raw(density, t, func)
    return out, (density, t, out[1])


def _uks_xc_ev_bwd(func, res, cotangents):
    density, t, v = res
    e_bar, v_bar = cotangents
    zero = lambda c: isinstance(c, jax.custom_derivatives.SymbolicZero)  # noqa: E731
    d_bar = jnp.zeros(density.shape, jnp.float64) if zero(e_bar) else e_bar * v
    if not zero(v_bar):
        # V = dE/dD, so v_bar pulls back through the symmetric Hessian: one JVP of V
        s_bar = 0.5 * (v_bar + jnp.swapaxes(v_bar, -1, -2))
        d_bar = (
            d_bar
            + jax.jvp(lambda d: _uks_xc_raw(d, t, func)[1], (density,), (s_bar.astype(density.dtype),))[1]
        )
    return d_bar.astype(density.dtype), jax.tree_util.tree_map(lambda x: None, t)


_uks_xc_ev.defvjp(_uks_xc_ev_fwd, _uks_xc_ev_bwd, symbolic_zeros=True)


def _uks_xc_block(func, ao, w, d_lo):
    """One block's (E_xc (), A (2, N, N)); V_xc,s = A_s + A_s^T summed over blocks."""
    from qpt_nb.dft.kohn_sham import _contract
    from qpt_nb.dft.xc_spin import spin_xc_energy_density

    gga = func.needs_gradient
    w = w.astype(jnp.float64)
    pd = jnp.einsum("gi,sij->sgj", ao[0], d_lo)
    rho = jnp.einsum("sgj,gj->sg", pd, ao[0]).astype(jnp.float64)
    if gga:
        grad = 2.0 * jnp.einsum("xgi,sgi->sxg", ao[1:4], pd).astype(jnp.float64)  # (2, 3, B)
        sigma = jnp.stack(
            [jnp.sum(grad[0] * grad[0], 0), jnp.sum(grad[0] * grad[1], 0), jnp.sum(grad[1] * grad[1], 0)]
        )
    else:
        grad, sigma = None, jnp.zeros((3,) + rho.shape[1:], jnp.float64)
    e, (v_rho, v_sigma) = jax.value_and_grad(
        lambda r, s: jnp.sum(w * spin_xc_energy_density(func, r, s if gga else None)), argnums=(0, 1)
    )(rho, sigma)
    out = []
    for s_, o in ((0, 1), (1, 0)):
        u = 2.0 * v_sigma[2 * s_] * grad[s_] + v_sigma[1] * grad[o] if gga else None  # w inside v
        out.append(_contract(ao, v_rho[s_], u, gga))
    return e, jnp.stack(out)


def uks_energy_components(density, t: DFTTensors, xc: XCLike = "b3lyp5") -> dict:
    """Energy terms (Hartree) of a (2, N, N) density: 'one_electron', 'coulomb',
    'exact_exchange', 'xc', 'nuclear' and 'total'."""
    func = get_xc(xc)
    d = check_spin_density(density, t)
    total = d[0] + d[1]
    parts = {
        "one_electron": jnp.sum(total * t.hcore),
        "coulomb": 0.5 * jnp.sum(total * coulomb(total, t)),
        "exact_exchange": (
            -0.5 * func.hyb * sum(jnp.sum(d[s] * exchange(d[s], t)) for s in (0, 1))
            if func.hyb != 0
            else jnp.zeros((), d.dtype)
        ),
        "xc": uks_xc_energy(d, t, func),
        "nuclear": t.e_nuc,
    }
    parts["total"] = sum(parts.values())
    return parts


def uks_energy(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
    """Total UKS (UHF for 'hf') energy E[D_a, D_b], Hartree, of a (2, N, N) density."""
    return uks_energy_components(density, t, xc)["total"]


def uks_energy_and_fock(density, t: DFTTensors, xc: XCLike = "b3lyp5"):
    """(E, F) with the Fock pair F (2, N, N), F_s = dE/dD_s = h + J[D] - a_x K[D_s] + V_xc,s.

    J, K and V_xc,s explicitly (`uks_xc_energy_and_potential`; equal to PySCF's ``get_veff``
    to round-off, tested). Differentiable.
    """
    func = get_xc(xc)
    d = check_spin_density(density, t)
    total = d[0] + d[1]
    j = coulomb(total, t)
    f = jnp.stack([t.hcore + j, t.hcore + j])
    e = jnp.sum(total * t.hcore) + 0.5 * jnp.sum(total * j) + t.e_nuc
    if func.hyb != 0:
        k = jnp.stack([exchange(d[0], t), exchange(d[1], t)])
        f = f - func.hyb * k
        e = e - 0.5 * func.hyb * jnp.sum(d * k)
    if func.family != "hf":
        exc, vxc = uks_xc_energy_and_potential(d, t, func)
        e, f = e + exc, f + vxc
    return e, 0.5 * (f + jnp.swapaxes(f, -1, -2))


def uks_aufbau(fock, orthogonalizer, n_alpha: int, n_beta: int):
    """Solves F_s C_s = S C_s eps_s for both spins and fills the lowest n_s orbitals.

    Args:
      fock: (2, N, N) Fock pair, Hartree;  orthogonalizer: (N, N) X, X^T S X = 1;
      n_alpha, n_beta: occupied orbitals per spin (static).
    Returns:
      mo_energy (2, N) Hartree, mo_coeff (2, N, N) (columns), density (2, N, N) with
      D_s = C_s[:, :n_s] C_s[:, :n_s]^T. Differentiable with the degeneracy-guarded
      eigen-solve of `qpt_nb.dft.linalg` (one electron per orbital), so the open-shell
      sandwich trains through it.
    """
    out = [solve_fock(fock[s], orthogonalizer, n, occupation=1.0) for s, n in ((0, n_alpha), (1, n_beta))]
    return tuple(jnp.stack([o[k] for o in out]) for k in range(3))


# ----------------------------------------------------------------------------- one SCF iteration
def scf_fock(density, t: DFTTensors, xc: XCLike, occ_coeff=None):
    """(E, F) of the SCF loops for either spin treatment: `energy_and_fock` for an (N, N)
    density (restricted), `uks_energy_and_fock` for a (2, N, N) one (unrestricted)."""
    if density.ndim == 3:
        return uks_energy_and_fock(density, t, xc)
    return energy_and_fock(density, t, xc, occ_coeff=occ_coeff)


def scf_energy(density, t: DFTTensors, xc: XCLike):
    """E[D] (Hartree) for either spin treatment: `energy` of an (N, N) density,
    `uks_energy` of a (2, N, N) one."""
    if density.ndim == 3:
        return uks_energy(density, t, xc)
    return energy(density, t, xc)


def scf_aufbau(fock, t: DFTTensors):
    """(mo_energy, mo_coeff, density) of the SCF loops: `solve_fock` (doubly occupied) for an
    (N, N) Fock matrix, `uks_aufbau` (n_alpha, n_beta) for a (2, N, N) pair."""
    if fock.ndim == 3:
        return uks_aufbau(fock, t.orthogonalizer, *spin_occupations(t))
    return solve_fock(fock, t.orthogonalizer, t.n_occ)


scf_fock_jit = jax.jit(scf_fock, static_argnames=("xc",))
scf_aufbau_jit = jax.jit(scf_aufbau)


def initial_density(t: DFTTensors, dm0=None, *, unrestricted: bool = False):
    """The SCF's starting density: restricted (N, N), or (2, N, N) for open-shell tensors
    (``t.spin != 0``) or ``unrestricted=True``. `dm0` None is PySCF's minao guess (halved
    per spin for UKS, as ``scf.uhf.init_guess_by_minao``); an (N, N) guess is split the
    same way for UKS; a (2, N, N) guess is used as it is."""
    d = t.dm0 if dm0 is None else jnp.asarray(dm0)
    spin_axis = unrestricted or bool(getattr(t, "spin", 0)) or d.ndim == 3
    if not spin_axis:
        return check_density(d, t, "dm0")
    if d.ndim == 2:
        d = 0.5 * jnp.stack([d, d])
    return check_spin_density(d, t, "dm0")


SPIN_CONTAMINATION = 0.1  # |<S^2> - S(S+1)| above this: a RuntimeWarning (PySCF prints <S^2> only)


def spin_contamination(spin_square_value: float, two_s: int) -> float:
    """|<S^2> - S(S+1)| for a determinant with 2S = `two_s`: 0 for a pure spin state."""
    s = 0.5 * two_s
    return abs(float(spin_square_value) - s * (s + 1))


def warn_spin_contamination(res, limit: float = SPIN_CONTAMINATION) -> float:
    """|<S^2> - S(S+1)| of a UKS result (`SCFResult`); a RuntimeWarning naming both values
    when it passes `limit` (the determinant mixes in higher spin states: a stretched bond,
    a geometry far from the one the state was meant for). Returns the deviation."""
    import warnings

    ss, _ = res.spin_square
    n_a, n_b = res.occupations
    s = 0.5 * (n_a - n_b)
    dev = spin_contamination(ss, n_a - n_b)
    if dev > limit:
        warnings.warn(
            f"spin contamination: <S^2> = {ss:.3f}, a pure 2S = {n_a - n_b} state has {s * (s + 1):.3f} "
            f"(deviation {dev:.3f} > {limit})",
            RuntimeWarning,
            stacklevel=3,
        )
    return dev
