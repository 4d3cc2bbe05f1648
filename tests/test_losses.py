"""The label-free losses at the SCF solution, and their gradients against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np

import qpt_nb  # noqa: F401
from qpt_nb.dft.molecule import Molecule
from qpt_nb.dft.scf import scf
from qpt_nb.learn.batch import prepare_conformer
from qpt_nb.learn.losses import loss_fn


def _const_apply(params, inputs):
    """An 'network' whose correction is its parameter: W = (P + P^T) / 2."""
    return 0.5 * (params + params.T)


def _water():
    batch = prepare_conformer(Molecule.builtin("water"), "sto-3g", xc="lda,vwn", grid_level=0)
    res = scf("water", "sto-3g", xc="lda,vwn", grid_level=0, tensors=batch.tensors, conv_tol=1e-12)
    return batch, np.asarray(res.fock)


def test_refined_target_vanishes_at_the_scf_fock_matrix():
    batch, fock = _water()
    w_star = jnp.asarray(fock - np.asarray(batch.init.h_init))
    for loss in ("refined_target", "self_consistency"):
        value, grad = jax.value_and_grad(lambda p, loss=loss: loss_fn(_const_apply, p, batch, loss=loss))(
            w_star
        )
        assert float(value) < 1e-14, (loss, float(value))  # F* to the SCF tolerance
        assert float(jnp.abs(grad).max()) < 1e-7, loss
    # away from it the loss is positive, and it falls as H moves toward the solution
    w0 = jnp.zeros_like(w_star)
    one = float(loss_fn(_const_apply, w0, batch, loss="refined_target", n_refine=1))
    assert one > 1e-6
    for loss in ("refined_target", "self_consistency"):
        path = [float(loss_fn(_const_apply, a * w_star, batch, loss=loss)) for a in (0.0, 0.5, 0.9)]
        assert path[0] > path[1] > path[2] > 0.0, (loss, path)


def test_refined_target_gradient_matches_finite_differences():
    batch, fock = _water()
    n = fock.shape[0]
    p = jnp.asarray(np.random.default_rng(0).normal(scale=0.01, size=(n, n)))
    d = jnp.asarray(np.random.default_rng(1).normal(size=(n, n)))

    def f(x):
        return loss_fn(_const_apply, x, batch, loss="refined_target", n_refine=3)

    h = 1e-6
    g = float(jnp.vdot(jax.grad(f)(p), d))

    # finite differences of the loss with the target frozen at p's
    from qpt_nb.dft.kohn_sham import energy_and_fock
    from qpt_nb.dft.sandwich import refine
    from qpt_nb.dft.xc import get_xc

    hmat = batch.init.h_init + _const_apply(p, None)
    target = energy_and_fock(
        refine(hmat, batch.tensors, get_xc("lda,vwn"), 3), batch.tensors, get_xc("lda,vwn")
    )[1]

    def frozen(x):
        return jnp.mean((batch.init.h_init + _const_apply(x, None) - target) ** 2)

    fd = (float(frozen(p + h * d)) - float(frozen(p - h * d))) / (2 * h)
    assert abs(g - fd) < 1e-8 * max(1.0, abs(fd)), (g, fd)
    assert abs(float(f(p)) - float(frozen(p))) < 1e-14
