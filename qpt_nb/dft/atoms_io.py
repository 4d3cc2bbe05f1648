"""ASE interop: `Molecule` <-> ``ase.Atoms``, and every file format ``ase.io`` reads.

    mols = read_xyz_frames("md.extxyz")        # extxyz, xyz, .traj, .pdb, .sdf, ... all frames
    mol = Molecule.from_ase(atoms)             # charge / spin from atoms.info when present
    atoms = mol.to_ase()

Files are read by ``ase.io.read(path, index=':')`` (format from the extension, or
``format=``), so extended xyz with extra columns and key=value info, ASE trajectories, PDB
and SDF all work. Charge and spin come from each frame's ``info`` ('charge'; 'spin' as
2S = n_alpha - n_beta, PySCF's convention, or 'multiplicity' = 2S + 1) when present, else
from the arguments. What qpt_nb cannot compute gets one clear ValueError naming the file
and frame: a periodic cell (``pbc`` True on any axis), a frame without positions (extxyz
without a ``pos`` column: ASE puts every atom at the origin), a file ASE cannot read (an
xyz file that ASE rejects is diagnosed by `qpt_nb.dft.molecule`'s xyz parser, which also
reads bare ``El x y z`` lines without a header). This module knows nothing of `Molecule`:
it returns plain fields, and `qpt_nb.dft.molecule` builds Molecules from them.

Units: ASE's and qpt_nb's user boundary are both Angstrom; energies written by
`write_frames` are eV (`qpt_nb.units.EV_PER_HARTREE`), forces eV/Angstrom, as ASE expects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


def _info_int(info: dict, key: str, where: str) -> Optional[int]:
    if key not in info:
        return None
    v = info[key]
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: info {key}={v!r} is not a number") from None
    if f != int(f):
        raise ValueError(f"{where}: info {key}={v!r} is not an integer")
    return int(f)


def charge_and_spin(info: dict, charge: int = 0, spin: int = 0, where: str = "the frame") -> tuple:
    """(charge, spin = 2S) from an ``Atoms.info`` dict, else the defaults given."""
    c = _info_int(info, "charge", where)
    s = _info_int(info, "spin", where)
    mult = _info_int(info, "multiplicity", where)
    if s is None and mult is not None:
        if mult < 1:
            raise ValueError(f"{where}: info multiplicity={mult} must be >= 1 (2S + 1)")
        s = mult - 1
    return (charge if c is None else c), (spin if s is None else s)


def frame_fields(atoms, *, charge: int = 0, spin: int = 0, name: str = "", where: str = "the Atoms") -> tuple:
    """(symbols, positions (A, 3) Angstrom, charge, spin, name) of an ``ase.Atoms``, for
    `qpt_nb.Molecule.from_ase`: charge / spin from ``atoms.info`` when it has them (else
    `charge`, `spin`). ValueError naming `where` for a periodic cell or a frame without
    positions."""
    if not hasattr(atoms, "get_chemical_symbols") or not hasattr(atoms, "positions"):
        raise TypeError(f"expected an ase.Atoms, got {type(atoms).__name__}")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any():
        raise ValueError(
            f"{where} is periodic (pbc={pbc.tolist()}): qpt_nb computes molecules in open "
            "boundary conditions; set atoms.pbc = False for an isolated molecule"
        )
    pos = np.asarray(atoms.positions, dtype=np.float64)
    if len(atoms) > 1 and not np.any(pos):
        raise ValueError(f"{where} has no positions (every atom at the origin: no 'pos' column?)")
    c, s = charge_and_spin(dict(atoms.info), charge, spin, where)
    return atoms.get_chemical_symbols(), pos, c, s, name or str(atoms.info.get("name", ""))


def to_ase(mol):
    """An ``ase.Atoms`` (Angstrom, no cell, pbc False) with info charge, spin and name, of a
    `qpt_nb.Molecule` (anything with symbols, coords_angstrom, charge, spin, name)."""
    from ase import Atoms

    info = dict(charge=int(mol.charge), spin=int(mol.spin))
    if mol.name:
        info["name"] = mol.name
    return Atoms(symbols=list(mol.symbols), positions=np.array(mol.coords_angstrom), pbc=False, info=info)


class UnreadableByASE(ValueError):
    """`ase.io.read` failed on a file (the message names it and ASE's reason)."""


def read_frames(
    path, *, charge: int = 0, spin: int = 0, name: str = "", format: Optional[str] = None
) -> list:
    """`frame_fields` of every frame of a file `ase.io.read` reads (see the module
    docstring); `qpt_nb.dft.molecule.read_xyz_frames` makes Molecules of them.

    ValueError (one line, naming the file and frame) for a missing or empty file, a
    periodic cell or a frame without positions; `UnreadableByASE` when ASE cannot read it.
    """
    import ase.io

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p.suffix.lstrip('.') or 'input'} file not found: {str(p)!r}")
    if p.stat().st_size == 0:
        raise ValueError(f"{p.name} is empty")
    try:
        frames = ase.io.read(os.fspath(p), index=":", format=format)
    except Exception as exc:  # ASE raises many types (XYZError, KeyError, StopIteration, ...)
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnreadableByASE(f"cannot read {p.name} with ase.io.read: {msg}") from None
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        raise ValueError(f"{p.name} holds no frames")
    return [
        frame_fields(a, charge=charge, spin=spin, name=name, where=f"frame {k} of {p.name}")
        for k, a in enumerate(frames)
    ]


def write_frames(
    path,
    molecules: Sequence,
    *,
    energies_ev: Optional[Sequence[float]] = None,
    forces_ev_per_angstrom: Optional[Sequence] = None,
    info: Optional[Sequence[dict]] = None,
    format: Optional[str] = None,
) -> None:
    """Write molecules as frames with `ase.io.write` (format from the extension, e.g.
    .extxyz), atomically. Energies (eV) and forces (A, 3) (eV/Angstrom) go in as ASE
    single-point results, so ``ase.io.read(path, ':')[k].get_potential_energy()`` and
    ``.get_forces()`` give them back; `info` adds key=value pairs per frame."""
    import io

    import ase.io
    from ase.calculators.singlepoint import SinglePointCalculator

    from qpt_nb.fileio import atomic_write_text

    frames = []
    for k, m in enumerate(molecules):
        a = to_ase(m)
        if info is not None:
            a.info.update(info[k])
        results = {}
        if energies_ev is not None:
            results["energy"] = float(energies_ev[k])
        if forces_ev_per_angstrom is not None:
            results["forces"] = np.asarray(forces_ev_per_angstrom[k], dtype=np.float64)
        if results:
            a.calc = SinglePointCalculator(a, **results)
        frames.append(a)
    fmt = format or ("extxyz" if Path(path).suffix.lower() in (".extxyz", ".xyz") else None)
    if fmt in ("extxyz", "xyz"):
        buf = io.StringIO()
        ase.io.write(buf, frames, format="extxyz")
        atomic_write_text(path, buf.getvalue())
    else:
        ase.io.write(os.fspath(path), frames, format=fmt)
