"""The QPT pipeline (canonical frame -> network -> sandwich) is invariant to rigid motions."""

import jax
import numpy as np

import qpt_nb  # noqa: F401
from qpt_nb.dft.molecule import Molecule
from qpt_nb.learn.batch import prepare_conformer, stack_batch
from qpt_nb.learn.losses import model_outputs
from qpt_nb.learn.network import network_fns


def _rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_predicted_energy_is_invariant_to_rotation_and_translation():
    mol = Molecule.builtin("uracil")  # asymmetric top: the principal axes are unique
    moved = mol.with_coords(mol.coords_angstrom @ _rotation(7).T + np.array([2.0, -1.0, 0.5]))
    batch = stack_batch([prepare_conformer(m, "sto-3g", xc="lda,vwn", grid_level=0) for m in (mol, moved)])
    init_fn, apply_fn = network_fns("nano")
    params = init_fn(jax.random.PRNGKey(0), batch)
    out = model_outputs(apply_fn, params, batch, n_refine=3)
    e, w = out.energy, out.w
    w = np.asarray(w)
    assert np.abs(w[0]).max() > 1e-6  # the network does act
    np.testing.assert_allclose(w[0], w[0].T, atol=0)  # W is exactly symmetric
    np.testing.assert_allclose(w[0], w[1], atol=1e-8)  # same W for the moved copy
    assert abs(float(e[0]) - float(e[1])) < 1e-8
