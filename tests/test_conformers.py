"""Tests for qpt_nb.learn.conformers: seeded wiggle / normal-mode / MD samplers and streams."""

import importlib.util
import sys

import numpy as np
import pytest

import qpt_nb  # noqa: F401  (enables x64)
from qpt_nb.dft.molecule import Molecule
from qpt_nb.learn import conformers as C
from qpt_nb.units import BOHR_PER_ANGSTROM

HAVE_MD = all(importlib.util.find_spec(m) is not None for m in ("tblite", "ase"))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def water():
    return Molecule.builtin("water")


@pytest.fixture(scope="module")
def water_hessian(water):
    return C.compute_hessian(water, use_cache=False)


# ---------------------------------------------------------------- wiggle
def test_wiggle_shape_determinism_and_seeds(water):
    a = C.wiggle(water, 7, seed=3)
    assert a.shape == (7, 3, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a, C.wiggle(water, 7, seed=3))
    assert not np.allclose(a, C.wiggle(water, 7, seed=4))
    assert not np.allclose(a[0], a[1])


def test_wiggle_sigma_is_std_in_angstrom(water):
    d = C.wiggle(water, 4000, sigma=0.05, seed=1) - water.coords_angstrom
    assert abs(d.mean()) < 0.003
    assert d.std() == pytest.approx(0.05, rel=0.03)
    d = C.wiggle(water, 4000, variance=0.05, seed=1) - water.coords_angstrom
    assert d.std() == pytest.approx(np.sqrt(0.05), rel=0.03)  # literal-variance reading
    np.testing.assert_array_equal(C.wiggle(water, 3, sigma=0.0), np.stack([water.coords_angstrom] * 3))
    d = C.wiggle(water, 5, atoms=[0], seed=2) - water.coords_angstrom
    assert np.all(d[:, 1:] == 0) and np.all(d[:, 0] != 0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(n=0),
        dict(n=-2),
        dict(n=1.5),
        dict(n=3, sigma=-0.1),
        dict(n=3, sigma=0.1, variance=0.01),
        dict(n=3, variance=-1.0),
        dict(n=3, seed=-1),
    ],
)
def test_wiggle_bad_inputs(water, kw):
    with pytest.raises(ValueError):
        C.wiggle(water, **kw)


# ---------------------------------------------------------------- normal modes
def test_hessian_is_cached_in_memory_and_on_disk(water, tmp_path):
    C._HESSIAN_MEMO.clear()
    h = C.compute_hessian(water)
    assert h.shape == (9, 9) and np.allclose(h, h.T)
    files = list((tmp_path / "cache" / "hessians").glob("*.npy"))
    assert len(files) == 1
    C._HESSIAN_MEMO.clear()
    np.testing.assert_array_equal(C.compute_hessian(water), h)  # from disk
    with pytest.raises(ValueError, match="unknown hessian method"):
        C.compute_hessian(water, "mp2")


def test_pyscf_hessian_fallback_without_tblite(water, monkeypatch):
    monkeypatch.setitem(sys.modules, "tblite.interface", None)  # as if not installed
    h = C.compute_hessian(water, "auto", use_cache=False)  # -> RHF/sto-3g, analytic
    vib = C.vibrational_modes(water, h)
    assert vib.n_modes == 3 and np.all((vib.wavenumbers > 1000) & (vib.wavenumbers < 5500))


def test_normal_modes_of_water(water, water_hessian):
    vib = C.vibrational_modes(water, water_hessian)
    assert vib.n_modes == 3 and vib.dropped_wavenumbers.size == 0
    assert np.all(vib.wavenumbers > 1000) and np.all(vib.wavenumbers < 5000)
    np.testing.assert_allclose(vib.modes.T @ vib.modes, np.eye(3), atol=1e-12)
    # PySCF layout (N, N, 3, 3) gives the same modes
    h4 = water_hessian.reshape(3, 3, 3, 3).transpose(0, 2, 1, 3)
    np.testing.assert_allclose(C.vibrational_modes(water, h4).wavenumbers, vib.wavenumbers)


def test_normal_mode_sample_determinism_and_no_rigid_motion(water, water_hessian):
    a = C.normal_mode_sample(water, 50, seed=5, hessian=water_hessian)
    assert a.shape == (50, 3, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a, C.normal_mode_sample(water, 50, seed=5, hessian=water_hessian))
    assert not np.allclose(a, C.normal_mode_sample(water, 50, seed=6, hessian=water_hessian))
    m = water.masses
    dx = a - water.coords_angstrom
    assert np.abs(np.einsum("i,nia->na", m, dx) / m.sum()).max() < 1e-8  # no translation
    r = water.coords_angstrom - m @ water.coords_angstrom / m.sum()
    ang = np.einsum("i,ia,nib->nab", m, r, dx)  # Eckart: sum m r0 x dx = 0
    assert np.abs(ang - ang.transpose(0, 2, 1)).max() < 1e-8
    assert 0.001 < np.abs(dx).mean() < 0.1  # thermal, not huge


def test_normal_mode_equipartition(water, water_hessian):
    t = 300.0
    x = C.normal_mode_sample(water, 2000, temperature=t, seed=11, hessian=water_hessian)
    dx = ((x - water.coords_angstrom) * BOHR_PER_ANGSTROM).reshape(2000, -1)
    energy = 0.5 * np.einsum("ni,ij,nj->n", dx, water_hessian, dx)  # Hartree
    expected = 3 / 2 * C.HARTREE_PER_KELVIN * t  # 3 modes, kT/2 each
    assert energy.mean() == pytest.approx(expected, rel=0.10)
    hot = C.normal_mode_sample(water, 2000, temperature=4 * t, seed=11, hessian=water_hessian)
    np.testing.assert_allclose(hot - water.coords_angstrom, 2 * (x - water.coords_angstrom))


def test_rigid_basis_linear_molecule_has_five_modes():
    x = np.array([[0.0, 0.0, -2.2], [0.0, 0.0, 0.0], [0.0, 0.0, 2.2]])
    assert C._rigid_basis(x, np.array([16.0, 12.0, 16.0])).shape == (9, 5)
    assert C._rigid_basis(x + [[0, 0.3, 0], [0, 0, 0], [0, 0, 0]], np.array([16.0, 12.0, 16.0])).shape == (
        9,
        6,
    )


@pytest.mark.parametrize("kw", [dict(n=0), dict(n=2, temperature=0.0), dict(n=2, temperature=-5)])
def test_normal_mode_bad_inputs(water, water_hessian, kw):
    with pytest.raises(ValueError):
        C.normal_mode_sample(water, hessian=water_hessian, **kw)


def test_bad_hessian_shape(water):
    with pytest.raises(ValueError, match="hessian"):
        C.vibrational_modes(water, np.eye(6))


# ---------------------------------------------------------------- streams
@pytest.mark.parametrize("sampler", ["wiggle", "normal_modes"])
def test_conformer_stream_restart(water, water_hessian, sampler):
    kw = {"hessian": water_hessian} if sampler == "normal_modes" else {"sigma": 0.02}
    first = [next(s) for s in [C.ConformerStream(water, sampler, seed=9, chunk=8, **kw)] for _ in range(21)]
    assert all(isinstance(m, Molecule) and m.symbols == water.symbols for m in first)
    coords = np.stack([m.coords_angstrom for m in first])
    assert len({c.tobytes() for c in coords}) == 21  # all distinct
    for k in (0, 7, 8, 13, 20):
        s = C.ConformerStream(water, sampler, seed=9, chunk=8, start=k, **kw)
        np.testing.assert_array_equal(next(s).coords_angstrom, coords[k])
        assert s.position == k + 1
    other = C.ConformerStream(water, sampler, seed=10, chunk=8, **kw)
    assert not np.allclose(next(other).coords_angstrom, coords[0])


def test_make_sampler_and_stream_bad_names(water):
    with pytest.raises(ValueError, match="wiggle.*normal_modes.*md"):
        C.make_sampler("gaussian", water)
    with pytest.raises(ValueError, match="normal_modes"):
        C.ConformerStream(water, "nope")
    with pytest.raises(ValueError):
        C.ConformerStream(water, "wiggle", sigma=-1.0)
    with pytest.raises(ValueError):
        C.ConformerStream(water, "wiggle", chunk=0)
    sample = C.make_sampler("wiggle", water, sigma=0.01)
    np.testing.assert_array_equal(sample(4, seed=2), C.wiggle(water, 4, sigma=0.01, seed=2))


def test_md_missing_dependency_gives_install_hint(water, monkeypatch):
    monkeypatch.setitem(sys.modules, "ase", None)  # makes `import ase` fail
    with pytest.raises(ImportError, match=r"qpt_nb\[md\]"):
        C.md_trajectory(water, 2)


# ---------------------------------------------------------------- MD (optional extra)
@pytest.mark.skipif(not HAVE_MD, reason="needs the md extra: pip install 'qpt_nb[md]'")
def test_md_trajectory_water_short(water):
    kw = dict(temperature=300.0, stride=10, equilibration=0)
    a = C.md_trajectory(water, 5, seed=1, **kw)  # 50 steps
    assert a.shape == (5, 3, 3) and a.dtype == np.float64
    np.testing.assert_array_equal(a, C.md_trajectory(water, 5, seed=1, **kw))
    assert not np.allclose(a, C.md_trajectory(water, 5, seed=2, **kw))
    assert min(C.min_distance(f) for f in a) > 0.5
    r = C.rmsd(a, water.coords_angstrom)
    assert np.all(r > 1e-4) and np.all(r < 0.3)
    s = C.ConformerStream(water, "md", seed=1, chunk=2, **kw)  # one continuous trajectory
    np.testing.assert_array_equal(np.stack([next(s).coords_angstrom for _ in range(5)]), a)
    s3 = C.ConformerStream(water, "md", seed=1, chunk=2, start=3, **kw)
    np.testing.assert_array_equal(next(s3).coords_angstrom, a[3])
    with pytest.raises(ValueError):
        C.md_trajectory(water, 0)
    with pytest.raises(ValueError):
        C.md_trajectory(water, 2, temperature=-1.0)


@pytest.mark.skipif(not HAVE_MD, reason="GFN2-xTB Hessian needs tblite")
def test_uracil_normal_modes_gfn2():
    ur = Molecule.builtin("uracil")
    hess = C.compute_hessian(ur, "gfn2-xtb", use_cache=False)
    vib = C.vibrational_modes(ur, hess)
    assert vib.n_modes == 30 and vib.wavenumbers.min() > 100  # 3N - 6, all real
    x = C.normal_mode_sample(ur, 200, temperature=300.0, seed=0, hessian=hess)
    assert min(C.min_distance(f) for f in x) > 0.8
    assert 0.03 < C.rmsd(x, ur.coords_angstrom).mean() < 0.2


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MD, reason="needs the md extra: pip install 'qpt_nb[md]'")
def test_uracil_md_400_steps():
    ur = Molecule.builtin("uracil")
    x = C.md_trajectory(ur, 40, temperature=500.0, seed=0, stride=10, equilibration=0)
    assert min(C.min_distance(f) for f in x) > 0.8
    assert 0.05 < C.rmsd(x, ur.coords_angstrom).mean() < 0.4
