"""What the SCF loops share: the result type, the argument checks, the not-converged warning.

`qpt_nb.dft.scf` (the teaching loop, the jitted fixed-iteration driver and `scf` itself)
and `qpt_nb.dft.scf_device` (the device while-loop) both build on this module and on
`qpt_nb.dft.diis`, so neither needs the other's internals.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Optional

import numpy as np

from qpt_nb.dft.linalg import FrontierOrbitals
from qpt_nb.dft.tensors import DFTTensors
from qpt_nb.validate import check_int


@dataclasses.dataclass
class SCFResult(FrontierOrbitals):
    """Outcome of `scf`. Energies in Hartree, matrices in the AO basis.

    energy: total energy of `density`.  mo_energy (N,), mo_coeff (N, N) columns,
    density (N, N), fock (N, N) = F[density].  converged / n_iter: whether the
    convergence test passed and after how many Fock builds.  energies: energy per
    iteration.  tensors: the `DFTTensors` used.  timings: seconds per phase.
    molecule: the `Molecule` (Angstrom) and settings: basis, xc, grid_level, eri, auxbasis
    of the energy, which `gradient` needs (filled by `qpt_nb.scf`; grid_level None when
    `scf` was given tensors it did not build).
    """

    energy: float
    mo_energy: np.ndarray
    mo_coeff: np.ndarray
    density: np.ndarray
    fock: np.ndarray
    converged: bool
    n_iter: int
    energies: list
    tensors: Optional[DFTTensors] = None
    timings: dict = dataclasses.field(default_factory=dict)
    molecule: object = None
    settings: dict = dataclasses.field(default_factory=dict)

    def gradient(self, *, grid_response: bool = True, **settings) -> np.ndarray:
        """dE/dR (A, 3), Hartree/Bohr, in the input frame of `molecule`: the analytic
        gradient of the converged energy (`qpt_nb.dft.pyscf_mf.nuclear_gradient`, PySCF's
        ``grad.rks`` / ``df.grad.rks`` on these orbitals, rotated to the input frame when
        the tensors were canonical). `settings` (basis, xc, grid_level, eri, auxbasis)
        override or complete `self.settings`. A RuntimeWarning when not converged: the
        formula then does not give the derivative of `energy`.
        """
        from qpt_nb.dft.pyscf_mf import input_frame_rotation, nuclear_gradient

        kw = {**self.settings, **settings}
        if self.molecule is None or kw.get("basis") is None:
            raise ValueError("gradient() needs the molecule and basis: use the SCFResult of qpt_nb.scf")
        if kw.get("grid_level") is None:
            raise ValueError(
                "this SCFResult was computed on given tensors: pass the grid_level (and auxbasis) "
                "they were built with, gradient(grid_level=...)"
            )
        if not self.converged:
            warnings.warn(
                "gradient() of an SCF that did not converge: not the derivative of its energy",
                RuntimeWarning,
                stacklevel=2,
            )
        c = np.asarray(self.mo_coeff)
        u = input_frame_rotation(self.molecule, kw["basis"], self.tensors.ao_position)
        if u is not None:
            c = u @ c  # (N, N) or (2, N, N): U acts on the AO index
        return nuclear_gradient(
            self.molecule,
            kw["basis"],
            mo_coeff=c,
            mo_energy=self.mo_energy,
            n_occ=self.n_occ,
            xc=kw["xc"],
            grid_level=kw["grid_level"],
            eri=kw.get("eri", "auto"),
            auxbasis=kw.get("auxbasis"),
            grid_response=grid_response,
        )

    @property
    def n_occ(self) -> int:
        """Doubly occupied orbitals (for `homo`, `lumo`, `gap`; n_beta for UKS)."""
        return int(self.tensors.n_occ)

    @property
    def unrestricted(self) -> bool:
        """True for a UKS / UHF result: mo_energy (2, N), mo_coeff, density, fock (2, N, N)."""
        return np.ndim(self.density) == 3

    @property
    def occupations(self) -> tuple:
        """(n_alpha, n_beta) occupied orbitals per spin."""
        n = self.n_occ
        return (n + int(getattr(self.tensors, "spin", 0)), n) if self.unrestricted else (n, n)

    def _ao_overlap(self) -> np.ndarray:
        return np.asarray(self.tensors.overlap)

    @property
    def homo_lumo_gap(self) -> float:
        """HOMO-LUMO gap in Hartree (`gap`)."""
        return self.gap

    def __repr__(self):
        return f"SCFResult(energy={self.energy:.10f} Ha, converged={self.converged}, n_iter={self.n_iter})"


# ----------------------------------------------------------------------------- argument checks
def check_tol(value, what: str) -> float:
    """A positive, finite tolerance (Hartree) as float."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise TypeError(f"{what} must be a positive number (Hartree), got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"{what} must be a positive number (Hartree), got {type(value).__name__} {value!r}"
        ) from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(
            f"{what} must be a positive, finite tolerance in Hartree (e.g. 1e-10), got {value!r}"
        )
    return v


def check_loop_args(conv_tol, conv_tol_grad, max_cycle, diis_space, callback):
    """The checked (conv_tol, conv_tol_grad, max_cycle, diis_space) of an SCF loop:
    TypeError / ValueError naming the argument (a non-callable callback included)."""
    conv_tol = check_tol(conv_tol, "conv_tol")
    if conv_tol_grad is not None:
        conv_tol_grad = check_tol(conv_tol_grad, "conv_tol_grad")
    max_cycle = check_int(max_cycle, "max_cycle", low=1, hint=" (the number of Fock builds allowed)")
    diis_space = check_int(diis_space, "diis_space", low=0, hint=" (0 turns DIIS off)")
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be callable (called with a dict per iteration) or None, "
            f"got {type(callback).__name__}"
        )
    return conv_tol, conv_tol_grad, max_cycle, diis_space


def check_tensors_arg(t, who: str) -> DFTTensors:
    """`t` if it is a `DFTTensors`, else a TypeError pointing a Molecule to `qpt_nb.scf`."""
    if not isinstance(t, DFTTensors):
        raise TypeError(
            f"{who} needs the DFTTensors of a molecule (qpt_nb.dft_tensors(mol, ...)), "
            f"got {type(t).__name__}; for a Molecule use qpt_nb.scf(mol, ...)"
        )
    return t


def grad_tolerance(conv_tol: float, conv_tol_grad: Optional[float]) -> float:
    """The commutator-norm tolerance: `conv_tol_grad`, by default sqrt(conv_tol) (PySCF's)."""
    return float(np.sqrt(conv_tol)) if conv_tol_grad is None else float(conv_tol_grad)


def warn_not_converged(max_cycle: int, delta_e: float, error_norm: float, stacklevel: int = 3) -> None:
    """The RuntimeWarning of an SCF loop that ran `max_cycle` iterations without passing
    its convergence test (`delta_e`: last energy change, Hartree; `error_norm`: last
    commutator norm). `stacklevel` 3 points at the caller of the loop function."""
    warnings.warn(
        f"SCF did not converge in {max_cycle} iterations (last energy change "
        f"{delta_e:.2e} Ha, commutator norm {error_norm:.2e}); "
        "the result is marked converged=False.",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
