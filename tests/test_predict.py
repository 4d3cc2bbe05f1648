"""A trained model at work: `qpt_nb.predict`, `qpt-nb predict`, the model-seeded SCF and the
shipped models (water/STO-3G/B3LYP5 at grid level 1 throughout, so few shapes compile)."""

import csv
import warnings

import numpy as np
import pytest

import qpt_nb
from qpt_nb import pretrained
from qpt_nb.analysis import predict as pr
from qpt_nb.cli.main import main
from qpt_nb.dft.molecule import Molecule, write_xyz_frames
from qpt_nb.dft.reference import label_many
from qpt_nb.learn import checkpoint as ckpt
from qpt_nb.units import EV_PER_HARTREE

XTB_COMMENT = " energy: -5.070544440612 gnorm: 0.000544398097 xtb: 6.6.1 (8d0f1dd)"


pytestmark = pytest.mark.usefixtures("isolated_caches")


@pytest.fixture(scope="module")
def model():
    return pretrained.load("water")


@pytest.fixture(scope="module")
def water():
    return Molecule.builtin("water")


def _moved(mol, seed, scale=0.03):
    """`mol` with its atoms displaced (Angstrom), then rotated and translated."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    x = mol.coords_angstrom + rng.normal(scale=scale, size=mol.coords_angstrom.shape)
    return mol.with_coords(x @ q.T + rng.normal(size=3))


def _fails(argv, capsys, *needles):
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert err[-1].startswith("qpt-nb predict: error: ")
    for n in needles:
        assert n in err[-1], err[-1]


# ----------------------------------------------------------------------------- shipped models
def test_pretrained_registry(model, tmp_path):
    names = pretrained.list()
    assert "water_sto-3g_b3lyp5_nano" in names
    for name in names:
        meta = pretrained.info(name)
        assert meta["npz_bytes"] <= pretrained.MAX_BYTES and meta["dtype"] in ("float32", "float64")
        for key in ("config", "steps", "train_cpu_seconds", "commit", "test_errors", "test_set"):
            assert key in meta, key
        if meta["dtype"] == "float32":
            assert max(meta["float32_relative_change"].values()) < 0.01
    assert model.name == "water_sto-3g_b3lyp5_nano" and model.config.molecule == "water"
    leaf = next(iter(next(iter(model.params.values())).values()))
    assert leaf.dtype == np.float64
    assert "water" in repr(model) and qpt_nb.pretrained is pretrained
    with pytest.raises(ValueError, match="no pretrained model 'caffeine'"):
        pretrained.load("caffeine")
    # a molecule shipped in several bases: its name alone is the STO-3G model, a longer prefix the other
    for stem in (
        "uracil_sto-3g_b3lyp5_nano",
        "uracil_def2-svp_b3lyp5_nano",
        "urea_def2-svp_pbe_nano",
        "urea_6-31g_pbe_nano",
    ):
        for suffix in (".json", ".npz"):
            (tmp_path / f"{stem}{suffix}").write_bytes(b"{}")
    assert pretrained.resolve_name("uracil", folder=tmp_path) == "uracil_sto-3g_b3lyp5_nano"
    assert pretrained.resolve_name("uracil_def2", folder=tmp_path) == "uracil_def2-svp_b3lyp5_nano"
    with pytest.raises(ValueError, match="ambiguous: urea_6-31g_pbe_nano, urea_def2-svp_pbe_nano"):
        pretrained.resolve_name("urea", folder=tmp_path)  # no STO-3G model to default to
    assert pretrained.resolve_name("uracil") == "uracil_sto-3g_b3lyp5_nano"  # the shipped pair
    # a damaged install is detected
    for suffix in (".json", ".npz"):
        data = (pretrained.FOLDER / f"{model.name}{suffix}").read_bytes()
        if suffix == ".npz":
            data = data[:-10] + b"0" * 10
        (tmp_path / f"{model.name}{suffix}").write_bytes(data)
    with pytest.raises(ValueError, match="damaged"):
        pretrained.load("water", folder=tmp_path)


def _n_check(name) -> int:
    """Conformers drawn to check a shipped model: 3, or 1 beyond STO-3G (a def2-SVP label with
    exact integrals takes about 40 CPU-s)."""
    return 3 if pretrained.info(name)["labels"]["basis"].lower() == "sto-3g" else 1


@pytest.mark.parametrize("name", pretrained.list())
def test_shipped_model_matches_pyscf_within_its_recorded_error(name):
    """A fresh draw (another seed than the recorded test set's): errors within 3x the
    recorded MAE, plus 1 ueV / 1 uHa of floor; with a single conformer the energy may reach
    1.5x the recorded largest error instead."""
    from qpt_nb.analysis.evaluation import make_test_set
    from qpt_nb.analysis.metrics import conformer_errors

    m = pretrained.load(name)
    meta, cfg = m.metadata, m.config
    sampler = cfg.sampler
    if sampler == "md":
        try:
            from qpt_nb.learn.conformers import require_md

            require_md()
        except ImportError:
            sampler = "normal_modes"
    n = _n_check(name)
    test = make_test_set(cfg.molecule_object(), n, sampler=sampler, seed=777, **cfg.sampler_kwargs())
    labels = label_many(test, cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level, eri=meta["labels"]["eri_kind"])
    preds = qpt_nb.predict(m, test, progress=False, batch_size=4)
    errs = [conformer_errors(lab, p.energy, p.fock, p.mo_energy, p.mo_coeff) for p, lab in zip(preds, labels)]
    rec = meta["test_errors"]
    e_mae = np.mean([abs(e["energy_error_mev"]) for e in errs])
    h_mae = np.mean([e["hamiltonian_mae_uha"] for e in errs])
    e_bound = (
        3 * rec["energy_mae_mev"] if n >= 3 else max(3 * rec["energy_mae_mev"], 1.5 * rec["energy_max_mev"])
    )
    assert e_mae <= e_bound + 1e-3, (e_mae, rec["energy_mae_mev"], rec["energy_max_mev"])
    assert h_mae <= 3 * rec["hamiltonian_mae_uha"] + 1.0, (h_mae, rec["hamiltonian_mae_uha"])
    # baseline sanity: the trained model beats the W = 0 sandwich by far
    assert e_mae < 0.1 * meta["baseline_w0"]["energy_mae_mev"]


# ----------------------------------------------------------------------------- predict
def test_predict_molecule_list_and_xyz(model, water, tmp_path):
    mols = [_moved(water, s) for s in range(3)]
    one = qpt_nb.predict(model, mols[0], progress=False)
    assert isinstance(one, list) and len(one) == 1 and one.settings["batch_size"] == 1
    p = one[0]
    n = 7
    assert p.fock.shape == p.density.shape == p.mo_coeff.shape == (n, n) and p.mo_energy.shape == (n,)
    assert set(p.seconds) == set(pr.PHASES) and p.tensors is not None and p.tensors.n_ao == n
    assert p.homo < p.lumo and p.gap == pytest.approx(p.lumo - p.homo) and p.n_occ == 5
    assert np.isclose(np.trace(p.density @ np.asarray(p.tensors.overlap)), 10.0)
    # three geometries, batches of two: the second batch is padded
    many = qpt_nb.predict(model, mols, batch_size=2, progress=False)
    assert [q.index for q in many] == [0, 1, 2] and many.compile_seconds >= 0 and many.wall_seconds > 0
    assert abs(many[0].energy - p.energy) < 1e-10
    np.testing.assert_allclose(many[0].fock, p.fock, atol=1e-10)
    # the same frames from an xyz file (xTB trajectory comments) and from xyz text
    path = tmp_path / "xtb.trj.xyz"
    write_xyz_frames(path, mols[:2], comments=[XTB_COMMENT] * 2)
    from_file = qpt_nb.predict(model, path, progress=False)
    from_text = qpt_nb.predict(model, path.read_text(), progress=False)
    for a, b, c in zip(many, from_file, from_text):
        assert abs(a.energy - b.energy) < 1e-9 and abs(a.energy - c.energy) < 1e-9
    # rotating and translating a geometry changes nothing (canonical frame)
    rot = _moved(mols[1], 5, scale=0.0)
    assert abs(qpt_nb.predict(model, [mols[1], rot], progress=False)[1].energy - many[1].energy) < 1e-9
    d = p.in_input_frame()
    assert np.isclose(np.trace(d["density"] @ d["overlap"]), 10.0)


def test_predict_from_trainer_and_options(model, water, monkeypatch, capsys):
    from qpt_nb.learn.train import Trainer

    tr = Trainer(model.config)
    try:
        tr.state = tr.state._replace(params=model.params, ema_params=model.params)
        a = qpt_nb.predict(tr, water, progress=False)[0]
    finally:
        tr.close()
    b = qpt_nb.predict("water_sto-3g_b3lyp5_nano", water, progress=False)[0]
    assert abs(a.energy - b.energy) < 1e-10
    monkeypatch.setattr(pr, "KEEP_TENSORS_BYTES", 0)
    with pytest.warns(RuntimeWarning, match="not kept"):
        assert qpt_nb.predict(model, water, progress=False)[0].tensors is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert qpt_nb.predict(model, water, progress=False, keep_tensors=False)[0].tensors is None
    with pytest.raises(ValueError, match="batch_size"):
        qpt_nb.predict(model, water, batch_size=0)
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)  # no tqdm: a counter
    qpt_nb.predict(model, water, progress=True, keep_tensors=False)
    assert "predict: 1/1" in capsys.readouterr().err


def test_geometries_of_another_molecule_are_refused(model, water, tmp_path):
    x = water.coords_angstrom
    cases = [
        (Molecule.builtin("methane"), "has 5 atoms (CH4), but the model was trained on water"),
        (Molecule.from_arrays(["S", "H", "H"], x), "atom 0 is S where"),
        (Molecule.from_arrays(["H", "O", "H"], x[[1, 0, 2]]), "another order (H O H)"),
        (Molecule.from_arrays(water.symbols, x, charge=2), "charge 2"),
    ]
    for mol, needle in cases:
        with pytest.raises(ValueError, match=needle.replace("(", r"\(").replace(")", r"\)")):
            qpt_nb.predict(model, [water, mol], progress=False)
    path = tmp_path / "mixed.xyz"
    write_xyz_frames(path, [water, Molecule.builtin("methane")])
    with pytest.raises(ValueError, match="frame 1 of mixed.xyz has 5 atoms"):
        qpt_nb.predict(model, path, progress=False)
    with pytest.raises(ValueError, match="xyz file not found"):
        qpt_nb.predict(model, tmp_path / "missing.xyz")
    with pytest.raises(ValueError, match="no geometries"):
        qpt_nb.predict(model, [])


# ----------------------------------------------------------------------------- model-seeded SCF
def test_model_seeded_scf_converges_to_the_minao_energy(model, water):
    mol = _moved(water, 11)
    (seeded,) = qpt_nb.model_scf(model, mol, conv_tol=1e-12)
    t = seeded.tensors
    minao = qpt_nb.scf(mol, "sto-3g", xc="b3lyp5", grid_level=1, guess="minao", tensors=t, conv_tol=1e-12)
    assert seeded.converged and minao.converged
    assert abs(seeded.energy - minao.energy) <= 1e-8
    assert seeded.n_iter <= minao.n_iter and seeded.timings["model_guess"] > 0
    assert seeded.timings["precompute"] < 0.5  # the prediction's tensors, no second precompute
    with pytest.raises(TypeError, match="basis"):
        qpt_nb.model_scf(model, mol, basis="def2-svp")
    with pytest.raises(ValueError, match="'atom'"):
        qpt_nb.scf(mol, "sto-3g", guess="atom")
    with pytest.raises(ValueError, match="square"):
        qpt_nb.scf(mol, "sto-3g", guess=np.zeros((7, 6)))
    with pytest.raises(ValueError, match=r"\(7, 7\) matrix"):
        qpt_nb.scf(mol, "sto-3g", xc="b3lyp5", grid_level=1, guess=np.eye(6), tensors=t)
    with pytest.raises(ValueError, match="another geometry"):
        qpt_nb.scf(water, "sto-3g", xc="b3lyp5", grid_level=1, tensors=t)
    with pytest.raises(ValueError, match="pass the basis"):
        qpt_nb.scf(mol, "6-31g", xc="b3lyp5", grid_level=1, tensors=t)


def test_qpt_nb_guess_speedup_rows(model, water):
    from qpt_nb.analysis.guesses import qpt_nb_guess_speedup

    test = [_moved(water, 21), _moved(water, 22)]
    out = qpt_nb_guess_speedup(model, test, conv_tol=1e-12)
    assert out["max_energy_difference"] <= 1e-8  # same frame, same tensors' grid: same energy
    assert [r["guess"] for r in out["rows"]] == ["qpt_nb minao", "qpt_nb model"] * 2
    s = out["summary"]
    assert s["qpt_nb model"]["converged"] == s["qpt_nb minao"]["converged"] == 2
    assert s["qpt_nb model"]["mean_cycles"] < s["qpt_nb minao"]["mean_cycles"]
    for r in out["rows"]:
        assert r["seconds"] >= r["scf_seconds"] > 0  # precompute or prediction on top


# ----------------------------------------------------------------------------- qpt-nb predict
def test_cli_predict_writes_csv_and_hamiltonians(model, water, tmp_path, capsys):
    mols = [_moved(water, s) for s in (21, 22)]
    traj = tmp_path / "md.xyz"
    write_xyz_frames(traj, mols, comments=[XTB_COMMENT] * 2)
    out, npz = tmp_path / "pred.csv", tmp_path / "h.npz"
    argv = ["predict", "--pretrained", "water", "--xyz", str(traj), "--out", str(out)]
    assert main(argv + ["--save-hamiltonians", str(npz), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "frames/s" in text and "2 frames" in text
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == (
        "index",
        "energy_hartree",
        "energy_ev",
        "homo_ev",
        "lumo_ev",
        "gap_ev",
        "seconds",
    )
    assert [int(r["index"]) for r in rows] == [0, 1]
    preds = qpt_nb.predict(model, mols, progress=False)
    for r, p in zip(rows, preds):
        assert abs(float(r["energy_hartree"]) - p.energy) < 1e-9
        assert float(r["energy_ev"]) == pytest.approx(p.energy * EV_PER_HARTREE)
        assert float(r["gap_ev"]) == pytest.approx(p.gap * EV_PER_HARTREE, abs=1e-7)
    with np.load(npz) as z:
        assert z["fock"].shape == (2, 7, 7) and str(z["frame"]) == "input"
        np.testing.assert_allclose(z["fock"][1], preds[1].in_input_frame()["fock"], atol=1e-9)
        # F C = S C eps in the saved (input) frame
        f, s, c, e = z["fock"][0], z["overlap"][0], z["mo_coeff"][0], z["mo_energy"][0]
        np.testing.assert_allclose(f @ c, s @ c * e, atol=1e-8)

    # a run directory: the default frames are its test_set.xyz
    run = tmp_path / "run"
    run.mkdir()
    comments = [f"test conformer {i} seed=12345 Angstrom" for i in range(2)]
    write_xyz_frames(run / "test_set.xyz", mols, comments=comments)
    state = dict(params=model.params)
    ckpt.save(run / "checkpoint.ckpt", dict(state=state, config=model.config.to_json(), step=7, format=1))
    assert main(["predict", "--run", str(run), "--out", str(tmp_path / "run.csv"), "--no-progress"]) == 0
    assert "(step 7)" in capsys.readouterr().out
    with open(tmp_path / "run.csv", newline="") as fh:
        again = list(csv.DictReader(fh))
    assert [r["energy_hartree"] for r in again] == [r["energy_hartree"] for r in rows]


def test_cli_predict_errors_exit_2(water, tmp_path, capsys):
    traj = tmp_path / "md.xyz"
    write_xyz_frames(traj, [water, water])
    out = ["--out", str(tmp_path / "p.csv")]
    _fails(
        ["predict", "--pretrained", "water", "--xyz", str(tmp_path / "nope.xyz")] + out, capsys, "nope.xyz"
    )
    other = tmp_path / "methane.xyz"
    write_xyz_frames(other, [Molecule.builtin("methane")])
    _fails(["predict", "--pretrained", "water", "--xyz", str(other)] + out, capsys, "frame 0", "5 atoms")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    _fails(["predict", "--run", str(empty), "--xyz", str(traj)] + out, capsys, "No checkpoint")
    _fails(
        ["predict", "--run", str(tmp_path / "norun"), "--xyz", str(traj)] + out, capsys, "No run directory"
    )
    _fails(["predict", "--run", str(empty)] + out, capsys, "test_set.xyz")
    _fails(["predict", "--pretrained", "caffeine", "--xyz", str(traj)] + out, capsys, "caffeine")
    _fails(["predict", "--pretrained", "water"] + out, capsys, "--xyz")
    assert not (tmp_path / "p.csv").exists()
