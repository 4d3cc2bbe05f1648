"""The phi/psi energy map of alanine dipeptide: trained QPT, its W = 0 sandwich and PySCF.

    emap = energy_map('runs/alanine', 12)          # 12 x 12 grid over [0, 360)^2, degrees
    print(emap.table())                            # errors inside / outside the training region
    scan = psi_scan('runs/alanine', phi=60.0, n_psi=72)   # psi in 5-degree steps at fixed phi
    emap.save('map.json');  EnergyMap.load('map.json')

The research code's experiment (graphcore-research/pyscf-ipu, branch code-for-paper-plots,
``pyscf_ipu/direct/train.py -alanine`` and ``another_plot.py``): label-free training on
phi, psi in [0, 180), extrapolation to [180, 360), inference sweeping psi in 5-degree steps,
and a 2 x 3 figure of the network's energy, PySCF's and their difference, linear and log
(`qpt_nb.viz.ramachandran`).

Every grid point is one rigid geometry: the molecule's reference with phi and psi set
(`qpt_nb.learn.dihedral_sampler.DihedralSampler.geometry`, no wiggle). Its energies go
through the one prediction path, `qpt_nb.analysis.evaluation.evaluate`: the trained
sandwich E[D_n] ('qpt'), the same sandwich with W = 0 ('w0', the untrained baseline
evaluate reports) and the PySCF label ('pyscf': `qpt_nb.dft.reference.label_many`, same
basis, functional, grid level and ERI kind, the QH9 convergence settings, cached on disk).
A grid point whose geometry puts two atoms closer than
`qpt_nb.dft.molecule.MIN_DISTANCE_ANGSTROM` (alanine dipeptide near phi = psi = 0) is not
computed: NaN in every map, counted in ``metadata['n_clash']``.

Arrays are indexed ``[i_phi, i_psi]``; energies are stored in Hartree, reported in meV:
`EnergyMap.relative_mev` is each map relative to its own minimum, `EnergyMap.error_mev`
the error of the absolute energy against PySCF.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

import numpy as np

from qpt_nb.dft.dihedral import in_range
from qpt_nb.dft.molecule import MIN_DISTANCE_ANGSTROM
from qpt_nb.units import MEV_PER_HARTREE
from qpt_nb.validate import check_int

__all__ = [
    "MAP_KEYS",
    "MAP_LABELS",
    "REGIONS",
    "EnergyMap",
    "angle_grid",
    "region_mask",
    "map_geometries",
    "energy_map",
    "psi_scan",
    "region_label",
]

MAP_KEYS = ("qpt", "w0", "pyscf")
MAP_LABELS = dict(qpt="QPT (trained)", w0="W = 0 sandwich", pyscf="PySCF")
REGIONS = ("inside", "outside", "all")


def angle_grid(n: int, offset: Optional[float] = None) -> np.ndarray:
    """(n,) regular angles over one turn, degrees: offset + 360 k / n, k = 0..n-1.

    The default offset is half a step (cell centres: 12 points are 15, 45, ..., 345), so
    the n cells tile [0, 360) exactly and a region like [0, 180) is whole cells."""
    n = check_int(n, "the angle count n of a grid", low=1)
    step = 360.0 / int(n)
    return (0.5 * step if offset is None else float(offset)) + np.arange(int(n)) * step


def region_mask(phi, psi, phi_range, psi_range) -> np.ndarray:
    """(n_phi, n_psi) bool: grid point (phi_i, psi_j) lies in the region (periodic
    intervals, degrees; `qpt_nb.dft.dihedral.in_range`)."""
    return in_range(phi, phi_range)[:, None] & in_range(psi, psi_range)[None, :]


def _stats(x) -> tuple:
    x = np.abs(np.asarray(x, dtype=np.float64))
    x = x[np.isfinite(x)]
    return (float(x.mean()), float(x.max())) if x.size else (float("nan"), float("nan"))


@dataclasses.dataclass
class EnergyMap:
    """Energies on a phi/psi grid.

    phi: (n_phi,), psi: (n_psi,) degrees. energies: {'qpt', 'w0', 'pyscf'} -> (n_phi, n_psi)
    Hartree (NaN: not computed, a clash). phi_range, psi_range: the training region,
    degrees. metadata: settings, timings, `evaluate`'s metrics on the grid points.
    """

    phi: np.ndarray
    psi: np.ndarray
    energies: dict
    phi_range: tuple = (0.0, 180.0)
    psi_range: tuple = (0.0, 180.0)
    metadata: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.phi = np.atleast_1d(np.asarray(self.phi, dtype=np.float64))
        self.psi = np.atleast_1d(np.asarray(self.psi, dtype=np.float64))
        self.energies = {k: np.asarray(v, dtype=np.float64) for k, v in self.energies.items()}
        for k, v in self.energies.items():
            if v.shape != self.shape:
                raise ValueError(f"energies[{k!r}] has shape {v.shape}, the grid is {self.shape}")
        self.phi_range = tuple(float(v) for v in self.phi_range)
        self.psi_range = tuple(float(v) for v in self.psi_range)

    @property
    def shape(self) -> tuple:
        return (len(self.phi), len(self.psi))

    def relative_mev(self, key: str) -> np.ndarray:
        """(n_phi, n_psi) meV: map `key` minus its own minimum (NaN points ignored)."""
        e = self.energies[key]
        if not np.isfinite(e).any():
            return np.full(self.shape, np.nan)
        return (e - np.nanmin(e)) * MEV_PER_HARTREE

    def error_mev(self, key: str = "qpt") -> np.ndarray:
        """(n_phi, n_psi) meV: E_key - E_PySCF (absolute energies; > 0 for a variational
        sandwich above the converged energy)."""
        return (self.energies[key] - self.energies["pyscf"]) * MEV_PER_HARTREE

    def relative_error_mev(self, key: str = "qpt") -> np.ndarray:
        """(n_phi, n_psi) meV: the error of the landscape, relative_mev(key) - relative_mev('pyscf')."""
        return self.relative_mev(key) - self.relative_mev("pyscf")

    def region_mask(self) -> np.ndarray:
        """(n_phi, n_psi) bool: inside the training region."""
        return region_mask(self.phi, self.psi, self.phi_range, self.psi_range)

    def error_table(self, keys=("qpt", "w0")) -> list:
        """One row per region ('inside', 'outside', 'all' of the training region): n points
        (computed ones), and for each key mean / max |E - E_PySCF| ('<key>_mae_mev',
        '<key>_max_mev') and the mean |error| of the relative energies ('<key>_rel_mae_mev')."""
        inside = self.region_mask()
        rows = []
        for region, sel in zip(REGIONS, (inside, ~inside, np.ones_like(inside))):
            ok = sel & np.isfinite(self.energies["pyscf"])
            row = dict(region=region, n=int(ok.sum()))
            for k in keys:
                if k not in self.energies:
                    continue
                row[f"{k}_mae_mev"], row[f"{k}_max_mev"] = _stats(self.error_mev(k)[ok])
                row[f"{k}_rel_mae_mev"] = _stats(self.relative_error_mev(k)[ok])[0]
            rows.append(row)
        return rows

    def table(self, keys=("qpt", "w0")) -> str:
        """Plain-text `error_table` (meV)."""
        keys = [k for k in keys if k in self.energies]
        head = f"{'region':8s} {'n':>4s}" + "".join(
            f" {k + ' MAE':>11s} {k + ' max':>11s} {k + ' rel MAE':>12s}" for k in keys
        )
        lines = [head + "   (meV)"]
        for r in self.error_table(keys):
            line = f"{r['region']:8s} {r['n']:4d}"
            for k in keys:
                line += f" {r[f'{k}_mae_mev']:11.2f} {r[f'{k}_max_mev']:11.2f} {r[f'{k}_rel_mae_mev']:12.2f}"
            lines.append(line)
        return "\n".join(lines)

    # ---------------------------------------------------------------- persistence
    def to_json(self) -> dict:
        """JSON-able dict (NaN -> None); energies in Hartree, angles in degrees."""

        def clean(a):
            return [[None if not np.isfinite(v) else float(v) for v in row] for row in np.asarray(a)]

        return dict(
            phi_deg=self.phi.tolist(),
            psi_deg=self.psi.tolist(),
            energies_ha={k: clean(v) for k, v in self.energies.items()},
            phi_range=list(self.phi_range),
            psi_range=list(self.psi_range),
            errors_mev=self.error_table(),
            metadata=self.metadata,
        )

    @classmethod
    def from_json(cls, d: dict) -> "EnergyMap":
        def arr(a):
            return np.array([[np.nan if v is None else v for v in row] for row in a], dtype=np.float64)

        return cls(
            d["phi_deg"],
            d["psi_deg"],
            {k: arr(v) for k, v in d["energies_ha"].items()},
            tuple(d["phi_range"]),
            tuple(d["psi_range"]),
            dict(d.get("metadata", {})),
        )

    def save(self, path) -> Path:
        """Writes `to_json` atomically; returns the path."""
        from qpt_nb.fileio import save_json

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_json(path, self.to_json())
        return path

    @classmethod
    def load(cls, path) -> "EnergyMap":
        return cls.from_json(json.loads(Path(path).read_text()))


# ----------------------------------------------------------------------------- computation
def map_geometries(
    mol, phi, psi, *, dihedrals=None, xyz_text=None, min_distance: float = MIN_DISTANCE_ANGSTROM
) -> list:
    """The grid's geometries, row-major over [i_phi, i_psi]: n_phi * n_psi entries, each a
    `Molecule` (mol with phi_i, psi_j set, degrees; no wiggle) or None where two atoms
    come closer than `min_distance` Angstrom. Torsion atoms as `DihedralSampler`'s."""
    from qpt_nb.learn.dihedral_sampler import DihedralSampler

    s = DihedralSampler(mol, sigma=0.0, dihedrals=dihedrals, xyz_text=xyz_text, min_distance=min_distance)
    out = []
    for p in np.atleast_1d(phi):
        for q in np.atleast_1d(psi):
            x = s.geometry(float(p), float(q))
            out.append(None if s.clashes(x) else mol.with_coords(x))
    return out


def _grid(value, what) -> np.ndarray:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return angle_grid(value)
    a = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if a.ndim != 1 or not a.size or not np.isfinite(a).all():
        raise ValueError(f"{what} must be a number of grid points or a 1-d array of degrees, got {value!r}")
    return a


def energy_map(
    model_or_run,
    phi=12,
    psi=None,
    *,
    config=None,
    labels=None,
    cache_dir=None,
    progress: bool = False,
    dihedrals=None,
    phi_range=None,
    psi_range=None,
) -> EnergyMap:
    """The trained QPT's, the W = 0 sandwich's and PySCF's energies on a phi/psi grid.

    Args:
      model_or_run: run directory, `Trainer`, (TrainConfig, params), or params with config=
        (`qpt_nb.analysis.runs.resolve_model`); the molecule, basis, functional, grid level
        and ERI kind are the run's.
      phi, psi: number of regular grid points over [0, 360) (`angle_grid`) or arrays of
        angles, degrees; psi defaults to phi's.
      labels: PySCF `Label`s of the computed (non-clashing) points in `map_geometries`
        order; default `label_many` (cached in `cache_dir`).
      dihedrals: torsion atoms (default: the run's xyz comment line or the builtin's).
      phi_range, psi_range: the region to outline and tabulate (default: the run's).

    Returns:
      `EnergyMap` (Hartree inside, meV in its reports; metadata holds `evaluate`'s
      metrics and settings, the step and the clash count).
    """
    from qpt_nb.analysis.evaluation import evaluate
    from qpt_nb.analysis.runs import resolve_model

    cfg, params, step = resolve_model(model_or_run, config)
    phi = _grid(phi, "phi")
    psi = phi.copy() if psi is None else _grid(psi, "psi")
    mol = cfg.molecule_object()
    mols = map_geometries(mol, phi, psi, dihedrals=dihedrals, xyz_text=cfg.xyz)
    done = [i for i, m in enumerate(mols) if m is not None]
    if not done:
        raise ValueError("Every grid point is a clash: no geometry to compute.")
    res = evaluate(
        (cfg, params), [mols[i] for i in done], labels=labels, cache_dir=cache_dir, progress=progress
    )
    energies = {k: np.full(len(mols), np.nan) for k in MAP_KEYS}
    for i, row in zip(done, res.rows):
        energies["qpt"][i] = row["predicted_energy_ha"]
        energies["w0"][i] = row["baseline_energy_ha"]
        energies["pyscf"][i] = row["reference_energy_ha"]
    meta = dict(
        res.metadata,
        step=step,
        n_points=len(mols),
        n_clash=len(mols) - len(done),
        trained=res.trained,
        baseline_w0=res.baseline_w0,
        units=dict(res.metadata.get("units", {}), angles="degrees", energies_ha="Hartree"),
    )
    meta.pop("test_seed", None)  # a grid, not a drawn test set
    return EnergyMap(
        phi,
        psi,
        {k: v.reshape(len(phi), len(psi)) for k, v in energies.items()},
        cfg.phi_range if phi_range is None else phi_range,
        cfg.psi_range if psi_range is None else psi_range,
        meta,
    )


def psi_scan(model_or_run, phi: float = 60.0, n_psi=72, **kw) -> EnergyMap:
    """`energy_map` at one fixed phi (degrees): psi in ``n_psi`` regular steps over [0, 360)
    (72: the research code's 5-degree inference sweep) or the given psi angles.
    A (1, n_psi) map; `qpt_nb.viz.ramachandran.psi_scan_figure` draws it."""
    return energy_map(model_or_run, [float(phi)], n_psi, **kw)


def region_label(rng: Optional[tuple]) -> str:
    """'[0, 180)' for a region in degrees."""
    return "[{:g}, {:g})".format(*rng) if rng is not None else "?"
