"""The SCF loop on the device: `lax.while_loop` with the convergence test and DIIS inside.

`scf_device(t, ...)` runs the same iteration as the teaching loop `qpt_nb.dft.scf.scf_loop`
(Fock build, CDIIS over the last `diis_space` Fock matrices, aufbau eigen-solve; converged
when |E_k - E_{k-1}| < conv_tol and |X^T (F D S - S D F) X| < conv_tol_grad), but as one
compiled program: no iteration returns to the host, so on a GPU the loop is not paced by
host round trips (the teaching loop syncs once per iteration to test convergence and to
call its callback). The two agree to round-off (tested to 1e-10 Ha).

The DIIS history is a ring buffer of fixed size (static shapes); CDIIS weights do not
depend on the order of the stored vectors, so the ring gives the teaching loop's
extrapolation. `max_cycle` and `diis_space` are static (buffer sizes); the tolerances are
traced, so changing them does not recompile.

`compile_in_background(shapes, ...)` compiles the loop ahead of time for tensors of the given
shapes in a thread (`qpt_nb.scf` starts it while PySCF is still evaluating the AO values, so
the first SCF of a geometry does not wait for compilation after its precompute); the result
is kept in a small cache that `scf_device` looks up before falling back to `jax.jit`.
"""

from __future__ import annotations

import collections
import functools
import threading
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from qpt_nb.dft.kohn_sham import XCLike, check_density, energy_and_fock
from qpt_nb.dft.linalg import solve_fock
from qpt_nb.dft.scf import SCFResult, _check_loop_args, commutator_error, diis_coefficients
from qpt_nb.dft.tensors import DFTTensors
from qpt_nb.dft.xc import get_xc


@functools.partial(jax.jit, static_argnames=("xc", "max_cycle", "diis_space"))
def _scf_while(t, dm0, conv_tol, tol_grad, xc, max_cycle, diis_space):
    n = dm0.shape[-1]
    m = max(int(diis_space), 1)
    x = t.orthogonalizer

    def cond(c):
        return (c["k"] < max_cycle) & ~c["converged"]

    def body(c, first=False):
        k, d = c["k"], c["d"]
        e, f = energy_and_fock(d, t, xc, occ_coeff=c["c_occ"])
        err = commutator_error(f, d, t)
        err_norm = jnp.linalg.norm(err)
        delta = jnp.where(k == 0, jnp.inf, e - c["e_prev"])
        converged = (jnp.abs(delta) < conv_tol) & (err_norm < tol_grad)
        slot = k % m
        fbuf = c["fbuf"].at[slot].set(f)
        ebuf = c["ebuf"].at[slot].set(err)
        valid = jnp.arange(m) < jnp.minimum(k + 1, m)
        w = diis_coefficients(ebuf, valid) if diis_space > 0 else jnp.eye(m)[slot]
        _, mo, d_new = solve_fock(jnp.einsum("m,mij->ij", w, fbuf), x, t.n_occ)
        keep = lambda old, new: jnp.where(converged, old, new)  # noqa: E731
        c_occ = mo[:, : t.n_occ]
        return dict(
            k=k + 1,
            d=keep(d, d_new),
            # orbitals of d (none for the guess dm0: the first Fock build uses d itself)
            c_occ=c_occ if first else keep(c["c_occ"], c_occ),
            e=e,
            e_prev=e,
            f=f,
            delta=delta,
            err=err_norm,
            converged=converged,
            fbuf=fbuf,
            ebuf=ebuf,
            energies=c["energies"].at[k].set(e),
        )

    zero = jnp.zeros((), dm0.dtype)
    init = dict(
        k=jnp.zeros((), jnp.int32),
        d=dm0,
        c_occ=None,
        e=zero,
        e_prev=zero,
        f=jnp.zeros_like(dm0),
        delta=jnp.full((), jnp.inf, dm0.dtype),
        err=jnp.full((), jnp.inf, dm0.dtype),
        converged=jnp.zeros((), bool),
        fbuf=jnp.zeros((m, n, n), dm0.dtype),
        ebuf=jnp.zeros((m, n, n), dm0.dtype),
        energies=jnp.full((max_cycle,), jnp.nan, dm0.dtype),
    )
    # the first iteration has no orbitals yet (dm0 is a guess): run it outside the loop so
    # the carry has a fixed structure with C_occ from then on
    init = body(init, first=True)
    out = jax.lax.while_loop(cond, body, init)
    eps, mo, _ = solve_fock(out["f"], x, t.n_occ)
    return dict(out, mo_energy=eps, mo_coeff=mo)


_AHEAD = collections.OrderedDict()  # (shapes, statics) -> jax Compiled, newest last
_AHEAD_SIZE = 8


def _ahead_key(t, func, max_cycle, diis_space):
    leaves, tree = jax.tree_util.tree_flatten(t)
    return (tree, tuple((tuple(x.shape), str(x.dtype)) for x in leaves), func, max_cycle, diis_space)


def compile_in_background(shapes: DFTTensors, xc: XCLike, *, max_cycle: int = 100, diis_space: int = 8):
    """Starts compiling the device loop for tensors shaped like `shapes` (a `DFTTensors`
    of `jax.ShapeDtypeStruct`, e.g. from `dft_tensors(on_shapes=...)`) in a daemon thread;
    returns the thread (join it before `scf_device`). Nothing is compiled when the loop for
    these shapes is already cached; a failure only means `scf_device` compiles as usual."""
    func = get_xc(xc)
    max_cycle, diis_space = int(max_cycle), int(diis_space)
    key = _ahead_key(shapes, func, max_cycle, diis_space)

    def work():
        if key in _AHEAD:
            return
        try:
            d0 = jax.ShapeDtypeStruct(shapes.dm0.shape, shapes.dm0.dtype)
            compiled = _scf_while.lower(shapes, d0, 1.0, 1.0, func, max_cycle, diis_space).compile()
        except Exception:  # noqa: BLE001 (the jit path compiles it again and reports errors)
            return
        _AHEAD[key] = compiled
        while len(_AHEAD) > _AHEAD_SIZE:
            _AHEAD.popitem(last=False)

    thread = threading.Thread(target=work, name="qpt_nb-scf-compile", daemon=True)
    thread.start()
    return thread


def scf_device(
    t: DFTTensors,
    xc: XCLike = "b3lyp5",
    *,
    conv_tol: float = 1e-10,
    conv_tol_grad: Optional[float] = None,
    max_cycle: int = 100,
    diis_space: int = 8,
    dm0=None,
) -> SCFResult:
    """The SCF of `qpt_nb.dft.scf.scf_loop` as one compiled `lax.while_loop` (see the module
    docstring); same arguments and result, without the per-iteration callback.

    Example:
      >>> t = dft_tensors(Molecule.builtin('water'), 'sto-3g', grid_level=3)  # doctest: +SKIP
      >>> round(scf_device(t, 'b3lyp5').energy, 6)                              # doctest: +SKIP
      -75.312527
    """
    func = get_xc(xc)
    if not isinstance(t, DFTTensors):
        raise TypeError(
            f"scf_device needs the DFTTensors of a molecule (qpt_nb.dft_tensors(mol, ...)), "
            f"got {type(t).__name__}; for a Molecule use qpt_nb.scf(mol, ...)"
        )
    conv_tol, conv_tol_grad, max_cycle, diis_space = _check_loop_args(
        conv_tol, conv_tol_grad, max_cycle, diis_space, None
    )
    tol_grad = float(np.sqrt(conv_tol)) if conv_tol_grad is None else conv_tol_grad
    d0 = t.dm0 if dm0 is None else check_density(jnp.asarray(dm0), t, "dm0")
    out, compiled = None, _AHEAD.get(_ahead_key(t, func, max_cycle, diis_space))
    if compiled is not None:
        try:
            out = compiled(t, d0, conv_tol, tol_grad)
        except TypeError:  # compiled for other argument types (e.g. a weak-typed tolerance)
            out = None
    if out is None:
        out = _scf_while(t, d0, conv_tol, tol_grad, func, max_cycle, diis_space)
    out = jax.device_get(out)
    n_iter = int(out["k"])
    converged = bool(out["converged"])
    if not converged:
        import warnings

        warnings.warn(
            f"SCF did not converge in {max_cycle} iterations (last energy change "
            f"{float(out['delta']):.2e} Ha, commutator norm {float(out['err']):.2e}); "
            "the result is marked converged=False.",
            RuntimeWarning,
            stacklevel=2,
        )
    return SCFResult(
        energy=float(out["e"]),
        mo_energy=np.asarray(out["mo_energy"]),
        mo_coeff=np.asarray(out["mo_coeff"]),
        density=np.asarray(out["d"]),
        fock=np.asarray(out["f"]),
        converged=converged,
        n_iter=n_iter,
        energies=[float(v) for v in np.asarray(out["energies"])[:n_iter]],
        tensors=t,
    )
