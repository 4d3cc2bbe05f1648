"""Self-consistent field drivers: a readable teaching loop and a jitted fixed-iteration one.

All iterate   D -> F[D] = dE/dD -> (DIIS) -> solve F C = S C eps -> D = 2 C_occ C_occ^T
starting from PySCF's 'minao' guess (or a given density: `scf(..., guess=D)`), with the
one CDIIS step of `qpt_nb.dft.diis` (`diis_step`), so they follow the same iterates to
round-off (tested).

* `scf_loop(t, ...)`: the teaching loop, a plain Python loop (one jitted Fock build,
  DIIS step and eigensolve per iteration), a convergence test on the energy change and
  the commutator norm, and a per-iteration `callback` (like PySCF).
* `scf_fixed(t, xc, n_iter)`: exactly `n_iter` iterations under `lax.scan`, jitted and
  differentiable end to end.
* `scf(mol, basis, *, xc=..., grid_level=...)`: the precompute (`dft_tensors`) and then
  the teaching loop or the device loop (`qpt_nb.dft.scf_device`, the same iteration as
  one `lax.while_loop`).

`SCFResult` and the argument checks live in `qpt_nb.dft.scf_common` (shared with the
device loop); they are importable from here too.
"""

from __future__ import annotations

import functools
import time
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from qpt_nb.dft.diis import commutator_error, commutator_error_jit, diis_init_like, diis_step, diis_step_jit
from qpt_nb.dft.kohn_sham import XCLike
from qpt_nb.dft.molecule import as_molecule
from qpt_nb.dft.scf_common import (
    SCFResult,
    check_loop_args,
    check_tensors_arg,
    grad_tolerance,
    warn_not_converged,
)
from qpt_nb.dft.scf_device import compile_in_background, scf_device
from qpt_nb.dft.tensors import DFTTensors, dft_tensors
from qpt_nb.dft.uks import (
    initial_density,
    scf_aufbau,
    scf_aufbau_jit,
    scf_fock,
    scf_fock_jit,
    warn_spin_contamination,
)
from qpt_nb.dft.xc import get_xc
from qpt_nb.validate import check_int


class FixedSCFResult(NamedTuple):
    """Output of `scf_fixed` (JAX arrays): energy (), density/fock/mo_coeff (N, N),
    mo_energy (N,), energies (n_iter,) the energy entering each iteration,
    errors (n_iter,) the commutator norm entering each iteration."""

    energy: jnp.ndarray
    density: jnp.ndarray
    fock: jnp.ndarray
    mo_energy: jnp.ndarray
    mo_coeff: jnp.ndarray
    energies: jnp.ndarray
    errors: jnp.ndarray


@functools.partial(jax.jit, static_argnames=("xc", "n_iter", "diis_space"))
def _scf_fixed(t, dm0, xc, n_iter, diis_space):
    def step(carry, k):
        d, hist = carry
        e, f = scf_fock(d, t, xc)
        err = commutator_error(f, d, t)
        f_ext, hist = diis_step(hist, f, err, k, space=diis_space)
        d_new = scf_aufbau(f_ext, t)[2]
        return (d_new, hist), (e, jnp.linalg.norm(err))

    init = (dm0, diis_init_like(dm0, diis_space))
    (d, _), (energies, errors) = jax.lax.scan(step, init, jnp.arange(n_iter))
    e, f = scf_fock(d, t, xc)
    eps, c, _ = scf_aufbau(f, t)
    return FixedSCFResult(e, d, f, eps, c, energies, errors)


def scf_fixed(
    t: DFTTensors, xc: XCLike = "b3lyp5", n_iter: int = 30, *, dm0=None, diis_space: int = 8
) -> FixedSCFResult:
    """Exactly `n_iter` DIIS-SCF iterations under `jax.jit` + `lax.scan`.

    Differentiable in `t` and `dm0` (e.g. `jax.grad` of `.energy`). `diis_space=0`
    gives plain Roothaan iterations. Compiled once per (functional, n_iter,
    diis_space, tensor shapes).
    """
    n_iter = check_int(n_iter, "n_iter", low=1, hint=" (a static iteration count, a Python int)")
    diis_space = check_int(diis_space, "diis_space", low=0, hint=" (a Python int; 0 turns DIIS off)")
    return _scf_fixed(t, initial_density(t, dm0), get_xc(xc), n_iter, diis_space)


def scf_loop(
    t: DFTTensors,
    xc: XCLike = "b3lyp5",
    *,
    conv_tol: float = 1e-10,
    conv_tol_grad: Optional[float] = None,
    max_cycle: int = 100,
    diis_space: int = 8,
    dm0=None,
    callback: Optional[Callable[[dict], None]] = None,
) -> SCFResult:
    """The teaching SCF loop on precomputed tensors (see `scf` for the arguments).

    Converged when |E_k - E_{k-1}| < conv_tol and |X^T(FDS - SDF)X| < conv_tol_grad
    (default sqrt(conv_tol), PySCF's default). `callback(info)` is called once per
    iteration with keys 'iteration', 'energy', 'delta_e', 'error'.

    Raises TypeError / ValueError for arguments of the wrong type or range (conv_tol must
    be positive and finite, max_cycle >= 1, diis_space >= 0, dm0 (N, N) and symmetric).
    """
    f_xc = get_xc(xc)
    check_tensors_arg(t, "scf_loop")
    conv_tol, conv_tol_grad, max_cycle, diis_space = check_loop_args(
        conv_tol, conv_tol_grad, max_cycle, diis_space, callback
    )
    tol_grad = grad_tolerance(conv_tol, conv_tol_grad)
    d = initial_density(t, dm0)
    hist = diis_init_like(d, diis_space)
    energies, e_prev, converged = [], None, False
    for it in range(1, max_cycle + 1):
        e, f = scf_fock_jit(d, t, f_xc)  # E[D] and F[D] = dE/dD (a spin pair for UKS)
        err = commutator_error_jit(f, d, t)  # X^T (FDS - SDF) X
        e, err_norm = float(e), float(np.linalg.norm(np.asarray(err)))
        delta = np.inf if e_prev is None else e - e_prev
        energies.append(e)
        if callback is not None:
            callback(dict(iteration=it, energy=e, delta_e=delta, error=err_norm))
        if abs(delta) < conv_tol and err_norm < tol_grad:
            converged = True
            break
        f_ext, hist = diis_step_jit(hist, f, err, it - 1, space=diis_space)  # CDIIS
        d = scf_aufbau_jit(f_ext, t)[2]  # aufbau: D = 2 C_occ C_occ^T (UKS: C_s,occ C_s,occ^T)
        e_prev = e
    eps, c, _ = scf_aufbau_jit(f, t)
    if not converged:
        warn_not_converged(max_cycle, delta, err_norm)
    return SCFResult(
        energy=e,
        mo_energy=np.asarray(eps),
        mo_coeff=np.asarray(c),
        density=np.asarray(d),
        fock=np.asarray(f),
        converged=converged,
        n_iter=it,
        energies=energies,
        tensors=t,
    )


def scf(
    mol,
    basis: str = "def2-svp",
    *,
    xc: XCLike = "b3lyp5",
    grid_level: int = 3,
    conv_tol: float = 1e-10,
    conv_tol_grad: Optional[float] = None,
    max_cycle: int = 100,
    diis_space: int = 8,
    eri: str = "auto",
    auxbasis: Optional[str] = None,
    callback: Optional[Callable[[dict], None]] = None,
    memory_check: bool = True,
    guess=None,
    tensors: Optional[DFTTensors] = None,
    loop: str = "auto",
    precision: str = "float64",
    unrestricted: Optional[bool] = None,
) -> SCFResult:
    """Kohn-Sham SCF of `mol` in JAX, restricted or unrestricted (PySCF supplies integrals and the grid).

    Args:
      mol: `qpt_nb.Molecule` (any spin; see `unrestricted`) or the name of a built-in one ('water').
      basis: PySCF basis name. Every argument after `basis` is keyword-only.
      xc: 'hf', 'lda,vwn', 'pbe', 'b3lyp5' or 'b3lyp'.
      grid_level: PySCF grid level 0..9.  conv_tol: energy convergence (Hartree, > 0).
      max_cycle: most Fock builds (>= 1).  diis_space: DIIS history (0: off).
      eri: 'auto' | 'dense' | 'df' (see `qpt_nb.dft.tensors`).
      callback: called with a dict per iteration.
      memory_check: refuse (`qpt_nb.dft.memory.InsufficientMemoryError`, a MemoryError
        and a ValueError) a precompute that needs more memory than is available, before
        any heavy PySCF work (`dft_tensors`).
      guess: the starting density: None or 'minao' (PySCF's minao guess, ``t.dm0``), or an
        (N, N) symmetric density matrix in the AO basis of the tensors. Through
        ``qpt_nb.scf`` also a trained model (a run directory, a `Trainer`, a
        `PretrainedModel` or a pretrained name): the SCF then starts from the model's
        density on its prediction's tensors (`qpt_nb.analysis.predict.seeded_scf`; basis,
        xc, grid level and eri are the model's).
      tensors: `DFTTensors` already built for this geometry and `basis` (any frame, e.g.
        the canonical one of `prepare_conformer`): the precompute is skipped, and
        grid_level, eri, auxbasis and memory_check are those the tensors were built with.
        ValueError when their AO count, electron count or nuclear repulsion differ from
        `mol` in `basis` (another geometry or basis). The result is in their frame.
      loop: 'device' (`qpt_nb.dft.scf_device.scf_device`: one compiled while-loop, no
        host round trip per iteration), 'host' (the teaching loop `scf_loop`), or 'auto'
        (default): 'host' when a callback is given, else 'device'. Both give the same
        result to round-off.
      precision: 'float64' (default) or 'float32' grid work (`dft_tensors`).
      unrestricted: None (default): unrestricted Kohn-Sham (UKS; UHF for 'hf',
        `qpt_nb.dft.uks`) when ``mol.spin != 0``, restricted otherwise, as PySCF's
        ``dft.KS`` picks; True runs UKS for a closed shell too (same energy). A UKS result
        holds (2, ...) arrays (alpha, beta) and `SCFResult.spin_square`.

    Every argument is checked before the precompute: TypeError for a wrong type (a
    molecule that is neither a Molecule nor a built-in name, a float max_cycle),
    ValueError for a wrong value (max_cycle=0, a negative or NaN conv_tol).

    Example:
      >>> res = scf('water', 'sto-3g', xc='b3lyp5', grid_level=3)
      >>> round(res.energy, 6)    # PySCF's dft.RKS(mol, xc='b3lyp5') gives the same to 1e-8
      -75.279984
    """
    mol = as_molecule(mol)
    f_xc = get_xc(xc)
    check_loop_args(conv_tol, conv_tol_grad, max_cycle, diis_space, callback)
    dm0 = _check_guess(guess)
    if loop not in ("auto", "device", "host"):
        raise ValueError(f"loop must be 'auto', 'device' or 'host', got {loop!r}")
    if loop == "device" and callback is not None:
        raise ValueError("loop='device' runs without host round trips: use loop='host' with a callback")
    timings = {}
    device_loop = loop != "host" and callback is None
    if unrestricted is False and mol.spin:
        raise ValueError(
            f"unrestricted=False: {mol.formula} with spin={mol.spin} is open-shell (restricted needs spin=0)"
        )
    spin_axis = bool(unrestricted) or mol.spin != 0 or (dm0 is not None and dm0.ndim == 3)  # UKS
    ahead = []
    on_shapes = None
    if tensors is None and device_loop and not spin_axis:

        def on_shapes(shapes):  # compile the loop while PySCF evaluates the AO values
            ahead.append(compile_in_background(shapes, f_xc, max_cycle=max_cycle, diis_space=diis_space))

    t0 = time.perf_counter()
    if tensors is None:
        t = dft_tensors(
            mol,
            basis,
            grid_level=grid_level,
            eri=eri,
            auxbasis=auxbasis,
            xc=f_xc.name,
            timings=timings,
            memory_check=memory_check,
            precision=precision,
            on_shapes=on_shapes,
        )
    else:
        t = _check_tensors(tensors, mol, basis)
    timings["precompute"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for thread in ahead:
        thread.join()
    timings["compile_wait"] = time.perf_counter() - t0  # the part of compilation not overlapped
    t0 = time.perf_counter()
    kw = dict(conv_tol=conv_tol, conv_tol_grad=conv_tol_grad, max_cycle=max_cycle, diis_space=diis_space)
    d0 = initial_density(t, dm0, unrestricted=bool(unrestricted))
    if not device_loop:
        res = scf_loop(t, f_xc, dm0=d0, callback=callback, **kw)
    else:
        res = scf_device(t, f_xc, dm0=d0, **kw)
    timings["scf"] = time.perf_counter() - t0
    res.timings = timings
    res.molecule = mol
    if res.unrestricted:
        warn_spin_contamination(res)
    res.settings = dict(
        basis=basis,
        xc=f_xc.name,
        grid_level=int(grid_level) if tensors is None else None,
        eri=t.eri_kind,
        auxbasis=auxbasis if tensors is None else None,
    )
    return res


def _check_guess(guess):
    """`scf`'s guess= as None (minao) or a float64 (N, N) array; the shape against the
    tensors is checked later (`check_density`)."""
    if guess is None or (isinstance(guess, str) and guess.strip().lower() == "minao"):
        return None
    if isinstance(guess, str):
        raise ValueError(
            f"guess={guess!r}: qpt_nb.scf starts from 'minao' (the default) or an (N, N) density "
            "matrix; PySCF's other guesses are PySCF's (mf.init_guess)"
        )
    try:
        d = np.asarray(guess, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"guess must be None, 'minao' or an (N, N) array, got {type(guess).__name__}"
        ) from None
    if d.ndim not in (2, 3) or d.shape[-1] != d.shape[-2] or (d.ndim == 3 and d.shape[0] != 2):
        raise ValueError(
            f"guess must be a square (N, N) density matrix or an (alpha, beta) pair (2, N, N), got shape {d.shape}"
        )
    if not np.all(np.isfinite(d)):
        raise ValueError("guess holds NaN or inf entries")
    return d


def _check_tensors(t, mol, basis: str) -> DFTTensors:
    """`t` when it can be `mol`'s tensors in `basis` (AO and electron counts, and the nuclear
    repulsion, which no rotation or translation changes); ValueError otherwise."""
    if not isinstance(t, DFTTensors):
        raise TypeError(
            f"tensors must be a DFTTensors (qpt_nb.dft_tensors(mol, ...)), got {type(t).__name__}"
        )
    if t.overlap.ndim != 2:
        raise ValueError(
            f"tensors are a stacked batch (overlap {tuple(t.overlap.shape)}): pass one geometry's"
        )
    pmol = mol.to_pyscf(basis)
    what = f"{mol.name or mol.formula} in {basis}"
    if pmol.nao_nr() != t.n_ao or pmol.nelectron // 2 != t.n_occ:
        raise ValueError(
            f"tensors= have {t.n_ao} AOs and {t.n_occ} occupied orbitals, but {what} has "
            f"{pmol.nao_nr()} and {pmol.nelectron // 2}: pass the basis the tensors were built with"
        )
    e_nuc, e_t = float(pmol.energy_nuc()), float(t.e_nuc)
    if abs(e_nuc - e_t) > 1e-8 * max(1.0, abs(e_nuc)):
        raise ValueError(
            f"tensors= were built for another geometry: nuclear repulsion {e_t:.8f} Ha, {what} "
            f"has {e_nuc:.8f} Ha"
        )
    return t
