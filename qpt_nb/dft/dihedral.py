"""Dihedral angles: measure them, set them by rotating one side of a bond, named torsions.

Pure geometry (NumPy): coordinates are ``(n_atoms, 3)`` in Angstrom, angles in degrees.

    from qpt_nb.dft.dihedral import builtin_dihedrals, dihedral, set_dihedrals
    mol = Molecule.builtin("alanine_dipeptide")
    tors = builtin_dihedrals("alanine_dipeptide")      # {'phi': (4, 6, 8, 14), 'psi': (6, 8, 14, 16)}
    x = set_dihedrals(mol.symbols, mol.coords_angstrom, tors, {"phi": 60.0, "psi": 150.0})
    dihedral(x, tors["phi"])                           # 60.0 (up to 1e-12)

Setting the dihedral i-j-k-l: the bond graph is built from covalent radii (`bond_graph`),
the central bond j-k is cut, and the connected component on k's side (k, l and everything
bonded beyond them) is rotated about the j-k axis (Rodrigues' formula); bond lengths and
angles are unchanged, only that torsion moves. A j-k bond inside a ring cannot be turned
this way and raises ValueError.

Named torsions are recorded with the geometry: the comment line of a built-in xyz file
(``qpt_nb/data/alanine_dipeptide.xyz``: "phi = atoms 4,6,8,14 and psi = 6,8,14,16
(0-based)") is read by `dihedrals_from_comment`. The research code (graphcore-research/
pyscf-ipu, branch code-for-paper-plots, ``pyscf_ipu/direct/train.py -alanine``) set the
same two torsions with RDKit's ``SetDihedralDeg`` on those atom indices.

Angle convention: IUPAC sign (as RDKit and ASE), reported in [0, 360) like
``ase.Atoms.get_dihedral`` and the research code's phi/psi map axes.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "BOND_SCALE",
    "bond_graph",
    "dihedral",
    "rotating_side",
    "set_dihedral",
    "set_dihedrals",
    "wrap_degrees",
    "in_range",
    "dihedrals_from_comment",
    "dihedrals_from_xyz",
    "builtin_dihedrals",
]

# Two atoms are bonded when closer than BOND_SCALE x the sum of their covalent radii
# (Cordero et al. 2008, PySCF's table): C-H 1.28, C-C 1.82, C-N 1.78 Angstrom at most.
BOND_SCALE = 1.2


def _xyz(coords) -> np.ndarray:
    x = np.asarray(coords, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"coordinates must have shape (n_atoms, 3), got {x.shape}")
    return x


def _check_atoms(atoms, n_atoms) -> tuple:
    try:
        t = tuple(int(a) for a in atoms)
    except (TypeError, ValueError):
        raise ValueError(f"a dihedral needs 4 atom indices, got {atoms!r}") from None
    if len(t) != 4 or len(set(t)) != 4:
        raise ValueError(f"a dihedral needs 4 distinct atom indices, got {atoms!r}")
    if min(t) < 0 or max(t) >= n_atoms:
        raise ValueError(f"dihedral atoms {t} out of range for {n_atoms} atoms (0-based)")
    return t


def bond_graph(symbols, coords, scale: float = BOND_SCALE) -> np.ndarray:
    """(n_atoms, n_atoms) bool adjacency: d_ij < scale * (r_i + r_j), covalent radii r
    (PySCF's ``pyscf.data.radii.COVALENT``), coordinates in Angstrom."""
    from pyscf.data import elements, radii

    from qpt_nb.units import ANGSTROM_PER_BOHR

    x = _xyz(coords)
    z = np.array([elements.charge(s) for s in symbols])
    if len(z) != len(x):
        raise ValueError(f"{len(z)} symbols for {len(x)} atoms")
    r = np.asarray(radii.COVALENT)[z] * ANGSTROM_PER_BOHR
    d = np.linalg.norm(x[:, None] - x[None], axis=-1)
    bonds = d < scale * (r[:, None] + r[None])
    np.fill_diagonal(bonds, False)
    return bonds


def dihedral(coords, atoms) -> float:
    """The dihedral angle i-j-k-l of one geometry ``(n_atoms, 3)``, degrees in [0, 360)
    (IUPAC sign: positive = clockwise looking along j -> k, as ASE and RDKit)."""
    x = _xyz(coords)
    i, j, k, l = _check_atoms(atoms, len(x))
    b1, b2, b3 = x[j] - x[i], x[k] - x[j], x[l] - x[k]
    n1, n2 = np.cross(b1, b2), np.cross(b2, b3)
    y = np.dot(np.cross(n1, n2), b2 / np.linalg.norm(b2))
    return float(np.degrees(np.arctan2(y, np.dot(n1, n2))) % 360.0)


def rotating_side(bonds, j: int, k: int) -> np.ndarray:
    """(n_atoms,) bool: the atoms connected to k once the bond j-k is cut (k included,
    j not). ValueError when j and k are not bonded or the bond lies in a ring."""
    bonds = np.asarray(bonds, dtype=bool)
    if not bonds[j, k]:
        raise ValueError(f"atoms {j} and {k} are not bonded: cannot rotate about them")
    side = np.zeros(len(bonds), dtype=bool)
    side[k], todo = True, [k]
    while todo:
        a = todo.pop()
        for b in np.flatnonzero(bonds[a]):
            if (a, b) in ((j, k), (k, j)) or side[b]:
                continue
            if b == j:
                raise ValueError(f"the bond {j}-{k} is in a ring: cutting it leaves one piece")
            side[b] = True
            todo.append(b)
    return side


def _rotate(x, mask, origin, axis, angle_rad) -> np.ndarray:
    """x with the rows in `mask` rotated by `angle_rad` about the line origin + t * axis
    (right-handed; Rodrigues' formula)."""
    u = axis / np.linalg.norm(axis)
    v = x[mask] - origin
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    out = x.copy()
    out[mask] = origin + v * c + np.cross(u, v) * s + np.outer(v @ u, u) * (1.0 - c)
    return out


def set_dihedral(coords, atoms, angle_deg: float, *, bonds=None, side=None, symbols=None) -> np.ndarray:
    """A copy of ``coords`` (n_atoms, 3; Angstrom) with dihedral i-j-k-l set to
    ``angle_deg`` (degrees), by rotating k's side of the bond j-k (`rotating_side`).

    Give ``bonds`` (`bond_graph`), or ``symbols`` to build it, or the precomputed ``side``
    mask (fastest, for many geometries of one molecule)."""
    x = _xyz(coords)
    i, j, k, l = _check_atoms(atoms, len(x))
    if side is None:
        if bonds is None:
            if symbols is None:
                raise ValueError("set_dihedral needs bonds=, side= or symbols=")
            bonds = bond_graph(symbols, x)
        side = rotating_side(bonds, j, k)
    delta = np.radians(float(angle_deg) - dihedral(x, (i, j, k, l)))
    return _rotate(x, np.asarray(side, dtype=bool), x[k], x[k] - x[j], delta)


def set_dihedrals(symbols, coords, torsions: dict, angles: dict, *, bonds=None) -> np.ndarray:
    """``coords`` with each named torsion ``torsions[name]`` (4 atom indices) set to
    ``angles[name]`` (degrees), in the order of `angles`. Angstrom in, Angstrom out."""
    x = _xyz(coords)
    bonds = bond_graph(symbols, x) if bonds is None else bonds
    for name, value in angles.items():
        if name not in torsions:
            raise ValueError(f"no torsion named {name!r}; known: {', '.join(torsions)}")
        x = set_dihedral(x, torsions[name], value, bonds=bonds)
    return x


# ----------------------------------------------------------------------------- regions of angles
def wrap_degrees(angles) -> np.ndarray:
    """Angles (any shape, degrees) wrapped into [0, 360)."""
    return np.mod(np.asarray(angles, dtype=np.float64), 360.0)


def in_range(angles, rng) -> np.ndarray:
    """Bool array: which ``angles`` (degrees, any shape) lie in the periodic interval
    ``rng = (low, high)``, i.e. low <= angle + 360 m < high for some integer m. A width of
    360 holds every angle; ``low == high`` holds exactly that one angle."""
    low, high = float(rng[0]), float(rng[1])
    width = high - low
    if width >= 360.0:
        return np.ones(np.shape(angles), dtype=bool)
    off = np.mod(np.asarray(angles, dtype=np.float64) - low, 360.0)
    if width == 0.0:
        return np.isclose(off, 0.0, atol=1e-9) | np.isclose(off, 360.0, atol=1e-9)
    return off < width


# ----------------------------------------------------------------------------- named torsions
_NAMED = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)\s*=\s*(?:atoms\s+)?(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)")


def dihedrals_from_comment(comment: str) -> dict:
    """Named torsions in an xyz comment line: every ``NAME = [atoms] i,j,k,l`` (0-based),
    e.g. "phi = atoms 4,6,8,14 and psi = 6,8,14,16" -> {'phi': (4, 6, 8, 14), 'psi': (6, 8, 14, 16)}."""
    return {m.group(1): tuple(int(m.group(g)) for g in range(2, 6)) for m in _NAMED.finditer(comment or "")}


def dihedrals_from_xyz(text: str) -> dict:
    """`dihedrals_from_comment` of the comment (second) line of xyz text ({} if none)."""
    lines = str(text).strip("\n").splitlines()
    return dihedrals_from_comment(lines[1]) if len(lines) > 1 and lines[0].strip().isdigit() else {}


def builtin_dihedrals(name: str) -> dict:
    """The named torsions recorded in the comment line of a built-in molecule's xyz file
    ({} when it records none). ValueError for an unknown molecule."""
    from qpt_nb.dft.molecule import Molecule, _data_dir

    key = Molecule.builtin(name).name  # validates; resolves aliases and case
    return dihedrals_from_xyz(_data_dir().joinpath(f"{key}.xyz").read_text())
