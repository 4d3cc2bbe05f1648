"""ASE interop: Molecule <-> Atoms, every file ase.io reads, `qpt-nb predict` to extxyz, and
`QPTCalculator` (energy and forces in ASE units, geometry optimisation)."""

import csv

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError
from ase.calculators.singlepoint import SinglePointCalculator

import qpt_nb
from qpt_nb.ase import FORCE_UNIT, QPTCalculator
from qpt_nb.cli.main import main
from qpt_nb.dft.molecule import Molecule, read_xyz_frames
from qpt_nb.units import EV_PER_HARTREE

WATER = Molecule.builtin("water")


def _frames(n=3):
    rng = np.random.default_rng(0)
    out = []
    for k in range(n):
        a = WATER.with_coords(WATER.coords_angstrom + rng.normal(scale=0.02, size=(3, 3))).to_ase()
        a.calc = SinglePointCalculator(a, energy=-2000.0 - k, forces=rng.normal(size=(3, 3)))
        a.arrays["tag_col"] = np.arange(3) + 10 * k  # an extra column
        a.info["source"] = "xtb md"
        out.append(a)
    return out


def test_molecule_round_trips_through_ase():
    m = Molecule.from_arrays(["O", "H"], [[0, 0, 0], [0, 0, 0.97]], charge=-1, name="hydroxide")
    a = m.to_ase()
    assert a.info["charge"] == -1 and not a.pbc.any() and a.get_chemical_symbols() == ["O", "H"]
    back = Molecule.from_ase(a)
    assert back == m and back.charge == -1 and back.name == "hydroxide"
    nh4 = Atoms(
        "NH4", positions=[[0, 0, 0], [0.6, 0.6, 0.6], [-0.6, -0.6, 0.6], [0.6, -0.6, -0.6], [-0.6, 0.6, -0.6]]
    )
    nh4.info.update(charge=1, multiplicity=1)
    assert Molecule.from_ase(nh4).charge == 1
    with pytest.raises(ValueError, match="periodic"):
        Molecule.from_ase(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]], cell=[5, 5, 5], pbc=True))
    with pytest.raises(ValueError, match="no positions"):
        Molecule.from_ase(Atoms("H2"))


def test_every_ase_format_reads(tmp_path):
    frames = _frames()
    ext = tmp_path / "md.extxyz"
    ase.io.write(ext, frames, format="extxyz")
    assert "Properties=species:S:1:pos:R:3" in ext.read_text().splitlines()[1]
    mols = read_xyz_frames(ext)
    assert len(mols) == 3
    np.testing.assert_allclose(mols[2].coords_angstrom, frames[2].positions, atol=1e-8)
    plain = tmp_path / "plain.xyz"
    plain.write_text(WATER.to_xyz())
    got = Molecule.from_xyz(plain)
    assert got.symbols == WATER.symbols and np.abs(got.coords_angstrom - WATER.coords_angstrom).max() < 1e-12
    for suffix in ("traj", "pdb", "sdf"):
        path = tmp_path / f"w.{suffix}"
        ase.io.write(path, WATER.to_ase())
        got = read_xyz_frames(path)
        assert got[0].symbols == WATER.symbols
        np.testing.assert_allclose(
            got[0].coords_angstrom, WATER.coords_angstrom, atol=1e-3
        )  # pdb: 3 decimals
    # charge and spin come from the info
    ion = WATER.to_ase()
    ion.info.update(charge=2, multiplicity=1)
    ase.io.write(tmp_path / "ion.extxyz", ion)
    assert read_xyz_frames(tmp_path / "ion.extxyz")[0].charge == 2


def test_bad_ase_files(tmp_path):
    pbc = tmp_path / "cell.extxyz"
    a = WATER.to_ase()
    a.set_cell([10, 10, 10])
    a.pbc = True
    ase.io.write(pbc, a)
    with pytest.raises(ValueError, match="frame 0 of cell.extxyz is periodic"):
        read_xyz_frames(pbc)
    nopos = tmp_path / "nopos.extxyz"
    nopos.write_text('3\nProperties=species:S:1:forces:R:3 pbc="F F F"\nO 0 0 0\nH 0 0.7 0.5\nH 0 -0.7 0.5\n')
    with pytest.raises(ValueError, match="no positions"):
        read_xyz_frames(nopos)
    trunc = tmp_path / "trunc.extxyz"
    trunc.write_text("3\ncomment\nO 0 0 0\nH 0 0.7 0.5\n")
    with pytest.raises(ValueError, match="trunc.extxyz"):
        read_xyz_frames(trunc)
    with pytest.raises(ValueError, match="extxyz file not found"):
        read_xyz_frames(tmp_path / "missing.extxyz")


def test_cli_predict_writes_extxyz_that_ase_reads(tmp_path, capsys):
    src = tmp_path / "md.extxyz"
    ase.io.write(src, _frames(), format="extxyz")
    out_csv, out_xyz = tmp_path / "p.csv", tmp_path / "p.extxyz"
    argv = ["predict", "--pretrained", "water", "--xyz", str(src), "--out", str(out_csv), str(out_xyz)]
    assert main(argv + ["--forces", "--no-progress"]) == 0
    with open(out_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    back = ase.io.read(out_xyz, index=":")
    assert len(back) == len(rows) == 3
    for r, a in zip(rows, back):
        assert a.get_potential_energy() == pytest.approx(float(r["energy_ev"]), abs=1e-9)
        assert a.get_potential_energy() / EV_PER_HARTREE == pytest.approx(
            float(r["energy_hartree"]), abs=1e-12
        )
        assert a.info["gap_ev"] == pytest.approx(float(r["gap_ev"]), abs=1e-9)
        assert a.get_forces().shape == (3, 3) and np.abs(a.get_forces()).max() > 1e-3
    # the approximate forces are those of Prediction.gradient
    (p,) = qpt_nb.predict("water", read_xyz_frames(src)[:1], progress=False)
    np.testing.assert_allclose(back[0].get_forces(), -p.gradient() * FORCE_UNIT, atol=1e-8)
    # bad input: one line, exit 2
    other = tmp_path / "methane.extxyz"
    ase.io.write(other, Molecule.builtin("methane").to_ase())
    cell = tmp_path / "cell.extxyz"
    a = WATER.to_ase()
    a.set_cell([9, 9, 9])
    a.pbc = True
    ase.io.write(cell, a)
    for path, needle in ((other, "5 atoms"), (cell, "periodic")):
        capsys.readouterr()
        assert main(["predict", "--pretrained", "water", "--xyz", str(path), "--out", str(out_csv)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert needle in err[-1], err


def test_calculator_modes_and_optimisation():
    from ase.optimize import BFGS

    calc = QPTCalculator(mode="scf", basis="sto-3g", grid_level=1)
    atoms = WATER.to_ase()
    atoms.calc = calc
    res = qpt_nb.scf(WATER, "sto-3g", grid_level=1)
    assert atoms.get_potential_energy() == pytest.approx(res.energy * EV_PER_HARTREE, abs=1e-6)
    np.testing.assert_allclose(atoms.get_forces(), -res.gradient() * FORCE_UNIT, atol=1e-5)
    with pytest.raises(PropertyNotImplementedError):
        atoms.get_stress()
    BFGS(atoms, logfile=None).run(fmax=0.01, steps=50)
    assert np.abs(atoms.get_forces()).max() < 0.01
    assert [h["guess"] for h in calc.history][:2] == ["minao", "previous"]
    seeded = WATER.to_ase()
    seeded.calc = QPTCalculator("water", mode="seeded")
    BFGS(seeded, logfile=None).run(fmax=0.01, steps=50)
    d = lambda a: np.linalg.norm(a.positions[:, None] - a.positions[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(seeded), d(atoms), atol=2e-3)  # the same minimum
    model = WATER.to_ase()
    model.calc = QPTCalculator("water", mode="model")
    assert model.get_potential_energy() == pytest.approx(res.energy * EV_PER_HARTREE, abs=0.05)
    with pytest.raises(ValueError, match="model's basis"):
        QPTCalculator("water", mode="seeded", basis="6-31g")
    with pytest.raises(ValueError, match="needs a model"):
        QPTCalculator(mode="model")


def test_train_reads_any_ase_file_and_its_charge(tmp_path):
    from qpt_nb.cli.train import xyz_geometry

    ion = Molecule.builtin("water").to_ase()
    ion.info.update(charge=2)
    ase.io.write(tmp_path / "w.traj", [ion, ion])  # two frames: training starts from the first
    text, mol = xyz_geometry(tmp_path / "w.traj")
    assert mol.charge == 2 and Molecule.from_xyz(text, charge=2).symbols == WATER.symbols
    with pytest.raises(FileNotFoundError, match="No file"):
        xyz_geometry(tmp_path / "missing.traj")
