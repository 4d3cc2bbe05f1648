"""`OrbitalView`: one molecular orbital as 3Dmol.js isosurfaces, with a static fallback.

    res = qpt_nb.dft.scf.scf(mol, 'sto-3g', xc='b3lyp5', grid_level=1)
    v = orbital_view(mol, res, 'homo', basis='sto-3g')     # displays in a notebook
    v.save_html('homo.html')                                # standalone page
    v.slice_figure()                                         # matplotlib fallback

``mo_coeff`` must be in the input orientation of ``mol`` (as `qpt_nb.dft.scf.scf`
returns it: its tensors use frame='input'), so it matches ``mol.to_pyscf(basis)``.
Labels from `qpt_nb.dft.reference` are in the canonical frame: pass
``mol.canonical()`` with them.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Optional, Union

import numpy as np

from qpt_nb import viz
from qpt_nb.viz import threedmol

__all__ = ["OrbitalView", "orbital_view", "resolve_orbital_index", "orbital_gallery", "molecule_view"]


def _zoom_factor(mol) -> float:
    """3Dmol's zoomTo leaves small molecules tiny: zoom in up to 2.2x below ~5 Angstrom."""
    x = np.asarray(mol.coords_angstrom)
    extent = float(np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)).max()) if len(x) > 1 else 0.0
    return float(np.clip(7.0 / (extent + 2.0), 1.0, 2.2))


def resolve_orbital_index(index: Union[int, str], n_occ: Optional[int], n_mo: int) -> int:
    """0-based orbital index from an int or 'homo', 'lumo', 'homo-1', 'lumo+2'."""
    if isinstance(index, (int, np.integer)):
        i = int(index)
        if i < 0:
            i += n_mo
    else:
        m = re.fullmatch(r"\s*(homo|lumo)\s*(?:([+-])\s*(\d+))?\s*", str(index).lower())
        if m is None:
            raise ValueError(
                f"orbital index must be an int or 'homo', 'lumo', 'homo-1', 'lumo+1', ...; got {index!r}"
            )
        if n_occ is None:
            raise ValueError(f"{index!r} needs the number of occupied orbitals (n_occ=)")
        base = n_occ - 1 if m.group(1) == "homo" else n_occ
        off = int(m.group(3) or 0) * (-1 if m.group(2) == "-" else 1)
        i = base + off
    if not 0 <= i < n_mo:
        raise ValueError(f"orbital index {index!r} is out of range: 0..{n_mo - 1}")
    return i


@dataclasses.dataclass
class OrbitalView:
    """State of one orbital view (all plain data; drawing is in `qpt_nb.viz`).

    mol: `Molecule`; basis: basis name; mo_coeff (N_AO, N_MO) in mol's orientation;
    index: 0-based orbital; mo_energy (N_MO,) Hartree and n_occ: optional, for labels;
    isovalue: surface value (Bohr^-3/2); n: cube points per axis (about 40 keeps
    a notebook small); width/height: pixels.
    """

    mol: object
    basis: str
    mo_coeff: np.ndarray
    index: int = 0
    mo_energy: Optional[np.ndarray] = None
    n_occ: Optional[int] = None
    isovalue: float = 0.05
    n: int = 40
    width: int = 420
    height: int = 320
    fallback: bool = True
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.mo_coeff = np.asarray(self.mo_coeff, dtype=np.float64)
        if self.mo_coeff.ndim != 2:
            raise ValueError(f"mo_coeff must be (N_AO, N_MO), got shape {self.mo_coeff.shape}")
        self.index = resolve_orbital_index(self.index, self.n_occ, self.mo_coeff.shape[1])
        n_ao = self.pmol.nao_nr()
        if self.mo_coeff.shape[0] != n_ao:
            raise ValueError(
                f"mo_coeff has {self.mo_coeff.shape[0]} AO rows but basis "
                f"{self.basis!r} gives {n_ao} AOs for {self.mol.formula}: "
                "pass the basis the orbitals were computed in"
            )

    # ------------------------------------------------------------------ data
    @property
    def pmol(self):
        if "pmol" not in self._cache:
            self._cache["pmol"] = self.mol.to_pyscf(self.basis)
        return self._cache["pmol"]

    @property
    def n_mo(self) -> int:
        return self.mo_coeff.shape[1]

    @property
    def label(self) -> str:
        """E.g. 'orbital 4 (HOMO, -0.2650 Ha)'."""
        parts = []
        if self.n_occ is not None:
            parts.append(viz.orbital_label(self.index, self.n_occ))
        if self.mo_energy is not None:
            parts.append(f"{float(self.mo_energy[self.index]):.4f} Ha")
        return f"orbital {self.index}" + (f" ({', '.join(parts)})" if parts else "")

    def set_index(self, index) -> "OrbitalView":
        self.index = resolve_orbital_index(index, self.n_occ, self.n_mo)
        return self

    def cube(self, compact: bool = True) -> str:
        """Cube text of the current orbital (``pyscf.tools.cubegen``, n^3 points);
        compact=True is the integer form embedded in the HTML (see `viz.compact_cube`)."""
        key = ("cube", self.index, self.n, compact)
        if key not in self._cache:
            self._cache[key] = viz.orbital_cube(
                self.mol, self.basis, self.mo_coeff, self.index, n=self.n, compact=compact, pmol=self.pmol
            )
        return self._cache[key]

    def save_cube(self, path) -> Path:
        """Writes the full-precision cube file of the current orbital."""
        path = Path(path)
        path.write_text(self.cube(compact=False))
        return path

    # ------------------------------------------------------------------ drawing
    def slice_figure(self, **kw):
        """The matplotlib fallback: the orbital on a plane through the molecule."""
        return viz.orbital_slice_figure(
            self.mol,
            self.basis,
            self.mo_coeff,
            self.index,
            isovalue=self.isovalue,
            mo_energy=self.mo_energy,
            n_occ=self.n_occ,
            pmol=self.pmol,
            **kw,
        )

    def fallback_png(self) -> Optional[bytes]:
        if not self.fallback:
            return None
        key = ("png", self.index, self.isovalue, self.width, self.height)
        if key not in self._cache:  # the image fills the viewer's box
            fig = self.slice_figure(figsize=(self.width / 72, self.height / 72))
            self._cache[key] = viz.figure_png(fig, dpi=72)
        return self._cache[key]

    def view(self):
        """A fresh ``py3Dmol.view`` with the molecule and the +/- isosurfaces."""
        v = threedmol.new_view(self.width, self.height)
        viz.add_molecule(v, self.mol)
        viz.add_orbital(v, self.cube(), isovalue=self.isovalue)
        v.zoomTo()
        v.zoom(_zoom_factor(self.mol))
        return v

    def html(self, inline: Optional[bool] = None) -> str:
        """The viewer's HTML fragment (3Dmol.js from the configured source)."""
        return threedmol.view_html(self.view(), fallback_png=self.fallback_png(), inline=inline)

    def save_html(self, path) -> Path:
        """A standalone HTML page of the view.  With a local 3Dmol.js configured
        (`qpt_nb.viz.set_3dmol_js` / ``QPT_NB_3DMOL_JS``) the library is embedded and
        the page works offline; otherwise it loads 3Dmol.js from the URL.  The
        static slice image is shown until 3Dmol.js has loaded."""
        path = Path(path)
        body = (
            f"<h3 style='font-family:sans-serif'>{self.mol.name or self.mol.formula} / "
            f"{self.basis}: {self.label}</h3>\n" + self.html(inline=True)
        )
        path.write_text(threedmol.standalone_page(body, f"qpt_nb {self.label}"), encoding="utf-8")
        return path

    def _repr_mimebundle_(self, include=None, exclude=None):
        return threedmol.mimebundle(
            self.view(),
            fallback_png=self.fallback_png(),
            text=f"OrbitalView({self.mol.name or self.mol.formula}, {self.label})",
        )


def orbital_view(
    mol,
    mo_coeff,
    index: Union[int, str] = "homo",
    basis: str = "sto-3g",
    *,
    mo_energy=None,
    n_occ: Optional[int] = None,
    isovalue: float = 0.05,
    n: int = 40,
    width: int = 420,
    height: int = 320,
    fallback: bool = True,
) -> OrbitalView:
    """The +/- isosurfaces of one molecular orbital of ``mol`` (py3Dmol).

    Args:
      mol: `qpt_nb.Molecule`, in the orientation the orbitals were computed in.
      mo_coeff: (N_AO, N_MO) coefficients, or an object with ``mo_coeff`` (an
        `SCFResult` or a PySCF mean-field object); then mo_energy and n_occ are
        taken from it too.
      index: 0-based orbital, or 'homo', 'lumo', 'homo-1', 'lumo+1', ...
      basis: the basis of ``mo_coeff`` (checked against the AO count).
      isovalue: surface value in Bohr^-3/2; n: cube points per axis.
      fallback: embed the matplotlib slice as the image shown until 3Dmol.js loads.
    Returns:
      `OrbitalView`; the notebook displays it, ``.save_html(path)`` exports it.
    """
    if hasattr(mo_coeff, "mo_coeff"):
        res = mo_coeff
        if mo_energy is None:
            mo_energy = getattr(res, "mo_energy", None)
        if n_occ is None:
            t = getattr(res, "tensors", None)
            if t is not None:
                n_occ = t.n_occ
            elif getattr(res, "mo_occ", None) is not None:
                n_occ = int(np.sum(np.asarray(res.mo_occ) > 0))
            elif getattr(res, "n_occ", None) is not None:
                n_occ = int(res.n_occ)
        mo_coeff = res.mo_coeff
    if n_occ is None and isinstance(index, str):
        n_occ = mol.to_pyscf(basis).nelectron // 2
    return OrbitalView(
        mol,
        basis,
        np.asarray(mo_coeff),
        index,
        None if mo_energy is None else np.asarray(mo_energy),
        n_occ,
        isovalue,
        n,
        width,
        height,
        fallback,
    )


@dataclasses.dataclass
class MoleculeView:
    """A ball-and-stick py3Dmol view of a geometry with a 2D sketch as fallback."""

    mol: object
    width: int = 320
    height: int = 260
    title: Optional[str] = None

    def view(self):
        v = threedmol.new_view(self.width, self.height)
        viz.add_molecule(v, self.mol)
        v.zoomTo()
        v.zoom(_zoom_factor(self.mol))
        return v

    def fallback_png(self) -> bytes:
        return viz.figure_png(
            viz.molecule_sketch_figure(self.mol, title=self.title, figsize=(3.2, 2.6)), dpi=72
        )

    def html(self, inline: Optional[bool] = None) -> str:
        return threedmol.view_html(self.view(), fallback_png=self.fallback_png(), inline=inline)

    def save_html(self, path) -> Path:
        path = Path(path)
        path.write_text(threedmol.standalone_page(self.html(inline=True)), encoding="utf-8")
        return path

    def _repr_mimebundle_(self, include=None, exclude=None):
        return threedmol.mimebundle(self.view(), fallback_png=self.fallback_png(), text=repr(self.mol))


def molecule_view(mol, width: int = 320, height: int = 260, title: Optional[str] = None):
    """Ball-and-stick 3D view of a geometry (`MoleculeView`)."""
    return MoleculeView(mol, width, height, title)


def orbital_gallery(
    molecules,
    basis: str = "sto-3g",
    xc: str = "b3lyp5",
    grid_level: int = 1,
    orbitals=("homo", "lumo"),
    *,
    n: int = 32,
    static: bool = False,
    width: int = 260,
    height: int = 220,
):
    """A grid of orbital views (rows: molecules, columns: ``orbitals``).

    Runs qpt_nb's SCF for each molecule (names of builtins or `Molecule` objects).
    Returns an ipywidgets ``GridBox`` of 3D views (or of slice images when
    ``static=True``).  Each cube has ``n^3`` points (32 keeps a gallery small).
    """
    import ipywidgets as W

    from qpt_nb.dft.molecule import Molecule
    from qpt_nb.dft.scf import scf

    cells = []
    for m in molecules:
        mol = Molecule.builtin(m) if isinstance(m, str) else m
        res = scf(mol, basis, xc=xc, grid_level=grid_level)
        for orb in orbitals:
            ov = orbital_view(mol, res, orb, basis=basis, n=n, width=width, height=height)
            head = W.HTML(f"<b>{mol.name or mol.formula}</b> {ov.label}")
            if static:
                body = W.Image(format="png")
                set_png(body, ov.slice_figure(figsize=(3.4, 2.8)))
            else:
                body = W.Output()
                set_output_html(body, ov.html(), ov.label)
            cells.append(W.VBox([head, body]))
    return W.GridBox(cells, layout=W.Layout(grid_template_columns=f"repeat({len(orbitals)}, {width + 20}px)"))


def set_png(image_widget, fig, dpi: int = 72):
    """Shows a matplotlib Figure in an ipywidgets Image at its natural pixel size."""
    w_in, _ = fig.get_size_inches()
    image_widget.value = viz.figure_png(fig, dpi=dpi)
    image_widget.width = str(int(round(w_in * dpi)))


def set_output_html(out, html: str, text: str = ""):
    """Replaces an ipywidgets Output's content with HTML (works from any thread)."""
    out.outputs = (
        {
            "output_type": "display_data",
            "data": {"text/html": html, "text/plain": text or "3D view"},
            "metadata": {},
        },
    )
