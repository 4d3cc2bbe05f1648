"""The 'dihedral' conformer sampler: torsions phi and psi drawn uniformly from a region.

    s = DihedralSampler(Molecule.builtin("alanine_dipeptide"), phi_range=(0, 180), psi_range=(0, 180))
    x = s(64, seed=0)              # (64, 22, 3) Angstrom; s.last_angles (64, 2) degrees
    s.rejected, s.drawn            # clashing draws thrown away, draws made (running totals)

Each conformer: phi ~ U[phi_range), psi ~ U[psi_range) (degrees), both set on the
reference geometry by rotating the far side of their central bond
(`qpt_nb.dft.dihedral.set_dihedrals`), then the usual Gaussian wiggle (std ``sigma``
Angstrom on every Cartesian component, as `qpt_nb.learn.conformers.wiggle`). A draw
that brings two atoms closer than ``min_distance`` (default
`qpt_nb.dft.molecule.MIN_DISTANCE_ANGSTROM`) is rejected and drawn again; the first
rejection gives a RuntimeWarning, and a region that yields nothing but clashes a
ValueError. Same seed -> same conformers, bit for bit.

The research code (graphcore-research/pyscf-ipu, branch code-for-paper-plots,
``pyscf_ipu/direct/train.py -alanine``) trained on phi, psi ~ U[0, 180) and extrapolated
to [180, 360); it drew (phi, psi) once per batch and jittered psi per conformer by
U(0, ``-rotate_deg`` = 90) wrapped back into the region (``angle % 180``). A uniform
angle plus a wrapped jitter is again uniform on the region, so here each conformer draws
both angles independently: the same distribution, without the per-batch correlation.
It also re-embedded the molecule with RDKit for every conformer (a random geometry
besides the torsions); here the wiggle plays that role, on one fixed reference.
"""

from __future__ import annotations

import warnings

import numpy as np

from qpt_nb.dft.dihedral import bond_graph, builtin_dihedrals, dihedrals_from_xyz, rotating_side, set_dihedral
from qpt_nb.dft.molecule import MIN_DISTANCE_ANGSTROM
from qpt_nb.validate import check_int

__all__ = ["DihedralSampler", "parse_range", "resolve_dihedrals", "TORSIONS", "MAX_TRIES_PER_CONFORMER"]

TORSIONS = ("phi", "psi")  # the sampler's two torsions, in the order they are set
MAX_TRIES_PER_CONFORMER = 100  # draws per requested conformer before giving up


def parse_range(value, what: str = "range") -> tuple:
    """(low, high) in degrees from a pair of numbers or a string 'LOW,HIGH' (e.g. '0,180').

    Both finite, low <= high, high - low <= 360 (one turn; low == high fixes the angle).
    ValueError naming `what` otherwise."""
    shape = f"{what} must be 'LOW,HIGH' in degrees (two numbers, LOW <= HIGH, at most 360 apart)"
    raw = value
    if isinstance(value, str):
        value = value.split(",")
    try:
        if isinstance(value, (bool, np.bool_)) or len(value) != 2:
            raise TypeError
        if any(isinstance(v, (bool, np.bool_)) for v in value):
            raise TypeError
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{shape}, got {raw!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{shape}, got {raw!r} (not finite).")
    if low > high:
        raise ValueError(f"{shape}, got {raw!r} (LOW > HIGH; for a region across 0 use e.g. -90,90).")
    if high - low > 360.0:
        raise ValueError(f"{shape}, got {raw!r} ({high - low:g} degrees wide).")
    return (low, high)


def resolve_dihedrals(mol, dihedrals=None, xyz_text=None) -> dict:
    """{'phi': (i, j, k, l), 'psi': (...)}, 0-based: `dihedrals` if given, else the ones
    recorded in `xyz_text`'s comment line, else the built-in molecule ``mol.name``'s
    (`qpt_nb.dft.dihedral.builtin_dihedrals`). ValueError naming how to record them."""
    found = dict(dihedrals or {})
    if not found and xyz_text:
        found = dihedrals_from_xyz(xyz_text)
    if not found:
        try:
            found = builtin_dihedrals(mol.name)
        except ValueError:
            found = {}
    missing = [t for t in TORSIONS if t not in found]
    if missing:
        raise ValueError(
            f"The dihedral sampler needs the phi and psi atoms of {mol.name or mol.formula!r} "
            f"({', '.join(missing)} missing): pass dihedrals={{'phi': (i, j, k, l), 'psi': (...)}} "
            "or write 'phi = atoms i,j,k,l and psi = j,k,l,m (0-based)' in the xyz comment line."
        )
    return {t: tuple(int(a) for a in found[t]) for t in TORSIONS}


class DihedralSampler:
    """Callable ``sample(n, seed=0) -> (n, n_atoms, 3)`` Angstrom (see the module doc).

    Args:
      mol: `Molecule`, the reference geometry (Angstrom).
      phi_range, psi_range: (low, high) degrees or 'LOW,HIGH' (`parse_range`); uniform
        draws, wrapped into [0, 360) when set.
      sigma: wiggle std, Angstrom (0: exact torsions on the rigid reference).
      dihedrals: {'phi': 4 atoms, 'psi': 4 atoms}; default `resolve_dihedrals(mol)`.
      xyz_text: xyz text whose comment line records the torsions (a custom molecule).
      min_distance: Angstrom; draws with two atoms closer are rejected.
      max_tries: draws per requested conformer before ValueError.

    Attributes: ``last_angles`` (n, 2) degrees of the last call (phi, psi as set, before
    the wiggle); ``last_rejected``; running totals ``rejected`` and ``drawn``; ``sides``
    the rotated atoms of each torsion (bool masks).
    """

    def __init__(
        self,
        mol,
        *,
        phi_range=(0.0, 180.0),
        psi_range=(0.0, 180.0),
        sigma: float = 0.05,
        dihedrals=None,
        xyz_text=None,
        min_distance: float = MIN_DISTANCE_ANGSTROM,
        max_tries: int = MAX_TRIES_PER_CONFORMER,
    ):
        self.mol = mol
        self.ranges = dict(phi=parse_range(phi_range, "phi_range"), psi=parse_range(psi_range, "psi_range"))
        self.sigma = float(sigma)
        if not (np.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"sigma must be >= 0 (std in Angstrom), got {sigma!r}")
        self.min_distance = float(min_distance)
        self.max_tries = check_int(max_tries, "max_tries", low=1)
        self.dihedrals = resolve_dihedrals(mol, dihedrals, xyz_text)
        self.x0 = np.asarray(mol.coords_angstrom, dtype=np.float64).reshape(-1, 3)
        bonds = bond_graph(mol.symbols, self.x0)
        for name, atoms in self.dihedrals.items():
            if max(atoms) >= len(self.x0) or min(atoms) < 0:
                raise ValueError(f"{name} atoms {atoms} out of range for {len(self.x0)} atoms (0-based)")
        self.sides = {t: rotating_side(bonds, a[1], a[2]) for t, a in self.dihedrals.items()}
        self.rejected, self.drawn, self.last_rejected = 0, 0, 0
        self.last_angles = np.zeros((0, 2))
        self._warned = False

    def geometry(self, phi: float, psi: float) -> np.ndarray:
        """The reference with phi and psi set (degrees), no wiggle: (n_atoms, 3) Angstrom."""
        x = self.x0
        for name, value in zip(TORSIONS, (phi, psi)):
            x = set_dihedral(x, self.dihedrals[name], value, side=self.sides[name])
        return x

    def clashes(self, x) -> bool:
        """True when two atoms of x (n_atoms, 3; Angstrom) are closer than min_distance."""
        d = np.linalg.norm(x[:, None] - x[None], axis=-1)
        np.fill_diagonal(d, np.inf)
        return bool(d.min() < self.min_distance)

    def __call__(self, n: int, seed: int = 0) -> np.ndarray:
        n = check_int(n, "n", low=1)
        rng = np.random.default_rng(check_int(seed, "seed", low=0))
        out, angles, rejected, tries = [], [], 0, 0
        (p0, p1), (q0, q1) = self.ranges["phi"], self.ranges["psi"]
        while len(out) < n and tries < self.max_tries * n:
            tries += 1
            phi, psi = rng.uniform(p0, p1), rng.uniform(q0, q1)
            x = self.geometry(phi, psi) + self.sigma * rng.standard_normal(self.x0.shape)
            if self.clashes(x):
                rejected += 1
                continue
            out.append(x)
            angles.append((phi % 360.0, psi % 360.0))
        self.rejected += rejected
        self.drawn += tries
        self.last_rejected = rejected
        region = f"phi in {list(self.ranges['phi'])}, psi in {list(self.ranges['psi'])} degrees"
        if len(out) < n:
            raise ValueError(
                f"The dihedral sampler found {len(out)} of {n} conformers in {tries} draws of {region}: "
                f"the other {rejected} put two atoms closer than {self.min_distance} Angstrom. "
                "Choose another region (or a smaller sigma)."
            )
        if rejected and not self._warned:
            self._warned = True
            warnings.warn(
                f"dihedral sampler: rejected {rejected} of {tries} draws of {region} (two atoms closer "
                f"than {self.min_distance} Angstrom); the running count is the sampler's .rejected",
                RuntimeWarning,
                stacklevel=2,
            )
        self.last_angles = np.asarray(angles, dtype=np.float64)
        return np.stack(out)
