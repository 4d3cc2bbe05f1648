"""Molecular orbitals in 3D (py3Dmol isosurfaces from cube files) and in 2D (matplotlib slices).

Pure functions: they take a `qpt_nb.Molecule`, a basis name and orbital
coefficients (columns of ``mo_coeff`` in PySCF's AO order, in the *input*
orientation of the molecule, as `qpt_nb.dft.scf.scf` returns them) and return cube
text, py3Dmol views or matplotlib Figures.  No widget state here.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Optional, Sequence

import numpy as np

from qpt_nb.units import ANGSTROM_PER_BOHR, EV_PER_HARTREE
from qpt_nb.viz.figures import figure_png, new_figure

__all__ = [
    "orbital_cube",
    "compact_cube",
    "orbital_on_plane",
    "molecule_plane",
    "orbital_slice_figure",
    "molecule_sketch_figure",
    "add_molecule",
    "add_orbital",
    "figure_png",
    "CPK",
]

# Jmol-like element colours for the 2D sketches
CPK = {
    "H": "#bbbbbb",
    "C": "#444444",
    "N": "#3050f8",
    "O": "#ff0d0d",
    "F": "#90e050",
    "S": "#c8c800",
    "Cl": "#1ff01f",
    "Li": "#cc80ff",
    "B": "#ffb5b5",
    "P": "#ff8000",
}
CUBE_QUANTUM = 1e-3  # compact cubes store integers in units of this (Bohr^-3/2)
POS_COLOR = "#2166ac"  # + lobe (blue)
NEG_COLOR = "#b2182b"  # - lobe (red)


def _coeff_vector(mo_coeff, index: int) -> np.ndarray:
    c = np.asarray(mo_coeff, dtype=np.float64)
    if c.ndim == 1:
        return c
    if not -c.shape[1] <= int(index) < c.shape[1]:
        raise ValueError(f"orbital index {index} out of range 0..{c.shape[1] - 1}")
    return c[:, int(index)]


def compact_cube(text: str, n_atoms: int, *, quantum: float = 1e-3) -> str:
    """Rewrites the values of a cube file as integers in units of ``quantum``
    (header kept verbatim), so ``value = integer * quantum``.  A 40^3 orbital
    cube shrinks from ~840 kB to typically 60-150 kB; isosurfaces at
    |value| >= 0.02 move by less than the grid spacing.  Only for display: pass
    isovalues divided by ``quantum`` (`add_orbital` does this)."""
    lines = text.splitlines()
    n_head = 6 + abs(n_atoms)
    head, body = lines[:n_head], lines[n_head:]
    vals = np.array(" ".join(body).split(), dtype=np.float64)
    nx, ny, nz = (abs(int(lines[k].split()[0])) for k in (3, 4, 5))
    if vals.size != nx * ny * nz:
        raise ValueError(f"cube has {vals.size} values, header says {nx}x{ny}x{nz}")
    q = np.rint(vals / quantum).astype(np.int64).reshape(nx * ny, nz)
    out = io.StringIO()
    out.write("\n".join(head) + "\n")
    for row in q:  # one z-row per line
        out.write(" ".join(map(str, row.tolist())))
        out.write("\n")
    return out.getvalue()


def orbital_cube(
    mol,
    basis: str,
    mo_coeff,
    index: int = 0,
    *,
    n: int = 40,
    margin: float = 3.0,
    compact: bool = True,
    pmol=None,
) -> str:
    """Cube text of one orbital, written by ``pyscf.tools.cubegen.orbital`` on an
    ``n^3`` grid (``margin`` Bohr around the atoms); ``compact=True`` stores the
    values as integers in units of ``CUBE_QUANTUM`` (see `compact_cube`).

    mo_coeff: (N_AO, N_MO) array (or one (N_AO,) column); index: the column.
    pmol: an already built PySCF Mole for ``mol``/``basis`` (saves a rebuild).
    """
    from pyscf.tools import cubegen

    pmol = mol.to_pyscf(basis) if pmol is None else pmol
    c = _coeff_vector(mo_coeff, index)
    if c.shape[0] != pmol.nao_nr():
        raise ValueError(
            f"mo_coeff has {c.shape[0]} AO rows but {basis!r} gives {pmol.nao_nr()} AOs for {mol.formula}"
        )
    fd, path = tempfile.mkstemp(suffix=".cube", prefix="qpt_nb_orb_")
    os.close(fd)
    try:
        cubegen.orbital(pmol, path, c, nx=n, ny=n, nz=n, margin=margin)
        with open(path) as fh:
            text = fh.read()
    finally:
        os.unlink(path)
    return compact_cube(text, pmol.natm, quantum=CUBE_QUANTUM) if compact else text


# ----------------------------------------------------------------------------- 2D slices
def molecule_plane(coords_angstrom) -> tuple:
    """(center (3,), e1 (3,), e2 (3,)): the plane through the atoms' centroid spanned
    by the two directions of largest spread (the molecular plane of a planar
    molecule).  Deterministic signs (largest |component| positive)."""
    x = np.asarray(coords_angstrom, dtype=np.float64).reshape(-1, 3)
    center = x.mean(0)
    r = x - center
    if len(x) == 1:
        return center, np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    _, _, vt = np.linalg.svd(r, full_matrices=True)
    e1, e2 = vt[0], vt[1]
    if len(x) == 2 or np.linalg.norm(r @ e2) < 1e-8:  # linear: any perpendicular axis
        trial = np.array([0, 0, 1.0]) if abs(e1[2]) < 0.9 else np.array([1.0, 0, 0])
        e2 = trial - (trial @ e1) * e1
        e2 /= np.linalg.norm(e2)
    e1 = e1 * np.sign(e1[np.argmax(np.abs(e1))])
    e2 = e2 * np.sign(e2[np.argmax(np.abs(e2))])
    return center, e1, e2


def orbital_on_plane(
    mol,
    basis: str,
    mo_coeff,
    index: int = 0,
    *,
    n: int = 81,
    margin: float = 2.5,
    plane: str = "auto",
    pmol=None,
):
    """Orbital values on an ``n x n`` grid in a plane through the atoms' centroid.

    plane: 'molecular' (the two directions of largest spread), 'perpendicular'
    (largest spread and the normal: shows pi orbitals of planar molecules),
    'third' (the other two), or 'auto' (the one of the three where the orbital is
    largest).  Returns (u (n,), v (n,) in Angstrom along the in-plane axes,
    values (n, n) [v, u] in Bohr^-3/2, atoms (A, 2) projected, plane name)."""
    pmol = mol.to_pyscf(basis) if pmol is None else pmol
    c = _coeff_vector(mo_coeff, index)
    xyz = np.asarray(mol.coords_angstrom)
    center, e1, e2 = molecule_plane(xyz)
    e3 = np.cross(e1, e2)
    planes = {"molecular": (e1, e2), "perpendicular": (e1, e3), "third": (e2, e3)}
    if plane != "auto" and plane not in planes:
        raise ValueError(f"plane must be 'auto' or one of {sorted(planes)}, got {plane!r}")
    best = None
    for name in planes if plane == "auto" else [plane]:
        a, b = planes[name]
        proj = np.column_stack([(xyz - center) @ a, (xyz - center) @ b])
        lo = proj.min(0) - margin
        hi = proj.max(0) + margin
        half = 0.5 * max(hi - lo)  # square window
        mid = 0.5 * (lo + hi)
        u = np.linspace(mid[0] - half, mid[0] + half, n)
        v = np.linspace(mid[1] - half, mid[1] + half, n)
        uu, vv = np.meshgrid(u, v)
        pts = center + uu.reshape(-1, 1) * a + vv.reshape(-1, 1) * b  # Angstrom
        vals = (pmol.eval_gto("GTOval_sph", pts / ANGSTROM_PER_BOHR) @ c).reshape(n, n)
        score = float(np.abs(vals).max())
        if best is None or score > 1.05 * best[0]:  # prefer the molecular plane on ties
            best = (score, (u, v, vals, proj, name))
    return best[1]


def _draw_atoms(ax, symbols, proj, bonds=True, label=True):
    if bonds:
        for i in range(len(proj)):
            for j in range(i + 1, len(proj)):
                d = np.linalg.norm(proj[i] - proj[j])
                if d < 1.25 * (0.6 if "H" in (symbols[i], symbols[j]) else 0.9) + 0.35:
                    ax.plot(*zip(proj[i], proj[j]), color="k", lw=1.2, zorder=3)
    for s, (x, y) in zip(symbols, proj):
        ax.scatter([x], [y], s=140 if s != "H" else 70, color=CPK.get(s, "#ff1493"), edgecolor="k", zorder=4)
        if label:
            ax.annotate(s, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8, zorder=5)


def orbital_slice_figure(
    mol,
    basis: str,
    mo_coeff,
    index: int = 0,
    *,
    isovalue: float = 0.05,
    mo_energy=None,
    n_occ: Optional[int] = None,
    n: int = 81,
    plane: str = "auto",
    title: Optional[str] = None,
    pmol=None,
    figsize=(4.2, 3.8),
):
    """Static fallback of the orbital viewer: filled contours of the orbital in a
    plane through the molecule (see `orbital_on_plane`; blue +, red -), the
    +/-``isovalue`` contour lines, and the atoms.  Returns a matplotlib Figure."""
    u, v, vals, proj, plane = orbital_on_plane(mol, basis, mo_coeff, index, n=n, plane=plane, pmol=pmol)
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    vmax = max(float(np.abs(vals).max()), 1e-12)
    lim = min(vmax, 4 * isovalue)
    levels = np.linspace(-lim, lim, 21)
    cs = ax.contourf(u, v, np.clip(vals, -lim, lim), levels=levels, cmap="RdBu")
    ax.contour(u, v, vals, levels=[-isovalue, isovalue], colors=[NEG_COLOR, POS_COLOR], linewidths=1.5)
    fig.colorbar(cs, ax=ax, shrink=0.8, label=r"$\psi$ (Bohr$^{-3/2}$)")
    _draw_atoms(ax, mol.symbols, proj)
    ax.set_aspect("equal")
    ax.set_xlabel(f"Angstrom ({plane} plane)", fontsize=8)
    ax.set_ylabel("Angstrom", fontsize=8)
    if title is None:
        title = f"{mol.name or mol.formula}: orbital {index}"
        if n_occ is not None:
            title += " " + orbital_label(index, n_occ)
        if mo_energy is not None:
            title += f"  ({float(np.asarray(mo_energy)[index]) * EV_PER_HARTREE:.2f} eV)"
    ax.set_title(title, fontsize=9)
    return fig


def orbital_label(index: int, n_occ: int) -> str:
    """'HOMO', 'LUMO', 'HOMO-2', 'LUMO+1' for a 0-based orbital index."""
    k = int(index) - (int(n_occ) - 1)
    if k <= 0:
        return "HOMO" if k == 0 else f"HOMO{k}"
    return "LUMO" if k == 1 else f"LUMO+{k - 1}"


def molecule_sketch_figure(mol, *, title: Optional[str] = None, figsize=(3.6, 3.2)):
    """Static fallback of the geometry viewer: atoms and bonds projected on the
    molecular plane.  Returns a matplotlib Figure."""
    xyz = np.asarray(mol.coords_angstrom)
    center, e1, e2 = molecule_plane(xyz)
    proj = np.column_stack([(xyz - center) @ e1, (xyz - center) @ e2])
    fig = new_figure(figsize)
    ax = fig.add_subplot()
    _draw_atoms(ax, mol.symbols, proj)
    ax.set_aspect("equal")
    ax.margins(0.2)
    ax.set_axis_off()
    ax.set_title(title or f"{mol.name or mol.formula}", fontsize=9)
    return fig


# ----------------------------------------------------------------------------- py3Dmol
def add_molecule(view, mol, *, style: str = "ballstick"):
    """Adds ``mol`` (xyz) to a py3Dmol view with a ball-and-stick or stick style."""
    view.addModel(mol.to_xyz(decimals=6), "xyz")
    if style == "stick":
        view.setStyle({"stick": {"radius": 0.15}})
    else:
        view.setStyle({"stick": {"radius": 0.12}, "sphere": {"scale": 0.25}})
    return view


def add_orbital(
    view,
    cube_text: str,
    *,
    isovalue: float = 0.05,
    opacity: float = 0.85,
    colors: Sequence[str] = (POS_COLOR, NEG_COLOR),
    quantum: float = CUBE_QUANTUM,
):
    """Adds the +/-``isovalue`` isosurfaces of a cube to a py3Dmol view.  The cube
    text is written into the page once and shared by both surfaces.
    ``quantum``: the unit of a compact cube's values (1.0 for a plain cube)."""
    payload = _js_data(cube_text)
    isovalue = float(isovalue) / float(quantum)
    view.startjs += (
        f"var vol_UNIQUEID = new $3Dmol.VolumeData({payload}, 'cube');\n"
        f"viewer_UNIQUEID.addIsosurface(vol_UNIQUEID, {{isoval: {float(isovalue)!r}, "
        f"color: '{colors[0]}', opacity: {float(opacity)!r}, smoothness: 2}});\n"
        f"viewer_UNIQUEID.addIsosurface(vol_UNIQUEID, {{isoval: {-float(isovalue)!r}, "
        f"color: '{colors[1]}', opacity: {float(opacity)!r}, smoothness: 2}});\n"
    )
    return view


def _js_data(text: str) -> str:
    import json

    return json.dumps(text).replace("</", "<\\/")
