"""The SCF loop on the device: `lax.while_loop` with the convergence test and DIIS inside.

`scf_device(t, ...)` runs the same iteration as the teaching loop `qpt_nb.dft.scf.scf_loop`
(Fock build, the CDIIS step `qpt_nb.dft.diis.diis_step` over the last `diis_space` Fock
matrices, aufbau eigen-solve; converged when |E_k - E_{k-1}| < conv_tol and
|X^T (F D S - S D F) X| < conv_tol_grad), but as one compiled program: no iteration
returns to the host, so on a GPU the loop is not paced by host round trips (the teaching
loop syncs once per iteration to test convergence and to call its callback). The two agree to round-off (tested to 1e-10 Ha).

The DIIS history is `qpt_nb.dft.diis`'s ring buffer of fixed size (static shapes), the
same as the teaching loop's. `max_cycle` and `diis_space` are static (buffer sizes); the
tolerances are traced, so changing them does not recompile.

`compile_in_background(shapes, ...)` compiles the loop ahead of time for tensors of the given
shapes in a thread (`qpt_nb.scf` starts it while PySCF is still evaluating the AO values, so
the first SCF of a geometry does not wait for compilation after its precompute); the result
is kept in a small cache that `scf_device` looks up before falling back to `jax.jit`.
"""

from __future__ import annotations

import functools
import threading
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from qpt_nb.aot import AheadOfTime
from qpt_nb.dft.diis import commutator_error, diis_init_like, diis_step
from qpt_nb.dft.kohn_sham import XCLike
from qpt_nb.dft.scf_common import (
    SCFResult,
    check_loop_args,
    check_tensors_arg,
    grad_tolerance,
    warn_not_converged,
)
from qpt_nb.dft.tensors import DFTTensors
from qpt_nb.dft.uks import initial_density, scf_aufbau, scf_fock
from qpt_nb.dft.xc import get_xc


@functools.partial(jax.jit, static_argnames=("xc", "max_cycle", "diis_space"))
def _scf_while(t, dm0, conv_tol, tol_grad, xc, max_cycle, diis_space):
    unrestricted = dm0.ndim == 3  # (2, N, N): UKS / UHF

    def cond(c):
        return (c["k"] < max_cycle) & ~c["converged"]

    def body(c, first=False):
        k, d = c["k"], c["d"]
        e, f = scf_fock(d, t, xc, occ_coeff=c["c_occ"])
        err = commutator_error(f, d, t)
        err_norm = jnp.linalg.norm(err)
        delta = jnp.where(k == 0, jnp.inf, e - c["e_prev"])
        converged = (jnp.abs(delta) < conv_tol) & (err_norm < tol_grad)
        f_ext, hist = diis_step(c["hist"], f, err, k, space=diis_space)
        _, mo, d_new = scf_aufbau(f_ext, t)
        keep = lambda old, new: jnp.where(converged, old, new)  # noqa: E731
        # orbitals of d (none for the guess dm0: the first Fock build uses d itself; none for
        # UKS, whose Fock build takes the densities)
        c_occ = None if unrestricted else mo[:, : t.n_occ]
        return dict(
            k=k + 1,
            d=keep(d, d_new),
            c_occ=c_occ if (first or unrestricted) else keep(c["c_occ"], c_occ),
            e=e,
            e_prev=e,
            f=f,
            delta=delta,
            err=err_norm,
            converged=converged,
            hist=hist,
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
        hist=diis_init_like(dm0, diis_space),
        energies=jnp.full((max_cycle,), jnp.nan, dm0.dtype),
    )
    # the first iteration has no orbitals yet (dm0 is a guess): run it outside the loop so
    # the carry has a fixed structure with C_occ from then on
    init = body(init, first=True)
    out = jax.lax.while_loop(cond, body, init)
    eps, mo, _ = scf_aufbau(out["f"], t)
    return dict(out, mo_energy=eps, mo_coeff=mo)


_AHEAD = AheadOfTime(size=8)  # the device loops compiled ahead of time, by shapes and statics


def compile_in_background(shapes: DFTTensors, xc: XCLike, *, max_cycle: int = 100, diis_space: int = 8):
    """Starts compiling the device loop for tensors shaped like `shapes` (a `DFTTensors`
    of `jax.ShapeDtypeStruct`, e.g. from `dft_tensors(on_shapes=...)`) in a daemon thread;
    returns the thread (join it before `scf_device`). Nothing is compiled when the loop for
    these shapes is already cached; a failure only means `scf_device` compiles as usual."""
    func = get_xc(xc)
    statics = dict(xc=func, max_cycle=int(max_cycle), diis_space=int(diis_space))

    def work():
        d0 = jax.ShapeDtypeStruct(shapes.dm0.shape, shapes.dm0.dtype)
        try:
            _AHEAD.compile(_scf_while, shapes, d0, 1.0, 1.0, **statics)  # nothing when cached
        except Exception:  # noqa: BLE001 (the jit path compiles it again and reports errors)
            return

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
      >>> from qpt_nb.dft.molecule import Molecule
      >>> from qpt_nb.dft.tensors import dft_tensors
      >>> t = dft_tensors(Molecule.builtin('water'), 'sto-3g', grid_level=3)
      >>> round(scf_device(t, 'b3lyp5').energy, 6)
      -75.279984
    """
    func = get_xc(xc)
    check_tensors_arg(t, "scf_device")
    conv_tol, conv_tol_grad, max_cycle, diis_space = check_loop_args(
        conv_tol, conv_tol_grad, max_cycle, diis_space, None
    )
    tol_grad = grad_tolerance(conv_tol, conv_tol_grad)
    d0 = initial_density(t, dm0)
    statics = dict(xc=func, max_cycle=max_cycle, diis_space=diis_space)
    out, compiled = None, _AHEAD.get(_scf_while, t, d0, conv_tol, tol_grad, **statics)
    if compiled is not None:
        try:
            out = compiled(t, d0, conv_tol, tol_grad)
        except TypeError:  # compiled for other argument types (e.g. a weak-typed tolerance)
            out = None
    if out is None:
        out = _scf_while(t, d0, conv_tol, tol_grad, **statics)
    out = jax.device_get(out)
    n_iter = int(out["k"])
    converged = bool(out["converged"])
    if not converged:
        warn_not_converged(max_cycle, float(out["delta"]), float(out["err"]))
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
