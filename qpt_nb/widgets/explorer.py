"""`MoleculeExplorer`: pick a molecule and DFT settings, run qpt_nb's SCF (and PySCF).

    ex = MoleculeExplorer()            # display it in a notebook cell
    ex.run()                           # same as pressing "Run SCF"
    ex.state.result.energy, ex.state.pyscf_energy, ex.state.error

The state (`ExplorerState`) is a plain dataclass; every figure comes from a pure
function of `qpt_nb.viz`.  Bad input (unknown element, odd electron count,
malformed xyz, a basis without the element, ...) ends up as a readable message
in ``state.error`` and in the widget, never as a traceback.
"""

from __future__ import annotations

import dataclasses
import html
import time
from typing import Optional

import numpy as np

from qpt_nb import viz
from qpt_nb.units import EV_PER_HARTREE, MEV_PER_HARTREE
from qpt_nb.validate import check_int
from qpt_nb.widgets.orbital import OrbitalView, set_output_html, set_png

__all__ = ["MoleculeExplorer", "ExplorerState", "BASES", "PASTE"]

BASES = ("sto-3g", "6-31g", "6-31g*", "def2-svp", "cc-pvdz")
PASTE = "(paste xyz)"
GRID_LEVELS = tuple(range(0, 6))  # the grid-level dropdown
VIEW_MODES = ("3D", "slice")
CHARGES = (-4, 4)  # the charge box's bounds


@dataclasses.dataclass
class ExplorerState:
    """Everything the explorer shows.  Energies in Hartree.

    molecule: builtin name or PASTE; xyz: pasted text; charge; basis; xc;
    grid_level; with_pyscf: also run PySCF.  After `run`: mol, result
    (`SCFResult`), pyscf_energy / pyscf_mo_energy / pyscf_s (or None),
    difference (qpt - PySCF), seconds, error (message or None), orbital
    (selected 0-based index), status ('idle' | 'running' | 'done' | 'error').
    """

    molecule: str = "water"
    xyz: str = ""
    charge: int = 0
    basis: str = "sto-3g"
    xc: str = "b3lyp5"
    grid_level: int = 1
    with_pyscf: bool = True
    mol: object = None
    result: object = None
    pyscf_energy: Optional[float] = None
    pyscf_mo_energy: Optional[np.ndarray] = None
    pyscf_s: Optional[float] = None
    difference: Optional[float] = None
    seconds: Optional[float] = None
    error: Optional[str] = None
    orbital: Optional[int] = None
    status: str = "idle"

    @property
    def n_occ(self) -> Optional[int]:
        return None if self.result is None else int(self.result.tensors.n_occ)

    def summary(self) -> str:
        """Plain-text summary of the last run (or the error)."""
        if self.error:
            return f"error: {self.error}"
        if self.result is None:
            return "not run yet"
        r = self.result
        lines = [
            f"{self.mol.name or self.mol.formula} / {self.basis} / {self.xc} / grid "
            f"{self.grid_level}: E(qpt_nb) = {r.energy:.8f} Ha "
            f"({'converged' if r.converged else 'NOT converged'} in {r.n_iter} it.)",
            f"HOMO-LUMO gap {r.homo_lumo_gap * EV_PER_HARTREE:.3f} eV",
        ]
        if self.pyscf_energy is not None:
            lines.append(f"E(PySCF) = {self.pyscf_energy:.8f} Ha, difference {self.difference:+.2e} Ha")
        return "\n".join(lines)


def _friendly(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, ValueError):
        msg = f"{type(exc).__name__}: {msg}"
    return msg.splitlines()[0] if len(msg) > 400 else msg


def _check_molecule(molecule, names):
    """(dropdown value, xyz text, charge) of the constructor's ``molecule``."""
    from qpt_nb.dft.molecule import Molecule, builtin_key

    if isinstance(molecule, Molecule):
        if not CHARGES[0] <= molecule.charge <= CHARGES[1]:
            raise ValueError(
                f"the explorer's charge box takes {CHARGES[0]}..{CHARGES[1]}, "
                f"got a molecule with charge={molecule.charge}"
            )
        return PASTE, molecule.to_xyz(decimals=6), int(molecule.charge)
    if not isinstance(molecule, str):
        raise TypeError(
            f"molecule must be the name of a built-in molecule (one of "
            f"{', '.join(names)}) or a qpt_nb.Molecule, got "
            f"{type(molecule).__name__}"
        )
    if molecule == PASTE:
        return PASTE, "", 0
    key = builtin_key(molecule)
    if key is None or key not in names:
        raise ValueError(
            f"unknown molecule {molecule!r}: the built-in molecules are "
            f"{', '.join(names)} (or pass a qpt_nb.Molecule, e.g. "
            f"Molecule.from_xyz(path), or {PASTE!r} to paste xyz)"
        )
    return key, "", 0


def _check_choice(value, choices, what, accepted):
    """The element of ``choices`` equal to ``value`` (so 1.0 -> 1); ValueError otherwise."""
    try:
        ok = not isinstance(value, (bool, np.bool_)) and value in choices
    except (TypeError, ValueError):  # e.g. an array
        ok = False
    if not ok:
        raise ValueError(f"{what} must be {accepted}, got {value!r}")
    return choices[choices.index(value)]


def _check_xc_and_basis(xc, basis, builtin):
    from qpt_nb.dft.molecule import Molecule, check_basis
    from qpt_nb.dft.xc import get_xc

    get_xc(xc)  # ValueError listing the supported ones
    if not isinstance(basis, str) or not basis.strip():
        raise TypeError(f"basis must be a PySCF basis name such as 'sto-3g', got {basis!r}")
    check_basis(basis, Molecule.builtin(builtin).symbols if builtin else ("H",))


class MoleculeExplorer:
    """Interactive single-molecule DFT: settings -> SCF -> energies, levels, orbitals.

    Args:
      molecule: initial builtin name (or a `Molecule`, shown as pasted xyz).
      basis, xc, grid_level, with_pyscf: initial settings.
      run: run the SCF immediately (blocking) when created.
      orbital_n: cube points per axis of the orbital viewer.
    Widgets (attributes): molecule_w, xyz_w, charge_w, basis_w, xc_w, grid_w,
    pyscf_w, run_button, status_w, levels_w, convergence_w, orbital_w (slider),
    orbital_out (3D view), slice_w (static slice), view_mode_w.

    A bad constructor argument raises ValueError (TypeError for a wrong type) naming
    what is accepted: an unknown molecule name (the message lists the built-ins), a
    grid level outside 0..5, an unknown functional or basis, a view mode other than
    '3D'/'slice'. Errors of a run (pressing "Run SCF") are shown, never raised.
    """

    def __init__(
        self,
        molecule="water",
        basis: str = "sto-3g",
        xc: str = "b3lyp5",
        grid_level: int = 1,
        *,
        with_pyscf: bool = True,
        run: bool = False,
        orbital_n: int = 40,
        view_mode: str = "3D",
    ):
        import ipywidgets as W

        from qpt_nb.dft.molecule import Molecule
        from qpt_nb.dft.xc import SUPPORTED

        names = list(Molecule.builtins())
        molecule, xyz, charge = _check_molecule(molecule, names)
        grid_level = _check_choice(
            grid_level, GRID_LEVELS, "grid_level", "an integer 0..5 (the explorer's grid levels)"
        )
        view_mode = _check_choice(view_mode, VIEW_MODES, "view_mode", "'3D' or 'slice'")
        _check_xc_and_basis(xc, basis, None if molecule == PASTE else molecule)
        self.orbital_n = check_int(orbital_n, "orbital_n", low=2, hint=" (cube points per axis)")
        self.state = ExplorerState(
            molecule=molecule,
            xyz=xyz,
            charge=charge,
            basis=basis,
            xc=xc,
            grid_level=int(grid_level),
            with_pyscf=bool(with_pyscf),
        )
        lay = W.Layout(width="190px")
        self.molecule_w = W.Dropdown(
            options=names + [PASTE],
            value=molecule if molecule in names + [PASTE] else names[0],
            description="molecule",
            layout=lay,
        )
        self.xyz_w = W.Textarea(
            value=xyz,
            placeholder="3\nwater\nO 0 0 0.117\nH 0 0.757 -0.467\nH 0 -0.757 -0.467",
            layout=W.Layout(width="380px", height="110px"),
        )
        self.charge_w = W.BoundedIntText(
            value=charge, min=CHARGES[0], max=CHARGES[1], description="charge", layout=W.Layout(width="130px")
        )
        bases = list(BASES) if basis in BASES else list(BASES) + [basis]
        self.basis_w = W.Dropdown(options=bases, value=basis, description="basis", layout=lay)
        xcs = list(SUPPORTED) if xc in SUPPORTED else list(SUPPORTED) + [xc]
        self.xc_w = W.Dropdown(options=xcs, value=xc, description="functional", layout=lay)
        self.grid_w = W.Dropdown(
            options=list(range(0, 6)), value=int(grid_level), description="grid level", layout=lay
        )
        self.pyscf_w = W.Checkbox(value=bool(with_pyscf), description="PySCF beside")
        self.run_button = W.Button(description="Run SCF", button_style="primary", icon="play")
        self.status_w = W.HTML("<i>choose a molecule and press Run SCF</i>")
        self.levels_w = W.Image(format="png")
        self.convergence_w = W.Image(format="png")
        self.orbital_w = W.IntSlider(
            value=0, min=0, max=0, description="orbital", continuous_update=False, disabled=True
        )
        self.orbital_label_w = W.HTML("")
        self.view_mode_w = W.ToggleButtons(
            options=["3D", "slice"], value=view_mode, style={"button_width": "60px"}
        )
        self.orbital_out = W.Output(layout=W.Layout(min_height="330px", width="440px"))
        self.slice_w = W.Image(format="png")
        self._orbitals: Optional[OrbitalView] = None

        self.molecule_w.observe(self._on_molecule, names="value")
        self.run_button.on_click(lambda _: self.run())
        self._suspend = False
        self.orbital_w.observe(
            lambda ch: None if self._suspend else self.show_orbital(ch["new"]), names="value"
        )
        self.view_mode_w.observe(lambda ch: self.show_orbital(self.state.orbital), names="value")
        self._on_molecule({"new": self.molecule_w.value})

        settings = W.VBox(
            [
                W.HBox([self.molecule_w, self.charge_w]),
                self.xyz_w,
                W.HBox([self.basis_w, self.xc_w]),
                W.HBox([self.grid_w, self.pyscf_w]),
                self.run_button,
            ]
        )
        orbital_box = W.VBox(
            [W.HBox([self.orbital_w, self.view_mode_w]), self.orbital_label_w, self.orbital_out, self.slice_w]
        )
        self.widget = W.VBox(
            [W.HBox([settings, self.status_w]), W.HBox([self.levels_w, self.convergence_w]), orbital_box]
        )
        if run:
            self.run()

    # ------------------------------------------------------------------ events
    def _on_molecule(self, change):
        from qpt_nb.dft.molecule import Molecule

        name = change["new"]
        if name != PASTE:
            try:
                self.xyz_w.value = Molecule.builtin(name).to_xyz(decimals=6)
            except ValueError:
                pass
            self.xyz_w.disabled = True
        else:
            self.xyz_w.disabled = False

    def _read_settings(self):
        s = self.state
        s.molecule = self.molecule_w.value
        s.xyz = self.xyz_w.value
        s.charge = int(self.charge_w.value)
        s.basis = str(self.basis_w.value)
        s.xc = str(self.xc_w.value)
        s.grid_level = int(self.grid_w.value)
        s.with_pyscf = bool(self.pyscf_w.value)

    def _molecule(self):
        from qpt_nb.dft.molecule import Molecule

        s = self.state
        if s.molecule != PASTE:
            mol = Molecule.builtin(s.molecule)
            if s.charge:
                mol = Molecule.from_arrays(mol.symbols, mol.coords_angstrom, s.charge, 0, mol.name)
            return mol
        if not s.xyz.strip():
            raise ValueError("paste an xyz geometry (Angstrom) into the text box first")
        return Molecule.from_xyz(s.xyz, charge=s.charge, name="pasted")

    # ------------------------------------------------------------------ actions
    def run(self) -> ExplorerState:
        """Reads the widgets, runs the SCF (and PySCF) and refreshes every panel.
        Never raises for bad input: the message goes to ``state.error``."""
        from qpt_nb.dft.reference import pyscf_scf
        from qpt_nb.dft.scf import scf

        self._read_settings()
        s = self.state
        s.error, s.status = None, "running"
        s.result = s.pyscf_energy = s.pyscf_mo_energy = s.difference = s.pyscf_s = None
        self.run_button.disabled = True
        self.status_w.value = (
            "<b>running qpt_nb's SCF...</b> (the first run of a new molecule/basis compiles, ~10 s)"
        )
        t0 = time.perf_counter()
        try:
            s.mol = self._molecule()
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                s.result = scf(s.mol, s.basis, xc=s.xc, grid_level=s.grid_level)
            if s.with_pyscf:
                self.status_w.value = "<b>running PySCF...</b>"
                mf, s.pyscf_s = pyscf_scf(
                    s.mol, s.basis, xc=s.xc, grid_level=s.grid_level, eri=s.result.tensors.eri_kind
                )
                s.pyscf_energy = float(mf.e_tot)
                s.pyscf_mo_energy = np.asarray(mf.mo_energy)
                s.difference = s.result.energy - s.pyscf_energy
            s.seconds = time.perf_counter() - t0
            s.status = "done"
        except Exception as exc:  # shown in the widget, not raised
            s.error, s.status, s.result = _friendly(exc), "error", None
        finally:
            self.run_button.disabled = False
        self.refresh()
        return s

    def refresh(self):
        """Redraws every panel from ``state``."""
        s = self.state
        if s.error:
            self.status_w.value = (
                "<div style='color:#a00;background:#fee;padding:6px;"
                "border:1px solid #d99;max-width:420px'><b>Could not run:</b> "
                f"{html.escape(s.error)}</div>"
            )
            self.levels_w.value = b""
            self.convergence_w.value = b""
            self.orbital_w.disabled = True
            self._orbitals = None
            self.orbital_out.outputs = ()
            self.slice_w.value = b""
            return
        if s.result is None:
            return
        self.status_w.value = self._status_html()
        r = s.result
        set_png(
            self.levels_w,
            viz.energy_levels(
                r.mo_energy,
                s.n_occ,
                reference=s.pyscf_mo_energy,
                title=f"{s.mol.name or s.mol.formula} orbital energies",
            ),
        )
        set_png(self.convergence_w, viz.scf_convergence(r.energies, reference=s.pyscf_energy))
        self._orbitals = OrbitalView(
            s.mol, s.basis, r.mo_coeff, s.n_occ - 1, r.mo_energy, s.n_occ, n=self.orbital_n
        )
        homo = s.n_occ - 1
        self._suspend = True  # no redraws while the range changes
        try:
            self.orbital_w.max = r.mo_coeff.shape[1] - 1
            self.orbital_w.value = homo
        finally:
            self._suspend = False
        self.orbital_w.disabled = False
        self.show_orbital(homo)

    def _status_html(self) -> str:
        s, r = self.state, self.state.result
        rows = [
            (
                "qpt_nb (JAX)",
                f"{r.energy:.8f} Ha",
                f"{'converged' if r.converged else 'NOT converged'}, {r.n_iter} iterations",
            )
        ]
        if s.pyscf_energy is not None:
            rows.append(("PySCF", f"{s.pyscf_energy:.8f} Ha", f"{s.pyscf_s:.2f} s"))
            rows.append(
                ("difference", f"{s.difference:+.2e} Ha", f"{s.difference * MEV_PER_HARTREE:+.4f} meV")
            )
        gap = r.homo_lumo_gap
        rows.append(("HOMO-LUMO gap", f"{gap:.4f} Ha", f"{gap * EV_PER_HARTREE:.3f} eV"))
        body = "".join(
            f"<tr><td><b>{a}</b></td><td style='font-family:monospace'>{b}</td><td>{c}</td></tr>"
            for a, b, c in rows
        )
        t = r.tensors
        return (
            f"<div><b>{html.escape(s.mol.name or s.mol.formula)}</b> ({s.mol.formula}) / "
            f"{s.basis} / {s.xc} / grid {s.grid_level}: {t.n_ao} AOs, {t.n_occ} occupied, "
            f"{t.n_grid} grid points; {s.seconds:.1f} s"
            f"<table>{body}</table></div>"
        )

    def show_orbital(self, index: Optional[int]):
        """Shows orbital ``index`` (0-based) in the 3D view or the slice image."""
        if self._orbitals is None or index is None:
            return
        index = int(min(max(index, 0), self._orbitals.n_mo - 1))
        self.state.orbital = index
        ov = self._orbitals.set_index(index)
        self.orbital_label_w.value = f"<b>{ov.label}</b>"
        if self.view_mode_w.value == "3D":
            self.slice_w.layout.display = "none"
            self.orbital_out.layout.display = None
            set_output_html(self.orbital_out, ov.html(), ov.label)
        else:
            self.orbital_out.layout.display = "none"
            self.slice_w.layout.display = None
            set_png(self.slice_w, ov.slice_figure())

    @property
    def orbital_view(self) -> Optional[OrbitalView]:
        """The `OrbitalView` of the last run (None before a run)."""
        return self._orbitals

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
