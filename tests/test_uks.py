"""Unrestricted Kohn-Sham and Hartree-Fock (`qpt_nb.dft.uks`) against PySCF's dft.UKS / scf.UHF.

Fast subset: the energy and the Fock pair of PySCF's converged density (<= 1e-8 Ha, 1e-9),
the SCF energies (<= 1e-8) and <S^2> (<= 1e-6) on OH and triplet CH2 for every functional,
dE/dD against finite differences, closed shells through the unrestricted path, both SCF
loops, and the analytic gradient of a radical. `-m slow`: OH, CH2, NO, O2 and allyl at
STO-3G and 6-31G* for every functional.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qpt_nb
from qpt_nb.dft.molecule import Molecule
from qpt_nb.dft.reference import make_rks
from qpt_nb.dft.uks import uks_energy, uks_energy_and_fock

FUNCTIONALS = ("hf", "lda,vwn", "pbe", "b3lyp5", "b3lyp")
RADICALS = {
    "OH": ("O 0 0 0\nH 0 0 0.97", 1),
    "CH2": ("C 0 0 0.10\nH 0 0.99 -0.30\nH 0 -0.99 -0.30", 2),
    "NO": ("N 0 0 0\nO 0 0 1.15", 1),
    "O2": ("O 0 0 0\nO 0 0 1.21", 2),
    "allyl": (
        "C 0 0.42 0\nC 1.225 -0.24 0\nC -1.225 -0.24 0\nH 0 1.51 0\nH 2.16 0.30 0\n"
        "H 1.27 -1.32 0\nH -2.16 0.30 0\nH -1.27 -1.32 0",
        1,
    ),
}
GRID = 1


def _mol(name):
    xyz, spin = RADICALS[name]
    return Molecule.from_xyz(xyz, spin=spin, name=name)


def _pyscf(mol, basis, xc):
    # 1e-12 Ha is at the round-off of PySCF's threaded sums (~1e-14 relative): it can miss it
    mf = make_rks(mol.to_pyscf(basis), xc=xc, grid_level=GRID, eri="dense", conv_tol=1e-11)
    mf.conv_tol_grad, mf.max_cycle = 1e-6, 300
    mf.kernel()
    return mf


# One unpaired electron in a degenerate pi pair (OH, NO): the SCF has a family of nearly
# equal solutions and round-off decides which one DIIS lands on (PySCF's second-order
# solver finds one 5e-7 Ha lower than its DIIS). For them the SCF is checked from PySCF's
# converged density; from minao only to DEGENERATE_TOL.
DEGENERATE = {"OH", "NO"}
DEGENERATE_TOL = 1e-5


def _check(name, basis, xc):
    mol = _mol(name)
    mf = _pyscf(mol, basis, xc)
    dm = np.asarray(mf.make_rdm1())
    t = qpt_nb.dft_tensors(mol, basis, grid_level=GRID, eri="dense", xc=xc)
    # the energy functional and the Fock pair at one density
    e, f = uks_energy_and_fock(jnp.asarray(dm), t, xc)
    assert abs(float(e) - mf.energy_tot(dm)) < 1e-8
    np.testing.assert_allclose(np.asarray(f), np.asarray(mf.get_fock(dm=dm)), atol=1e-9)
    kw = dict(xc=xc, grid_level=GRID, eri="dense", conv_tol=1e-11, conv_tol_grad=1e-6, max_cycle=300)
    if not mf.converged:  # e.g. NO/STO-3G UHF: PySCF's DIIS oscillates, as qpt_nb's does
        pytest.xfail(f"PySCF's DIIS does not converge for {name}/{basis}/{xc} either")
    # the SCF's fixed point: from PySCF's solution it stays there (for a degenerate pi pair,
    # where PySCF's DIIS stops on a flat slope, it may only go lower: 3e-8 Ha for NO/PBE)
    tol = DEGENERATE_TOL if name in DEGENERATE else 1e-8
    res = qpt_nb.scf(mol, basis, guess=dm, **kw)
    assert res.converged and res.unrestricted
    de = res.energy - mf.e_tot
    assert de < 1e-8 and -de < tol, (name, basis, xc, de)
    if name not in DEGENERATE:
        assert abs(res.spin_square[0] - mf.spin_square()[0]) < 1e-6
    # from minao, as PySCF started
    res = qpt_nb.scf(mol, basis, **kw)
    assert res.converged and abs(res.energy - mf.e_tot) < tol, (name, basis, xc, res.energy - mf.e_tot)
    return res


@pytest.mark.parametrize("xc", FUNCTIONALS)
def test_oh_radical_matches_pyscf(xc):
    res = _check("OH", "sto-3g", xc)
    assert res.occupations == (5, 4)
    assert 0.75 <= res.spin_square[0] < 0.77  # a doublet, barely contaminated


def test_triplet_ch2_631gs_matches_pyscf():
    res = _check("CH2", "6-31g*", "b3lyp5")
    assert res.occupations == (5, 3) and 2.0 <= res.spin_square[0] < 2.05


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RADICALS))
@pytest.mark.parametrize("basis", ["sto-3g", "6-31g*"])
@pytest.mark.parametrize("xc", FUNCTIONALS)
def test_radicals_match_pyscf(name, basis, xc):
    _check(name, basis, xc)


def test_fock_pair_is_the_gradient_of_the_energy():
    mol = _mol("OH")
    t = qpt_nb.dft_tensors(mol, "sto-3g", grid_level=GRID, xc="b3lyp5")
    d = np.asarray(_pyscf(mol, "sto-3g", "b3lyp5").make_rdm1())
    _, f = uks_energy_and_fock(jnp.asarray(d), t, "b3lyp5")
    g = jax.grad(uks_energy)(jnp.asarray(d), t, "b3lyp5")
    np.testing.assert_allclose(0.5 * (g + jnp.swapaxes(g, -1, -2)), f, atol=1e-10)
    rng = np.random.default_rng(0)
    v = rng.normal(size=d.shape)
    v = 0.5 * (v + np.swapaxes(v, -1, -2))
    h = 1e-5
    fd = (uks_energy(d + h * v, t, "b3lyp5") - uks_energy(d - h * v, t, "b3lyp5")) / (2 * h)
    assert abs(float(fd) - float(jnp.sum(f * v))) < 1e-7


@pytest.mark.parametrize("xc", ["hf", "pbe", "b3lyp5"])
def test_closed_shell_through_the_unrestricted_path(xc):
    w = Molecule.builtin("water")
    a = qpt_nb.scf(w, "sto-3g", xc=xc, grid_level=GRID, conv_tol=1e-11)
    b = qpt_nb.scf(w, "sto-3g", xc=xc, grid_level=GRID, conv_tol=1e-11, unrestricted=True)
    assert b.unrestricted and not a.unrestricted
    assert abs(a.energy - b.energy) < 1e-9
    np.testing.assert_allclose(b.density[0] + b.density[1], a.density, atol=1e-6)
    assert abs(b.spin_square[0]) < 1e-8
    assert abs(a.homo - b.homo) < 1e-7


def test_loops_agree_and_the_gradient_of_a_radical():
    mol = _mol("CH2")  # a unique ground state (OH's degenerate pi would let round-off choose)
    host = qpt_nb.scf(mol, "sto-3g", xc="pbe", grid_level=GRID, loop="host", conv_tol=1e-11)
    dev = qpt_nb.scf(mol, "sto-3g", xc="pbe", grid_level=GRID, loop="device", conv_tol=1e-11)
    # the same iteration; a slow radical (30+ iterations) amplifies round-off in the count
    assert abs(host.energy - dev.energy) < 1e-9 and abs(host.n_iter - dev.n_iter) <= 3
    g = dev.gradient()
    mf = _pyscf(mol, "sto-3g", "pbe")
    assert mf.converged and abs(mf.e_tot - dev.energy) < 1e-8
    gr = mf.nuc_grad_method()
    gr.grid_response = True
    np.testing.assert_allclose(g, gr.kernel(), atol=1e-7)
    assert np.abs(g.sum(axis=0)).max() < 1e-9


def test_training_config_takes_an_open_shell_and_refuses_a_spin_that_does_not_fit():
    from conftest import water_config

    assert water_config(charge=1, spin=1).molecule_object().spin == 1  # H2O+, a doublet
    with pytest.raises(ValueError, match="spin"):
        water_config(spin=1)  # 10 electrons cannot make a doublet


def test_spin_contamination_is_detected_and_warned():
    """Triplet CH2 is nearly pure (no warning); linear H3 with stretched bonds, a doublet,
    mixes in the quartet (<S^2> well above 0.75) and warns."""
    clean = qpt_nb.scf(_mol("CH2"), "sto-3g", xc="hf", grid_level=GRID)
    assert abs(clean.spin_square[0] - 2.0) < 0.1
    h3 = Molecule.from_xyz("H 0 0 0\nH 0 0 1.6\nH 0 0 3.2", spin=1)
    with pytest.warns(RuntimeWarning, match="spin contamination: <S\\^2> = "):
        res = qpt_nb.scf(h3, "sto-3g", xc="hf", grid_level=GRID)
    assert res.spin_square[0] - 0.75 > 0.1
    # a PySCF UKS label of that geometry warns too (a test or training conformer drifted there)
    from qpt_nb.dft.reference import label

    with pytest.warns(RuntimeWarning, match="spin contamination"):
        lab = label(h3, "sto-3g", xc="hf", grid_level=GRID, use_cache=False)
    assert lab.spin_square[0] == pytest.approx(res.spin_square[0], abs=1e-4)
