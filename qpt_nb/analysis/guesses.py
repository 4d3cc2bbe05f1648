"""A trained model as an initial guess for SCF: its density, and the iterations it saves.

`initial_guess` returns the trained sandwich's density for a geometry in that
geometry's input frame, ready for ``mf.kernel(dm0=...)``; `guess_speedup` counts
PySCF iterations and seconds from it against PySCF's own guesses (QH9's SCF
acceleration measure, Yu et al. 2023).
"""

from __future__ import annotations

import time

import numpy as np

from qpt_nb.analysis.evaluation import predict_pair
from qpt_nb.analysis.runs import resolve_model
from qpt_nb.dft.frames import rotation_to_input
from qpt_nb.dft.reference import make_rks
from qpt_nb.learn.batch import prepare_conformer
from qpt_nb.learn.network import network_fns
from qpt_nb.settings import label_threads


def initial_guess(run_or_params, mol, *, config=None) -> np.ndarray:
    """Density matrix (N, N) of the trained sandwich for `mol`, in `mol`'s INPUT frame.

    Seeds PySCF for the same geometry: ``mf.kernel(dm0=initial_guess(run, mol))``
    with ``mf`` built from ``mol.to_pyscf(basis)``. D_n is computed in the canonical
    frame and rotated back with `rotation_to_input`.
    """
    cfg, params, _ = resolve_model(run_or_params, config)
    batch = prepare_conformer(mol, cfg.basis, cfg.xc, cfg.grid_level, eri=cfg.eri)
    apply_fn = network_fns(cfg.model)[1]
    d = predict_pair(apply_fn, params, batch, n_refine=cfg.n_refine, mix=cfg.mix)["density"][0]
    u = rotation_to_input(mol, cfg.basis)
    d = u @ d @ u.T
    return 0.5 * (d + d.T)


def guess_speedup(
    run, test_set, *, config=None, guesses=("minao", "atom", "huckel"), conv_tol: float = 1e-10
) -> dict:
    """PySCF iterations and wall time from the model's guess vs PySCF's own guesses.

    Each conformer is solved in its input frame with the run's basis, functional,
    grid level and ERI kind (RKS, DIIS space 8, `conv_tol`). Returns
    {'rows': [{index, guess, cycles, seconds, converged, energy}], 'summary':
    {guess: {mean_cycles, mean_seconds, converged}}, 'model_guess_seconds': mean
    seconds to make the model's guess (precompute + network + sandwich)}.
    """
    from pyscf import lib

    cfg, params, _ = resolve_model(run, config)
    rows, make_s = [], []
    for i, mol in enumerate(test_set):
        pmol = mol.to_pyscf(cfg.basis)
        t0 = time.perf_counter()
        dm0 = initial_guess((cfg, params), mol)
        make_s.append(time.perf_counter() - t0)
        for g in ("model",) + tuple(guesses):
            mf = make_rks(pmol, cfg.xc, cfg.grid_level, cfg.eri, conv_tol=conv_tol)
            if g != "model":
                mf.init_guess = g
            t0 = time.perf_counter()
            with lib.with_omp_threads(label_threads()):
                mf.kernel(dm0=dm0 if g == "model" else None)
            rows.append(
                dict(
                    index=i,
                    guess=g,
                    cycles=int(mf.cycles),
                    seconds=time.perf_counter() - t0,
                    converged=bool(mf.converged),
                    energy=float(mf.e_tot),
                )
            )
    summary = {}
    for g in ("model",) + tuple(guesses):
        sel = [r for r in rows if r["guess"] == g]
        summary[g] = dict(
            mean_cycles=float(np.mean([r["cycles"] for r in sel])),
            mean_seconds=float(np.mean([r["seconds"] for r in sel])),
            converged=int(sum(r["converged"] for r in sel)),
        )
    steady = make_s[1:] if len(make_s) > 1 else make_s
    return dict(rows=rows, summary=summary, model_guess_seconds=float(np.mean(steady)))
