"""`QPTCalculator`: qpt_nb's SCF, the model-seeded SCF or a trained model's prediction as an
ASE calculator (energy in eV, forces in eV/Angstrom).

    from ase.optimize import BFGS
    atoms = qpt_nb.Molecule.builtin("water").to_ase()
    atoms.calc = QPTCalculator(mode="scf", basis="sto-3g", grid_level=3)
    BFGS(atoms).run(fmax=0.01)

    atoms.calc = QPTCalculator("uracil", mode="seeded")      # a pretrained name or run dir

Modes (the ASE-calculator pattern of QHFlow's and MACE's calculators):
  'scf'     qpt_nb's SCF (`qpt_nb.scf`); from the previous step's density when the atoms
            are the same (as PySCF's own MD drivers do), from minao on the first step.
            Forces: the exact analytic gradient (`qpt_nb.SCFResult.gradient`).
  'seeded'  the SCF from the model's density (`qpt_nb.scf(mol, guess=model)`); exact forces.
  'model'   the model's prediction alone (`qpt_nb.predict`): E[D_n], and APPROXIMATE forces
            (`Prediction.gradient`: PySCF's formula on orbitals that are not self-consistent).
`history` holds one dict per calculation (mode, guess, SCF iterations, seconds), so a
driver can count what each guess saves. Unsupported properties (stress, dipole, ...) raise
ASE's PropertyNotImplementedError; a periodic cell is a ValueError.
"""

from __future__ import annotations

import time
from typing import Optional

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from qpt_nb.dft.molecule import Molecule
from qpt_nb.units import ANGSTROM_PER_BOHR, EV_PER_HARTREE

MODES = ("scf", "seeded", "model")
FORCE_UNIT = EV_PER_HARTREE / ANGSTROM_PER_BOHR  # Hartree/Bohr -> eV/Angstrom


class QPTCalculator(Calculator):
    """ASE calculator on qpt_nb (see the module docstring).

    Args:
      model: a run directory, `Trainer`, `PretrainedModel`, pretrained name or
        (TrainConfig, params); needed by 'seeded' and 'model', whose basis, xc, grid level
        and eri are the model's.
      mode: 'scf', 'seeded' or 'model'.
      basis, xc, grid_level, eri: the 'scf' mode's settings (default STO-3G, B3LYP5, 3, auto);
        with a model they must be None or the model's.
      charge, spin: used when ``atoms.info`` has none.
      conv_tol: SCF energy tolerance (Hartree).
      grid_response: forces include the grid's motion (the derivative of the energy the SCF
        computes; `qpt_nb.dft.pyscf_mf.nuclear_gradient`).
    """

    implemented_properties = ["energy", "forces"]

    def __init__(
        self,
        model=None,
        *,
        mode: str = "scf",
        basis: Optional[str] = None,
        xc: Optional[str] = None,
        grid_level: Optional[int] = None,
        eri: Optional[str] = None,
        charge: int = 0,
        spin: int = 0,
        conv_tol: float = 1e-10,
        grid_response: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if mode != "scf" and model is None:
            raise ValueError(f"mode={mode!r} needs a model (a run directory, pretrained name, Trainer, ...)")
        self.mode, self.conv_tol, self.grid_response = mode, float(conv_tol), bool(grid_response)
        self.charge, self.spin = int(charge), int(spin)
        self.history: list = []
        self._previous = None  # (symbols, density) of the last 'scf' step
        if model is not None:
            from qpt_nb.analysis.runs import resolve_model

            cfg, params, _ = resolve_model(model)
            self.model = (cfg, params)
            own = dict(basis=cfg.basis, **cfg.dft_settings())
            given = dict(basis=basis, xc=xc, grid_level=grid_level, eri=eri)
            for k, v in given.items():
                if v is not None and mode != "scf" and str(v).lower() != str(own[k]).lower():
                    raise ValueError(f"mode={mode!r} computes with the model's {k}={own[k]!r}, not {v!r}")
            self.settings = {k: (own[k] if given[k] is None else given[k]) for k in own}
        else:
            self.model = None
            self.settings = dict(
                basis=basis or "sto-3g",
                xc=xc or "b3lyp5",
                grid_level=3 if grid_level is None else grid_level,
                eri=eri or "auto",
            )

    def molecule(self, atoms) -> Molecule:
        """The `Molecule` of `atoms` (charge and spin from its info, else the calculator's)."""
        return Molecule.from_ase(atoms, charge=self.charge, spin=self.spin)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        mol = self.molecule(self.atoms)
        t0 = time.perf_counter()
        if self.mode == "model":
            from qpt_nb.analysis.predict import predict

            (p,) = predict(self.model, mol, progress=False, keep_tensors=False)
            energy, grad, row = (
                p.energy,
                p.gradient(grid_response=self.grid_response),
                dict(n_iter=0, guess="model"),
            )
        else:
            res, guess = self._scf(mol)
            t1 = time.perf_counter()
            grad = res.gradient(grid_response=self.grid_response)
            energy = res.energy
            row = dict(
                n_iter=int(res.n_iter), guess=guess, converged=bool(res.converged), scf_seconds=t1 - t0
            )
        self.history.append(
            dict(mode=self.mode, seconds=time.perf_counter() - t0, energy_hartree=energy, **row)
        )
        self.results["energy"] = energy * EV_PER_HARTREE
        self.results["forces"] = -np.asarray(grad) * FORCE_UNIT

    def _scf(self, mol):
        import qpt_nb

        kw = dict(conv_tol=self.conv_tol)
        if self.mode == "seeded":
            return qpt_nb.scf(mol, guess=self.model, **kw), "model"
        prev = self._previous
        guess, name = (
            (prev[1], "previous") if prev is not None and prev[0] == mol.symbols else (None, "minao")
        )
        s = self.settings
        res = qpt_nb.scf(
            mol, s["basis"], xc=s["xc"], grid_level=s["grid_level"], eri=s["eri"], guess=guess, **kw
        )
        self._previous = (mol.symbols, np.asarray(res.density))
        return res, name
