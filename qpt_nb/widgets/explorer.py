"""`MoleculeExplorer`: pick a molecule and DFT settings, run qpt_nb's SCF (and PySCF).

    ex = MoleculeExplorer()            # display it in a notebook cell
    ex.run()                           # same as pressing "Run SCF"
    ex.state.result.energy, ex.state.pyscf_energy, ex.state.error

The state (`ExplorerState`) is a plain dataclass; every figure comes from a pure
function of `qpt_nb.viz`.  Bad input (unknown element, a charge or spin that does not
fit the electron count, malformed xyz, a basis without the element, ...) ends up as a
readable message in ``state.error`` and in the widget, never as a traceback.

Open shells: the charge and spin boxes (spin = 2S = n_alpha - n_beta, PySCF's
convention) build the molecule; a spin other than 0 runs unrestricted Kohn-Sham (and
PySCF's dft.UKS beside it). The level diagram and the orbital viewer then show one spin
channel, alpha by default (the "orbitals of" buttons pick beta), and the status table
gives <S^2>.
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

__all__ = ["MoleculeExplorer", "ExplorerState", "orbital_channel", "BASES", "PASTE"]

BASES = ("sto-3g", "6-31g", "6-31g*", "def2-svp", "cc-pvdz")
PASTE = "(paste xyz)"
GRID_LEVELS = tuple(range(0, 6))  # the grid-level dropdown
VIEW_MODES = ("3D", "slice")
CHARGES = (-4, 4)  # the charge box's bounds
SPINS = (0, 6)  # the spin box's bounds (2S = n_alpha - n_beta)
CHANNELS = ("alpha", "beta")  # the spin whose orbitals an unrestricted result shows


@dataclasses.dataclass
class ExplorerState:
    """Everything the explorer shows.  Energies in Hartree.

    molecule: builtin name or PASTE; xyz: pasted text; charge; spin (2S = n_alpha -
    n_beta; not 0: unrestricted); basis; xc; grid_level; with_pyscf: also run PySCF;
    channel: 'alpha' or 'beta', the spin whose orbitals an unrestricted result shows.
    After `run`: mol, result (`SCFResult`), spin_square (<S^2> of the result, 0 for a
    restricted one), pyscf_energy / pyscf_mo_energy / pyscf_s / pyscf_spin_square (or
    None), difference (qpt - PySCF), seconds, error (message or None), orbital
    (selected 0-based index in the shown channel), status ('idle' | 'running' | 'done' |
    'error').
    """

    molecule: str = "water"
    xyz: str = ""
    charge: int = 0
    spin: int = 0
    basis: str = "sto-3g"
    xc: str = "b3lyp5"
    grid_level: int = 1
    with_pyscf: bool = True
    channel: str = "alpha"
    mol: object = None
    result: object = None
    spin_square: Optional[float] = None
    pyscf_energy: Optional[float] = None
    pyscf_mo_energy: Optional[np.ndarray] = None
    pyscf_s: Optional[float] = None
    pyscf_spin_square: Optional[float] = None
    difference: Optional[float] = None
    seconds: Optional[float] = None
    error: Optional[str] = None
    orbital: Optional[int] = None
    status: str = "idle"

    @property
    def unrestricted(self) -> bool:
        """Whether the last result is unrestricted (two spin channels)."""
        return self.result is not None and bool(self.result.unrestricted)

    @property
    def n_occ(self) -> Optional[int]:
        """Occupied orbitals of the shown channel (`orbital_channel`)."""
        return None if self.result is None else orbital_channel(self.result, self.channel)[2]

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
        if self.unrestricted:
            n_a, n_b = r.occupations
            lines.append(
                f"unrestricted (charge {self.mol.charge}, spin {self.mol.spin}): {n_a} alpha + "
                f"{n_b} beta electrons, <S^2> = {self.spin_square:.4f}"
            )
        if self.pyscf_energy is not None:
            lines.append(f"E(PySCF) = {self.pyscf_energy:.8f} Ha, difference {self.difference:+.2e} Ha")
        return "\n".join(lines)


def orbital_channel(result, channel: str = "alpha") -> tuple:
    """(mo_energy (N,), mo_coeff (N_AO, N), occupied count) of one spin of an SCF result:
    the restricted orbitals whatever ``channel`` says, else the 'alpha' or 'beta' ones."""
    if not result.unrestricted:
        return np.asarray(result.mo_energy), np.asarray(result.mo_coeff), int(result.n_occ)
    k = CHANNELS.index(channel)
    return np.asarray(result.mo_energy)[k], np.asarray(result.mo_coeff)[k], int(result.occupations[k])


def _one_spin_levels(fig, channel: str):
    """`viz.energy_levels` draws an electron pair on each occupied level; a one-spin
    diagram holds one electron per level: its arrows become single up (alpha) or down
    (beta) arrows."""
    arrow = "$\\uparrow$" if channel == "alpha" else "$\\downarrow$"
    for ax in fig.axes:
        for line in ax.lines:
            if line.get_marker() == "$\\uparrow\\downarrow$":
                line.set_marker(arrow)
    return fig


def _reference_channel(mo_energy, channel: str):
    """PySCF's orbital energies of the shown channel (None stays None)."""
    if mo_energy is None or np.ndim(mo_energy) == 1:
        return mo_energy
    return np.asarray(mo_energy)[CHANNELS.index(channel)]


def _friendly(exc: BaseException) -> str:
    msg = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, ValueError):
        msg = f"{type(exc).__name__}: {msg}"
    return msg.splitlines()[0] if len(msg) > 400 else msg


def _check_box(value, bounds, what):
    """An int within ``bounds`` for the charge / spin box; ValueError (InvalidSetting for a
    non-integer) otherwise."""
    return check_int(value, what, low=bounds[0], high=bounds[1], hint=f" (the explorer's {what} box)")


def _check_molecule(molecule, names):
    """(dropdown value, xyz text, charge, spin) of the constructor's ``molecule``."""
    from qpt_nb.dft.molecule import Molecule, builtin_key

    if isinstance(molecule, Molecule):
        charge = _check_box(molecule.charge, CHARGES, "charge")
        spin = _check_box(molecule.spin, SPINS, "spin")
        return PASTE, molecule.to_xyz(decimals=6), charge, spin
    if not isinstance(molecule, str):
        raise TypeError(
            f"molecule must be the name of a built-in molecule (one of "
            f"{', '.join(names)}) or a qpt_nb.Molecule, got "
            f"{type(molecule).__name__}"
        )
    if molecule == PASTE:
        return PASTE, "", 0, 0
    key = builtin_key(molecule)
    if key is None or key not in names:
        raise ValueError(
            f"unknown molecule {molecule!r}: the built-in molecules are "
            f"{', '.join(names)} (or pass a qpt_nb.Molecule, e.g. "
            f"Molecule.from_xyz(path), or {PASTE!r} to paste xyz)"
        )
    return key, "", 0, Molecule.builtin(key).spin  # a radical builtin (allyl): its doublet


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
      molecule: initial builtin name (or a `Molecule`, shown as pasted xyz with its
        charge and spin).
      basis, xc, grid_level, with_pyscf: initial settings.
      charge, spin: initial charge and spin (2S = n_alpha - n_beta); None: the
        molecule's (0 for a built-in one).
      run: run the SCF immediately (blocking) when created.
      orbital_n: cube points per axis of the orbital viewer.
    Widgets (attributes): molecule_w, xyz_w, charge_w, spin_w, basis_w, xc_w, grid_w,
    pyscf_w, run_button, status_w, levels_w, convergence_w, orbital_w (slider),
    channel_w (alpha/beta orbitals of an unrestricted result), orbital_out (3D view),
    slice_w (static slice), view_mode_w.

    A bad constructor argument raises ValueError (TypeError for a wrong type) naming
    what is accepted: an unknown molecule name (the message lists the built-ins), a
    grid level outside 0..5, a charge outside -4..4 or a spin outside 0..6, an unknown
    functional or basis, a view mode other than '3D'/'slice'. Errors of a run (pressing
    "Run SCF"), a charge or spin that does not fit the electron count included, are
    shown, never raised.
    """

    def __init__(
        self,
        molecule="water",
        basis: str = "sto-3g",
        xc: str = "b3lyp5",
        grid_level: int = 1,
        *,
        with_pyscf: bool = True,
        charge: Optional[int] = None,
        spin: Optional[int] = None,
        run: bool = False,
        orbital_n: int = 40,
        view_mode: str = "3D",
    ):
        import ipywidgets as W

        from qpt_nb.dft.molecule import Molecule
        from qpt_nb.dft.xc import SUPPORTED

        names = list(Molecule.builtins())
        molecule, xyz, mol_charge, mol_spin = _check_molecule(molecule, names)
        charge = mol_charge if charge is None else _check_box(charge, CHARGES, "charge")
        spin = mol_spin if spin is None else _check_box(spin, SPINS, "spin")
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
            spin=spin,
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
        self.spin_w = W.BoundedIntText(
            value=spin,
            min=SPINS[0],
            max=SPINS[1],
            description="spin (2S)",
            tooltip="n_alpha - n_beta: 0 closed shell, 1 doublet, 2 triplet (unrestricted KS)",
            style={"description_width": "60px"},
            layout=W.Layout(width="130px"),
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
        self.channel_w = W.ToggleButtons(
            options=list(CHANNELS),
            value="alpha",
            description="orbitals of",
            tooltips=["alpha-spin orbitals", "beta-spin orbitals"],
            disabled=True,  # enabled for an unrestricted result
            style={"button_width": "50px", "description_width": "70px"},
        )
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
        self.channel_w.observe(
            lambda ch: None if self._suspend else self.set_channel(ch["new"]), names="value"
        )
        self._on_molecule({"new": self.molecule_w.value}, set_boxes=False)

        settings = W.VBox(
            [
                W.HBox([self.molecule_w, self.charge_w, self.spin_w]),
                self.xyz_w,
                W.HBox([self.basis_w, self.xc_w]),
                W.HBox([self.grid_w, self.pyscf_w]),
                self.run_button,
            ]
        )
        orbital_box = W.VBox(
            [
                W.HBox([self.orbital_w, self.view_mode_w]),
                self.channel_w,
                self.orbital_label_w,
                self.orbital_out,
                self.slice_w,
            ]
        )
        self.widget = W.VBox(
            [W.HBox([settings, self.status_w]), W.HBox([self.levels_w, self.convergence_w]), orbital_box]
        )
        if run:
            self.run()

    # ------------------------------------------------------------------ events
    def _on_molecule(self, change, set_boxes: bool = True):
        """A built-in molecule picked: its xyz in the (disabled) text box and, when the user
        picked it (`set_boxes`), charge 0 and its own spin in the boxes (a radical: 1)."""
        from qpt_nb.dft.molecule import Molecule

        name = change["new"]
        if name != PASTE:
            try:
                mol = Molecule.builtin(name)
            except ValueError:
                pass
            else:
                self.xyz_w.value = mol.to_xyz(decimals=6)
                if set_boxes:
                    self.charge_w.value, self.spin_w.value = 0, mol.spin
            self.xyz_w.disabled = True
        else:
            self.xyz_w.disabled = False

    def _read_settings(self):
        s = self.state
        s.molecule = self.molecule_w.value
        s.xyz = self.xyz_w.value
        s.charge = int(self.charge_w.value)
        s.spin = int(self.spin_w.value)
        s.basis = str(self.basis_w.value)
        s.xc = str(self.xc_w.value)
        s.grid_level = int(self.grid_w.value)
        s.with_pyscf = bool(self.pyscf_w.value)

    def _molecule(self):
        from qpt_nb.dft.molecule import Molecule

        s = self.state
        if s.molecule != PASTE:
            mol = Molecule.builtin(s.molecule)
            if (s.charge, s.spin) != (mol.charge, mol.spin):  # ValueError when they do not fit
                mol = Molecule.from_arrays(mol.symbols, mol.coords_angstrom, s.charge, s.spin, mol.name)
            return mol
        if not s.xyz.strip():
            raise ValueError("paste an xyz geometry (Angstrom) into the text box first")
        return Molecule.from_xyz(s.xyz, charge=s.charge, spin=s.spin, name="pasted")

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
        s.spin_square = s.pyscf_spin_square = None
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
                s.result = scf(s.mol, s.basis, xc=s.xc, grid_level=s.grid_level)  # UKS when spin != 0
            s.spin_square = float(s.result.spin_square[0])
            if s.with_pyscf:
                self.status_w.value = "<b>running PySCF...</b>"
                mf, s.pyscf_s = pyscf_scf(
                    s.mol, s.basis, xc=s.xc, grid_level=s.grid_level, eri=s.result.tensors.eri_kind
                )
                s.pyscf_energy = float(mf.e_tot)
                s.pyscf_mo_energy = np.asarray(mf.mo_energy)  # (2, N) for dft.UKS
                if s.result.unrestricted:
                    s.pyscf_spin_square = float(mf.spin_square()[0])
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
            self.channel_w.disabled = True
            self._orbitals = None
            self.orbital_out.outputs = ()
            self.slice_w.value = b""
            return
        if s.result is None:
            return
        self.status_w.value = self._status_html()
        r = s.result
        set_png(self.convergence_w, viz.scf_convergence(r.energies, reference=s.pyscf_energy))
        self._suspend = True
        try:
            self.channel_w.value = s.channel
        finally:
            self._suspend = False
        self.channel_w.disabled = not s.unrestricted
        self._draw_orbitals()

    def set_channel(self, channel: str):
        """Shows the 'alpha' or 'beta' orbitals of an unrestricted result (levels and viewer)."""
        self.state.channel = _check_choice(channel, CHANNELS, "channel", "'alpha' or 'beta'")
        if self.state.result is not None and not self.state.error:
            self.status_w.value = self._status_html()  # it names the shown spin
            self._draw_orbitals()

    def _draw_orbitals(self):
        """Level diagram and orbital viewer of the shown channel, at its HOMO."""
        s = self.state
        mo_energy, mo_coeff, n_occ = orbital_channel(s.result, s.channel)
        name = s.mol.name or s.mol.formula
        levels = viz.energy_levels(
            mo_energy,
            n_occ,
            reference=_reference_channel(s.pyscf_mo_energy, s.channel),
            title=f"{name} {s.channel} orbital energies" if s.unrestricted else f"{name} orbital energies",
        )
        set_png(self.levels_w, _one_spin_levels(levels, s.channel) if s.unrestricted else levels)
        self._orbitals = OrbitalView(
            s.mol, s.basis, mo_coeff, max(n_occ - 1, 0), mo_energy, n_occ, n=self.orbital_n
        )
        homo = max(n_occ - 1, 0)
        self._suspend = True  # no redraws while the range changes
        try:
            self.orbital_w.max = mo_coeff.shape[1] - 1
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
        if s.unrestricted:
            ideal = 0.5 * s.mol.spin * (0.5 * s.mol.spin + 1)  # S(S+1)
            pyscf = "" if s.pyscf_spin_square is None else f"PySCF {s.pyscf_spin_square:.4f}; "
            rows.append(
                ("&lt;S<sup>2</sup>&gt;", f"{s.spin_square:.4f}", f"{pyscf}pure spin state {ideal:.4f}")
            )
        body = "".join(
            f"<tr><td><b>{a}</b></td><td style='font-family:monospace'>{b}</td><td>{c}</td></tr>"
            for a, b, c in rows
        )
        t = r.tensors
        if s.unrestricted:
            n_a, n_b = r.occupations
            occ = (
                f"unrestricted (UKS), charge {s.mol.charge}, spin {s.mol.spin}: {n_a} alpha + {n_b} beta "
                f"electrons; levels and orbitals of the {s.channel} spin"
            )
        else:
            occ = f"{t.n_occ} occupied"
        return (
            f"<div><b>{html.escape(s.mol.name or s.mol.formula)}</b> ({s.mol.formula}) / "
            f"{s.basis} / {s.xc} / grid {s.grid_level}: {t.n_ao} AOs, {occ}, "
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
        spin = f" &mdash; {self.state.channel} spin" if self.state.unrestricted else ""
        self.orbital_label_w.value = f"<b>{ov.label}</b>{spin}"
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
