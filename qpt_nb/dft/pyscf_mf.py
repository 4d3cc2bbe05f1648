"""PySCF mean-field objects with qpt_nb's settings, and nuclear gradients on qpt_nb's orbitals.

`make_rks` is the one PySCF RKS factory of qpt_nb (labels, comparisons, benchmarks,
gradients). `nuclear_gradient` hands orbitals that qpt_nb computed to PySCF's analytic
gradient code (`pyscf.grad.rks`, or `pyscf.df.grad.rks` with density fitting), the way
QHFlow's ASE calculator takes forces from PySCF's ``nuc_grad_method`` on predicted orbitals:
PySCF already differentiates the integrals and the grid, so qpt_nb does not do it again.

    >>> import qpt_nb
    >>> res = qpt_nb.scf('water', 'sto-3g', grid_level=1)
    >>> g = res.gradient()                   # (3, 3) dE/dR, Hartree/Bohr, input frame
    >>> round(float(abs(g.sum(axis=0)).max()), 6)   # translation invariance
    0.0
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from qpt_nb.dft.sizes import choose_eri_kind
from qpt_nb.dft.xc import get_xc

CONV_TOL = 1e-13  # the label settings (QH9)
DIIS_SPACE = 8


def resolve_eri(pmol, eri: str = "auto") -> str:
    """'dense' or 'df' for a built ``pyscf.gto.Mole``: `eri` itself, or for 'auto' the
    choice `qpt_nb.dft.tensors.dft_tensors` makes for the same basis size."""
    return choose_eri_kind(pmol.nao_nr(), eri)


def make_rks(
    pmol,
    *,
    xc: str,
    grid_level: int,
    eri: str = "auto",
    auxbasis: Optional[str] = None,
    conv_tol: float = CONV_TOL,
    diis_space: int = DIIS_SPACE,
    unrestricted: Optional[bool] = None,
):
    """The one PySCF Kohn-Sham factory of qpt_nb (not run): labels, comparisons, benchmarks.

    ``dft.RKS``, or ``dft.UKS`` when `unrestricted` (None: when ``pmol.spin != 0``, as
    `qpt_nb.scf` picks; 'hf' through either is RHF / UHF).

    `pmol` is a built ``pyscf.gto.Mole`` (it holds the basis; every other argument is
    keyword-only); `eri` is 'auto', 'dense' or 'df', resolved as
    `dft_tensors` resolves it (`resolve_eri`). With 'df' the auxiliary basis is
    `auxbasis` or ``pyscf.df.make_auxbasis(pmol)``, exactly what `dft_tensors(eri='df')`
    fits with. `xc` by PySCF's meaning ('b3lyp5' = VWN5, 'b3lyp' = VWN-RPA; 'hf' is
    Hartree-Fock through the same code). Defaults are the label settings (QH9: conv_tol
    1e-13, DIIS space 8).
    """
    from pyscf import df, dft

    if unrestricted is None:
        unrestricted = pmol.spin != 0
    mf = (dft.UKS if unrestricted else dft.RKS)(pmol, xc=get_xc(xc).name)
    if resolve_eri(pmol, eri) == "df":
        mf = mf.density_fit(auxbasis=auxbasis or df.make_auxbasis(pmol))
    mf.grids.level = int(grid_level)
    mf.conv_tol = float(conv_tol)
    mf.diis_space = int(diis_space)
    mf.verbose = 0
    return mf


def nuclear_gradient(
    mol,
    basis: str,
    *,
    mo_coeff,
    mo_energy,
    n_occ: int,
    xc: str,
    grid_level: int,
    eri: str = "auto",
    auxbasis: Optional[str] = None,
    grid_response: bool = True,
) -> np.ndarray:
    """dE/dR (A, 3) in Hartree/Bohr of the Kohn-Sham energy (RKS or UKS) of `mol`'s orbitals.

    Args:
      mol: `qpt_nb.Molecule` (Angstrom); the gradient is in its input frame.
      basis: PySCF basis name.
      mo_coeff: (N, N) orbitals (columns) in `mol`'s input-frame AO basis, or (2, N, N) per
        spin (UKS: PySCF's ``grad.uks``); mo_energy: (N,) or (2, N) their energies,
        Hartree; n_occ: doubly occupied orbitals (n_beta for UKS; n_alpha = n_occ + 2S).
      xc, grid_level, eri, auxbasis: the settings of the energy (`make_rks`).
      grid_response: include the derivative of the grid's moving points and Becke weights
        (default True): the result is then the derivative of the energy on the grid
        that moves with the atoms, which finite differences of `qpt_nb.scf` measure;
        False is PySCF's default and differs by the grid error (1e-5 Ha/Bohr at level 3).

    For converged SCF orbitals this is the exact analytic gradient (PySCF's
    ``nuc_grad_method``: Hellmann-Feynman, Pulay and, with density fitting, the auxiliary
    basis terms). For orbitals that are not self-consistent (a model's prediction) the same
    formula is an approximation; its error is measured in bench/ase_md.py.
    """
    pmol = mol.to_pyscf(basis)
    c = np.asarray(mo_coeff, dtype=np.float64)
    n = pmol.nao_nr()
    if c.shape[-2:] != (n, n) or c.ndim not in (2, 3):
        raise ValueError(f"mo_coeff has shape {c.shape}, but {mol.formula} in {basis} has {n} AOs")
    unrestricted = c.ndim == 3
    mf = make_rks(pmol, xc=xc, grid_level=grid_level, eri=eri, auxbasis=auxbasis, unrestricted=unrestricted)
    if unrestricted:  # (n_alpha, n_beta) = (n_occ + 2S, n_occ)
        occ = np.zeros((2, n))
        occ[0, : int(n_occ) + mol.spin] = 1.0
        occ[1, : int(n_occ)] = 1.0
    else:
        occ = np.zeros(n)
        occ[: int(n_occ)] = 2.0
    mf.mo_coeff, mf.mo_energy, mf.mo_occ = c, np.asarray(mo_energy, dtype=np.float64), occ
    mf.converged = True
    g = mf.nuc_grad_method()
    g.verbose = 0
    if hasattr(g, "grid_response"):
        g.grid_response = bool(grid_response)
    return np.asarray(g.kernel(), dtype=np.float64)


def input_frame_rotation(mol, basis: str, ao_position) -> Optional[np.ndarray]:
    """The AO rotation U (`qpt_nb.dft.frames.rotation_to_input`) that takes matrices whose
    AO centres are `ao_position` (N, 3), Bohr, to `mol`'s input frame: None when they
    already are in it, U when they are in its canonical frame, ValueError otherwise."""
    from qpt_nb.dft.frames import rotation_to_input

    pos = np.asarray(ao_position, dtype=np.float64)

    def centred_on(coords):
        return np.abs(pos[:, None, :] - coords[None, :, :]).max(axis=-1).min(axis=1).max() < 1e-6

    if centred_on(np.asarray(mol.coords_bohr)):
        return None
    if centred_on(np.asarray(mol.canonical().coords_bohr)):
        return rotation_to_input(mol, basis)
    raise ValueError(
        f"the orbitals' AO centres are neither {mol.formula}'s input nor its canonical frame: "
        "another geometry?"
    )
