"""A trained model as an initial guess for SCF: its density, and the iterations it saves.

`initial_guess` returns the trained sandwich's density for a geometry in that
geometry's input frame, ready for ``mf.kernel(dm0=...)``; `guess_speedup` counts
PySCF iterations and seconds from it against PySCF's own guesses (QH9's SCF
acceleration measure, Yu et al. 2023); `qpt_nb_guess_speedup` does the same for
qpt_nb's own SCF seeded by the model (`model_scf`) against it from minao.
"""

from __future__ import annotations

import time

import numpy as np

from qpt_nb.analysis.predict import model_scf, predict
from qpt_nb.analysis.runs import resolve_model
from qpt_nb.dft.reference import make_rks
from qpt_nb.settings import label_threads


def initial_guess(run_or_params, mol, *, config=None) -> np.ndarray:
    """Density matrix (N, N) of the trained sandwich for `mol`, in `mol`'s INPUT frame
    ((2, N, N), alpha and beta, for an open shell: PySCF's UKS takes it as dm0).

    Seeds PySCF for the same geometry: ``mf.kernel(dm0=initial_guess(run, mol))``
    with ``mf`` built from ``mol.to_pyscf(basis)``. D_n is computed in the canonical
    frame and rotated back with `rotation_to_input`.
    """
    (p,) = predict(run_or_params, mol, progress=False, keep_tensors=False, config=config)
    d = p.in_input_frame()["density"]
    return 0.5 * (d + np.swapaxes(d, -1, -2))


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
            mf = make_rks(pmol, **cfg.dft_settings(), conv_tol=conv_tol)
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
    summary = _summarize(rows, ("model",) + tuple(guesses))
    steady = make_s[1:] if len(make_s) > 1 else make_s
    return dict(rows=rows, summary=summary, model_guess_seconds=float(np.mean(steady)))


def qpt_nb_guess_speedup(run, test_set, *, config=None, conv_tol: float = 1e-10) -> dict:
    """qpt_nb's own SCF (`qpt_nb.scf`, device loop) from the model's density against
    qpt_nb's SCF from minao, per conformer, with every cost a user pays counted.

    * 'qpt_nb model': `model_scf` (precompute + network + sandwich, then the SCF on the
      prediction's tensors: no second precompute); seconds = prediction + SCF.
    * 'qpt_nb minao': ``scf(mol, ...)`` from PySCF's minao density on tensors built in the
      same (principal-axes) frame as the prediction's, so the two converge to the same
      energy (the grid is not rotation invariant: another frame differs by its quadrature
      error, 1e-6 Ha at level 1); seconds = precompute + SCF.
    Both run once on the first conformer before the timed pass, so compilation is not
    counted (as in a long run, or with the persistent compilation cache); its seconds
    are returned as 'warmup_seconds'. Same settings as the run (basis, functional, grid
    level, ERI kind), DIIS 8, `conv_tol` (Hartree).

    Returns:
      {'rows': [{index, guess, cycles, seconds, scf_seconds, converged, energy}],
       'summary': {guess: {mean_cycles, mean_seconds, converged}},
       'max_energy_difference': max |E(model) - E(minao)| (Hartree), 'warmup_seconds'}.
    """
    from qpt_nb.dft.scf import scf
    from qpt_nb.dft.tensors import dft_tensors

    cfg, params, _ = resolve_model(run, config)
    model = (cfg, params)
    kw = dict(conv_tol=conv_tol, diis_space=8)

    def minao(mol):
        t = dft_tensors(mol, cfg.basis, **cfg.dft_settings(), frame="canonical")
        return scf(mol, cfg.basis, xc=cfg.xc, tensors=t, **kw)

    t0 = time.perf_counter()
    minao(test_set[0])
    model_scf(model, [test_set[0]], **kw)
    warmup = time.perf_counter() - t0
    rows = []
    for i, mol in enumerate(test_set):
        t0 = time.perf_counter()
        res = minao(mol)
        wall = time.perf_counter() - t0
        rows.append(_scf_row(i, "qpt_nb minao", res, wall))  # wall: precompute + SCF
        t0 = time.perf_counter()
        (res,) = model_scf(model, [mol], **kw)
        wall = time.perf_counter() - t0
        rows.append(_scf_row(i, "qpt_nb model", res, wall))  # wall: prediction + SCF
    by = {g: [r for r in rows if r["guess"] == g] for g in ("qpt_nb model", "qpt_nb minao")}
    diff = max(abs(a["energy"] - b["energy"]) for a, b in zip(by["qpt_nb model"], by["qpt_nb minao"]))
    summary = _summarize(rows, tuple(by), means=("cycles", "seconds", "scf_seconds"))
    return dict(rows=rows, summary=summary, max_energy_difference=float(diff), warmup_seconds=warmup)


def _scf_row(index, guess, res, seconds) -> dict:
    """One row of `qpt_nb_guess_speedup` from an `SCFResult` and the wall seconds around it."""
    return dict(
        index=index,
        guess=guess,
        cycles=int(res.n_iter),
        seconds=float(seconds),
        scf_seconds=float(res.timings["scf"]),
        converged=bool(res.converged),
        energy=float(res.energy),
    )


def _summarize(rows, guesses, means=("cycles", "seconds")) -> dict:
    """{guess: {mean_<key> for key in means, converged: count}} over the rows of each guess."""
    out = {}
    for g in guesses:
        sel = [r for r in rows if r["guess"] == g]
        out[g] = {f"mean_{k}": float(np.mean([r[k] for r in sel])) for k in means}
        out[g]["converged"] = int(sum(r["converged"] for r in sel))
    return out
