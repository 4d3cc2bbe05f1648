"""A trained model at work: its predictions for new geometries, and SCF started from them.

    preds = qpt_nb.predict("runs/uracil", "md.xyz")      # run dir, Trainer or pretrained name
    p = preds[0]
    p.energy, p.homo, p.lumo, p.gap, p.seconds           # Hartree; seconds per phase
    results = model_scf("water", mol)                    # qpt_nb.scf from the model's density

Per geometry (Angstrom in, Bohr and Hartree inside): the precompute (`prepare_conformer`:
integrals, grid and the first DFT iteration from minao, in the geometry's canonical
principal-axes frame), the network's correction W and the sandwich, n_refine DFT
iterations from H_init + W, then E[D_n], F[D_n] and the orbitals of F[D_n]: exactly
`qpt_nb.learn.losses.model_outputs`, the one inference path that the losses, the evaluation
and the monitor run too. Geometries go through in batches (one compiled network call and
one compiled sandwich call per batch; the last batch is padded, so each shape compiles
once per process).

Frame. Matrices (fock, density, mo_coeff) are in the canonical frame of each geometry, as
the model and the PySCF labels (`qpt_nb.dft.reference`) use it; `Prediction.in_input_frame`
rotates them to the orientation given. Energies and orbital energies do not depend on it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from qpt_nb.analysis.runs import resolve_model
from qpt_nb.aot import AheadOfTime
from qpt_nb.dft.linalg import FrontierOrbitals
from qpt_nb.dft.molecule import Molecule, as_molecule, read_xyz_frames
from qpt_nb.dft.scf import scf
from qpt_nb.dft.tensors import DFTTensors
from qpt_nb.learn.batch import prepare_conformer, stack_batch
from qpt_nb.learn.losses import model_outputs, predict_correction, sandwich_settings
from qpt_nb.validate import check_int

DEFAULT_BATCH = 8  # geometries per compiled call, unless their tensors exceed BATCH_BYTES
BATCH_BYTES = 2**30
KEEP_TENSORS_BYTES = 2**30  # keep_tensors='auto' keeps every geometry's tensors up to this total
PHASES = ("precompute", "network", "sandwich")


@dataclasses.dataclass(eq=False)
class Prediction(FrontierOrbitals):
    """The model's outputs for one geometry (canonical frame; see the module docstring).

    index: position in the input.  molecule: the geometry as given (Angstrom).
    energy: E[D_n], Hartree.  fock: F[D_n] (N, N), Hartree.  density: D_n (N, N).
    mo_energy: (N,) eigenvalues of F[D_n], Hartree.  mo_coeff: (N, N), columns are orbitals.
    n_occ: doubly occupied orbitals (n_beta for an open shell).  spin: 2S; for an open shell
    fock, density, mo_energy and mo_coeff have a leading spin axis (alpha, beta).
    seconds: {'precompute', 'network', 'sandwich'} per
    geometry (a batch's network and sandwich time shared among its geometries; compilation
    excluded, see `Predictions.compile_seconds`).  tensors: the `DFTTensors` built for it
    (canonical frame), or None when not kept (`predict(keep_tensors=)`).
    """

    index: int
    molecule: Molecule
    basis: str
    energy: float
    fock: np.ndarray
    density: np.ndarray
    mo_energy: np.ndarray
    mo_coeff: np.ndarray
    n_occ: int
    seconds: dict
    tensors: Optional[DFTTensors] = None
    settings: dict = dataclasses.field(default_factory=dict)  # the model's xc, grid_level, eri
    spin: int = 0

    @property
    def occupations(self) -> tuple:
        """(n_alpha, n_beta) occupied orbitals per spin."""
        return (self.n_occ + int(self.spin), self.n_occ)

    def _ao_overlap(self) -> np.ndarray:
        if self.tensors is not None:
            return np.asarray(self.tensors.overlap)
        return self.molecule.canonical().to_pyscf(self.basis).intor("int1e_ovlp")

    def gradient(self, *, grid_response: bool = True) -> np.ndarray:
        """APPROXIMATE dE/dR (A, 3), Hartree/Bohr, in the input frame: PySCF's analytic
        gradient formula (`qpt_nb.dft.pyscf_mf.nuclear_gradient`) applied to the
        prediction's orbitals (those of F[D_n]). They are not self-consistent, so this is not
        the derivative of `energy`; its error against the exact gradient of the converged
        SCF is measured in bench/ase_md.py. For exact forces run the SCF from the model
        (``qpt_nb.scf(mol, guess=model).gradient()``)."""
        from qpt_nb.dft.pyscf_mf import nuclear_gradient

        return nuclear_gradient(
            self.molecule,
            self.basis,
            mo_coeff=self.in_input_frame()["mo_coeff"],
            mo_energy=self.mo_energy,
            n_occ=self.n_occ,
            grid_response=grid_response,
            **self.settings,
        )

    def in_input_frame(self) -> dict:
        """fock, density, mo_coeff rotated to the orientation of `molecule` (U F U^T, U D U^T,
        U C with `qpt_nb.dft.frames.rotation_to_input`), plus that frame's AO overlap S, so
        F C = S C eps holds there; compare them with PySCF run on `molecule` as given."""
        from qpt_nb.dft.frames import rotation_to_input

        u = rotation_to_input(self.molecule, self.basis)
        return dict(
            fock=u @ self.fock @ u.T,
            density=u @ self.density @ u.T,
            mo_coeff=u @ self.mo_coeff,
            overlap=self.molecule.to_pyscf(self.basis).intor("int1e_ovlp"),
        )

    def __repr__(self):
        return (
            f"Prediction(index={self.index}, energy={self.energy:.8f} Ha, gap={self.gap:.6f} Ha, "
            f"seconds={sum(self.seconds.values()):.3f})"
        )


class Predictions(list):
    """The list `predict` returns (one `Prediction` per geometry, in order), plus
    `settings` (the model's basis, xc, grid level, ...), `compile_seconds` (network and
    sandwich compilation, not in any Prediction's seconds) and `wall_seconds` (the call)."""

    settings: dict
    compile_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return len(self) / max(self.wall_seconds, 1e-12)


# ----------------------------------------------------------------------------- geometries
def check_atoms(mol: Molecule, ref: Molecule, where: str = "the geometry") -> None:
    """ValueError naming the difference when `mol`'s atoms (elements, their order, their
    count) or charge / spin are not those of `ref`, the molecule the model was trained on."""
    if mol.symbols == ref.symbols and (mol.charge, mol.spin) == (ref.charge, ref.spin):
        return
    trained = f"the model was trained on {ref.name or ref.formula} ({ref.formula}: {' '.join(ref.symbols)})"
    if len(mol.symbols) != len(ref.symbols):
        raise ValueError(
            f"{where} has {mol.n_atoms} atoms ({mol.formula}), but {trained}, {ref.n_atoms} atoms"
        )
    if sorted(mol.symbols) != sorted(ref.symbols):
        j = next(i for i, (a, b) in enumerate(zip(mol.symbols, ref.symbols)) if a != b)
        raise ValueError(
            f"{where} is {mol.formula}, not {ref.formula}: atom {j} is {mol.symbols[j]} where "
            f"{trained} has {ref.symbols[j]}"
        )
    if mol.symbols != ref.symbols:
        raise ValueError(
            f"{where} lists its atoms in another order ({' '.join(mol.symbols)}); {trained}, "
            "and the atom order is part of its input: reorder the atoms"
        )
    raise ValueError(
        f"{where} has charge {mol.charge} and spin {mol.spin}, but {trained} with charge "
        f"{ref.charge} and spin {ref.spin}"
    )


def as_geometries(molecules, config) -> list:
    """`molecules` (a `Molecule`, a built-in name, a list of either, or a multi-frame xyz
    file / text) as a list of Molecules, each checked against the model's molecule
    (`check_atoms`; xyz frames get the model's charge and spin). ValueError when empty."""
    ref = config.molecule_object()
    if isinstance(molecules, (str, os.PathLike)):
        s = os.fspath(molecules)
        if isinstance(molecules, os.PathLike) or "\n" in s or Path(s).suffix or Path(s).is_file():
            label = "frame {}" + (f" of {Path(s).name}" if "\n" not in s else "")
            try:
                mols = read_xyz_frames(molecules, charge=ref.charge, spin=ref.spin, name=ref.name)
            except ValueError as exc:
                raise ValueError(f"{exc} (the model was trained on {ref.name or ref.formula})") from None
        else:
            label, mols = "the geometry", [as_molecule(s, "molecules")]
    elif isinstance(molecules, Molecule):
        label, mols = "the geometry", [molecules]
    else:
        try:
            mols = [as_molecule(m, "molecules[i]") for m in molecules]
        except TypeError:
            if hasattr(molecules, "__iter__"):
                raise
            raise TypeError(
                f"molecules must be a Molecule, a list of them or an xyz path, got {type(molecules).__name__}"
            ) from None
        label = "geometry {}"
    if not mols:
        raise ValueError("no geometries to predict (empty list or xyz file)")
    for i, m in enumerate(mols):
        check_atoms(m, ref, label.format(i))
    return mols


# ----------------------------------------------------------------------------- compiled calls
@functools.partial(jax.jit, static_argnames=("apply_fn",))
def _network(params, batch, apply_fn):
    return predict_correction(apply_fn, params, batch)


@functools.partial(jax.jit, static_argnames=("n_refine", "mix", "mix_at"))
def _sandwich(ws, batch, n_refine, mix, mix_at):
    out = model_outputs(None, None, batch, ws=ws, n_refine=n_refine, mix=mix, mix_at=mix_at)
    return {k: getattr(out, k) for k in ("energy", "fock", "mo_energy", "mo_coeff", "density")}


_COMPILED = AheadOfTime(size=16)
_compiled = _COMPILED.compile  # (executable, seconds spent compiling now)


# ----------------------------------------------------------------------------- predictions
class _Counter:
    """The progress display without tqdm: 'predict: k/n' on stderr."""

    def __init__(self, total):
        self.total, self.n = total, 0

    def update(self, k):
        self.n += k
        print(f"\rpredict: {self.n}/{self.total}", end="", file=sys.stderr, flush=True)

    def close(self):
        print(file=sys.stderr)


class _Silent:
    def update(self, k):
        pass

    def close(self):
        pass


def _bar(total: int, progress: bool, desc: str):
    if not progress:
        return _Silent()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Counter(total)
    return tqdm(total=total, desc=desc, unit="geom")


def _check_batch_size(batch_size, nbytes: int) -> int:
    if batch_size is None:
        return int(max(1, min(DEFAULT_BATCH, BATCH_BYTES // max(nbytes, 1))))
    return check_int(batch_size, "batch_size", low=1, hint=" (or None)")


def _iter_predictions(cfg, params, mols, batch_size, keep_tensors, stats):
    """Yields the `Prediction`s of `mols` batch by batch (lists); adds compile seconds to
    stats['compile'] and records the batch size used in stats['batch_size']."""
    apply_fn = cfg.network()[1]
    prep = functools.partial(prepare_conformer, basis=cfg.basis, **cfg.dft_settings())
    t0 = time.perf_counter()
    first = prep(mols[0])
    first_s = time.perf_counter() - t0
    nbytes = first.tensors.nbytes()
    # fewer geometries than a batch: the next power of two (so few shapes ever compile)
    size = min(_check_batch_size(batch_size, nbytes), 1 << (len(mols) - 1).bit_length())
    stats["batch_size"] = size
    keep = keep_tensors
    if keep_tensors == "auto":
        keep = nbytes * len(mols) <= KEEP_TENSORS_BYTES
        if not keep:
            warnings.warn(
                f"predict: the tensors of {len(mols)} geometries ({nbytes * len(mols) / 2**20:.0f} MiB) "
                "are not kept (Prediction.tensors is None); pass keep_tensors=True to keep them",
                RuntimeWarning,
                stacklevel=3,
            )
    for start in range(0, len(mols), size):
        chunk = mols[start : start + size]
        items, pre_s = [], []
        for k, m in enumerate(chunk):
            if start == 0 and k == 0:
                items.append(first)
                pre_s.append(first_s)
                continue
            t0 = time.perf_counter()
            items.append(prep(m))
            pre_s.append(time.perf_counter() - t0)
        batch = stack_batch(items + [items[-1]] * (size - len(items)))  # padded: every batch has one shape
        net, c1 = _compiled(_network, params, batch, apply_fn=apply_fn)
        t0 = time.perf_counter()
        ws = jax.block_until_ready(net(params, batch))
        net_s = time.perf_counter() - t0
        sw, c2 = _compiled(_sandwich, ws, batch, **sandwich_settings(cfg))
        t0 = time.perf_counter()
        out = {k: np.asarray(v) for k, v in jax.block_until_ready(sw(ws, batch)).items()}
        sw_s = time.perf_counter() - t0
        stats["compile"] += c1 + c2
        n = len(chunk)
        yield [
            Prediction(
                index=start + j,
                molecule=m,
                basis=cfg.basis,
                energy=float(out["energy"][j]),
                fock=np.array(out["fock"][j]),
                density=np.array(out["density"][j]),
                mo_energy=np.array(out["mo_energy"][j]),
                mo_coeff=np.array(out["mo_coeff"][j]),
                n_occ=int(items[j].tensors.n_occ),
                seconds=dict(precompute=pre_s[j], network=net_s / n, sandwich=sw_s / n),
                tensors=items[j].tensors if keep else None,
                settings=cfg.dft_settings(),
                spin=int(items[j].tensors.spin),
            )
            for j, m in enumerate(chunk)
        ]


def _host_params(params):
    """Parameters as plain single-device arrays (a Trainer's may be replicated on a mesh)."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)), params)


def predict(
    model,
    molecules,
    *,
    batch_size: Optional[int] = None,
    progress: bool = True,
    keep_tensors="auto",
    config=None,
) -> Predictions:
    """The trained model's energy, Fock matrix, density and orbitals for each geometry.

    Args:
      model: a run directory, a `Trainer`, a pretrained model's name ('water', see
        `qpt_nb.pretrained.list()`) or `PretrainedModel`, a (TrainConfig, params) tuple, or
        params with `config=`.
      molecules: a `Molecule` (Angstrom), a list of them, a file of any format ``ase.io.read``
        reads (extxyz, xyz, .traj, .pdb, .sdf; every frame; charge and spin from each
        frame's info when present) or multi-frame xyz text. Every geometry must have
        the atoms of the model's molecule in its order (ValueError naming the difference).
      batch_size: geometries per compiled call (default 8, fewer when their tensors pass
        1 GiB; for fewer geometries the next power of two, padded).
      progress: a tqdm bar (a printed counter without tqdm).
      keep_tensors: keep each geometry's `DFTTensors` in `Prediction.tensors` (for
        ``qpt_nb.scf(..., tensors=)``); 'auto' keeps them while all of them together stay
        under 1 GiB (a RuntimeWarning says when they are dropped).

    Returns:
      `Predictions`: a list of `Prediction` (Hartree; matrices (N, N) in each geometry's
      canonical frame), with the compile and wall seconds of the call.
    """
    wall0 = time.perf_counter()
    cfg, params, step = resolve_model(model, config)
    mols = as_geometries(molecules, cfg)
    if keep_tensors not in (True, False, "auto"):
        raise ValueError(f"keep_tensors must be True, False or 'auto', got {keep_tensors!r}")
    stats = dict(compile=0.0)
    out = Predictions()
    bar = _bar(len(mols), progress, "QPT predict")
    try:
        for preds in _iter_predictions(cfg, _host_params(params), mols, batch_size, keep_tensors, stats):
            out.extend(preds)
            bar.update(len(preds))
    finally:
        bar.close()
    out.settings = dict(
        molecule=cfg.molecule,
        basis=cfg.basis,
        **cfg.dft_settings(),
        model=cfg.model if isinstance(cfg.model, str) else repr(cfg.model),
        n_refine=cfg.n_refine,
        mix=cfg.mix,
        step=step,
        batch_size=stats["batch_size"],
        frame="canonical (principal axes) frame of each geometry",
    )
    out.compile_seconds = stats["compile"]
    out.wall_seconds = time.perf_counter() - wall0
    return out


_FROM_MODEL = ("basis", "xc", "grid_level", "eri", "auxbasis", "memory_check", "guess", "tensors")


def model_scf(
    model, molecules, *, batch_size: Optional[int] = None, progress: bool = False, config=None, **scf_kw
) -> list:
    """qpt_nb's own SCF (`qpt_nb.scf`) started from the model's density, on its tensors.

    For each geometry `predict` runs, then ``scf(mol, basis, xc=xc, guess=D_n, tensors=...)``
    with the model's basis and functional, reusing the tensors the prediction built (no
    second precompute). Converges to the same energy as the SCF from minao on those tensors.

    Args:
      model, molecules, batch_size, config: as for `predict`.
      scf_kw: `qpt_nb.scf` keywords (conv_tol, conv_tol_grad, max_cycle, diis_space,
        callback); basis, xc, grid_level, eri, guess and tensors are the model's (TypeError).

    Returns:
      list of `SCFResult` (one per geometry, canonical frame; ``timings['model_guess']``:
      the prediction's seconds, precompute included, ``timings['precompute']`` 0).
    """
    taken = sorted(set(_FROM_MODEL) & set(scf_kw))
    if taken:
        raise TypeError(f"model_scf takes {', '.join(taken)} from the model, not as keywords")
    cfg, params, _ = resolve_model(model, config)
    mols = as_geometries(molecules, cfg)
    results, stats = [], dict(compile=0.0)
    bar = _bar(len(mols), progress, "model-seeded SCF")
    try:
        for preds in _iter_predictions(cfg, _host_params(params), mols, batch_size, True, stats):
            for p in preds:
                res = scf(p.molecule, cfg.basis, xc=cfg.xc, guess=p.density, tensors=p.tensors, **scf_kw)
                res.timings["model_guess"] = float(sum(p.seconds.values()))
                res.settings["grid_level"] = cfg.grid_level  # the tensors' (gradient())
                results.append(res)
            bar.update(len(preds))
    finally:
        bar.close()
    return results


def seeded_scf(model, mol, *, basis=None, xc=None, grid_level=None, eri=None, config=None, **scf_kw):
    """``qpt_nb.scf(mol, guess=model)``: qpt_nb's SCF of one geometry from the model's density.

    `model_scf` for one geometry. basis, xc, grid_level and eri are the model's: giving
    another value is a ValueError (the prediction's tensors are built with the model's).
    Returns an `SCFResult` (canonical frame; `SCFResult.gradient` reports the input frame).
    """
    from qpt_nb.dft.xc import get_xc

    cfg, params, _ = resolve_model(model, config)
    same = dict(
        basis=(basis, cfg.basis, str.lower),
        xc=(xc, cfg.xc, lambda v: get_xc(v).name),
        grid_level=(grid_level, cfg.grid_level, int),
        eri=(eri, cfg.eri, lambda v: v if v != "auto" else cfg.eri),
    )
    for name, (given, own, norm) in same.items():
        if given is not None and norm(given) != norm(own):
            raise ValueError(
                f"guess=model: the model computes with {name}={own!r}, not {given!r}: "
                f"omit {name}= or pass {own!r}"
            )
    (res,) = model_scf((cfg, params), [mol], **scf_kw)
    return res
