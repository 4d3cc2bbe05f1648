"""Tests for qpt_nb.dft.molecule: parsing, validation, builtins, canonical frame."""

from pathlib import Path

import numpy as np
import pytest
from pyscf.lib import param

import qpt_nb  # noqa: F401  (x64)
from qpt_nb.dft.molecule import Molecule, principal_axes, read_xyz_frames, write_xyz_frames

WATER_XYZ = """3
water test
O   0.0000000  0.0000000  0.1173000
H   0.0000000  0.7572000 -0.4692000
H   0.0000000 -0.7572000 -0.4692000
"""
EXPECTED = {
    "allyl": 23,
    "water": 10,
    "uracil": 58,
    "ammonia": 10,
    "methane": 10,
    "ethanol": 26,
    "malondialdehyde": 38,
    "benzene": 42,
    "h2": 2,
    "lih": 4,
    "formaldehyde": 16,
    "alanine_dipeptide": 78,
}
SHARED_URACIL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "uracil.xyz"


def random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


# --------------------------------------------------------------------------- parsing
def test_from_xyz_text_and_round_trip(tmp_path):
    m = Molecule.from_xyz(WATER_XYZ)
    assert m.symbols == ("O", "H", "H") and m.n_atoms == 3
    assert m.coords_angstrom.dtype == np.float64 and m.coords_angstrom.shape == (3, 3)
    assert not m.coords_angstrom.flags.writeable
    m2 = Molecule.from_xyz(m.to_xyz())
    assert m2 == m
    path = tmp_path / "w.xyz"
    path.write_text(m.to_xyz("a comment"))
    assert Molecule.from_xyz(path) == m
    assert Molecule.from_xyz(str(path)) == m
    u = Molecule.builtin("uracil")
    u2 = Molecule.from_xyz(u.to_xyz(), name="uracil")
    np.testing.assert_allclose(u2.coords_angstrom, u.coords_angstrom, rtol=0, atol=1e-12)


def test_bare_lines_symbols_and_numbers():
    m = Molecule.from_xyz("o 0 0 0.1173\n1 0 0.7572 -0.4692\nh 0 -0.7572 -0.4692\n")
    assert m.symbols == ("O", "H", "H")
    cl = Molecule.from_xyz("CL 0 0 0\ncl 0 0 2.0", charge=0)
    assert cl.symbols == ("Cl", "Cl") and cl.n_electrons == 34
    single = Molecule.from_xyz("He 0 0 0")
    assert single.n_electrons == 2


def test_from_arrays_and_properties():
    m = Molecule.from_arrays(
        ["O", "H", "H"], [[0, 0, 0.1173], [0, 0.7572, -0.4692], [0, -0.7572, -0.4692]], name="w"
    )
    assert m.n_electrons == 10 and m.n_occ == 5
    np.testing.assert_array_equal(m.atomic_numbers, [8, 1, 1])
    np.testing.assert_allclose(m.masses, [15.999, 1.008, 1.008])
    assert m.coords_bohr.shape == (3, 3)
    assert repr(m) == "Molecule('w', H2O, 3 atoms, charge=0, spin=0)"
    assert repr(Molecule.builtin("uracil")) == "Molecule('uracil', C4H4N2O2, 12 atoms, charge=0, spin=0)"
    cation = Molecule.from_arrays(["O", "H", "H"], m.coords_angstrom, charge=1, spin=1)
    assert cation.n_electrons == 9
    assert hash(m) == hash(Molecule.from_xyz(m.to_xyz(), name="w"))


def test_unit_constants_one_convention():
    """X_PER_Y: one Y is X_PER_Y X. The old names stay as aliases of the same numbers."""
    from qpt_nb import units as u

    assert u.ANGSTROM_PER_BOHR == param.BOHR  # 1 Bohr = 0.529 Angstrom
    assert u.BOHR_PER_ANGSTROM == 1.0 / param.BOHR
    assert abs(u.EV_PER_HARTREE - 27.211386245988) < 1e-12 and u.MEV_PER_HARTREE == 1000 * u.EV_PER_HARTREE
    assert abs(u.CM1_PER_HARTREE / u.EV_PER_HARTREE - 8065.54) < 0.01  # cm^-1 per eV
    assert abs(u.HARTREE_PER_KELVIN * 298.15 * u.KCAL_MOL_PER_HARTREE - 0.5925) < 1e-4  # RT at 25 C
    assert 1822 < u.ME_PER_AMU < 1823
    old = dict(
        BOHR_ANGSTROM="ANGSTROM_PER_BOHR",
        ANGSTROM_BOHR="BOHR_PER_ANGSTROM",
        HARTREE_EV="EV_PER_HARTREE",
        KB_HARTREE_PER_K="HARTREE_PER_KELVIN",
        AMU_IN_ME="ME_PER_AMU",
        HARTREE_IN_CM1="CM1_PER_HARTREE",
    )
    for alias, name in old.items():
        assert getattr(u, alias) == getattr(u, name)
    current = [k for k in vars(u) if k.isupper() and k not in old]
    assert current and all("_PER_" in k for k in current), current


def test_coords_bohr_matches_pyscf_exactly():
    u = Molecule.builtin("uracil")
    assert param.BOHR == 0.52917721092
    np.testing.assert_array_equal(u.coords_bohr, u.to_pyscf("sto-3g").atom_coords())
    np.testing.assert_allclose(u.coords_bohr * param.BOHR, u.coords_angstrom, rtol=1e-15)


def test_multi_frame_round_trip(tmp_path):
    u = Molecule.builtin("uracil")
    rng = np.random.default_rng(0)
    frames = [u.with_coords(u.coords_angstrom + 0.01 * rng.normal(size=(12, 3))) for _ in range(3)]
    path = tmp_path / "traj.xyz"
    write_xyz_frames(path, frames, comments=["a", "b", "c"])
    back = read_xyz_frames(path)
    assert len(back) == 3
    for a, b in zip(frames, back):
        assert a.symbols == b.symbols
        np.testing.assert_allclose(a.coords_angstrom, b.coords_angstrom, rtol=0, atol=1e-12)
    assert len(read_xyz_frames(path.read_text())) == 3
    with pytest.raises(ValueError, match="multi-frame"):
        Molecule.from_xyz(path)
    with pytest.raises(ValueError, match="comments"):
        write_xyz_frames(path, frames, comments=["a"])


# --------------------------------------------------------------------------- builtins
def test_builtins_load_and_build():
    names = Molecule.builtins()
    assert names == sorted(names)
    for required in ("water", "ammonia", "methane", "ethanol", "malondialdehyde", "uracil", "benzene"):
        assert required in names
    for name in names:
        m = Molecule.builtin(name)
        assert m.name == name
        mol = m.to_pyscf("sto-3g")
        assert mol.nelectron == m.n_electrons == EXPECTED[name]
        assert mol.unit.lower().startswith("ang") and not mol.cart
        assert m.spin == mol.spin == m.n_electrons % 2  # allyl: a doublet
    assert Molecule.builtin("URACIL") == Molecule.builtin("uracil")
    assert Molecule.builtin("malonaldehyde").name == "malondialdehyde"


def test_uracil_is_shared_copy():
    u = Molecule.builtin("uracil")
    assert u.symbols == tuple("C C N C N C O O H H H H".split())
    if SHARED_URACIL.exists():
        ref = Molecule.from_xyz(SHARED_URACIL)
        assert ref.symbols == u.symbols
        np.testing.assert_array_equal(ref.coords_angstrom, u.coords_angstrom)


def test_unknown_builtin_lists_available():
    with pytest.raises(ValueError, match="available: .*uracil"):
        Molecule.builtin("caffeine")


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "text, match",
    [
        ("", "empty"),
        ("   \n\n", "empty"),
        ("2\ncomment\nXx 0 0 0\nH 0 0 1\n", "unknown element symbol 'Xx' on line 3"),
        ("3\ncomment\nO 0 0 0\nH 0 0 1\n", "header .* says 3 atoms but only 2"),
        ("1\ncomment\nO 0 0 0\nH 0 0 1\n", "more atom lines"),
        ("2\ncomment\nO 0 0 zero\nH 0 0 1\n", "non-numeric coordinate on line 3"),
        ("2\ncomment\nO 0 0\nH 0 0 1\n", "missing columns on line 3"),
        ("O 0 0 0\nH 0 0 nan\nH 0 1 0\n", "NaN coordinate for atom 1"),
        ("O 0 0 0\nH 0 0 inf\nH 0 1 0\n", "infinite coordinate for atom 1"),
        ("O 0 0 0\nH 0 0 1\nH 0 0 1.05\n", r"atoms 1 and 2 are too close: distance 0.05"),
        ("C1 0 0 0\n", "unknown element symbol 'C1'"),
        ("missing_file.xyz", "not found"),
    ],
)
def test_bad_xyz(text, match):
    with pytest.raises(ValueError, match=match):
        Molecule.from_xyz(text)


def test_bad_arrays():
    with pytest.raises(ValueError, match="unknown element symbol 'Q' at atom 1"):
        Molecule.from_arrays(["H", "Q"], np.eye(2, 3))
    with pytest.raises(ValueError, match="shape"):
        Molecule.from_arrays(["H", "H"], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        Molecule.from_arrays(["H", "H"], [[0, 0, 0], [0, 0, np.nan]])
    with pytest.raises(ValueError, match="too close"):
        Molecule.from_arrays(["H", "H"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least one atom"):
        Molecule.from_arrays([], np.zeros((0, 3)))


def test_atoms_absurdly_far_apart_are_refused():
    from qpt_nb.dft.molecule import MAX_DISTANCE_ANGSTROM

    water = Molecule.builtin("water").coords_angstrom
    far = np.vstack([water, [[1e6, 0.0, 0.0]]])
    with pytest.raises(ValueError, match=r"atoms 1 \(H\) and 3 \(H\) are 1e\+06 Angstrom apart"):
        Molecule.from_arrays(["O", "H", "H", "H"], far, charge=1)
    with pytest.raises(ValueError, match="Angstrom apart"):  # every path: with_coords, xyz text
        Molecule.builtin("water").with_coords(water + np.array([[0.0, 0.0, 0.0]] * 2 + [[0.0, 0.0, 2e3]]))
    with pytest.raises(ValueError, match=r"atoms 0 \(H\) and 1 \(H\)"):
        Molecule.from_xyz("H 0 0 0\nH 0 0 5000")
    # a long (2600-atom) chain: the pair is found blockwise, and the pair named is the farthest
    n = 2600
    chain = np.c_[np.arange(n) * 1.2, np.zeros(n), np.zeros(n)]
    with pytest.raises(ValueError, match=rf"atoms 0 \(C\) and {n - 1} \(C\)"):
        Molecule.from_arrays(["C"] * n, chain)
    # just inside the limit is accepted; every built-in molecule is far inside it
    edge = Molecule.from_arrays(["H", "H"], [[0, 0, 0], [0, 0, MAX_DISTANCE_ANGSTROM - 1e-6]])
    assert edge.n_atoms == 2
    for name in Molecule.builtins():
        x = Molecule.builtin(name).coords_angstrom
        assert np.max(np.linalg.norm(x[:, None] - x[None], axis=-1)) < 0.02 * MAX_DISTANCE_ANGSTROM


def test_charge_spin_consistency():
    xyz = Molecule.builtin("water").coords_angstrom
    with pytest.raises(ValueError, match="odd number of electrons.*spin=1"):
        Molecule.from_arrays(["O", "H", "H"], xyz, charge=1)
    with pytest.raises(ValueError, match="odd number of electrons.*spin=1"):
        Molecule.from_xyz("H 0 0 0")
    assert Molecule.from_xyz("H 0 0 0", spin=1).n_electrons == 1
    with pytest.raises(ValueError, match="n_electrons - spin must be even"):
        Molecule.from_arrays(["O", "H", "H"], xyz, spin=1)
    with pytest.raises(ValueError, match="spin must be >= 0"):
        Molecule.from_arrays(["O", "H", "H"], xyz, spin=-2)
    with pytest.raises(ValueError, match="exceeds the number of electrons"):
        Molecule.from_xyz("H 0 0 0\nH 0 0 0.74", spin=4)
    with pytest.raises(ValueError, match="charge 11 too large"):
        Molecule.from_arrays(["O", "H", "H"], xyz, charge=11)
    with pytest.raises(ValueError, match="charge must be an integer"):
        Molecule.from_arrays(["O", "H", "H"], xyz, charge=0.5)
    assert Molecule.from_arrays(["O", "H", "H"], xyz, charge=10).n_electrons == 0


def test_with_coords_validates():
    w = Molecule.builtin("water")
    moved = w.with_coords(w.coords_angstrom + 1.0)
    assert moved.name == "water" and moved.symbols == w.symbols
    with pytest.raises(ValueError, match="too close"):
        w.with_coords(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        w.with_coords(np.zeros((2, 3)))


def test_to_pyscf_basis_errors():
    w = Molecule.builtin("water")
    with pytest.raises(ValueError, match="unknown basis 'not-a-basis'"):
        w.to_pyscf("not-a-basis")
    xe = Molecule.from_xyz("Xe 0 0 0\nH 0 0 1.7", spin=0, charge=1)
    with pytest.raises(ValueError, match="'6-31g' has no functions for element Xe"):
        xe.to_pyscf("6-31g")
    with pytest.raises(ValueError, match="fixed by the Molecule"):
        w.to_pyscf("sto-3g", charge=1)
    with pytest.raises(ValueError, match="not a pyscf.gto.Mole attribute"):
        w.to_pyscf("sto-3g", no_such_option=1)
    assert w.to_pyscf("sto-3g", cart=True).cart
    mol = w.to_pyscf("def2-svp")
    assert mol.nao == 24 and mol.verbose == 0


# --------------------------------------------------------------------------- canonical frame
@pytest.mark.parametrize("name", ["uracil", "ethanol", "malondialdehyde", "water", "formaldehyde"])
def test_canonical_invariant_under_rigid_motion(name):
    m = Molecule.builtin(name)
    ref = m.canonical()
    rng = np.random.default_rng(42)
    for _ in range(5):
        q = random_rotation(rng)
        moved = m.with_coords(m.coords_angstrom @ q.T + rng.normal(size=3) * 5.0)
        np.testing.assert_allclose(moved.canonical().coords_angstrom, ref.coords_angstrom, rtol=0, atol=1e-8)


def test_canonical_frame_properties():
    u = Molecule.builtin("uracil")
    c = u.canonical()
    assert c.symbols == u.symbols and c.name == "uracil"
    center, rot = principal_axes(c.coords_angstrom, c.masses)
    np.testing.assert_allclose(center, 0, atol=1e-12)
    np.testing.assert_allclose(rot, np.eye(3), atol=1e-10)
    # inertia diagonal with ascending moments
    r, m = c.coords_angstrom, c.masses
    inertia = (m * (r * r).sum(1)).sum() * np.eye(3) - np.einsum("i,ij,ik->jk", m, r, r)
    np.testing.assert_allclose(inertia - np.diag(np.diag(inertia)), 0, atol=1e-9)
    assert np.all(np.diff(np.diag(inertia)) > 0)
    # sign convention: positive third moments on axes 1 and 2; proper rotation
    assert np.all((m[:, None] * r[:, :2] ** 3).sum(0) > 0)
    _, rot_u = principal_axes(u.coords_angstrom, u.masses)
    assert np.isclose(np.linalg.det(rot_u), 1.0)
    # rigid motion: distances preserved
    d = lambda x: np.linalg.norm(x[:, None] - x[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(c.coords_angstrom), d(u.coords_angstrom), atol=1e-12)
