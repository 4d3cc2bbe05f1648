"""Molecular geometries: parsing, validation, builtins and conversion to PySCF.

A :class:`Molecule` is an immutable set of atoms (element symbols and Cartesian
coordinates in Angstrom) plus total charge and spin (``2S = n_alpha - n_beta``,
PySCF's convention).  Every constructor validates its input and raises a
``ValueError`` that names the problem (unknown element, malformed xyz, NaN
coordinates, overlapping atoms, atoms absurdly far apart, charge/spin that do not fit).

Units: Angstrom at the boundary; :attr:`Molecule.coords_bohr` converts with
PySCF's own factor ``pyscf.lib.param.BOHR`` exactly as PySCF does (multiplying
by ``1/BOHR``), so it equals ``to_pyscf(...).atom_coords()`` bit for bit.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
import re
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
from pyscf.data import elements as _elements

from qpt_nb.dft.frames import principal_axes
from qpt_nb.units import ANGSTROM_PER_BOHR
from qpt_nb.validate import check_int

__all__ = [
    "Molecule",
    "as_molecule",
    "read_xyz_frames",
    "write_xyz_frames",
    "MIN_DISTANCE_ANGSTROM",
    "MAX_DISTANCE_ANGSTROM",
]

# Any two atoms closer than this are rejected, in every geometry the toolkit accepts or
# makes (xyz input, MD frames, samplers): shorter than any bond (H2: 0.74 Angstrom).
MIN_DISTANCE_ANGSTROM = 0.5
# Any two atoms farther apart than this are rejected: 0.1 micrometre, more than any
# molecule a Gaussian-basis DFT treats (alanine dipeptide: 9 Angstrom across; a C200
# chain: 260). Such a geometry is a mistake (a misplaced atom, a unit error), and PySCF
# would build it without a word.
MAX_DISTANCE_ANGSTROM = 1000.0
_SYMBOLS = tuple(_elements.ELEMENTS[1:])  # index i -> Z = i + 1
_Z_OF = {s.lower(): z for z, s in enumerate(_SYMBOLS, start=1)}
_MASSES = np.asarray(_elements.MASSES, dtype=np.float64)  # standard atomic weights
_ALIASES = {
    "malonaldehyde": "malondialdehyde",
    "h2o": "water",
    "nh3": "ammonia",
    "ch4": "methane",
    "c6h6": "benzene",
    "ch2o": "formaldehyde",
}


def _canonical_symbol(token, where=""):
    """'c' / 'CL' / '6' -> canonical symbol; ValueError naming token and place."""
    t = str(token).strip()
    if t.isdigit() and 1 <= int(t) <= len(_SYMBOLS):
        return _SYMBOLS[int(t) - 1]
    z = _Z_OF.get(t.lower())
    if z is None:
        raise ValueError(f"unknown element symbol {t!r}{where}")
    return _SYMBOLS[z - 1]


def _hill_formula(symbols):
    counts = {}
    for s in symbols:
        counts[s] = counts.get(s, 0) + 1
    order = sorted(counts)
    if "C" in counts:
        order = ["C"] + (["H"] if "H" in counts else []) + [s for s in order if s not in ("C", "H")]
    return "".join(s + (str(counts[s]) if counts[s] > 1 else "") for s in order)


def _check_coords(coords, n_atoms, symbols=None):
    try:
        xyz = np.array(coords, dtype=np.float64)  # always a private copy
    except (TypeError, ValueError) as exc:
        raise ValueError(f"coordinates are not numeric: {exc}") from None
    if xyz.shape != (n_atoms, 3):
        raise ValueError(f"coordinates must have shape ({n_atoms}, 3) for {n_atoms} atoms, got {xyz.shape}")
    bad = ~np.isfinite(xyz)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(xyz[i, k]) else "infinite"
        raise ValueError(
            f"{kind} coordinate for atom {i} ({'xyz'[k]} = {xyz[i, k]}); "
            f"{int(bad.any(axis=1).sum())} atom(s) affected"
        )
    if n_atoms > 1:
        _check_extent(xyz, symbols)
        # pairwise distances in blocks of rows, to bound memory for large systems
        for start in range(0, n_atoms, 512):
            blk = xyz[start : start + 512]
            d = np.sqrt(((blk[:, None, :] - xyz[None, :, :]) ** 2).sum(-1))
            rows = np.arange(start, start + len(blk))
            d[np.arange(len(blk)), rows] = np.inf
            d[:, :start] = np.inf  # pairs (i, j) with j < i were checked before
            if (d < MIN_DISTANCE_ANGSTROM).any():
                a, b = np.unravel_index(np.argmin(d), d.shape)
                raise ValueError(
                    f"atoms {start + a} and {b} are too close: distance {d[a, b]:.4g} Angstrom "
                    f"(< {MIN_DISTANCE_ANGSTROM} Angstrom); are the coordinates in Bohr "
                    f"or duplicated?"
                )
    xyz.setflags(write=False)
    return xyz


def _check_extent(xyz, symbols=None):
    """ValueError naming the two atoms (index and symbol) farthest apart when they are more than
    `MAX_DISTANCE_ANGSTROM` apart. The bounding box bounds every distance, so the pairs
    are searched only when its diagonal exceeds the limit."""
    span = xyz.max(axis=0) - xyz.min(axis=0)
    if float(np.sqrt((span**2).sum())) <= MAX_DISTANCE_ANGSTROM:
        return
    best, pair = -1.0, (0, 0)
    for start in range(0, xyz.shape[0], 512):
        blk = xyz[start : start + 512]
        d = np.sqrt(((blk[:, None, :] - xyz[None, :, :]) ** 2).sum(-1))
        a, b = np.unravel_index(np.argmax(d), d.shape)
        if d[a, b] > best:
            best, pair = float(d[a, b]), (start + int(a), int(b))
    if best > MAX_DISTANCE_ANGSTROM:
        i, j = sorted(pair)
        name = (lambda k: f"{k} ({symbols[k]})") if symbols is not None else str
        raise ValueError(
            f"atoms {name(i)} and {name(j)} are {best:.6g} Angstrom apart (> {MAX_DISTANCE_ANGSTROM:g} "
            f"Angstrom): not one molecule; is an atom misplaced, or are the coordinates in "
            f"the wrong unit?"
        )


def _even_charge_hint(n_electrons, charge):
    """'charge=1 or charge=-1': the nearest charges that make an odd electron count even
    (keeping at least two electrons)."""
    options = [c for c in (charge + 1, charge - 1) if n_electrons - (c - charge) >= 2]
    return " or ".join(f"charge={c}" for c in options)


# ----------------------------------------------------------------------------- xyz parsing
def _read_text_file(path):
    """The text of an xyz file (UTF-8, a BOM is dropped); ValueError naming the file when it
    cannot be read or is not text (a binary file given as xyz)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read xyz file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{str(path)!r} is not a text xyz file: byte 0x{data[exc.start]:02x} at "
            f"offset {exc.start} is not UTF-8 text (a binary file?)"
        ) from None
    if "\x00" in text:
        raise ValueError(
            f"{str(path)!r} is not a text xyz file: it contains NUL bytes at offset "
            f"{text.index(chr(0))} (a binary or UTF-16 file?)"
        )
    return text


def _source_file(text_or_path):
    """The file a path (or a one-line path string) names, or None for xyz text; ValueError
    for a path that names no file, or an argument that is neither."""
    if isinstance(text_or_path, os.PathLike):
        path = Path(text_or_path)
        if not path.is_file():
            raise ValueError(f"{path.suffix.lstrip('.') or 'input'} file not found: {str(path)!r}")
        return path
    if not isinstance(text_or_path, str):
        raise ValueError(f"expected xyz text or a path, got {type(text_or_path).__name__}")
    s = text_or_path
    if "\n" not in s.strip() and len(s) < 4096:
        if os.path.isfile(s):
            return Path(s)
        if s.strip().lower().endswith(".xyz") or (os.sep in s and len(s.split()) < 4):
            raise ValueError(f"xyz file not found: {s!r} (and it is not xyz text either)")
    return None


def _parse_atom_lines(lines, first_lineno, label):
    symbols, coords = [], []
    for k, line in enumerate(lines):
        where = f" on line {first_lineno + k}{label} (atom {k})"
        cols = line.replace(",", " ").split()
        if len(cols) < 4:
            raise ValueError(f"missing columns{where}: expected 'El x y z', got {line.strip()!r}")
        symbols.append(_canonical_symbol(cols[0], where))
        try:
            coords.append([float(c.replace("D", "E").replace("d", "e")) for c in cols[1:4]])
        except ValueError:
            raise ValueError(f"non-numeric coordinate{where}: {line.strip()!r}") from None
    return symbols, coords


def _is_count_line(line):
    return re.fullmatch(r"\s*\d+\s*", line) is not None


def _parse_frames(text, label, single):
    """List of (symbols, coords, comment) from xyz text (with headers, or one bare block)."""
    lines = text.splitlines()
    i, n = 0, len(lines)
    while i < n and not lines[i].strip():
        i += 1
    if i == n:
        raise ValueError(f"empty xyz text{label}")
    if not _is_count_line(lines[i]):  # bare "El x y z" lines, no header
        body = [(j, l) for j, l in enumerate(lines) if l.strip() and not l.lstrip().startswith("#")]
        if any(_is_count_line(l) for _, l in body):
            j = next(j for j, l in body if _is_count_line(l))
            raise ValueError(f"malformed xyz{label}: atom-count line {j + 1} is not the first line")
        syms, xyz = [], []
        for j, l in body:
            s, c = _parse_atom_lines([l], j + 1, label)
            syms += s
            xyz += c
        return [(syms, xyz, "")]
    frames = []
    while i < n:
        if frames and not _is_count_line(lines[i]):
            raise ValueError(
                f"wrong atom count{label}: header says {len(frames[-1][0])} atom(s) "
                f"but more atom lines follow on line {i + 1}"
            )
        if not _is_count_line(lines[i]):
            raise ValueError(
                f"malformed xyz{label}: expected an atom count on line {i + 1}, got {lines[i].strip()!r}"
            )
        count = int(lines[i])
        if count == 0:
            raise ValueError(f"malformed xyz{label}: atom count 0 on line {i + 1}")
        atoms = lines[i + 2 : i + 2 + count]
        n_found = sum(1 for l in atoms if l.strip() and not _is_count_line(l))
        if len(atoms) < count or n_found < count:
            raise ValueError(
                f"wrong atom count{label}: header on line {i + 1} says {count} atoms "
                f"but only {n_found} atom lines follow"
            )
        comment = lines[i + 1] if i + 1 < n else ""
        syms, xyz = _parse_atom_lines(atoms, i + 3, label)
        frames.append((syms, xyz, comment.strip()))
        i += 2 + count
        while i < n and not lines[i].strip():
            i += 1
        if single and i < n:
            more = "another frame follows" if _is_count_line(lines[i]) else "more atom lines follow"
            raise ValueError(
                f"wrong atom count{label}: header says {count} atom(s) but {more} "
                f"on line {i + 1} (multi-frame file? use read_xyz_frames)"
            )
    return frames


# ----------------------------------------------------------------------------- Molecule
@dataclasses.dataclass(frozen=True, eq=False)
class Molecule:
    """Immutable, validated molecular geometry (Angstrom)."""

    symbols: tuple[str, ...]
    coords_angstrom: np.ndarray
    charge: int = 0
    spin: int = 0
    name: str = ""

    def __post_init__(self):
        syms = self.symbols
        if isinstance(syms, str) or not hasattr(syms, "__iter__"):
            raise ValueError(f"symbols must be a sequence of element symbols, got {syms!r}")
        syms = tuple(_canonical_symbol(s, f" at atom {i}") for i, s in enumerate(syms))
        if not syms:
            raise ValueError("a molecule needs at least one atom (empty symbol list)")
        set_ = functools.partial(object.__setattr__, self)
        set_("symbols", syms)
        set_("coords_angstrom", _check_coords(self.coords_angstrom, len(syms), syms))
        charge = check_int(self.charge, "charge")
        spin = check_int(self.spin, "spin")
        set_("charge", charge)
        set_("spin", spin)
        set_("name", str(self.name))
        n_elec = self.n_electrons
        what = f"{_hill_formula(syms)} (sum Z = {n_elec + charge}) with charge={charge}"
        if n_elec < 0:
            raise ValueError(f"charge {charge} too large: {what} leaves {n_elec} electrons")
        if spin < 0:
            raise ValueError(f"spin must be >= 0 (2S = n_alpha - n_beta), got {spin}")
        if spin > n_elec:
            raise ValueError(f"spin {spin} exceeds the number of electrons {n_elec} of {what}")
        if (n_elec - spin) % 2:
            if spin == 0:
                raise ValueError(
                    f"odd number of electrons ({n_elec}) for {what} and spin=0: a doublet "
                    f"radical is spin=1 (unrestricted Kohn-Sham), or use "
                    f"{_even_charge_hint(n_elec, charge)} for a closed shell"
                )
            raise ValueError(
                f"spin {spin} does not fit {n_elec} electrons of {what}: n_electrons - spin must be even"
            )

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_arrays(cls, symbols, coords_angstrom, charge=0, spin=0, name=""):
        """From element symbols (or atomic numbers) and an (n, 3) array in Angstrom."""
        if isinstance(symbols, np.ndarray):
            symbols = symbols.tolist()
        return cls(tuple(symbols), coords_angstrom, charge, spin, name)

    @classmethod
    def from_xyz(cls, text_or_path, charge=0, spin=0, name=""):
        """From xyz text (count line, comment line, atoms) or a path to a one-frame file of
        any format ``ase.io.read`` reads (`qpt_nb.dft.atoms_io.read_frames`: extxyz, .traj,
        .pdb, .sdf; charge and spin from the frame's info when it has them).

        In text, bare ``El x y z`` lines without header are accepted too.  Symbols may be
        any capitalisation or atomic numbers; columns after x y z are ignored.
        """
        path = _source_file(text_or_path)
        if path is not None:
            mols = read_xyz_frames(path, charge, spin, name)
            if len(mols) > 1:
                raise ValueError(
                    f"wrong atom count in {path.name}: {len(mols)} frames (a multi-frame file? use read_xyz_frames)"
                )
            return mols[0]
        ((syms, xyz, _),) = _parse_frames(text_or_path, "", single=True)
        return cls.from_arrays(syms, xyz, charge, spin, name)

    @classmethod
    def from_ase(cls, atoms, charge=0, spin=0, name=""):
        """From an ``ase.Atoms`` (`qpt_nb.dft.atoms_io.frame_fields`): charge and spin from
        ``atoms.info`` when present (else these); ValueError for a periodic cell or a frame
        without positions."""
        from qpt_nb.dft.atoms_io import frame_fields

        return _from_fields(frame_fields(atoms, charge=charge, spin=spin, name=name), "the Atoms")

    def to_ase(self):
        """This geometry as an ``ase.Atoms`` (Angstrom, pbc False, info charge / spin / name)."""
        from qpt_nb.dft.atoms_io import to_ase

        return to_ase(self)

    @classmethod
    def builtin(cls, name):
        """A geometry shipped in ``qpt_nb/data/<name>.xyz`` (case-insensitive), neutral, with
        the lowest spin its electron count allows (the allyl radical: spin=1, a doublet)."""
        key = builtin_key(name)
        if key is None:
            raise ValueError(f"unknown builtin molecule {name!r}; available: {', '.join(_builtin_names())}")
        return _load_builtin(key)

    @staticmethod
    def builtins():
        """Sorted names accepted by :meth:`builtin`."""
        return list(_builtin_names())

    # ---------------------------------------------------------------- properties
    @property
    def n_atoms(self):
        return len(self.symbols)

    @property
    def atomic_numbers(self):
        return np.array([_Z_OF[s.lower()] for s in self.symbols], dtype=np.int64)

    @property
    def coords_bohr(self):
        """(n, 3) in Bohr, computed as PySCF does (times 1/ANGSTROM_PER_BOHR): bitwise equal to
        ``self.to_pyscf(basis).atom_coords()``."""
        return self.coords_angstrom * (1.0 / ANGSTROM_PER_BOHR)

    @property
    def n_electrons(self):
        return int(sum(_Z_OF[s.lower()] for s in self.symbols)) - self.charge

    @property
    def n_occ(self):
        """Doubly occupied orbitals, n_electrons // 2 (meaningful for closed shells)."""
        return self.n_electrons // 2

    @property
    def masses(self):
        """Standard atomic weights in amu (PySCF's ``MASSES`` table)."""
        return _MASSES[self.atomic_numbers]

    @property
    def formula(self):
        """Hill formula, e.g. 'C4H4N2O2'."""
        return _hill_formula(self.symbols)

    # ---------------------------------------------------------------- derived molecules
    def with_coords(self, coords_angstrom):
        """Same atoms, charge, spin and name; new (validated) geometry in Angstrom."""
        return dataclasses.replace(self, coords_angstrom=coords_angstrom)

    def canonical(self):
        """This molecule moved to its centre of mass and rotated into its principal
        axes frame (see :func:`principal_axes` for the sign convention and what
        is guaranteed).  Always a proper rigid motion; atom order is kept."""
        center, rot = principal_axes(self.coords_angstrom, self.masses)
        return self.with_coords((self.coords_angstrom - center) @ rot)

    # ---------------------------------------------------------------- output
    def to_xyz(self, comment=None, decimals=12):
        """Standard xyz text (Angstrom).  The default comment names the molecule,
        charge and spin.  ``decimals=12`` keeps round trips to 5e-13 Angstrom."""
        if comment is None:
            comment = f"{self.name or self.formula} charge={self.charge} spin={self.spin} Angstrom"
        comment = str(comment)
        if "\n" in comment or "\r" in comment:
            raise ValueError("xyz comment must be a single line")
        w = decimals + 6
        rows = [
            f"{s:<2s} {x:{w}.{decimals}f} {y:{w}.{decimals}f} {z:{w}.{decimals}f}"
            for s, (x, y, z) in zip(self.symbols, self.coords_angstrom)
        ]
        return "\n".join([str(self.n_atoms), comment, *rows]) + "\n"

    def to_pyscf(self, basis, **kw):
        """Built ``pyscf.gto.Mole`` (unit Angstrom, cart=False, verbose=0; ``kw``
        sets other Mole attributes, e.g. ``cart=True`` or ``max_memory``).

        A string basis is checked first: ValueError for an unknown basis name or a
        basis that lacks one of the elements."""
        from pyscf import gto

        for key in ("atom", "unit", "charge", "spin"):
            if key in kw:
                raise ValueError(f"to_pyscf: {key!r} is fixed by the Molecule and cannot be passed")
        if isinstance(basis, str):
            for sym in dict.fromkeys(self.symbols):
                _check_basis(basis, sym)
        mol = gto.Mole()
        mol.atom = [(s, tuple(float(v) for v in c)) for s, c in zip(self.symbols, self.coords_angstrom)]
        mol.unit = "Angstrom"
        mol.basis = basis
        mol.charge = self.charge
        mol.spin = self.spin
        mol.cart = False
        mol.verbose = 0
        for key, value in kw.items():
            if not hasattr(mol, key):
                raise ValueError(f"to_pyscf: {key!r} is not a pyscf.gto.Mole attribute")
            setattr(mol, key, value)
        try:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Basis may be available")
                return mol.build(dump_input=False, parse_arg=False)
        except (RuntimeError, KeyError) as exc:
            raise ValueError(f"PySCF could not build {self!r} with basis {basis!r}: {exc}") from None

    # ---------------------------------------------------------------- dunder
    def __repr__(self):
        head = f"{self.name!r}, " if self.name else ""
        return f"Molecule({head}{self.formula}, {self.n_atoms} atoms, charge={self.charge}, spin={self.spin})"

    def __eq__(self, other):
        if not isinstance(other, Molecule):
            return NotImplemented
        return (
            self.symbols == other.symbols
            and self.charge == other.charge
            and self.spin == other.spin
            and self.name == other.name
            and np.array_equal(self.coords_angstrom, other.coords_angstrom)
        )

    def __hash__(self):
        return hash((self.symbols, self.charge, self.spin, self.name, self.coords_angstrom.tobytes()))


def check_basis(basis: str, symbols) -> str:
    """`basis` when PySCF knows it for every element of `symbols` (e.g. a Molecule's
    ``symbols``); ValueError naming an unknown basis or the element it lacks."""
    if not isinstance(basis, str) or not basis.strip():
        raise ValueError(f"basis must be a PySCF basis name such as 'sto-3g', got {basis!r}")
    for sym in dict.fromkeys(symbols):
        _check_basis(basis, sym)
    return basis


@functools.lru_cache(maxsize=None)
def _check_basis(basis, symbol):
    from pyscf.gto import basis as _basis

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shells = _basis.load(basis, symbol)
    except Exception as exc:  # pyscf raises BasisNotFoundError & others
        msg = str(exc)
        if "not found for" in msg:
            raise ValueError(f"basis {basis!r} has no functions for element {symbol}") from None
        raise ValueError(
            f"unknown basis {basis!r} (PySCF: {msg.splitlines()[0] if msg else exc!r})"
        ) from None
    if not shells:
        raise ValueError(f"basis {basis!r} has no functions for element {symbol}")


# ----------------------------------------------------------------------------- builtins
def _data_dir():
    return importlib.resources.files("qpt_nb").joinpath("data")


def builtin_key(name) -> Optional[str]:
    """The file name (without .xyz) of the built-in molecule `name` (case-insensitive, with
    aliases such as 'h2o' for 'water'), or None when there is none: the one lookup that
    `Molecule.builtin`, `as_molecule`, the CLI and the explorer share."""
    if not isinstance(name, str):
        return None
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in _builtin_names() else None


@functools.lru_cache(maxsize=None)
def _builtin_names():
    return tuple(sorted(p.name[:-4] for p in _data_dir().iterdir() if p.name.endswith(".xyz")))


@functools.lru_cache(maxsize=None)
def _load_builtin(key):
    text = _data_dir().joinpath(f"{key}.xyz").read_text()
    ((syms, xyz, _),) = _parse_frames(text, f" in builtin {key}.xyz", single=True)
    n_electrons = sum(_Z_OF[s.lower()] for s in syms)
    return Molecule.from_arrays(syms, xyz, 0, n_electrons % 2, key)  # a radical: spin 1 (doublet)


def as_molecule(mol, what="mol"):
    """``mol`` as a :class:`Molecule`: a Molecule is returned as it is, a string must name a
    built-in molecule (:meth:`Molecule.builtin`, e.g. 'water' or 'h2o').

    ValueError for a string that names no built-in molecule; TypeError for any other type,
    naming the accepted ones (``what`` names the argument in the message)."""
    if isinstance(mol, Molecule):
        return mol
    if isinstance(mol, str):
        key = builtin_key(mol)
        if key is not None:
            return _load_builtin(key)
        raise ValueError(
            f"{what}={mol!r} is not a built-in molecule (available: "
            f"{', '.join(_builtin_names())}); for an xyz file or xyz text use "
            f"Molecule.from_xyz(...)"
        )
    raise TypeError(
        f"{what} must be a qpt_nb.Molecule or the name of a built-in molecule "
        f"(str, one of {', '.join(_builtin_names())}), got {type(mol).__name__}; "
        f"build one with Molecule.from_xyz(path_or_text) or "
        f"Molecule.from_arrays(symbols, coords_angstrom)"
    )


# ----------------------------------------------------------------------------- multi-frame
def read_xyz_frames(path_or_text, charge=0, spin=0, name=""):
    """All frames of a file (any format ``ase.io.read`` reads: `qpt_nb.dft.atoms_io.read_frames`,
    charge and spin from each frame's info when present) or of multi-frame xyz text, as
    Molecules."""
    path = _source_file(path_or_text)
    if path is not None:
        from qpt_nb.dft.atoms_io import UnreadableByASE, read_frames

        try:
            fields = read_frames(path, charge=charge, spin=spin, name=name)
        except UnreadableByASE:
            if path.suffix.lower() not in (".xyz", ".txt", ""):
                raise
            # an xyz file ASE rejects: qpt_nb's parser names the bad line (or reads bare
            # 'El x y z' lines, which ASE does not)
            text, label = _read_text_file(path), f" in {path.name}"
        else:
            return [_from_fields(f, f"frame {k} of {path.name}") for k, f in enumerate(fields)]
    else:
        text, label = path_or_text, ""
    frames = _parse_frames(text, label, single=False)
    out = []
    for k, (syms, xyz, _) in enumerate(frames):
        try:
            out.append(Molecule.from_arrays(syms, xyz, charge, spin, name))
        except ValueError as exc:
            raise ValueError(f"frame {k}{label}: {exc}") from None
    return out


def _from_fields(fields, where):
    """A Molecule from `qpt_nb.dft.atoms_io` fields (symbols, Angstrom, charge, spin, name),
    its ValueError naming `where`."""
    try:
        return Molecule.from_arrays(*fields)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def write_xyz_frames(path, molecules, comments=None, decimals=12):
    """Write molecules as consecutive xyz frames to ``path``.  ``comments`` is
    None (default comments) or one string per molecule."""
    molecules = [molecules] if isinstance(molecules, Molecule) else list(molecules)
    if comments is None:
        comments = [None] * len(molecules)
    comments = list(comments)
    if len(comments) != len(molecules):
        raise ValueError(f"{len(comments)} comments for {len(molecules)} molecules")
    text = "".join(m.to_xyz(c, decimals) for m, c in zip(molecules, comments))
    Path(path).write_text(text)
