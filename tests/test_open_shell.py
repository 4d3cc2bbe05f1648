"""Open shells through the network side: the unrestricted sandwich, the two corrections,
the losses, UKS labels, spin-resolved metrics and a training run on the allyl radical.

Numbers are checked against PySCF's dft.UKS and qpt_nb's own UKS SCF (`tests/test_uks.py`
checks that SCF against PySCF to 1e-8 Ha): the sandwich's fixed point, dE/dW against finite
differences, the labels of both engines, <S^2>.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qpt_nb
from qpt_nb.analysis.metrics import SPIN_METRIC_KEYS, conformer_errors
from qpt_nb.dft.molecule import Molecule
from qpt_nb.dft.reference import label
from qpt_nb.dft.sandwich import sandwich_outputs
from qpt_nb.dft.uks import density_spin_square, spin_square
from qpt_nb.learn.batch import prepare_conformer
from qpt_nb.learn.config import TrainConfig
from qpt_nb.learn.losses import LOSSES, loss_fn, model_outputs
from qpt_nb.learn.network import network_fns

CH2 = "C 0 0 0.10\nH 0 0.99 -0.30\nH 0 -0.99 -0.30"  # triplet methylene: 2S = 2


@pytest.fixture(scope="module")
def ch2():
    mol = Molecule.from_xyz(CH2, spin=2, name="CH2")
    batch = prepare_conformer(mol, "sto-3g", grid_level=0, xc="b3lyp5")
    res = qpt_nb.scf(mol.canonical(), "sto-3g", grid_level=0, xc="b3lyp5", conv_tol=1e-12)
    return mol, batch, res


def test_open_shell_batch_shapes(ch2):
    _, b, _ = ch2
    n = b.tensors.n_ao
    assert b.init.h_init.shape == b.init.dm0.shape == (2, n, n)
    assert b.inputs.bias.shape == (8, n, n)
    # the network's D0 and H_init channels: the total minao density and the spins' mean Fock
    assert np.allclose(b.inputs.bias[3], b.init.dm0.sum(0)) and np.allclose(
        b.inputs.bias[7], b.init.h_init.mean(0)
    )
    # closed-shell formulas when the spins agree: the minao guess is halved per spin
    assert np.allclose(b.init.dm0[0], b.init.dm0[1])


def test_sandwich_fixed_point_is_the_uks_energy(ch2):
    """W = F* - H_init (F* the converged UKS Fock pair) leaves every sandwich iteration at
    D*, so E[D_3] is the SCF energy; W = 0 is the 3-iteration baseline, above it."""
    _, b, res = ch2
    w = jnp.asarray(res.fock) - b.init.h_init
    out = sandwich_outputs(w, b.tensors, "b3lyp5", h_init=b.init.h_init)
    assert float(out.energy) == pytest.approx(res.energy, abs=1e-10)
    assert out.fock.shape == out.mo_coeff.shape == (2,) + w.shape[1:]
    assert np.allclose(np.asarray(out.fock), np.asarray(res.fock), atol=1e-8)
    base = sandwich_outputs(0 * w, b.tensors, "b3lyp5", h_init=b.init.h_init)
    assert float(base.energy) > res.energy + 1e-5


def test_sandwich_gradient_matches_finite_differences(ch2):
    """dE[D_3]/dW through the three unrestricted solves, with LDA (the GGA and hybrid terms
    take the same path; LDA keeps the compile short)."""
    mol = ch2[0]
    b = prepare_conformer(mol, "sto-3g", grid_level=0, xc="lda,vwn")

    def f(w):
        return sandwich_outputs(w, b.tensors, "lda,vwn", h_init=b.init.h_init, orbitals=False).energy

    w0 = 0.01 * jnp.ones_like(b.init.h_init)
    f = jax.jit(f)
    g = jax.jit(jax.grad(f))(w0)
    for s, i, j in ((0, 1, 2), (1, 0, 3), (1, 4, 4)):
        e = jnp.zeros_like(w0).at[s, i, j].set(1.0).at[s, j, i].set(1.0)
        fd = (f(w0 + 1e-5 * e) - f(w0 - 1e-5 * e)) / 2e-5
        assert float(jnp.sum(g * e)) == pytest.approx(float(fd), abs=1e-8)


def test_density_spin_square_matches_pyscf(ch2):
    mol, _, res = ch2
    from pyscf import dft

    mf = dft.UKS(mol.canonical().to_pyscf("sto-3g"), xc="b3lyp5")
    mf.grids.level, mf.conv_tol, mf.verbose = 0, 1e-12, 0
    mf.kernel()
    ss_ref = mf.spin_square()[0]
    ss = density_spin_square(jnp.asarray(mf.make_rdm1()), jnp.asarray(mf.get_ovlp()), *res.occupations)
    assert float(ss) == pytest.approx(ss_ref, abs=1e-10)
    assert spin_square(mf.mo_coeff, mf.get_ovlp(), *res.occupations)[0] == pytest.approx(ss_ref, abs=1e-10)
    assert res.spin_square[0] == pytest.approx(ss_ref, abs=1e-6)


@pytest.mark.parametrize("readout", ["per_spin", "embedding"])
def test_network_gives_two_corrections_and_every_loss_runs(ch2, readout):
    _, b, _ = ch2
    init_fn, apply_fn = network_fns("nano", spin_channels=2, spin_readout=readout)
    params = init_fn(jax.random.PRNGKey(0), b)
    w = apply_fn(params, b.inputs)
    assert w.shape == b.init.h_init.shape
    assert np.array_equal(np.asarray(w), np.asarray(jnp.swapaxes(w, -1, -2)))
    assert float(jnp.max(jnp.abs(w[0] - w[1]))) > 0  # the spins get their own corrections
    if readout != "embedding":  # the default: every loss runs through it
        return
    # every loss on a UHF batch (no grid: a short compile; the grid terms are the sandwich's)
    hf = prepare_conformer(ch2[0], "sto-3g", grid_level=0, xc="hf")
    lab = label(ch2[0], "sto-3g", xc="hf", grid_level=0, eri="dense", use_cache=False)
    sup = qpt_nb.learn.batch.prepare_tensors(hf.tensors, "hf", ref_fock=lab.fock)
    for loss in LOSSES:
        fn = jax.jit(
            jax.value_and_grad(lambda p: loss_fn(apply_fn, p, sup, loss=loss, aux=True), has_aux=True)
        )
        (value, aux), g = fn(params)
        assert np.isfinite(float(value)) and all(
            bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(g)
        ), loss
        if loss == "energy":
            assert float(aux["spin_square"]) == pytest.approx(2.0, abs=0.05)
    # the supervised loss vanishes at W = F_ref - H_init
    exact = loss_fn(lambda p, inp: p, jnp.asarray(lab.fock) - sup.init.h_init, sup, loss="supervised")
    assert float(exact) < 1e-20


def test_uks_labels_of_both_engines_agree_and_cache(ch2, tmp_path):
    mol, _, res = ch2
    kw = dict(xc="b3lyp5", grid_level=0, eri="dense", cache_dir=tmp_path)
    a = label(mol, "sto-3g", **kw)
    b = label(mol, "sto-3g", engine="qpt_nb", **kw)
    assert a.spin == b.spin == 2 and a.occupations == (5, 3) and a.fock.shape == (2, 7, 7)
    assert a.energy == pytest.approx(b.energy, abs=1e-8) and a.energy == pytest.approx(res.energy, abs=1e-8)
    assert np.allclose(a.fock, b.fock, atol=1e-6)
    again = label(mol, "sto-3g", **kw)
    assert again.cached and again.spin == 2 and again.homo == pytest.approx(a.homo, abs=1e-12)
    # a perfect prediction has zero error in every metric, spin-resolved ones included
    err = conformer_errors(a, a.energy, a.fock, a.mo_energy, a.mo_coeff)
    for k in ("energy_error_mev", "hamiltonian_mae_uha", "hamiltonian_mae_alpha_uha", "spin_square_error"):
        assert abs(err[k]) < 1e-9, k
    assert err["psi_occ_percent"] == pytest.approx(100.0)
    assert spin_square(a.mo_coeff, a.overlap, *a.occupations)[0] == pytest.approx(
        res.spin_square[0], abs=1e-6
    )


def test_model_of_the_other_spin_is_refused(ch2):
    mol, b, _ = ch2
    from qpt_nb.analysis.evaluation import score_conformer

    lab = label(mol, "sto-3g", xc="b3lyp5", grid_level=0, eri="dense", use_cache=False)
    init_fn, apply_fn = network_fns("nano")
    water = prepare_conformer(Molecule.builtin("water"), "sto-3g", grid_level=0)
    params = init_fn(jax.random.PRNGKey(0), water)
    with pytest.raises(ValueError, match="open-shell"):
        score_conformer(apply_fn, params, water, lab)


def test_correction_of_the_wrong_spin_shape_is_refused(ch2):
    _, b, _ = ch2
    n = b.tensors.n_ao
    with pytest.raises(ValueError, match="closed-shell .* model on a open-shell"):
        sandwich_outputs(jnp.zeros((n, n)), b.tensors, "b3lyp5", h_init=b.init.h_init)
    sup = qpt_nb.learn.batch.prepare_tensors(b.tensors, "b3lyp5", ref_fock=jnp.zeros((2, n, n)))
    with pytest.raises(ValueError, match="spin it was trained on"):  # a closed-shell model's W
        loss_fn(lambda p, inp: jnp.zeros((n, n)), None, sup, loss="supervised")


def test_train_config_spin():
    cfg = TrainConfig(molecule="allyl", spin=1, grid_level=0)
    assert cfg.molecule_object().spin == 1
    assert TrainConfig(molecule="allyl", grid_level=0).spin == 1  # the radical builtin's doublet
    with pytest.raises(ValueError, match="does not fit"):
        TrainConfig(molecule="allyl", spin=2)  # 23 electrons: not a triplet
    with pytest.raises(ValueError, match="spin_readout"):
        TrainConfig(molecule="allyl", spin=1, spin_readout="shared")
    init_fn, apply_fn = cfg.network()
    b = prepare_conformer(cfg.molecule_object(), "sto-3g", grid_level=0)
    assert apply_fn(init_fn(jax.random.PRNGKey(0), b), b.inputs).shape == (2, 20, 20)


@pytest.mark.slow
def test_allyl_trains_and_evaluates_with_spin_metrics():
    """A few label-free steps on the allyl radical: the loss is finite, <S^2> is logged,
    and the evaluation against PySCF UKS reports the spin-resolved metrics."""
    from qpt_nb.analysis.evaluation import evaluate
    from qpt_nb.learn.train import Trainer

    cfg = TrainConfig(molecule="allyl", spin=1, grid_level=0, warmup_steps=2, reuse=2, lr=1e-3)
    tr = Trainer(cfg)
    try:
        recs = tr.run(4)
        assert all(np.isfinite(r["loss"]) and abs(r["spin_square"] - 0.75) < 0.1 for r in recs)
        res = evaluate(tr, 1)
    finally:
        tr.close()
    for k in SPIN_METRIC_KEYS:
        assert np.isfinite(res.trained[k]) and np.isfinite(res.baseline_w0[k])
    assert "<S^2> MAE" in res.table()
    out = model_outputs(
        *[None, None], prepare_conformer(res.test_set[0], "sto-3g", grid_level=0), ws=jnp.zeros((2, 20, 20))
    )
    assert out.mo_energy.shape == (2, 20)


def test_predict_and_forces_of_an_open_shell_model(ch2):
    """`qpt_nb.predict` with an (untrained) open-shell model: spin-axis outputs, the frontier
    orbitals over both spins, and approximate forces through PySCF's grad.uks."""
    mol, b, res = ch2
    cfg = TrainConfig(xyz=CH2, spin=2, molecule="CH2", grid_level=0)
    init_fn, _ = cfg.network()
    params = init_fn(jax.random.PRNGKey(0), b)
    (p,) = qpt_nb.predict((cfg, params), [mol])
    assert p.spin == 2 and p.occupations == (5, 3) and p.fock.shape == (2, 7, 7)
    assert p.energy == pytest.approx(res.energy, abs=5e-3)  # an untrained W is small
    eps = np.asarray(p.mo_energy)
    assert p.homo == pytest.approx(max(eps[0, 4], eps[1, 2]))
    g = p.gradient()
    assert g.shape == (3, 3) and np.abs(g.sum(axis=0)).max() < 1e-6
    with pytest.raises(ValueError, match="spin"):
        qpt_nb.predict((cfg, params), [Molecule.from_xyz(CH2, spin=0)])


def test_ase_calculator_on_a_radical():
    """QPTCalculator's scf mode on OH (spin from the Atoms' info): UKS energy and forces,
    the forces the negative analytic gradient (PySCF's grad.uks on qpt_nb's orbitals)."""
    from qpt_nb.ase import QPTCalculator
    from qpt_nb.units import EV_PER_HARTREE

    mol = Molecule.from_xyz("O 0 0 0\nH 0 0 0.97", spin=1)
    atoms = mol.to_ase()
    assert atoms.info["spin"] == 1
    atoms.calc = QPTCalculator(mode="scf", basis="sto-3g", grid_level=1)
    e, f = atoms.get_potential_energy(), atoms.get_forces()
    res = qpt_nb.scf(mol, "sto-3g", grid_level=1)
    assert res.unrestricted and e == pytest.approx(res.energy * EV_PER_HARTREE, abs=1e-6)
    assert np.abs(f.sum(axis=0)).max() < 1e-6 and abs(f[1, 2]) > 1.0  # along the bond, off its minimum


def test_open_shell_monitor_one_conformer_a_call_matches_the_whole(ch2, tmp_path):
    """The monitor's lone-conformer path (unbatched, (2, N, N) Fock matrices) gives the metrics
    of one vmapped chunk; restricted labels against the unrestricted model are refused."""
    from qpt_nb.analysis.evaluation import make_monitor, make_test_set
    from qpt_nb.dft.reference import label_many

    mol, batch, _ = ch2
    cfg = TrainConfig(xyz=CH2, spin=2, molecule="CH2", grid_level=0, sampler="wiggle")
    test = make_test_set(mol, 2, sampler="wiggle")
    labels = label_many(test, "sto-3g", xc="b3lyp5", grid_level=0, engine="qpt_nb", cache_dir=tmp_path)
    params = cfg.network()[0](jax.random.PRNGKey(0), batch)
    whole = make_monitor(cfg, test, labels)(params)
    single = make_monitor(cfg, test, labels, chunk_size=1, keep_bytes=0)(params)
    assert whole["hamiltonian_mae_uha"] > 0
    for k in whole:
        assert single[k] == pytest.approx(whole[k], rel=1e-9), k
    closed = make_test_set(Molecule.from_xyz(CH2, spin=0, name="CH2"), 2, sampler="wiggle")
    wrong = label_many(closed, "sto-3g", xc="b3lyp5", grid_level=0, engine="qpt_nb", cache_dir=tmp_path)
    assert wrong[0].fock.shape == (7, 7)
    with pytest.raises(ValueError, match="restricted"):
        make_monitor(cfg, test, wrong, chunk_size=1, keep_bytes=0)(params)
