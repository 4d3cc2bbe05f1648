"""One inference path: the losses, the evaluation, the monitor, predict and the initial guess
all run `qpt_nb.learn.losses.model_outputs` and give the same numbers for the same model."""

import jax
import numpy as np
import pytest
from conftest import water_config

import qpt_nb  # noqa: F401
from qpt_nb.analysis.evaluation import _monitor_outputs, predict_pair
from qpt_nb.analysis.guesses import initial_guess
from qpt_nb.analysis.predict import predict
from qpt_nb.dft.frames import rotation_to_input
from qpt_nb.dft.molecule import Molecule
from qpt_nb.dft.sandwich import sandwich_energy
from qpt_nb.learn.batch import prepare_conformer, stack_batch
from qpt_nb.learn.losses import energy_loss, model_outputs, sandwich_settings
from qpt_nb.learn.network import network_fns


@pytest.fixture(scope="module")
def model():
    cfg = water_config(grid_level=1)
    mols = [Molecule.builtin("water")]
    mols.append(
        mols[0].with_coords(mols[0].coords_angstrom + [[0.02, -0.01, 0.0], [0, 0.03, 0], [0, 0, -0.02]])
    )
    batch = stack_batch([prepare_conformer(m, cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level) for m in mols])
    init_fn, apply_fn = network_fns(cfg.model)
    params = init_fn(jax.random.PRNGKey(3), batch)
    # a large random correction, so that every path has something to get wrong
    params = jax.tree_util.tree_map(lambda x: 5.0 * x, params)
    return cfg, params, apply_fn, mols, batch


def test_every_path_gives_the_same_prediction(model):
    cfg, params, apply_fn, mols, batch = model
    sw = sandwich_settings(cfg)
    ref = model_outputs(apply_fn, params, batch, **sw)
    e_ref = np.asarray(ref.energy)
    assert np.abs(np.asarray(ref.w)).max() > 1e-3  # the network does act
    # the training loss is the mean of the same energies
    np.testing.assert_allclose(float(energy_loss(apply_fn, params, batch, **sw)), e_ref.mean(), atol=1e-10)
    # the monitor
    e_mon, f_mon = _monitor_outputs(apply_fn, params, batch, sw["n_refine"], sw["mix"], sw["mix_at"])
    np.testing.assert_allclose(np.asarray(e_mon), e_ref, atol=1e-10)
    np.testing.assert_allclose(np.asarray(f_mon), np.asarray(ref.fock), atol=1e-10)
    # predict (batched, padded) and the evaluation's pair, per conformer
    preds = predict((cfg, params), mols, progress=False)
    for i, m in enumerate(mols):
        single = prepare_conformer(m, cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level)
        pair = predict_pair(apply_fn, params, single, **sw)
        for got in (pair["energy"][0], preds[i].energy):
            assert abs(float(got) - e_ref[i]) < 1e-10
        np.testing.assert_allclose(pair["fock"][0], np.asarray(ref.fock[i]), atol=1e-10)
        np.testing.assert_allclose(preds[i].fock, np.asarray(ref.fock[i]), atol=1e-10)
        np.testing.assert_allclose(preds[i].mo_energy, np.asarray(ref.mo_energy[i]), atol=1e-10)
        # the initial guess is D_n in the input frame
        u = rotation_to_input(m, cfg.basis)
        d_in = u @ np.asarray(ref.density[i]) @ u.T
        np.testing.assert_allclose(initial_guess((cfg, params), m), d_in, atol=1e-10)


def test_the_correction_is_symmetrised(model):
    """A non-symmetric W acts through (W + W^T)/2 in every path."""
    cfg, _, _, mols, batch = model
    single = prepare_conformer(mols[0], cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level)
    n = single.tensors.n_ao
    w = np.random.default_rng(0).normal(scale=0.05, size=(n, n))
    e_sym = float(sandwich_energy(0.5 * (w + w.T), single.tensors, cfg.xc, mix=0.5)[0])
    e_raw = float(sandwich_energy(w, single.tensors, cfg.xc, mix=0.5)[0])
    via_model = float(model_outputs(None, None, single, ws=w, orbitals=False).energy)
    assert abs(e_sym - e_raw) < 1e-12 and abs(via_model - e_sym) < 1e-12


def test_scf_takes_a_model_as_guess(model):
    cfg, params, _, mols, _ = model
    res = qpt_nb.scf(mols[1], guess=(cfg, params), conv_tol=1e-11)
    # the model's tensors are in the geometry's canonical frame (another grid orientation)
    t = qpt_nb.dft_tensors(mols[1], cfg.basis, grid_level=cfg.grid_level, xc=cfg.xc, frame="canonical")
    ref = qpt_nb.scf(mols[1], cfg.basis, xc=cfg.xc, tensors=t, conv_tol=1e-11)
    assert res.converged and abs(res.energy - ref.energy) < 1e-8
    assert res.settings["grid_level"] == cfg.grid_level
    np.testing.assert_allclose(res.gradient(), ref.gradient(grid_level=cfg.grid_level), atol=1e-6)
    with pytest.raises(ValueError, match="basis='sto-3g', not '6-31g'"):
        qpt_nb.scf(mols[0], "6-31g", guess=(cfg, params))
    with pytest.raises(ValueError, match="minao"):
        qpt_nb.scf(mols[0], "sto-3g", guess="huckel")
