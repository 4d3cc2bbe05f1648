"""Seeded conformer samplers: float64 ``(n, n_atoms, 3)`` Angstrom, same seed -> same output.

:func:`wiggle` (Cartesian noise), :func:`normal_mode_sample` (classical harmonic thermal),
:func:`md_trajectory` (GFN2-xTB Langevin MD; extra ``pip install 'qpt_nb[md]'``: tblite,
ase), :class:`ConformerStream` (infinite, restartable iterator of ``Molecule`` objects);
sampler 'dihedral' (torsions phi/psi uniform in a region, clashes rejected) is
`qpt_nb.learn.dihedral_sampler.DihedralSampler`.

The research code's wiggle "variance 0.05": its option ``wiggle_var`` is documented as
``N(0, wiggle_var)`` but used as ``np.random.normal(0, wiggle_var)``, whose 2nd argument is
the *standard deviation*: it did std = 0.05 Angstrom (on the first three atoms only, QM9
branch). A literal variance of 0.05 Angstrom^2 is std sqrt(0.05) = 0.224 Angstrom per
component (~0.3 Angstrom bond-length noise, far too large). Here ``sigma`` is the std in
Angstrom (default 0.05, the code's behaviour); ``variance=`` gives the literal reading.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from qpt_nb import settings
from qpt_nb.dft.molecule import MIN_DISTANCE_ANGSTROM
from qpt_nb.fileio import ChecksumError, load_npy_checksummed, save_npy_checksummed
from qpt_nb.units import BOHR_PER_ANGSTROM, CM1_PER_HARTREE, HARTREE_PER_KELVIN, ME_PER_AMU
from qpt_nb.validate import check_int, check_number

__all__ = [
    "wiggle",
    "normal_mode_sample",
    "md_trajectory",
    "vibrational_modes",
    "VibrationalModes",
    "compute_hessian",
    "rmsd",
    "min_distance",
    "SAMPLERS",
    "ConformerStream",
    "make_sampler",
    "derive_seed",
    "md_or_fallback",
]

SAMPLERS = ("wiggle", "normal_modes", "md", "dihedral")
MD_INSTALL_HINT = "pip install 'qpt_nb[md]'  (installs tblite and ase)"


def _coords(mol) -> np.ndarray:
    return np.asarray(mol.coords_angstrom, dtype=np.float64).reshape(-1, 3)


def _check_int(v, what, low=0) -> int:
    return check_int(v, what, low=low)


def _check_temperature(t) -> float:
    return check_number(t, "temperature", low=0.0, low_inclusive=False, hint=" (Kelvin)")


def derive_seed(seed: int, index: int) -> int:
    """Independent 64-bit seed for chunk ``index`` of a stream seeded with ``seed``."""
    ss = np.random.SeedSequence(entropy=_check_int(seed, "seed"), spawn_key=(int(index),))
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def min_distance(coords) -> float:
    """Smallest interatomic distance of one geometry ``(n_atoms, 3)`` (same units)."""
    x = np.asarray(coords, dtype=np.float64).reshape(-1, 3)
    return float((np.linalg.norm(x[:, None] - x[None], axis=-1) + np.diag([np.inf] * len(x))).min())


def _kabsch(x, ref, w):
    """Rigidly move ``x`` (n_atoms, 3) onto ``ref``, minimising the w-weighted RMSD."""
    w = w / w.sum()
    a, b = x - w @ x, ref - w @ ref
    u, _, vt = np.linalg.svd((a * w[:, None]).T @ b)
    return a @ (u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt) + w @ ref


def rmsd(coords, ref, *, masses=None, align=True):
    """RMSD of each frame of ``coords`` ((n, n_atoms, 3) or one frame) to ``ref`` (same
    units); mass-weighted if ``masses`` given; Kabsch-aligned first if ``align``."""
    x = np.asarray(coords, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    w = np.ones(len(ref)) if masses is None else np.asarray(masses, dtype=np.float64)
    out = np.array(
        [
            np.sqrt(w @ (((_kabsch(f, ref, w) if align else f) - ref) ** 2).sum(1) / w.sum())
            for f in x.reshape(-1, *ref.shape)
        ]
    )
    return out[0] if x.ndim == 2 else out


def wiggle(mol, n, *, sigma=None, seed=0, variance=None, atoms=None) -> np.ndarray:
    """``coords + N(0, sigma^2)`` on every Cartesian component (Angstrom).

    sigma: std in Angstrom (default 0.05). variance: the alternative, in Angstrom^2; the
    research code's "wiggle variance 0.05" (graphcore-research/pyscf-ipu, branch train,
    ``train.py -wiggle_var``) is ``variance=0.05``, a std of 0.224 Angstrom. atoms: indices of
    the atoms to perturb (the research code: 0, 1, 2 only); default all."""
    n = _check_int(n, "n", 1)
    if sigma is not None and variance is not None:
        raise ValueError("give either sigma (std, Angstrom) or variance (Angstrom^2), not both")
    if variance is not None and not float(variance) >= 0:
        raise ValueError(f"variance must be >= 0, got {variance!r}")
    sigma = (0.05 if sigma is None else float(sigma)) if variance is None else np.sqrt(variance)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"sigma must be >= 0 (std in Angstrom), got {sigma!r}")
    x0 = _coords(mol)
    noise = np.random.default_rng(_check_int(seed, "seed")).standard_normal((n, *x0.shape))
    if atoms is not None:
        noise[:, np.setdiff1d(np.arange(len(x0)), np.asarray(atoms, dtype=int))] = 0.0
    return x0[None] + sigma * noise


_HESSIAN_MEMO: dict[str, np.ndarray] = {}


def _import_tblite():
    """Import tblite with OpenMP pinned to ``$QPT_NB_TBLITE_THREADS`` (default 1) threads.

    PySCF ships its own libgomp; with two OpenMP runtimes spinning on a small machine,
    a GFN2-xTB gradient of uracil measured 0.1-0.7 s instead of 3 ms. libgomp reads
    OMP_NUM_THREADS when loaded, so it is set only around the first import."""
    if sys.modules.get("tblite.interface") is not None:
        return sys.modules["tblite.interface"]
    old = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = settings.tblite_threads()
    try:
        import tblite.interface
    finally:
        if old is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = old
    return tblite.interface


def _hessian_tblite(mol, method: str, step_bohr: float = 5e-3) -> np.ndarray:
    x0 = _coords(mol) * BOHR_PER_ANGSTROM
    name = {"gfn2-xtb": "GFN2-xTB", "gfn1-xtb": "GFN1-xTB"}[method]
    calc = _import_tblite().Calculator(
        name, np.asarray(mol.atomic_numbers), x0, charge=float(mol.charge), uhf=int(mol.spin)
    )
    calc.set("verbosity", 0)
    calc.set("accuracy", 0.01)  # tight SCC: gradients feed finite differences
    hess = np.empty((x0.size, x0.size))
    for k in range(x0.size):  # central differences of analytic gradients
        g = []
        for s in (step_bohr, -step_bohr):
            x = x0.reshape(-1).copy()
            x[k] += s
            calc.update(x.reshape(-1, 3))
            g.append(np.asarray(calc.singlepoint().get("gradient")).reshape(-1))
        hess[k] = (g[0] - g[1]) / (2.0 * step_bohr)
    return 0.5 * (hess + hess.T)


def _hessian_pyscf(mol) -> np.ndarray:
    from pyscf import scf

    pmol = mol.to_pyscf("sto-3g")
    mf = scf.RHF(pmol) if int(mol.spin) == 0 else scf.UHF(pmol)
    mf.conv_tol, mf.verbose = 1e-11, 0
    mf.kernel()
    if not mf.converged:
        raise RuntimeError("SCF for the RHF/sto-3g Hessian did not converge")
    h = np.asarray(mf.Hessian().kernel()).transpose(0, 2, 1, 3).reshape(3 * mol.n_atoms, -1)
    return 0.5 * (h + h.T)


def _hessian_problem(h, n3: int):
    """Why ``h`` is not a valid (n3, n3) Cartesian Hessian, or None."""
    if h.shape != (n3, n3):
        return f"shape {h.shape}, expected ({n3}, {n3})"
    if not np.issubdtype(h.dtype, np.floating):
        return f"dtype {h.dtype}, expected float"
    if not np.isfinite(h).all():
        return f"{int((~np.isfinite(h)).sum())} non-finite entries (NaN or inf)"
    asym = float(np.max(np.abs(h - h.T))) if h.size else 0.0
    if asym > 1e-10 * max(1.0, float(np.max(np.abs(h)))):
        return f"not symmetric (max |H - H^T| = {asym:.3g})"
    return None


def _read_cached_hessian(path: Path, n3: int):
    """(hessian or None, reason it is invalid or None). Old files without a checksum
    sidecar are accepted when their shape, finiteness and symmetry are right (a flipped
    bit off the diagonal breaks the symmetry) and get a sidecar written."""
    try:
        hess, verified = load_npy_checksummed(path)
    except ChecksumError as exc:
        return None, str(exc).removeprefix(f"{path}: ")
    problem = _hessian_problem(hess, n3)
    if problem is not None:
        return None, problem
    if not verified:  # pre-checksum cache file: add its checksum
        try:
            save_npy_checksummed(path, hess)
        except OSError:
            pass
    return np.asarray(hess, dtype=np.float64), None


def compute_hessian(mol, method: str = "auto", *, use_cache: bool = True) -> np.ndarray:
    """Cartesian Hessian (3N, 3N), Hartree/Bohr^2, at ``mol``'s geometry.

    method: "auto" (= "gfn2-xtb" if tblite is installed, else "rhf/sto-3g"), "gfn2-xtb" /
    "gfn1-xtb" (central differences of tblite's analytic gradients, step 0.005 Bohr) or
    "rhf/sto-3g" (PySCF analytic Hessian; UHF for spin > 0). Cached in memory and as
    ``settings.cache_dir("hessians")/<sha256>.npy`` keyed by method, elements, coords, charge,
    spin, with its SHA-256 in ``<sha256>.npy.sha256`` (`qpt_nb.fileio.save_npy_checksummed`).
    A cache file that fails its checksum, is unreadable, or is not a finite symmetric
    (3N, 3N) matrix gives a RuntimeWarning naming the file and the reason, and the Hessian
    is recomputed and the file rewritten (atomically)."""
    m = str(method).lower().replace("_", "-")
    if m == "auto":
        try:
            m = _import_tblite() and "gfn2-xtb"
        except ImportError:
            m = "rhf/sto-3g"
    if m not in ("gfn2-xtb", "gfn1-xtb", "rhf/sto-3g"):
        raise ValueError(f"unknown hessian method {method!r}: auto, gfn2-xtb, gfn1-xtb, rhf/sto-3g")
    key = hashlib.sha256(
        repr(
            (m, tuple(mol.symbols), np.round(_coords(mol), 8).tolist(), int(mol.charge), int(mol.spin))
        ).encode()
    ).hexdigest()[:32]
    if use_cache and key in _HESSIAN_MEMO:
        return _HESSIAN_MEMO[key].copy()
    path, hess = settings.cache_dir("hessians") / f"{key}.npy", None
    n3 = _coords(mol).size
    if use_cache and path.is_file():
        hess, problem = _read_cached_hessian(path, n3)
        if problem is not None:
            warnings.warn(
                f"Hessian cache file {path} is invalid ({problem}); recomputing the "
                f"{m} Hessian and rewriting the file",
                RuntimeWarning,
                stacklevel=2,
            )
    if hess is None:
        hess = _hessian_pyscf(mol) if m == "rhf/sto-3g" else _hessian_tblite(mol, m)
        hess = np.asarray(hess, dtype=np.float64)
        problem = _hessian_problem(hess, n3)
        if problem is not None:
            raise RuntimeError(f"the {m} Hessian of {mol!r} is invalid ({problem})")
        if use_cache:
            try:
                save_npy_checksummed(path, hess)  # atomic: concurrent writers are safe
            except OSError:
                pass  # read-only cache dir: memory cache only
    if use_cache:
        _HESSIAN_MEMO[key] = hess
    return hess.copy()


@dataclasses.dataclass(frozen=True)
class VibrationalModes:
    """eigenvalues: omega_k^2, Hartree/(Bohr^2 amu); modes: (3N, m) orthonormal
    mass-weighted vectors; wavenumbers (cm^-1) of the kept modes; dropped_wavenumbers:
    vibrational modes below the cutoff (negative = imaginary); masses in amu."""

    eigenvalues: np.ndarray
    modes: np.ndarray
    wavenumbers: np.ndarray
    dropped_wavenumbers: np.ndarray
    masses: np.ndarray

    @property
    def n_modes(self) -> int:
        return len(self.eigenvalues)


def _rigid_basis(x_bohr, masses):
    """Orthonormal mass-weighted translations + rotations: 6 columns (5 if linear)."""
    sm, r = np.sqrt(masses), x_bohr - (masses @ x_bohr) / masses.sum()
    vecs = [
        (sm[:, None] * f).reshape(-1)
        for e in np.eye(3)
        for f in (np.broadcast_to(e, r.shape), np.cross(e, r))
    ]
    u, s, _ = np.linalg.svd(np.stack(vecs, 1), full_matrices=False)
    return u[:, s > 1e-6 * s.max()]


def vibrational_modes(mol, hessian=None, *, min_wavenumber=50.0, method="auto"):
    """Mass-weighted Hessian diagonalised in the exact complement of the rigid-body space.

    hessian: Cartesian, Hartree/Bohr^2, (3N, 3N) or PySCF's (N, N, 3, 3); default
    :func:`compute_hessian` (``method``). Modes below ``min_wavenumber`` cm^-1 (default 50)
    are dropped: imaginary ones (geometry not a minimum of the Hessian's method) and very
    soft ones, whose thermal amplitude sqrt(kT)/omega would explode."""
    masses = np.asarray(mol.masses, dtype=np.float64)
    n3 = 3 * len(masses)
    h = compute_hessian(mol, method) if hessian is None else np.asarray(hessian, np.float64)
    if h.size != n3 * n3:
        raise ValueError(f"hessian must have {n3}x{n3} entries, got shape {h.shape}")
    h = (h.transpose(0, 2, 1, 3) if h.ndim == 4 else h).reshape(n3, n3)
    inv_sm = 1.0 / np.sqrt(np.repeat(masses, 3))
    hmw = 0.5 * (h + h.T) * inv_sm[:, None] * inv_sm[None, :]
    rigid = _rigid_basis(_coords(mol) * BOHR_PER_ANGSTROM, masses)
    comp = np.linalg.qr(rigid, mode="complete")[0][:, rigid.shape[1] :]  # (3N, 3N-6)
    w, u = np.linalg.eigh(comp.T @ hmw @ comp)
    wn = np.sign(w) * np.sqrt(np.abs(w) / ME_PER_AMU) * CM1_PER_HARTREE
    keep = wn >= float(min_wavenumber)
    return VibrationalModes(w[keep], comp @ u[:, keep], wn[keep], wn[~keep], masses)


def _sample_modes(mol, vib: VibrationalModes, n, temperature, seed):
    kt = HARTREE_PER_KELVIN * _check_temperature(temperature)
    rng = np.random.default_rng(_check_int(seed, "seed"))
    q = rng.standard_normal((_check_int(n, "n", 1), vib.n_modes)) * np.sqrt(kt / vib.eigenvalues)
    dx = (q @ vib.modes.T) / np.sqrt(np.repeat(vib.masses, 3))[None]  # Bohr, (n, 3N)
    x0 = _coords(mol)
    return x0[None] + dx.reshape(-1, *x0.shape) / BOHR_PER_ANGSTROM


def normal_mode_sample(
    mol, n, *, temperature=300.0, seed=0, hessian=None, min_wavenumber=50.0, method="auto"
) -> np.ndarray:
    """Classical harmonic sampling: each kept mode q_k ~ N(0, kT/omega_k^2) (mass-weighted),
    x = x0 + M^-1/2 L q; rigid-body motions excluded exactly (centre of mass fixed). Hessian:
    ``hessian`` or computed once and cached (GFN2-xTB if tblite is installed, else
    RHF/sto-3g; see :func:`vibrational_modes`, :func:`compute_hessian`)."""
    _check_int(n, "n", 1), _check_temperature(temperature)
    vib = vibrational_modes(mol, hessian, min_wavenumber=min_wavenumber, method=method)
    return _sample_modes(mol, vib, n, temperature, seed)


def require_md():
    try:
        import ase  # noqa: F401

        _import_tblite()
    except ImportError as exc:
        raise ImportError(f"md_trajectory needs tblite and ase: {MD_INSTALL_HINT}") from exc


def md_or_fallback(sampler: str = "md", *, quiet: bool = False) -> str:
    """`sampler`, except that 'md' becomes 'normal_modes' when tblite or ase is missing:
    the one fallback every entry point uses (harmonic thermal conformers at the same
    temperature are the nearest thing to GFN2-xTB MD that needs no extra package). Prints
    one line saying so unless `quiet`."""
    if sampler != "md":
        return sampler
    try:
        require_md()
    except ImportError:
        if not quiet:
            print(f"tblite/ase missing: normal-mode conformers instead of MD ({MD_INSTALL_HINT})", flush=True)
        return "normal_modes"
    return "md"


class _MDRunner:
    """One continuous, seeded Langevin trajectory; ``frames(k)`` continues it."""

    def __init__(
        self,
        mol,
        *,
        temperature=500.0,
        seed=0,
        timestep_fs=0.5,
        stride=10,
        equilibration=200,
        method="GFN2-xTB",
        friction_per_fs=0.01,
        align=True,
    ):
        t = _check_temperature(temperature)
        if not (float(timestep_fs) > 0 and float(friction_per_fs) >= 0):
            raise ValueError("timestep_fs must be > 0 and friction_per_fs >= 0")
        self.stride = _check_int(stride, "stride", 1)
        self._todo_equil = _check_int(equilibration, "equilibration", 0)
        seed = _check_int(seed, "seed")
        require_md()
        from ase import Atoms, units
        from ase.constraints import FixCom
        from ase.md import velocitydistribution as vd
        from ase.md.langevin import Langevin
        from tblite.ase import TBLite

        self.align, self.x0 = bool(align), _coords(mol)
        self.masses = np.asarray(mol.masses, dtype=np.float64)
        atoms = Atoms(symbols=list(mol.symbols), positions=self.x0, masses=self.masses)
        atoms.calc = TBLite(
            method=method, charge=float(mol.charge), multiplicity=int(mol.spin) + 1, verbosity=0
        )
        atoms.set_constraint(FixCom())
        rng = np.random.RandomState(seed % 2**32)
        getattr(vd, "thermalize_momenta", vd.MaxwellBoltzmannDistribution)(atoms, temperature_K=t, rng=rng)
        vd.Stationary(atoms)
        vd.ZeroRotation(atoms)
        self.atoms = atoms
        self.dyn = Langevin(
            atoms,
            timestep=float(timestep_fs) * units.fs,
            temperature_K=t,
            friction=float(friction_per_fs) / units.fs,
            fixcm=False,
            rng=rng,
        )

    def frames(self, k: int) -> np.ndarray:
        if self._todo_equil:
            self.dyn.run(self._todo_equil)
            self._todo_equil = 0
        out = np.empty((k, *self.x0.shape))
        for i in range(k):
            self.dyn.run(self.stride)
            x = self.atoms.get_positions()
            if (d := min_distance(x)) < MIN_DISTANCE_ANGSTROM:
                raise RuntimeError(
                    f"MD brought two atoms {d:.3f} Angstrom apart (< "
                    f"{MIN_DISTANCE_ANGSTROM}): lower temperature or timestep"
                )
            out[i] = _kabsch(x, self.x0, self.masses) if self.align else x
        return out


def md_trajectory(mol, n, **md) -> np.ndarray:
    """Langevin MD (ASE + tblite): ``n`` frames, one every ``stride`` steps after
    ``equilibration`` steps; Maxwell-Boltzmann start at ``temperature`` (no net momentum
    or rotation, centre of mass fixed); randomness from ``RandomState(seed)``. ``align``:
    mass-weighted Kabsch-align each frame onto ``mol`` (undoes thermostat rotational
    diffusion). RuntimeError if atoms come < 0.5 Angstrom apart; ImportError without
    tblite/ase. Bitwise reproducible for a fixed tblite thread count. Keywords ``md``
    (temperature K, seed, timestep_fs, stride, equilibration, method, friction_per_fs,
    align) and their defaults are `_MDRunner`'s (500 K, 0.5 fs, every 10 steps after
    200, GFN2-xTB, friction 0.01/fs, aligned)."""
    n = _check_int(n, "n", 1)
    return _MDRunner(mol, **md).frames(n)


def make_sampler(name, mol, **kw):
    """Callable ``sample(n, seed=0) -> (n, n_atoms, 3)`` Angstrom for sampler ``name``
    (one of SAMPLERS); ``kw`` go to the sampler (normal modes are computed once here)."""
    if name == "wiggle":
        wiggle(mol, 1, **kw)  # validate eagerly
        return lambda n, seed=0: wiggle(mol, n, seed=seed, **kw)
    if name == "normal_modes":
        kw = dict(kw)
        t = _check_temperature(kw.pop("temperature", 300.0))
        vib = vibrational_modes(mol, kw.pop("hessian", None), **kw)
        return lambda n, seed=0: _sample_modes(mol, vib, n, t, seed)
    if name == "md":
        require_md()
        return lambda n, seed=0: md_trajectory(mol, n, seed=seed, **kw)
    if name == "dihedral":  # phi_range, psi_range (degrees), sigma, dihedrals, ...
        from qpt_nb.learn.dihedral_sampler import DihedralSampler

        return DihedralSampler(mol, **kw)
    raise ValueError(f"unknown sampler {name!r}; choose one of {SAMPLERS}")


class ConformerStream:
    """Infinite, deterministic iterator of ``Molecule`` conformers (``mol.with_coords``).

    wiggle / normal_modes: conformer i is row i % chunk of a chunk drawn with seed
    ``derive_seed(seed, i // chunk)``, so ``start=k`` costs one chunk. md: one continuous
    trajectory per seed (conformer i = frame i of ``md_trajectory(mol, ., seed=seed)``);
    ``start=k`` simulates through the first k frames. ``position``: next index.
    """

    def __init__(self, mol, sampler="wiggle", *, seed=0, chunk=64, start=0, **sampler_kwargs):
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
        self.mol, self.sampler, self.seed = mol, sampler, _check_int(seed, "seed")
        self.chunk, self.position = _check_int(chunk, "chunk", 1), _check_int(start, "start")
        self._buf, self._buf_start = None, 0
        if sampler == "md":
            self._md = _MDRunner(mol, seed=self.seed, **sampler_kwargs)
            for done in range(0, self.position, self.chunk):
                self._md.frames(min(self.chunk, self.position - done))
        else:
            self._draw = make_sampler(sampler, mol, **sampler_kwargs)

    def __iter__(self):
        return self

    @property
    def rejected(self) -> int:
        """Draws the sampler threw away so far (clashing 'dihedral' geometries; else 0)."""
        return int(getattr(getattr(self, "_draw", None), "rejected", 0))

    def next_coords(self) -> np.ndarray:
        """Coordinates (n_atoms, 3), Angstrom, of the next conformer."""
        i = self.position - self._buf_start
        if self._buf is None or not 0 <= i < len(self._buf):
            if self.sampler == "md":
                self._buf_start, self._buf = self.position, self._md.frames(self.chunk)
            else:
                c = self.position // self.chunk
                self._buf_start = c * self.chunk
                self._buf = self._draw(self.chunk, derive_seed(self.seed, c))
            i = self.position - self._buf_start
        self.position += 1
        return self._buf[i].copy()

    def __next__(self):
        return self.mol.with_coords(self.next_coords())
