"""PySCF labels (cache), evaluation metrics, saved results and initial guesses (water/STO-3G)."""

import csv
import json
import time

import jax
import numpy as np
import pytest

import qpt_nb  # noqa: F401
from qpt_nb.analysis.evaluation import (
    CSV_COLUMNS,
    evaluate,
    make_monitor,
    make_test_set,
    outputs_for_corrections,
    predict_pair,
)
from qpt_nb.analysis.guesses import guess_speedup, initial_guess
from qpt_nb.analysis.metrics import METRIC_KEYS, conformer_errors, psi_similarity, summarize
from qpt_nb.dft.frames import rotation_to_input
from qpt_nb.dft.molecule import Molecule, read_xyz_frames
from qpt_nb.dft.reference import cache_key, label
from qpt_nb.learn.batch import prepare_conformer
from qpt_nb.learn.network import network_fns
from qpt_nb.learn.train import TrainConfig

BASIS, XC, LEVEL = "sto-3g", "b3lyp5", 1


def _rotation(seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def rotated(mol, seed=0):
    return mol.with_coords(mol.coords_angstrom @ _rotation(seed).T + np.array([0.7, -0.3, 1.1]))


@pytest.fixture(scope="module")
def water():
    return Molecule.builtin("water")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("labels")


@pytest.fixture(scope="module")
def untrained(water):
    cfg = TrainConfig(molecule="water", basis=BASIS, xc=XC, grid_level=LEVEL, sampler="wiggle")
    params = network_fns("nano")[0](
        jax.random.PRNGKey(0), prepare_conformer(water, BASIS, xc=XC, grid_level=LEVEL)
    )
    return cfg, params


def _pyscf(mol, dm0=None, init_guess="minao", conv_tol=1e-13):
    from pyscf import dft

    mf = dft.RKS(mol.to_pyscf(BASIS), xc=XC)
    mf.grids.level = LEVEL
    mf.conv_tol, mf.diis_space, mf.verbose = conv_tol, 8, 0
    mf.init_guess = init_guess
    mf.kernel(dm0=dm0)
    return mf


def test_label_matches_pyscf_and_is_cached(water, cache):
    mol = rotated(water, 1)
    t0 = time.perf_counter()
    lab = label(mol, BASIS, xc=XC, grid_level=LEVEL, cache_dir=cache)
    first = time.perf_counter() - t0
    assert not lab.cached and lab.converged and lab.n_occ == 5
    mf = _pyscf(mol.canonical())  # labels live in the canonical frame
    assert abs(lab.energy - mf.e_tot) < 1e-10
    np.testing.assert_allclose(lab.fock, mf.get_fock(dm=mf.make_rdm1()), atol=1e-8)
    np.testing.assert_allclose(lab.mo_energy, mf.mo_energy, atol=1e-7)
    np.testing.assert_allclose(lab.density, mf.make_rdm1(), atol=1e-7)
    # the second read comes from the cache: same numbers, the original seconds, faster
    t0 = time.perf_counter()
    again = label(mol, BASIS, xc=XC, grid_level=LEVEL, cache_dir=cache)
    assert again.cached and again.seconds == lab.seconds and again.key == lab.key
    assert again.cpu_seconds == lab.cpu_seconds > 0  # what a CPU-time budget charges for it
    assert time.perf_counter() - t0 < first
    for k in ("fock", "mo_energy", "mo_coeff", "density", "overlap"):
        np.testing.assert_array_equal(getattr(again, k), getattr(lab, k))
    assert again.energy == lab.energy
    # another orientation of the same geometry has the same key; other settings do not
    assert cache_key(rotated(water, 2), BASIS, xc=XC, grid_level=LEVEL) == cache_key(
        water, BASIS, xc=XC, grid_level=LEVEL
    )
    assert cache_key(water, BASIS, xc=XC, grid_level=2) != cache_key(water, BASIS, xc=XC, grid_level=LEVEL)
    assert cache_key(water, BASIS, xc=XC, grid_level=LEVEL, eri="df") != cache_key(
        water, BASIS, xc=XC, grid_level=LEVEL
    )
    # a corrupt cache file is recomputed, not trusted
    path = cache / f"{lab.key}.npz"
    path.write_bytes(path.read_bytes()[:100])
    fresh = label(mol, BASIS, xc=XC, grid_level=LEVEL, cache_dir=cache)
    assert not fresh.cached and abs(fresh.energy - lab.energy) < 1e-10
    assert label(mol, BASIS, xc=XC, grid_level=LEVEL, cache_dir=cache).cached
    # 'auto' resolves as dft_tensors does (water/STO-3G: dense), so it hits the same label
    assert label(mol, BASIS, xc=XC, grid_level=LEVEL, eri="auto", cache_dir=cache).key == lab.key
    with pytest.raises(ValueError, match="eri"):
        label(mol, BASIS, xc=XC, grid_level=LEVEL, eri="cholesky", cache_dir=cache)


def test_metrics_vanish_for_the_exact_correction(water, cache):
    mol = rotated(water, 3)
    batch = prepare_conformer(mol, BASIS, xc=XC, grid_level=LEVEL, eri="dense")
    lab = label(mol, BASIS, xc=XC, grid_level=LEVEL, cache_dir=cache)
    w = lab.fock - np.asarray(batch.init.h_init)  # H_init + W = F_ref
    out = outputs_for_corrections(np.stack([w, np.zeros_like(w)]), batch)
    exact = conformer_errors(
        lab, *(np.asarray(out[k][0]) for k in ("energy", "fock", "mo_energy", "mo_coeff"))
    )
    assert abs(exact["energy_error_mev"]) < 1e-4
    assert exact["hamiltonian_mae_uha"] < 0.05
    assert exact["mo_energy_mae_all_uha"] < 0.05 and exact["mo_energy_mae_occ_uha"] < 0.05
    assert exact["psi_occ_percent"] > 100 - 1e-6
    assert abs(exact["gap_error_mev"]) < 1e-3
    base = conformer_errors(
        lab, *(np.asarray(out[k][1]) for k in ("energy", "fock", "mo_energy", "mo_coeff"))
    )
    assert base["energy_error_mev"] > 1.0 and base["hamiltonian_mae_uha"] > 100.0
    m = summarize([exact, base])
    assert tuple(m) == METRIC_KEYS and m["n_conformers"] == 2
    assert m["energy_max_mev"] == pytest.approx(abs(base["energy_error_mev"]))


def test_density_fitted_labels_match_the_df_tensors(water, cache):
    batch = prepare_conformer(water, BASIS, xc=XC, grid_level=LEVEL, eri="df")
    lab = label(water, BASIS, xc=XC, grid_level=LEVEL, eri="df", cache_dir=cache)
    assert batch.tensors.eri_kind == "df"
    w = lab.fock - np.asarray(batch.init.h_init)
    out = outputs_for_corrections(w[None], batch)
    err = conformer_errors(lab, *(np.asarray(out[k][0]) for k in ("energy", "fock", "mo_energy", "mo_coeff")))
    assert abs(err["energy_error_mev"]) < 1e-4 and err["hamiltonian_mae_uha"] < 0.05
    assert abs(lab.energy - label(water, BASIS, xc=XC, grid_level=LEVEL, cache_dir=cache).energy) > 1e-7


def test_psi_ignores_orbital_signs():
    c = np.random.default_rng(0).normal(size=(6, 6))
    assert psi_similarity(c * np.array([1, -1, 1, -1, 1, 1]), c, 4) == pytest.approx(100.0)
    assert psi_similarity(c[:, ::-1], c, 3) < 100.0


def test_evaluate_untrained_run_and_save(untrained, cache, tmp_path):
    cfg, params = untrained
    test = make_test_set(Molecule.builtin("water"), 2, sampler="wiggle", sigma=0.03)
    again = make_test_set(Molecule.builtin("water"), 2, sampler="wiggle", sigma=0.03)
    assert np.array_equal(test[1].coords_angstrom, again[1].coords_angstrom)
    res = evaluate((cfg, params), test, cache_dir=cache)
    assert set(res.trained) == set(METRIC_KEYS) == set(res.baseline_w0)
    # an untrained network's W is tiny: trained == W=0 baseline to well below a meV
    assert res.trained["energy_mae_mev"] == pytest.approx(res.baseline_w0["energy_mae_mev"], abs=0.5)
    assert res.baseline_w0["energy_mae_mev"] > 1.0
    for r in res.rows:
        assert r["baseline_energy_ha"] > r["reference_energy_ha"]  # variational
    from qpt_nb.viz.plots import save_run_plots

    paths = res.save(tmp_path, plot=save_run_plots)
    saved = json.loads(paths["metrics"].read_text())
    assert set(saved["trained"]) == set(METRIC_KEYS) == set(saved["baseline_w0"])
    assert saved["metadata"]["grid_level"] == LEVEL and saved["metadata"]["eri_kind"] == "dense"
    with open(paths["per_conformer"]) as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 2
    frames = read_xyz_frames(paths["test_set"])
    np.testing.assert_allclose(frames[1].coords_angstrom, test[1].coords_angstrom, atol=1e-11)
    assert [p.name for p in paths["plots"]] == ["per_conformer.png"]
    assert all(p.stat().st_size > 1000 for p in paths["plots"])
    # the monitor agrees with the full evaluation
    mon = make_monitor(cfg, test, [label(m, BASIS, xc=XC, grid_level=LEVEL, cache_dir=cache) for m in test])(
        params
    )
    assert mon["energy_mae_mev"] == pytest.approx(res.trained["energy_mae_mev"], rel=1e-6)
    assert mon["hamiltonian_mae_uha"] == pytest.approx(res.trained["hamiltonian_mae_uha"], rel=1e-6)


def test_rotation_to_input_is_exact_pointwise():
    """D_in = U D_can U^T gives the same electron density at every point (d shells too)."""
    from pyscf.lib import param

    from qpt_nb.dft.molecule import principal_axes

    mol = rotated(Molecule.builtin("water"), 4)
    center, rot = principal_axes(mol.coords_angstrom, mol.masses)
    u = rotation_to_input(mol, "def2-svp")
    np.testing.assert_allclose(u @ u.T, np.eye(len(u)), atol=1e-12)
    rng = np.random.default_rng(0)
    d = rng.normal(size=u.shape)
    d = d + d.T
    pts_can = 1.5 * rng.normal(size=(40, 3))  # Bohr
    pts_in = pts_can @ rot.T + center / param.BOHR
    a_can = mol.canonical().to_pyscf("def2-svp").eval_gto("GTOval_sph", pts_can)
    a_in = mol.to_pyscf("def2-svp").eval_gto("GTOval_sph", pts_in)
    rho_can = np.einsum("gi,ij,gj->g", a_can, d, a_can)
    rho_in = np.einsum("gi,ij,gj->g", a_in, u @ d @ u.T, a_in)
    np.testing.assert_allclose(rho_in, rho_can, atol=1e-10)


def test_initial_guess_in_the_input_frame(untrained, cache):
    from pyscf import scf

    cfg, params = untrained
    mol = rotated(Molecule.builtin("water"), 5)
    dm = initial_guess((cfg, params), mol)
    d_can = predict_pair(
        network_fns(cfg.model)[1], params, prepare_conformer(mol, BASIS, xc=XC, grid_level=LEVEL)
    )["density"][0]
    # exact-integral energies agree to 1e-8 between frames (the DFT grid is lab-fixed)
    e_in = scf.RHF(mol.to_pyscf(BASIS)).energy_tot(dm)
    e_can = scf.RHF(mol.canonical().to_pyscf(BASIS)).energy_tot(d_can)
    assert abs(e_in - e_can) < 1e-8
    pm = mol.to_pyscf(BASIS)
    assert np.trace(dm @ pm.intor("int1e_ovlp")) == pytest.approx(10.0, abs=1e-9)
    # the exact density (label, canonical frame) rotated back seeds PySCF better than minao
    lab = label(mol, BASIS, xc=XC, grid_level=LEVEL, cache_dir=cache)
    u = rotation_to_input(mol, BASIS)
    exact = _pyscf(mol, dm0=u @ lab.density @ u.T, conv_tol=1e-10)
    minao = _pyscf(mol, conv_tol=1e-10)
    assert exact.converged and exact.cycles < minao.cycles
    assert abs(exact.e_tot - minao.e_tot) < 1e-8
    # the model's guess: no more iterations than minao
    model = _pyscf(mol, dm0=dm, conv_tol=1e-10)
    assert model.converged and model.cycles <= minao.cycles
    g = guess_speedup((cfg, params), [mol], guesses=("minao",))
    assert set(g["summary"]) == {"model", "minao"} and len(g["rows"]) == 2
    assert g["summary"]["model"]["mean_cycles"] <= g["summary"]["minao"]["mean_cycles"]


def test_qpt_nb_labels_agree_with_pyscf_labels(tmp_path):
    from qpt_nb.dft.molecule import Molecule
    from qpt_nb.dft.reference import cache_key, label

    mol = Molecule.builtin("water")
    a = label(mol, "sto-3g", xc="b3lyp5", grid_level=1, cache_dir=tmp_path)
    b = label(mol, "sto-3g", xc="b3lyp5", grid_level=1, cache_dir=tmp_path, engine="qpt_nb")
    assert a.converged and b.converged and not b.cached
    assert abs(a.energy - b.energy) < 1e-9
    np.testing.assert_allclose(b.fock, a.fock, atol=1e-6)
    np.testing.assert_allclose(b.mo_energy, a.mo_energy, atol=1e-6)
    assert cache_key(mol, "sto-3g", xc="b3lyp5", grid_level=1) != cache_key(
        mol, "sto-3g", xc="b3lyp5", grid_level=1, engine="qpt_nb"
    )
    assert label(mol, "sto-3g", xc="b3lyp5", grid_level=1, cache_dir=tmp_path, engine="qpt_nb").cached
    with pytest.raises(ValueError, match="label engine"):
        label(mol, "sto-3g", xc="b3lyp5", grid_level=1, cache_dir=tmp_path, engine="orca")
