"""The four training losses of a Hamiltonian-correcting network, given its apply function.

Every loss takes ``apply_fn(params, inputs) -> W`` (one conformer's `QPTInputs` to a
symmetric (N, N) correction in Hartree) and knows nothing else about the network,
the way FermiNet's Hamiltonian takes any log-psi callable:

    W = apply_fn(params, inputs)        (B, N, N) over the batch, Hartree
    H = H_init + W
    energy loss:           E[D_n(H)]                  (arXiv 2402.04030, Sec. 3, Eq. 4)
    self-consistency loss: |H - stopgrad(F[D(H)])|^2  (Zhang et al., ICML 2024, arXiv 2403.09560)
    refined-target loss:   |H - stopgrad(F[D_n(H)])|^2 (the same, with the target n sandwich
                           iterations further on: a label-free teacher built from the predicted H)
    supervised loss:       |H - F_ref|^2              (labels from PySCF)

D_n is the sandwich: n_refine DFT iterations from H with one density mix, or a mix at every
iteration (`qpt_nb.dft.sandwich.refine`, `sandwich_settings`). Batch-averaged; the matrix losses are means over the
N^2 entries (Hartree^2). Open shells (tensors with spin != 0): W, H and F are (2, N, N)
pairs (alpha, beta), the sandwich is unrestricted (`qpt_nb.dft.sandwich`), the energy is
E[D_alpha, D_beta], and the matrix losses average over both spins' 2 N^2 entries.

    >>> from qpt_nb.dft.molecule import Molecule
    >>> from qpt_nb.learn.batch import prepare_conformer
    >>> from qpt_nb.learn.network import network_fns
    >>> batch = prepare_conformer(Molecule.builtin("water"), "sto-3g", grid_level=0)
    >>> init_fn, apply_fn = network_fns("nano")
    >>> params = init_fn(jax.random.PRNGKey(0), batch)
    >>> round(float(energy_loss(apply_fn, params, batch)), 1)   # Hartree: an untrained W is small
    -75.3
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from qpt_nb.dft.sandwich import SandwichOutputs, check_correction_shape, refine, sandwich_outputs
from qpt_nb.dft.uks import density_spin_square, scf_aufbau, scf_fock, spin_occupations
from qpt_nb.dft.xc import get_xc
from qpt_nb.learn.batch import QPTBatch

LOSSES = ("energy", "self_consistency", "refined_target", "supervised")
ApplyFn = Callable  # (params, QPTInputs) -> (N, N) correction W, Hartree


def sandwich_settings(config) -> dict:
    """The sandwich a run trains with, as keyword arguments of the losses and of every
    prediction path: n_refine, mix, and mix_at (2: the research code's one mix at the second
    solve; None: a mix at every solve, ``TrainConfig.mix_every``). A model is evaluated with
    the sandwich it was trained with."""
    mix_at = None if getattr(config, "mix_every", False) else 2
    return dict(n_refine=int(config.n_refine), mix=float(config.mix), mix_at=mix_at)


def predict_correction(apply_fn: ApplyFn, params, batch: QPTBatch):
    """The network's W (B, N, N) (or (N, N) for an unbatched batch), Hartree."""
    if batch.batched:
        return jax.vmap(lambda inp: apply_fn(params, inp))(batch.inputs)
    return apply_fn(params, batch.inputs)


def _per_conformer(fn, batch: QPTBatch, w):
    if batch.batched:
        return jax.vmap(fn)(batch.tensors, batch.init, batch.ref_fock, w)
    return fn(batch.tensors, batch.init, batch.ref_fock, w)


def model_outputs(
    apply_fn: ApplyFn,
    params,
    batch: QPTBatch,
    *,
    n_refine: int = 3,
    mix: float = 0.5,
    mix_at=2,
    ws=None,
    zero_correction: bool = False,
    orbitals: bool = True,
) -> SandwichOutputs:
    """The model on a batch: its W, then `qpt_nb.dft.sandwich.sandwich_outputs` per conformer.

    The one inference path: the energy loss, the evaluation, the monitor, `predict` and the
    initial guesses all call it. Returns `SandwichOutputs` with a leading batch axis (B,)
    for a batched `batch`. ``ws`` (B, N, N) (or (N, N)) gives the corrections instead of
    the network (then `apply_fn` and `params` are unused, e.g. None); ``zero_correction``
    runs W = 0, the untrained baseline (n_refine plain DFT iterations from H_init), with the
    same shapes; ``orbitals=False`` skips F[D_n] and its orbitals (the training loss).
    """
    w = predict_correction(apply_fn, params, batch) if ws is None else ws
    if zero_correction:
        w = jnp.zeros_like(w)
    func = get_xc(batch.xc)

    def one(t, init, _, wi):
        return sandwich_outputs(
            wi, t, func, h_init=init.h_init, n_refine=n_refine, mix=mix, mix_at=mix_at, orbitals=orbitals
        )

    return _per_conformer(one, batch, w)


def energy_loss(
    apply_fn: ApplyFn,
    params,
    batch: QPTBatch,
    *,
    n_refine: int = 3,
    mix: float = 0.5,
    mix_at=2,
    aux: bool = False,
):
    """The label-free QPT loss: E[D_n] (Hartree) averaged over the batch.

    ``aux=True`` returns (loss, aux): for an open shell aux holds 'spin_square', the
    batch's largest <S^2> of D_n (`qpt_nb.dft.uks.density_spin_square`, no extra solve),
    for the trainer's spin-contamination check; an empty dict for a closed shell. The
    formula is that of a determinant: exact when the last solve is not mixed (the default
    sandwich, mix at solve 2 of 3), an approximation for a mixed D_n (``mix_every``)."""
    out = model_outputs(apply_fn, params, batch, n_refine=n_refine, mix=mix, mix_at=mix_at, orbitals=False)
    loss = jnp.mean(out.energy)
    if not aux:
        return loss
    extra = {}
    if out.density.ndim - int(batch.batched) == 3:  # (.., 2, N, N): an open shell
        t, d = batch.tensors, jax.lax.stop_gradient(out.density)
        occ = spin_occupations(t)
        one = lambda di, si: density_spin_square(di, si, *occ)  # noqa: E731
        extra["spin_square"] = jnp.max(jax.vmap(one)(d, t.overlap) if batch.batched else one(d, t.overlap))
    return loss, extra


qpt_energy = energy_loss  # the name of the public API (qpt_nb.qpt_energy)


def self_consistency_loss(apply_fn: ApplyFn, params, batch: QPTBatch):
    """mean |H - stopgrad(F[D(H)])|^2 over entries and conformers (Hartree^2)."""
    w = predict_correction(apply_fn, params, batch)
    func = get_xc(batch.xc)

    def one(t, init, _, wi):
        h = init.h_init + wi
        d = scf_aufbau(h, t)[2]
        target = jax.lax.stop_gradient(scf_fock(d, t, func)[1])
        return jnp.mean((h - target) ** 2)

    return jnp.mean(_per_conformer(one, batch, w))


def refined_target_loss(
    apply_fn: ApplyFn, params, batch: QPTBatch, *, n_refine: int = 3, mix: float = 0.5, mix_at=2
):
    """mean |H - stopgrad(F[D_n(H)])|^2 over entries and conformers (Hartree^2).

    The self-consistency loss of Zhang et al. (arXiv 2403.09560) compares H with the Fock
    matrix of its own density, one iteration on. Here the target is taken `n_refine`
    sandwich iterations on (`qpt_nb.dft.sandwich.refine`, with its density mixing), so it
    sits nearer the SCF solution, and no gradient flows through the iterations: a step
    costs the sandwich's forward pass and the network's backward pass, about half of the
    energy loss's. At the SCF Fock matrix F* (H = F*) the loss and its gradient vanish.
    """
    w = predict_correction(apply_fn, params, batch)
    func = get_xc(batch.xc)

    def one(t, init, _, wi):
        h = init.h_init + wi
        d = refine(jax.lax.stop_gradient(h), t, func, n_refine, mix=mix, mix_at=mix_at)
        target = jax.lax.stop_gradient(scf_fock(d, t, func)[1])
        return jnp.mean((h - target) ** 2)

    return jnp.mean(_per_conformer(one, batch, w))


def supervised_loss(apply_fn: ApplyFn, params, batch: QPTBatch):
    """mean |H_init + W - F_ref|^2 (Hartree^2) against PySCF Fock labels."""
    if batch.ref_fock.ndim < 2 or batch.ref_fock.shape[-1] == 0:
        raise ValueError("The supervised loss needs PySCF Fock labels (ref_fock) in the batch.")
    w = predict_correction(apply_fn, params, batch)
    check_correction_shape(w, batch.init.h_init)
    return jnp.mean((batch.init.h_init + w - batch.ref_fock) ** 2)


def loss_fn(
    apply_fn: ApplyFn,
    params,
    batch: QPTBatch,
    *,
    loss: str = "energy",
    n_refine: int = 3,
    mix: float = 0.5,
    mix_at=2,
    aux: bool = False,
):
    """Dispatches to the chosen loss (one of `LOSSES`). ``aux=True`` returns (loss, aux
    dict) as `energy_loss` does (the other losses give an empty aux)."""
    if loss == "energy":
        return energy_loss(apply_fn, params, batch, n_refine=n_refine, mix=mix, mix_at=mix_at, aux=aux)
    if loss == "self_consistency":
        value = self_consistency_loss(apply_fn, params, batch)
    elif loss == "refined_target":
        value = refined_target_loss(apply_fn, params, batch, n_refine=n_refine, mix=mix, mix_at=mix_at)
    elif loss == "supervised":
        value = supervised_loss(apply_fn, params, batch)
    else:
        raise ValueError(f"Unknown loss {loss!r}; choose one of {LOSSES}.")
    return (value, {}) if aux else value
