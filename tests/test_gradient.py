"""Analytic nuclear gradients of qpt_nb's SCF (`SCFResult.gradient`, PySCF's gradient code on
qpt_nb's orbitals): against PySCF's own analytic gradient, central finite differences of
`qpt_nb.scf` energies, translation invariance and rotation covariance."""

import numpy as np
import pytest

import qpt_nb
from qpt_nb.dft.molecule import Molecule
from qpt_nb.dft.reference import make_rks
from qpt_nb.units import ANGSTROM_PER_BOHR

WATER = Molecule.builtin("water")
KW = dict(grid_level=1, conv_tol=1e-12)


def _pyscf_gradient(mol, xc, eri):
    mf = make_rks(mol.to_pyscf("sto-3g"), xc=xc, grid_level=1, eri=eri)
    mf.kernel()
    g = mf.nuc_grad_method()
    g.grid_response = True
    return g.kernel()


@pytest.mark.parametrize(
    "xc, eri", [("hf", "dense"), ("lda,vwn", "dense"), ("pbe", "dense"), ("b3lyp5", "dense"), ("b3lyp", "df")]
)
def test_gradient_matches_pyscf(xc, eri):
    res = qpt_nb.scf(WATER, "sto-3g", xc=xc, eri=eri, **KW)
    g = res.gradient()
    assert g.shape == (3, 3)
    assert np.abs(g).max() > 1e-3  # the built-in water is not at its minimum
    np.testing.assert_allclose(g, _pyscf_gradient(WATER, xc, eri), atol=1e-7)
    assert np.abs(g.sum(axis=0)).max() < 1e-9  # translation invariance


@pytest.mark.parametrize("eri", ["dense", "df"])
def test_gradient_matches_finite_differences(eri):
    g = qpt_nb.scf(WATER, "sto-3g", eri=eri, **KW).gradient()
    h = 1e-3  # Bohr
    for atom, axis in ((0, 2), (1, 0)):
        e = []
        for sign in (1, -1):
            xyz = WATER.coords_angstrom.copy()
            xyz[atom, axis] += sign * h * ANGSTROM_PER_BOHR
            e.append(qpt_nb.scf(WATER.with_coords(xyz), "sto-3g", eri=eri, **KW).energy)
        fd = (e[0] - e[1]) / (2 * h)
        assert abs(fd - g[atom, axis]) < 1e-5, (atom, axis, fd, g[atom, axis])


def test_gradient_rotates_with_the_molecule_and_tensor_frames_agree():
    """Hartree-Fock, whose energy has no grid: rotation covariance is exact (a DFT grid is
    not rotation invariant, 2e-4 Ha/Bohr at level 1)."""
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    moved = WATER.with_coords(WATER.coords_angstrom @ q.T)
    g = qpt_nb.scf(WATER, "sto-3g", xc="hf", **KW).gradient()
    g_moved = qpt_nb.scf(moved, "sto-3g", xc="hf", **KW).gradient()
    np.testing.assert_allclose(g_moved, g @ q.T, atol=1e-8)
    # an SCF on canonical-frame tensors (the model's) reports the input-frame gradient
    t = qpt_nb.dft_tensors(moved, "sto-3g", grid_level=1, xc="hf", frame="canonical")
    res = qpt_nb.scf(moved, "sto-3g", xc="hf", tensors=t, conv_tol=1e-12)
    with pytest.raises(ValueError, match="grid_level"):
        res.gradient()
    np.testing.assert_allclose(res.gradient(grid_level=1), g_moved, atol=1e-8)
