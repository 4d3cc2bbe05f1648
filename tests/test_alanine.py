"""Alanine dipeptide and its phi/psi map: the built-in, dihedral geometry, the 'dihedral'
sampler, the map's region tables and plots, TrainConfig / CLI validation of the ranges."""

import json

import numpy as np
import pytest

import qpt_nb  # noqa: F401  (float64)
from qpt_nb.analysis.ramachandran import EnergyMap, angle_grid, map_geometries, region_mask
from qpt_nb.dft import dihedral as dh
from qpt_nb.dft.molecule import MIN_DISTANCE_ANGSTROM, Molecule
from qpt_nb.learn.config import TrainConfig
from qpt_nb.learn.conformers import SAMPLERS, ConformerStream, make_sampler, min_distance
from qpt_nb.learn.dihedral_sampler import DihedralSampler, parse_range
from qpt_nb.units import MEV_PER_HARTREE

PHI, PSI = (4, 6, 8, 14), (6, 8, 14, 16)


@pytest.fixture(scope="module")
def ala():
    return Molecule.builtin("alanine_dipeptide")


def _bond_lengths(x, bonds):
    i, j = np.nonzero(np.triu(bonds))
    return np.linalg.norm(x[i] - x[j], axis=-1)


# ----------------------------------------------------------------------------- the built-in
def test_builtin_alanine_dipeptide(ala):
    assert ala.n_atoms == 22 and ala.formula == "C6H12N2O2" and ala.n_electrons == 78
    assert ala.to_pyscf("sto-3g").nao == 62
    assert "alanine_dipeptide" in Molecule.builtins()
    assert dh.builtin_dihedrals("Alanine_Dipeptide") == {"phi": PHI, "psi": PSI}
    assert dh.builtin_dihedrals("water") == {}
    assert dh.dihedral(ala.coords_angstrom, PHI) == pytest.approx(180.0, abs=0.5)
    assert dh.dihedral(ala.coords_angstrom, PSI) == pytest.approx(180.0, abs=0.5)
    assert dh.dihedrals_from_comment("x; chi1 = 1, 2,3 ,4 and w = atoms 5,6,7,8") == {
        "chi1": (1, 2, 3, 4),
        "w": (5, 6, 7, 8),
    }


def test_dihedral_geometry_matches_ase(ala):
    ase = pytest.importorskip("ase")
    bonds = dh.bond_graph(ala.symbols, ala.coords_angstrom)
    assert bonds.sum() // 2 == 21  # a tree: 22 atoms, no ring
    assert np.flatnonzero(dh.rotating_side(bonds, 8, 14)).tolist() == list(range(14, 22))
    for phi, psi in [(63.0, 301.0), (-75.0, 145.0), (359.5, 0.25)]:
        x = dh.set_dihedrals(
            ala.symbols, ala.coords_angstrom, {"phi": PHI, "psi": PSI}, dict(phi=phi, psi=psi)
        )
        atoms = ase.Atoms(symbols=list(ala.symbols), positions=x)
        assert dh.dihedral(x, PHI) == pytest.approx(phi % 360, abs=1e-9)
        assert dh.dihedral(x, PSI) == pytest.approx(psi % 360, abs=1e-9)
        assert atoms.get_dihedral(*PHI) == pytest.approx(phi % 360, abs=1e-6)
        assert atoms.get_dihedral(*PSI) == pytest.approx(psi % 360, abs=1e-6)
        np.testing.assert_allclose(
            _bond_lengths(x, bonds), _bond_lengths(ala.coords_angstrom, bonds), atol=1e-12
        )
    ring = dh.bond_graph(*_ring())
    with pytest.raises(ValueError, match="ring"):
        dh.rotating_side(ring, 0, 1)
    with pytest.raises(ValueError, match="not bonded"):
        dh.rotating_side(bonds, 0, 21)
    with pytest.raises(ValueError, match="4 distinct"):
        dh.dihedral(ala.coords_angstrom, (1, 1, 2, 3))


def _ring():
    """Cyclopropane-like C3 ring (symbols, coords)."""
    a = np.radians([0.0, 120.0, 240.0])
    return ("C", "C", "C"), np.stack([0.88 * np.cos(a), 0.88 * np.sin(a), 0 * a], 1)


def test_periodic_regions():
    a = np.array([0.0, 45.0, 179.9, 180.0, 300.0, 359.9, 360.0, -30.0])
    assert dh.in_range(a, (0, 180)).tolist() == [True, True, True, False, False, False, True, False]
    assert dh.in_range(a, (-90, 90)).tolist() == [True, True, False, False, True, True, True, True]
    assert dh.in_range(a, (0, 360)).all() and dh.in_range(a, (-180, 180)).all()
    assert dh.in_range(a, (45, 45)).tolist() == [False, True] + [False] * 6
    np.testing.assert_allclose(angle_grid(4), [45, 135, 225, 315])
    np.testing.assert_allclose(angle_grid(3, offset=0.0), [0, 120, 240])
    m = region_mask(angle_grid(4), angle_grid(4), (0, 180), (90, 270))
    assert m.shape == (4, 4) and m.sum() == 4 and m[:2, 1:3].all()


# ----------------------------------------------------------------------------- the sampler
def test_sampler_sets_requested_angles_and_keeps_bonds(ala):
    assert "dihedral" in SAMPLERS
    s = make_sampler("dihedral", ala, phi_range=(200, 300), psi_range="-60,30", sigma=0.0)
    assert isinstance(s, DihedralSampler)
    x = s(16, seed=3)
    assert x.shape == (16, 22, 3) and s.last_angles.shape == (16, 2)
    bonds = dh.bond_graph(ala.symbols, ala.coords_angstrom)
    ref = _bond_lengths(ala.coords_angstrom, bonds)
    for xi, (phi, psi) in zip(x, s.last_angles):
        assert 200 <= phi < 300 and dh.in_range(psi, (-60, 30))
        assert dh.dihedral(xi, PHI) == pytest.approx(phi, abs=1e-9)
        assert dh.dihedral(xi, PSI) == pytest.approx(psi, abs=1e-9)
        for j, k in ((6, 8), (8, 14)):  # the rotated bonds
            assert np.linalg.norm(xi[j] - xi[k]) == pytest.approx(
                np.linalg.norm(ala.coords_angstrom[j] - ala.coords_angstrom[k]), abs=1e-12
            )
        np.testing.assert_allclose(_bond_lengths(xi, bonds), ref, atol=1e-12)
    spread = np.ptp(s.last_angles, axis=0)
    assert spread[0] > 40 and spread[1] > 40  # uniform over the region, not one value


def test_sampler_is_deterministic_and_wiggles(ala):
    s = DihedralSampler(ala, phi_range=(0, 180), psi_range=(0, 180), sigma=0.05)
    a = s(8, seed=11)
    np.testing.assert_array_equal(a, DihedralSampler(ala)(8, seed=11))  # same seed, same bits
    assert not np.array_equal(a, s(8, seed=12))
    s(8, seed=11)
    rigid = np.stack([s.geometry(p, q) for p, q in s.last_angles])
    assert 0.04 < (a - rigid).std() < 0.06  # the wiggle: sigma = 0.05 Angstrom per component
    for x, (phi, psi) in zip(a, s.last_angles):  # the torsions move by a few degrees only
        assert abs((dh.dihedral(x, PHI) - phi + 180) % 360 - 180) < 15
        assert abs((dh.dihedral(x, PSI) - psi + 180) % 360 - 180) < 15
    stream = ConformerStream(ala, "dihedral", seed=5, chunk=4, phi_range=(0, 180), psi_range=(0, 180))
    first = [next(stream).coords_angstrom for _ in range(6)]
    again = ConformerStream(ala, "dihedral", seed=5, chunk=4, start=3, phi_range=(0, 180), psi_range=(0, 180))
    np.testing.assert_array_equal(next(again).coords_angstrom, first[3])
    assert stream.rejected == 0 and stream.position == 6


def _clashing_pair():
    """H-C-C-H at 180 degrees whose two H land 0.4 Angstrom apart at 0 degrees."""
    x = np.array([[0.55, 1.0, 0.0], [0.0, 0.0, 0.0], [1.5, 0.0, 0.0], [0.95, -1.0, 0.0]])
    return Molecule.from_arrays(["H", "C", "C", "H"], x, name="toy")


def test_sampler_rejects_clashes_with_a_count(ala):
    toy = _clashing_pair()
    tors = {"phi": (0, 1, 2, 3), "psi": (0, 1, 2, 3)}  # psi is set last: it decides
    s = DihedralSampler(toy, phi_range=(0, 360), psi_range=(0, 360), sigma=0.0, dihedrals=tors)
    with pytest.warns(RuntimeWarning, match="rejected"):
        x = s(200, seed=0)
    assert s.rejected > 0 and s.drawn == 200 + s.rejected and s.last_rejected == s.rejected
    assert min(min_distance(xi) for xi in x) >= MIN_DISTANCE_ANGSTROM
    # |psi| < ~17 degrees brings the two H within 0.5 Angstrom: about 9 % of the draws
    assert 0.03 < s.rejected / s.drawn < 0.2
    with pytest.raises(ValueError, match=r"0 of 3 conformers.*closer than 0.5"):
        DihedralSampler(toy, phi_range=(0, 0), psi_range=(0, 0), sigma=0.0, dihedrals=tors, max_tries=4)(3)
    # the real molecule: phi = psi = 0 puts an H onto an H
    with pytest.raises(ValueError, match="Choose another region"):
        DihedralSampler(ala, phi_range=(0, 2), psi_range=(0, 2), sigma=0.01, max_tries=3)(2)
    mols = map_geometries(ala, [0.0, 90.0], [0.0, 180.0])
    assert [m is None for m in mols] == [True, False, False, False]


def test_sampler_input_errors(ala):
    water = Molecule.builtin("water")
    with pytest.raises(ValueError, match="phi and psi atoms of 'water'"):
        DihedralSampler(water)
    with pytest.raises(ValueError, match="out of range"):
        DihedralSampler(ala, dihedrals={"phi": (4, 6, 8, 40), "psi": PSI})
    with pytest.raises(ValueError, match="sigma"):
        DihedralSampler(ala, sigma=-1)
    with pytest.raises(ValueError, match="n must be"):
        DihedralSampler(ala)(0)
    xyz = ala.to_xyz(comment="custom; phi = 4,6,8,14 and psi = 6,8,14,16")
    custom = Molecule.from_xyz(xyz, name="custom")
    assert DihedralSampler(custom, xyz_text=xyz).dihedrals == {"phi": PHI, "psi": PSI}


# ----------------------------------------------------------------------------- ranges: config and CLI
def test_parse_range():
    assert parse_range("0,180") == (0.0, 180.0)
    assert parse_range(" -90 , 90 ") == (-90.0, 90.0)
    assert parse_range([10, 10]) == (10.0, 10.0)
    for bad, why in [
        ("0;180", "LOW,HIGH"),
        ("0,180,270", "LOW,HIGH"),
        ("a,b", "LOW,HIGH"),
        ("180,0", "LOW > HIGH"),
        ("0,400", "400 degrees wide"),
        ("nan,1", "not finite"),
        (5, "LOW,HIGH"),
        ((True, 3), "LOW,HIGH"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_range(bad, "phi_range")


def test_train_config_ranges_round_trip():
    cfg = TrainConfig(
        molecule="alanine_dipeptide", sampler="dihedral", phi_range="180,360", psi_range=[0, 90]
    )
    assert cfg.phi_range == (180.0, 360.0) and cfg.psi_range == (0.0, 90.0)
    assert cfg.sampler_kwargs() == dict(sigma=0.05, phi_range=(180.0, 360.0), psi_range=(0.0, 90.0))
    back = TrainConfig.from_json(json.loads(json.dumps(cfg.to_json())))
    assert back == cfg
    assert TrainConfig().phi_range == (0.0, 180.0)  # default, for every sampler
    old = {k: v for k, v in TrainConfig().to_json().items() if not k.endswith("_range")}
    assert TrainConfig.from_json(old).psi_range == (0.0, 180.0)  # a run saved before the fields
    with pytest.raises(ValueError, match="TrainConfig.psi_range must be 'LOW,HIGH'"):
        TrainConfig(psi_range="0-180")
    with pytest.raises(ValueError, match="phi and psi atoms of 'water'"):
        TrainConfig(molecule="water", sampler="dihedral")
    TrainConfig(molecule="water", phi_range="0,90")  # ranges are checked, but unused, for other samplers


@pytest.fixture
def no_jax_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("QPT_NB_JAX_CACHE", "off")
    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))


def test_cli_bad_range_exit_2(tmp_path, capsys, no_jax_cache):
    from qpt_nb.cli.main import build_parser, main

    base = ["train", "--molecule", "alanine_dipeptide", "--sampler", "dihedral", "--steps", "2"]
    out = ["--out", str(tmp_path / "run"), "--no-progress"]
    for extra, needle in [
        (["--phi-range", "0;180"], "TrainConfig.phi_range must be 'LOW,HIGH'"),
        (["--psi-range", "90,0"], "LOW > HIGH"),
        (["--phi-range=-180,400"], "580 degrees wide"),
    ]:
        assert main(base + extra + out) == 2
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.startswith("qpt-nb train: error: ") and needle in line, line
    assert main(["train", "--molecule", "water", "--sampler", "dihedral", "--steps", "2", *out]) == 2
    assert "phi and psi atoms" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    args = build_parser().parse_args(base + ["--phi-range", "0,180", "--psi-range=-90,90"])
    assert (args.phi_range, args.psi_range) == ("0,180", "-90,90")


# ----------------------------------------------------------------------------- the map
def _synthetic_map():
    """4 x 4 map: PySCF = a landscape; QPT = PySCF + 1 meV inside [0, 180)^2, + 5 meV
    outside; W = 0 = PySCF + 100 meV; one clash (NaN) outside."""
    phi = psi = angle_grid(4)  # 45, 135, 225, 315
    p, q = np.meshgrid(np.radians(phi), np.radians(psi), indexing="ij")
    pyscf = -400.0 + 0.01 * (np.cos(p) + np.sin(q))
    inside = (phi[:, None] < 180) & (psi[None, :] < 180)
    qpt = pyscf + np.where(inside, 1.0, 5.0) / MEV_PER_HARTREE
    w0 = pyscf + 100.0 / MEV_PER_HARTREE
    e = dict(qpt=qpt, w0=w0, pyscf=pyscf)
    for v in e.values():
        v[3, 3] = np.nan
    return EnergyMap(phi, psi, e, (0, 180), (0, 180), dict(note="synthetic"))


def test_map_region_mask_and_error_table(tmp_path):
    m = _synthetic_map()
    mask = m.region_mask()
    assert mask.shape == (4, 4) and mask.sum() == 4 and mask[:2, :2].all()
    rows = {r["region"]: r for r in m.error_table()}
    assert (rows["inside"]["n"], rows["outside"]["n"], rows["all"]["n"]) == (4, 11, 15)
    assert rows["inside"]["qpt_mae_mev"] == pytest.approx(1.0)
    assert rows["outside"]["qpt_mae_mev"] == pytest.approx(5.0)
    assert rows["all"]["qpt_mae_mev"] == pytest.approx((4 * 1 + 11 * 5) / 15)
    assert rows["all"]["qpt_max_mev"] == pytest.approx(5.0)
    assert rows["all"]["w0_mae_mev"] == pytest.approx(100.0)
    assert rows["all"]["w0_rel_mae_mev"] == pytest.approx(0.0, abs=1e-6)  # a constant shift
    assert rows["inside"]["qpt_rel_mae_mev"] > 0  # the landscape itself is distorted
    rel = m.relative_mev("pyscf")
    assert np.nanmin(rel) == 0.0 and np.isnan(rel[3, 3])
    text = m.table()
    assert "inside" in text and "outside" in text and "1.00" in text and "5.00" in text
    back = EnergyMap.load(m.save(tmp_path / "map.json"))
    for k in ("qpt", "w0", "pyscf"):
        np.testing.assert_array_equal(back.energies[k], m.energies[k])
    assert back.phi_range == (0.0, 180.0) and back.metadata == {"note": "synthetic"}
    assert json.loads((tmp_path / "map.json").read_text())["errors_mev"][0]["region"] == "inside"
    with pytest.raises(ValueError, match="shape"):
        EnergyMap([0, 90], [0], dict(qpt=np.zeros((3, 1))))


def test_map_figures():
    from qpt_nb.viz.ramachandran import energy_map_figure, psi_scan_figure, sample_figure

    m = _synthetic_map()
    fig = energy_map_figure(m)
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 6
    assert images[0].get_xlim() == (0.0, 360.0)
    assert any(p.get_width() == 180 for p in images[0].patches)  # the region outline
    assert "|QPT (trained) - PySCF|" in images[2].get_title()
    np.testing.assert_allclose(
        np.ma.filled(images[2].images[0].get_array(), np.nan).T, np.abs(m.error_mev("qpt"))
    )
    assert len([ax for ax in energy_map_figure(m, key="w0").axes if ax.images]) == 6
    scan = EnergyMap([45.0], m.psi, {k: v[:1] for k, v in m.energies.items()}, m.phi_range, m.psi_range)
    top = psi_scan_figure(scan).axes[0]
    assert len(top.lines) == 3 and top.get_xlim() == (0.0, 360.0)
    assert sample_figure(np.array([[10.0, 20.0], [370.0, 100.0]]), m).axes[0].lines[0].get_xdata().max() < 360


@pytest.mark.slow
def test_energy_map_end_to_end(tmp_path):
    """Two training steps on alanine dipeptide (grid level 0), then a 2 x 2 map and a
    2-point psi scan against PySCF (about 1.5 minutes on 2 cores)."""
    from qpt_nb.analysis.ramachandran import energy_map, psi_scan
    from qpt_nb.learn.train import Trainer

    cfg = TrainConfig(
        molecule="alanine_dipeptide",
        grid_level=0,
        sampler="dihedral",
        warmup_steps=1,
        decay_steps=10,
        reuse=2,
        checkpoint_every=10**9,
    )
    tr = Trainer(cfg)
    try:
        tr.run(2)
        m = energy_map(tr, 2, cache_dir=tmp_path)
        scan = psi_scan(tr, m.phi[0], 2, cache_dir=tmp_path)
    finally:
        tr.close()
    assert m.shape == (2, 2) and np.isfinite(m.energies["pyscf"]).all()
    assert m.metadata["n_ao"] == 62 and m.metadata["n_clash"] == 0
    np.testing.assert_allclose(scan.energies["pyscf"][0], m.energies["pyscf"][0], atol=1e-9)
    assert (m.energies["w0"] > m.energies["pyscf"]).all()  # the sandwich is variational
