"""The PySCF side of qpt_nb: one RKS factory and reference labels cached on disk.

    mf = make_rks(mol.to_pyscf('sto-3g'), xc='b3lyp5', grid_level=3)            # not run
    mf, seconds = pyscf_scf(mol, 'sto-3g', xc='b3lyp5', grid_level=3)          # converged
    (qpt_nb beside PySCF: `qpt_nb.analysis.compare.compare_with_pyscf`)

    lab = label(mol, 'sto-3g', xc='b3lyp5', grid_level=3)
    lab.energy, lab.fock, lab.mo_energy, lab.seconds

Arguments. As in `qpt_nb.scf` and `dft_tensors`, the molecule and the basis are the only
positional arguments (`make_rks` takes a built PySCF Mole, which holds its basis): `xc`,
`grid_level`, `eri` and the rest are keyword-only. The ERI choice is ``eri=`` ('auto',
'dense' or 'df') everywhere; ``eri_kind=`` (its old name in `label`, `label_many`,
`compute_label` and `cache_key`) still works for one release, with a DeprecationWarning.

Settings (the QH9 benchmark's): restricted Kohn-Sham, ``conv_tol = 1e-13``,
``diis_space = 8``, the same basis, functional and grid level as the JAX tensors,
and, with ``eri='df'``, ``mf.density_fit(auxbasis=pyscf.df.make_auxbasis(pmol))``,
which is exactly what `qpt_nb.dft.tensors.dft_tensors(eri='df')` fits with.

Frame. Every label is computed for ``mol.canonical()`` (centre of mass at the
origin, principal axes along x, y, z), not for the orientation given. The model's
tensors (`qpt_nb.learn.batch.prepare_conformer`) are built in that frame, and a Fock
matrix or MO coefficient vector compared entry by entry must be expressed in
the same AO frame: p, d, ... functions change under a rotation. The energy and
the orbital energies do not depend on the frame (up to the grid error of
PySCF's lab-fixed angular grids). `qpt_nb.dft.frames.rotation_to_input` maps a
canonical-frame density back to the input orientation.

Engine. ``engine='qpt_nb'`` solves the same SCF (same grid, integrals, convergence
tolerance and DIIS space) with qpt_nb's own `qpt_nb.dft.scf.scf` instead of PySCF, which is
faster on a CPU; the labels agree with PySCF's to the SCF tolerance and are cached under
their own key.

Cache. One ``.npz`` per label in ``cache_dir`` (argument), else
``qpt_nb.settings.cache_dir('labels')`` (``$QPT_NB_CACHE/labels``, default
``~/.cache/qpt_nb/labels``). The file name is a
SHA-256 of (symbols, canonical coordinates rounded to 1e-10 Angstrom, charge,
spin, basis, xc, grid level, eri kind, auxiliary basis, conv_tol, diis_space,
PySCF version). Files are written atomically (temporary file + ``os.replace``),
so concurrent writers and interrupted runs never leave a half-written label; an
unreadable file is recomputed. The wall time of the original PySCF run is
stored with the label, so a cached read still reports it (``cached=True``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
import warnings
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from qpt_nb import settings
from qpt_nb.dft.linalg import FrontierOrbitals
from qpt_nb.dft.pyscf_mf import CONV_TOL, DIIS_SPACE, make_rks, resolve_eri  # noqa: F401
from qpt_nb.dft.scf import scf
from qpt_nb.dft.sizes import choose_eri_kind
from qpt_nb.dft.xc import get_xc
from qpt_nb.fileio import atomic_write_bytes

MAX_CYCLE = 50  # PySCF's default, which the labels keep
ENGINES = ("pyscf", "qpt_nb")  # who solves the SCF of a label (same settings, same cache)
_ARRAYS = ("fock", "mo_energy", "mo_coeff", "density", "overlap")


@dataclasses.dataclass(frozen=True)
class Label(FrontierOrbitals):
    """A converged PySCF RKS (UKS for an open shell) calculation of one geometry, in its
    canonical frame.

    energy:    total energy, Hartree.
    fock:      (N, N) Kohn-Sham matrix F[D] of the converged density, Hartree.
    mo_energy: (N,) orbital energies (eigenvalues of `fock` with `overlap`), Hartree.
    mo_coeff:  (N, N) AO coefficients, columns are orbitals (F C = S C eps).
    density:   (N, N) converged density matrix, D = 2 C_occ C_occ^T.
    overlap:   (N, N) AO overlap S.
    n_occ:     number of doubly occupied orbitals (n_beta for an open shell).
    spin:      2S (0: closed shell). Open shell: fock, mo_energy, mo_coeff and density
               gain a leading spin axis (alpha, beta), D_s = C_s,occ C_s,occ^T.
    converged: PySCF's flag;  n_iter: SCF iterations (Fock builds, as `SCFResult.n_iter`).
    seconds:   wall time of the original PySCF run (also when read from the cache).
    cpu_seconds: this process's CPU time (all threads) of the original run; nan for a
               cache entry written before it was kept.
    cached:    True when this object was read from the disk cache.
    key:       the cache key (hex).
    """

    energy: float
    fock: np.ndarray
    mo_energy: np.ndarray
    mo_coeff: np.ndarray
    density: np.ndarray
    overlap: np.ndarray
    n_occ: int
    converged: bool
    n_iter: int
    seconds: float
    cpu_seconds: float = float("nan")
    cached: bool = False
    key: str = ""
    spin: int = 0

    @property
    def unrestricted(self) -> bool:
        return bool(self.spin) or np.ndim(self.mo_energy) == 2

    @property
    def occupations(self) -> tuple:
        """(n_alpha, n_beta) occupied orbitals per spin."""
        return (self.n_occ + int(self.spin), self.n_occ)

    def _ao_overlap(self) -> np.ndarray:
        return np.asarray(self.overlap)

    @property
    def n_cycles(self) -> int:
        """Deprecated name of `n_iter` (kept for one release; use ``n_iter``)."""
        return self.n_iter


def _rks_settings(auxbasis=None, conv_tol=CONV_TOL, diis_space=DIIS_SPACE) -> dict:
    """The label's PySCF settings beyond basis, functional, grid and ERI kind (`make_rks`'s)."""
    return dict(auxbasis=auxbasis, conv_tol=float(conv_tol), diis_space=int(diis_space))


def check_engine(engine: str) -> str:
    """`engine` if it is one of `ENGINES`, else a ValueError naming them."""
    if engine not in ENGINES:
        raise ValueError(f"Unknown label engine {engine!r}; choose one of {ENGINES}.")
    return engine


def _eri_argument(eri: str, eri_kind: Optional[str], who: str) -> str:
    """`eri`, or the deprecated ``eri_kind=`` spelling of it (DeprecationWarning)."""
    if eri_kind is None:
        return eri
    warnings.warn(
        f"{who}(eri_kind=...) is deprecated: pass eri=... (the name qpt_nb.scf and dft_tensors "
        "use); eri_kind= will be removed in the next release",
        DeprecationWarning,
        stacklevel=3,
    )
    if eri != "auto" and eri != eri_kind:
        raise TypeError(f"{who}: pass eri= only (eri_kind={eri_kind!r} is its deprecated name)")
    return eri_kind


def cache_key(
    mol,
    basis: str,
    *,
    xc: str,
    grid_level: int,
    eri: str = "auto",
    eri_kind: Optional[str] = None,
    engine: str = "pyscf",
    **rks,
) -> str:
    """SHA-256 (hex) identifying the label of `mol` (any orientation) with these settings
    (``rks``: auxbasis, conv_tol, diis_space; defaults as `label`; `eri`, `engine` as
    `label`; ``eri_kind=``: deprecated name of `eri`)."""
    import pyscf

    eri = _eri_argument(eri, eri_kind, "cache_key")
    rks = _rks_settings(**rks)
    if check_engine(engine) != "pyscf":  # PySCF labels keep the keys they always had
        rks["engine"] = engine

    can = mol.canonical()
    coords = np.round(np.asarray(can.coords_angstrom, dtype=np.float64), 10) + 0.0  # -0.0 -> 0.0
    eri_kind = _eri_for(mol, basis, eri)
    payload = dict(
        symbols=list(can.symbols),
        coords=[f"{v:.10f}" for v in coords.ravel()],
        charge=int(mol.charge),
        spin=int(mol.spin),
        basis=str(basis).lower(),
        xc=get_xc(xc).name,
        grid_level=int(grid_level),
        eri_kind=eri_kind,
        **rks,
        pyscf=pyscf.__version__,
    )
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _save(path: Path, lab: Label) -> None:
    """Writes the label as .npz atomically (`qpt_nb.fileio.atomic_write_bytes`)."""
    buf = io.BytesIO()
    np.savez(
        buf,
        energy=lab.energy,
        n_occ=lab.n_occ,
        converged=lab.converged,
        n_iter=lab.n_iter,
        seconds=lab.seconds,
        cpu_seconds=lab.cpu_seconds,
        spin=lab.spin,
        **{k: getattr(lab, k) for k in _ARRAYS},
    )
    atomic_write_bytes(path, buf.getvalue())


def _load(path: Path, key: str) -> Optional[Label]:
    try:
        with np.load(path) as z:
            return Label(
                energy=float(z["energy"]),
                n_occ=int(z["n_occ"]),
                converged=bool(z["converged"]),
                n_iter=int(z["n_iter"] if "n_iter" in z.files else z["n_cycles"]),
                seconds=float(z["seconds"]),
                cpu_seconds=float(z["cpu_seconds"]) if "cpu_seconds" in z.files else float("nan"),
                cached=True,
                key=key,
                spin=int(z["spin"]) if "spin" in z.files else 0,
                **{k: np.array(z[k]) for k in _ARRAYS},
            )
    except Exception:  # truncated, not a zip (BadZipFile), missing keys: recompute
        return None


def _eri_for(mol, basis: str, eri: str) -> str:
    """`resolve_eri` for a `Molecule`: builds the PySCF Mole only when `eri` is 'auto'."""
    return resolve_eri(mol.to_pyscf(basis), eri) if eri == "auto" else choose_eri_kind(0, eri)


def compute_label(
    mol,
    basis: str,
    *,
    xc: str,
    grid_level: int,
    eri: str = "auto",
    eri_kind: Optional[str] = None,
    threads: Optional[int] = None,
    engine: str = "pyscf",
    **rks,
) -> Label:
    """Runs PySCF (or, with ``engine='qpt_nb'``, qpt_nb's SCF) for ``mol.canonical()`` (no
    cache) with `threads` OpenMP threads (default `qpt_nb.settings.label_threads()`);
    ``rks`` as `cache_key`. See `label`."""
    from pyscf import lib

    eri = _eri_argument(eri, eri_kind, "compute_label")
    can = mol.canonical()
    with lib.with_omp_threads(settings.label_threads() if threads is None else int(threads)):
        if check_engine(engine) == "qpt_nb":
            return _compute_label_qpt(
                can, basis, xc=xc, grid_level=grid_level, eri=eri, **_rks_settings(**rks)
            )
        t0, c0 = time.perf_counter(), time.process_time()
        pmol = can.to_pyscf(basis)
        mf = make_rks(pmol, xc=xc, grid_level=grid_level, eri=eri, **_rks_settings(**rks))
        mf.kernel()
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        dm = mf.make_rdm1()
        s = mf.get_ovlp()
        fock = mf.get_fock(dm=dm)
        fock = 0.5 * (fock + np.swapaxes(fock, -1, -2))
        # orbitals of the Fock matrix of the converged density (self-consistent to conv_tol)
        mo_energy, mo_coeff = mf.eig(fock, s)
    return _checked(
        Label(
            energy=float(mf.e_tot),
            fock=np.asarray(fock),
            mo_energy=np.asarray(mo_energy),
            mo_coeff=np.asarray(mo_coeff),
            density=np.asarray(dm),
            overlap=np.asarray(s),
            n_occ=(pmol.nelectron - pmol.spin) // 2,
            converged=bool(mf.converged),
            n_iter=int(mf.cycles),
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            cached=False,
            spin=int(pmol.spin),
        )
    )


def _compute_label_qpt(can, basis, *, xc, grid_level, eri, auxbasis, conv_tol, diis_space) -> Label:
    """The label of the canonical-frame `can` from `qpt_nb.dft.scf.scf` (the device loop),
    with PySCF's settings: the same grid, integrals, conv_tol, DIIS space and cycle limit."""
    import scipy.linalg

    t0, c0 = time.perf_counter(), time.process_time()
    res = scf(
        can,
        basis,
        xc=xc,
        grid_level=grid_level,
        conv_tol=conv_tol,
        diis_space=diis_space,
        max_cycle=MAX_CYCLE,
        eri=eri,
        auxbasis=auxbasis,
    )
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    s = np.asarray(res.tensors.overlap)
    fock = np.asarray(res.fock)
    fock = 0.5 * (fock + np.swapaxes(fock, -1, -2))
    pairs = [scipy.linalg.eigh(f, s) for f in fock] if fock.ndim == 3 else [scipy.linalg.eigh(fock, s)]
    mo_energy, mo_coeff = (np.stack(x) if fock.ndim == 3 else x[0] for x in zip(*pairs))
    return _checked(
        Label(
            energy=float(res.energy),
            fock=fock,
            mo_energy=np.asarray(mo_energy),
            mo_coeff=np.asarray(mo_coeff),
            density=np.asarray(res.density),
            overlap=s,
            n_occ=res.tensors.n_occ,
            converged=bool(res.converged),
            n_iter=int(res.n_iter),
            seconds=seconds,
            cpu_seconds=cpu_seconds,
            cached=False,
            spin=int(getattr(res.tensors, "spin", 0)),
        )
    )


def _checked(lab: Label) -> Label:
    """`lab`, after a RuntimeWarning when an open-shell label is spin-contaminated
    (`qpt_nb.dft.uks.warn_spin_contamination`: |<S^2> - S(S+1)| > 0.1, e.g. a conformer
    whose bond stretched far enough for the UKS state to mix in higher spins)."""
    if lab.unrestricted:
        from qpt_nb.dft.uks import warn_spin_contamination

        warn_spin_contamination(lab)
    return lab


def label(
    mol,
    basis: str = "sto-3g",
    *,
    xc: str = "b3lyp5",
    grid_level: int = 3,
    eri: str = "auto",
    eri_kind: Optional[str] = None,
    cache_dir=None,
    use_cache: bool = True,
    auxbasis: Optional[str] = None,
    conv_tol: float = CONV_TOL,
    diis_space: int = DIIS_SPACE,
    threads: Optional[int] = None,
    engine: str = "pyscf",
    refresh: bool = False,
) -> Label:
    """PySCF RKS label of `mol` in its canonical frame, read from / written to the cache.

    Args:
      mol: `qpt_nb.Molecule` (Angstrom, any orientation; the label is for
        ``mol.canonical()``, the frame of `prepare_conformer`'s tensors).
      basis, xc, grid_level: as for the JAX tensors (xc by PySCF's meaning). Every
        argument after `basis` is keyword-only.
      eri: 'auto' (as `dft_tensors` chooses), 'dense' (exact integrals) or 'df'
        (density fitting, auxiliary basis `auxbasis` or PySCF's `make_auxbasis`).
      eri_kind: deprecated name of `eri` (DeprecationWarning; removed in the next release).
      cache_dir: folder of the cache (default: ``qpt_nb.settings.cache_dir('labels')``).
      use_cache: False computes and does not touch the cache.
      refresh: True computes and overwrites the cache entry.
      threads: OpenMP threads for PySCF (default `qpt_nb.settings.label_threads()`).
      engine: 'pyscf' (default) or 'qpt_nb': the same SCF solved by `qpt_nb.dft.scf.scf`
        (faster on a CPU; agrees with PySCF to the SCF tolerance), cached under its own key.

    Returns:
      `Label` (Hartree; matrices (N, N) in the canonical frame's AO basis).
    """
    eri = _eri_for(mol, basis, _eri_argument(eri, eri_kind, "label"))
    rks = _rks_settings(auxbasis, conv_tol, diis_space)
    how = dict(xc=xc, grid_level=grid_level, eri=eri, engine=engine)
    if not use_cache:
        return compute_label(mol, basis, threads=threads, **how, **rks)
    key = cache_key(mol, basis, **how, **rks)
    path = Path(cache_dir).expanduser() if cache_dir is not None else settings.cache_dir("labels")
    path = path / f"{key}.npz"
    if path.is_file() and not refresh:
        lab = _load(path, key)
        if lab is not None:
            return lab
    lab = compute_label(mol, basis, threads=threads, **how, **rks)
    lab = dataclasses.replace(lab, key=key)
    try:
        _save(path, lab)
    except OSError:
        pass  # a read-only cache must not stop the calculation
    return lab


def label_many(
    mols: Iterable,
    basis: str = "sto-3g",
    *,
    xc: str = "b3lyp5",
    grid_level: int = 3,
    eri: str = "auto",
    eri_kind: Optional[str] = None,
    cache_dir=None,
    progress: bool = False,
    desc: str = "PySCF labels",
    **kw,
) -> list:
    """`label` for each molecule (in order), with an optional tqdm progress bar. Arguments
    after `basis` are keyword-only, as `label`'s (``eri_kind=``: deprecated name of `eri`)."""
    eri = _eri_argument(eri, eri_kind, "label_many")
    mols = list(mols)
    it = mols
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(mols, desc=desc, unit="conf")
    out = []
    for m in it:
        out.append(label(m, basis, xc=xc, grid_level=grid_level, eri=eri, cache_dir=cache_dir, **kw))
        if progress:
            it.set_postfix(s_per_label=f"{out[-1].seconds:.1f}", cached=out[-1].cached)
    return out


# ----------------------------------------------------------------------------- comparisons
def pyscf_scf(
    mol,
    basis: str,
    *,
    xc: str,
    grid_level: int,
    conv_tol: float = 1e-10,
    eri: str = "dense",
    auxbasis: Optional[str] = None,
    diis_space: int = DIIS_SPACE,
):
    """Converged PySCF RKS of `mol` in its input frame (`make_rks`), and its wall time (s).

    `eri` defaults to 'dense' (PySCF's exact integrals; 'auto' and 'df' as in `make_rks`).
    """
    mf = make_rks(
        mol.to_pyscf(basis),
        xc=xc,
        grid_level=grid_level,
        eri=eri,
        auxbasis=auxbasis,
        conv_tol=conv_tol,
        diis_space=diis_space,
    )
    t0 = time.perf_counter()
    mf.kernel()
    return mf, time.perf_counter() - t0
