"""Evaluation of a trained QPT against PySCF, and the training monitor.

    res = evaluate('runs/uracil', 20)            # run dir, Trainer or (TrainConfig, params)
    print(res.table());  res.save('runs/uracil')

For every test conformer: PySCF labels (`qpt_nb.dft.reference`, same basis, functional,
grid level and ERI kind as the tensors), the QPT sandwich with the trained W and
with W = 0 (the untrained 3-iteration baseline from minao), the Fock matrix rebuilt
from the final density D_n (F[D_n], as the research code does) and its orbitals.
Everything is compared in the canonical (principal-axes) frame of each conformer.

Units: energies in the metrics in meV, matrix and orbital energy errors in
micro-Hartree (uHa), psi in percent (`qpt_nb.units`). The metrics, keys of
``metrics.json['trained']`` and ``['baseline_w0']``, are `qpt_nb.analysis.metrics`'s.

Test sets are drawn with seed `TEST_SEED` = 12345; training runs use small seeds
(0, 1, ...), so for the 'md' sampler the test conformers come from a different
trajectory than any training conformer.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from qpt_nb.analysis.metrics import METRIC_KEYS, METRIC_LABELS, SPIN_METRIC_KEYS, conformer_errors, summarize
from qpt_nb.analysis.runs import resolve_model
from qpt_nb.dft.reference import label_many
from qpt_nb.dft.tensors import ALIGN, aligned_empty
from qpt_nb.dft.xc import get_xc
from qpt_nb.learn.batch import prepare_conformer
from qpt_nb.learn.losses import model_outputs, predict_correction, sandwich_settings
from qpt_nb.units import MEV_PER_HARTREE, UHA_PER_HARTREE
from qpt_nb.validate import check_int

TEST_SEED = 12345
CSV_COLUMNS = (
    "index",
    "reference_energy_ha",
    "predicted_energy_ha",
    "baseline_energy_ha",
    "energy_error_mev",
    "baseline_energy_error_mev",
    "hamiltonian_mae_uha",
    "gap_error_mev",
    "label_seconds",
)


# ----------------------------------------------------------------------------- inputs


def make_test_set(mol, n: int, *, sampler: str = "md", seed: int = TEST_SEED, **kw) -> list:
    """`n` conformers of `mol` (list of `Molecule`, Angstrom, input frame).

    Drawn with `seed` (default 12345, far from the small training seeds, so an 'md'
    test set is a different trajectory). For 'md' the frames are `stride` = 50 MD
    steps (25 fs) apart unless `stride` is given, so they are less correlated than
    the training stream's. `kw` go to the sampler (temperature, sigma, ...).
    """
    from qpt_nb.learn.conformers import ConformerStream

    n = check_int(n, "a test set's conformer count n", low=1)
    if sampler == "md":
        kw.setdefault("stride", 50)
    stream = ConformerStream(mol, sampler, seed=seed, chunk=int(n), **kw)
    return [next(stream) for _ in range(int(n))]


# ----------------------------------------------------------------------------- physics
_OUTPUT_KEYS = ("energy", "fock", "mo_energy", "mo_coeff", "density")


@functools.partial(jax.jit, static_argnames=("n_refine", "mix", "mix_at"))
def outputs_for_corrections(ws, batch, n_refine: int = 3, mix: float = 0.5, mix_at=2) -> dict:
    """Sandwich outputs for K corrections `ws` (K, N, N) of one (unbatched) conformer.

    `qpt_nb.learn.losses.model_outputs` (the one inference path) vmapped over the K
    corrections. Returns a dict of arrays with leading axis K: energy (K,) E[D_n] in
    Hartree, fock (K, N, N) F[D_n], mo_energy (K, N), mo_coeff (K, N, N), density (K, N, N).
    """
    out = jax.vmap(
        lambda w: model_outputs(None, None, batch, ws=w, n_refine=n_refine, mix=mix, mix_at=mix_at)
    )(ws)
    return {k: getattr(out, k) for k in _OUTPUT_KEYS}


@functools.partial(jax.jit, static_argnames=("apply_fn", "n_refine", "mix", "mix_at"))
def _predict_pair(apply_fn, params, batch, n_refine, mix, mix_at):
    w = predict_correction(apply_fn, params, batch)
    return outputs_for_corrections(jnp.stack([w, jnp.zeros_like(w)]), batch, n_refine, mix, mix_at)


def predict_pair(apply_fn, params, batch, *, n_refine: int = 3, mix: float = 0.5, mix_at=2) -> dict:
    """`outputs_for_corrections` for [trained W, W = 0] of one conformer (NumPy arrays).

    One jitted call, compiled once per (apply_fn, shapes); `apply_fn` as in
    `qpt_nb.learn.losses` (e.g. `config.network()[1]`).
    """
    out = _predict_pair(apply_fn, params, batch, int(n_refine), float(mix), mix_at)
    return {k: np.asarray(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- results
@dataclasses.dataclass
class EvalResult:
    """Metrics of the trained model and of W = 0, per-conformer rows, the test set."""

    trained: dict
    baseline_w0: dict
    rows: list
    metadata: dict
    test_set: list

    def table(self) -> str:
        """Plain-text table: metric | trained | W = 0 baseline."""
        lines = [f"{'metric':34s} {'trained':>14s} {'W=0 baseline':>14s}"]
        for k in METRIC_KEYS + tuple(k for k in SPIN_METRIC_KEYS if k in self.trained):
            a, b = self.trained[k], self.baseline_w0[k]
            fmt = (lambda v: f"{v:14d}") if k == "n_conformers" else (lambda v: f"{v:14.4f}")
            lines.append(f"{METRIC_LABELS[k]:34s} {fmt(a)} {fmt(b)}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return dict(trained=self.trained, baseline_w0=self.baseline_w0, metadata=self.metadata)

    def save(self, run_dir, *, plot=None) -> dict:
        """Writes metrics.json, per_conformer.csv and test_set.xyz into `run_dir`, and the
        figures `plot(run_dir, history, rows)` draws (e.g. `qpt_nb.viz.plots.save_run_plots`:
        the analysis layer draws nothing itself; the history is the run's history.jsonl,
        empty without one). Returns {'metrics': Path, 'per_conformer': Path, 'test_set':
        Path, 'plots': [Path, ...]}.
        """
        from qpt_nb.analysis.runs import read_history
        from qpt_nb.dft.molecule import write_xyz_frames
        from qpt_nb.fileio import atomic_write_text, save_json

        run = Path(run_dir)
        run.mkdir(parents=True, exist_ok=True)
        save_json(run / "metrics.json", self.to_json())
        lines = [",".join(CSV_COLUMNS)]
        for r in self.rows:
            lines.append(",".join(str(r[c]) for c in CSV_COLUMNS))
        atomic_write_text(run / "per_conformer.csv", "\n".join(lines) + "\n")
        write_xyz_frames(
            run / "test_set.xyz",
            self.test_set,
            comments=[
                f"test conformer {i} seed={self.metadata.get('test_seed')} Angstrom"
                for i in range(len(self.test_set))
            ],
        )
        plots = list(plot(run, read_history(run), self.rows)) if plot is not None else []
        return dict(
            metrics=run / "metrics.json",
            per_conformer=run / "per_conformer.csv",
            test_set=run / "test_set.xyz",
            plots=plots,
        )


def evaluate(
    model_or_run,
    test_set,
    *,
    basis: Optional[str] = None,
    xc: Optional[str] = None,
    grid_level: Optional[int] = None,
    config=None,
    labels=None,
    cache_dir=None,
    progress: bool = False,
    seed: int = TEST_SEED,
) -> EvalResult:
    """Compares the trained sandwich (and W = 0) with PySCF on `test_set`.

    Args:
      model_or_run: run directory, `Trainer`, (TrainConfig, params), or params with config=.
      test_set: list of `Molecule` conformers, or an int n: `make_test_set` of the
        run's molecule with its sampler and `seed`.
      basis, xc, grid_level: override the run's settings (default: the run's).
      labels: optional precomputed `Label`s (one per conformer, canonical frame).
      cache_dir: label cache folder (see `qpt_nb.dft.reference`).
      progress: tqdm bars for labelling and prediction.

    Returns:
      `EvalResult`. Per-conformer rows hold CSV_COLUMNS (Hartree, meV, uHa, s);
      metadata records the settings, `seed` as 'test_seed', and timings (s).
    """
    cfg, params, step = resolve_model(model_or_run, config)
    apply_fn = cfg.network()[1]
    basis = basis or cfg.basis
    xc = get_xc(xc or cfg.xc).name
    grid_level = cfg.grid_level if grid_level is None else int(grid_level)
    if isinstance(test_set, (int, np.integer)) and not isinstance(test_set, bool):
        test_set = make_test_set(
            cfg.molecule_object(), test_set, sampler=cfg.sampler, seed=seed, **cfg.sampler_kwargs()
        )
    test_set = list(test_set)
    if not test_set:
        raise ValueError("The test set is empty.")
    if labels is not None and len(labels) != len(test_set):
        raise ValueError(f"{len(labels)} labels for {len(test_set)} test conformers.")

    t0 = time.perf_counter()
    first = prepare_conformer(test_set[0], basis, xc=xc, grid_level=grid_level, eri=cfg.eri)
    kind, n_ao = first.tensors.eri_kind, int(first.tensors.n_ao)
    if labels is None:
        labels = label_many(
            test_set, basis, xc=xc, grid_level=grid_level, eri=kind, cache_dir=cache_dir, progress=progress
        )
    it = range(len(test_set))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="QPT predictions", unit="conf")
    rows, trained, base, times = [], [], [], []
    # one conformer's tensors alive at a time (uracil/def2-SVP with exact integrals: 3.1 GB each)
    for i in it:
        t1 = time.perf_counter()
        if i == 0:
            batch, first = first, None
        else:
            batch = prepare_conformer(test_set[i], basis, xc=xc, grid_level=grid_level, eri=cfg.eri)
        pre_s = time.perf_counter() - t1
        scored = score_conformer(apply_fn, params, batch, labels[i], **sandwich_settings(cfg))
        del batch
        times.append((pre_s, scored["predict_seconds"]))
        trained.append(scored["trained"])
        base.append(scored["baseline"])
        rows.append(conformer_row(i, labels[i], scored))
    pre = np.asarray(times)
    steady = pre[1:] if len(pre) > 1 else pre
    meta = dict(
        molecule=cfg.molecule,
        basis=basis,
        xc=xc,
        grid_level=grid_level,
        eri_kind=kind,
        model=cfg.model if isinstance(cfg.model, str) else repr(cfg.model),
        loss=cfg.loss,
        n_refine=cfg.n_refine,
        train_seed=cfg.seed,
        train_sampler=cfg.sampler,
        step=step,
        test_seed=seed,
        n_ao=n_ao,
        label_seconds_mean=float(np.mean([lab.seconds for lab in labels])),
        labels_cached=int(sum(bool(lab.cached) for lab in labels)),
        labels_converged=int(sum(bool(lab.converged) for lab in labels)),
        precompute_seconds_mean=float(steady[:, 0].mean()),
        predict_seconds_mean=float(steady[:, 1].mean()),
        first_predict_seconds=float(pre[0, 1]),
        eval_seconds=time.perf_counter() - t0,
        units=dict(energy="meV", hamiltonian="uHa", mo_energy="uHa", psi="%"),
        frame="canonical (principal axes) frame of each conformer",
        psi_definition="plain dot product of AO coefficient vectors, no S metric",
    )
    return EvalResult(summarize(trained), summarize(base), rows, meta, test_set)


# ----------------------------------------------------------------------------- per-conformer rows
def score_conformer(apply_fn, params, batch, lab, *, n_refine: int = 3, mix: float = 0.5, mix_at=2) -> dict:
    """The trained W and W = 0 on one prepared conformer against its PySCF `Label`.

    Returns dict(trained, baseline: `conformer_errors` dicts; outputs: `predict_pair`'s
    NumPy arrays; predict_seconds). ValueError when the label has another AO count, or
    another spin treatment than the model (`conformer_errors`).
    """
    t0 = time.perf_counter()
    out = predict_pair(apply_fn, params, batch, n_refine=n_refine, mix=mix, mix_at=mix_at)
    seconds = time.perf_counter() - t0
    n_ao = out["fock"].shape[-1]
    if lab.fock.shape[-1] != n_ao:
        raise ValueError(f"A label has {lab.fock.shape[-1]} AOs, the tensors {n_ao}: other basis?")
    trained, base = (
        conformer_errors(lab, *(out[k][j] for k in ("energy", "fock", "mo_energy", "mo_coeff")))
        for j in (0, 1)
    )
    return dict(trained=trained, baseline=base, outputs=out, predict_seconds=seconds)


def conformer_row(index: int, lab, scored: dict) -> dict:
    """One per-conformer row (every CSV_COLUMNS key and every trained `conformer_errors`
    key) from a `score_conformer` result and its label. Energies in Hartree, errors in
    meV and uHa."""
    e = scored["outputs"]["energy"]
    return dict(
        index=index,
        reference_energy_ha=float(lab.energy),
        predicted_energy_ha=float(e[0]),
        baseline_energy_ha=float(e[1]),
        label_seconds=float(lab.seconds),
        baseline_energy_error_mev=scored["baseline"]["energy_error_mev"],
        **scored["trained"],
    )


def conformer_rows(config, params, batches, labels) -> list:
    """`conformer_row`s of `params` on prepared conformers (`QPTBatch`es, one `Label` each),
    the rows of the training dashboard, plus predicted_mo_energy, reference_mo_energy
    ((N,) Hartree) and n_occ for an orbital-energy plot (an open shell's alpha spin, n_occ
    = n_alpha)."""
    apply_fn = config.network()[1]
    rows = []
    for i, (batch, lab) in enumerate(zip(batches, labels)):
        s = score_conformer(apply_fn, params, batch, lab, **sandwich_settings(config))
        eps, eps_ref, n_occ = s["outputs"]["mo_energy"][0], lab.mo_energy, lab.n_occ
        if lab.unrestricted:  # open shell: the alpha spin's levels (n_alpha occupied)
            eps, eps_ref, n_occ = eps[0], eps_ref[0], lab.occupations[0]
        rows.append(
            dict(
                conformer_row(i, lab, s),
                predicted_mo_energy=np.asarray(eps),
                reference_mo_energy=np.asarray(eps_ref),
                n_occ=int(n_occ),
            )
        )
    return rows


# ----------------------------------------------------------------------------- monitor
@functools.partial(jax.jit, static_argnames=("apply_fn", "n_refine", "mix", "mix_at"))
def _monitor_outputs(apply_fn, params, batch, n_refine, mix, mix_at):
    out = model_outputs(apply_fn, params, batch, n_refine=n_refine, mix=mix, mix_at=mix_at)
    return out.energy, out.fock


MONITOR_MAX_BYTES = 4 * 2**30


def _chunk_path(folder, config, mols) -> Path:
    """Disk-cache file of one chunk: keyed by its geometries and the DFT settings."""
    import hashlib

    h = hashlib.sha256()
    h.update(repr((config.basis, config.xc, config.grid_level, config.eri)).encode())
    for m in mols:
        h.update(np.ascontiguousarray(m.coords_angstrom, dtype=np.float64).tobytes())
        h.update(repr(m.symbols).encode())
        if m.charge or m.spin:  # (closed-shell neutral keys unchanged: existing caches stay valid)
            h.update(repr((m.charge, m.spin)).encode())
    return Path(folder) / f"{h.hexdigest()[:32]}.pkl"


def _aligned(x):
    """A NumPy leaf in `aligned_empty` memory (copied once if it is not), which jit reads
    without a copy; other leaves as they are."""
    if isinstance(x, np.ndarray) and x.ctypes.data % ALIGN:
        out = aligned_empty(x.shape, x.dtype)
        out[...] = x
        return out
    return x


def _stack_on_host(items):
    """Prepared conformers stacked along a new leading axis, in NumPy memory that the jitted
    monitor reads without a copy (`aligned_empty`); one conformer is returned as it is,
    unbatched. Uracil/def2-SVP with exact integrals is 3.1 GB a conformer: a stacked copy
    beside the prepared one, XLA's copy of a misaligned stack, and the dense K's transposed
    copy had taken the monitor to 14 GB."""
    if len(items) == 1:
        return items[0]

    def stack(*xs):
        xs = [np.asarray(x) for x in xs]
        out = aligned_empty((len(xs),) + xs[0].shape, xs[0].dtype)
        for k, x in enumerate(xs):
            out[k] = x
        return out

    return jax.tree_util.tree_map(stack, *items)


def _prepare_chunk(config, mols, folder=None, items=()):
    """The conformers `mols` precomputed and stacked on the host (`_stack_on_host`: NumPy,
    no small XLA compile per leaf shape; one conformer unbatched, as prepared); read from
    (aligned once: `_aligned`) or written to the disk cache `folder` when given. `items`:
    already prepared leading conformers."""
    import pickle

    path = _chunk_path(folder, config, mols) if folder is not None else None
    if path is not None and path.is_file():
        try:
            with open(path, "rb") as fh:
                return jax.tree_util.tree_map(_aligned, pickle.load(fh))
        except Exception:  # unreadable, or written by an older layout: precompute again
            pass
    items = list(items) + [
        prepare_conformer(m, config.basis, **config.dft_settings()) for m in mols[len(items) :]
    ]
    batch = _stack_on_host(items)
    del items
    if path is not None:  # atomic: processes run side by side may fill the same cache
        from qpt_nb.fileio import atomic_write_bytes

        atomic_write_bytes(path, pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    return batch


def make_monitor(
    config,
    test_set,
    labels=None,
    *,
    cache_dir=None,
    chunk_size: Optional[int] = None,
    keep_bytes: float = MONITOR_MAX_BYTES,
    tensor_cache=None,
):
    """A fast `Trainer.monitor`: callable(params) -> dict(energy_mae_mev, hamiltonian_mae_uha).

    The conformers are precomputed and stacked once; each call is one jitted sandwich
    per chunk of them, vmapped over a chunk of several (compiled on the first call). `labels`
    (canonical frame, one per conformer) are computed (cached in `cache_dir`) when
    not given.

    chunk_size: conformers per call. Default: all in one chunk, which must fit in
      `keep_bytes` (ValueError otherwise). With chunks, only as many precomputed chunks
      are kept in memory as fit in `keep_bytes` (uracil/STO-3G at grid level 3 is about
      0.25 GB per conformer); the others are precomputed again on every call, or read
      from `tensor_cache`.
    tensor_cache: folder of precomputed chunks (one pickle per chunk, keyed by its
      geometries and the DFT settings, written atomically), shared by processes run
      side by side; every chunk is computed or found there at construction.
    """
    test_set = list(test_set)
    if not test_set:
        raise ValueError("make_monitor needs at least one test conformer.")
    size = len(test_set) if chunk_size is None else int(chunk_size)
    if size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}.")
    slices = [slice(i, i + size) for i in range(0, len(test_set), size)]
    first = ()
    if chunk_size is None and tensor_cache is None:  # one chunk: check it fits first
        first = (prepare_conformer(test_set[0], config.basis, **config.dft_settings()),)
        nbytes = len(test_set) * first[0].tensors.nbytes()
        if nbytes > keep_bytes:
            raise ValueError(
                f"The monitor keeps its {len(test_set)} conformers in memory ({nbytes / 2**30:.1f} GiB > "
                f"{keep_bytes / 2**30:.0f} GiB): monitor fewer conformers (e.g. 10-20), give a "
                "chunk_size, or use evaluate(), which streams them, for the full test set."
            )
    kept, used, last = {}, 0, 0
    for i, s in enumerate(slices):
        if tensor_cache is None and used + last >= keep_bytes:
            break  # the next chunk (about the last one's size) would not be kept: precomputed on every call
        b = _prepare_chunk(config, test_set[s], tensor_cache, first if i == 0 else ())
        last = b.tensors.nbytes()
        used += last
        if used <= keep_bytes:
            kept[i] = b
    if labels is None:  # eri='auto' resolves for the labels as it does for the tensors
        labels = label_many(test_set, config.basis, **config.dft_settings(), cache_dir=cache_dir)
    labels = list(labels)[: len(test_set)]
    e_ref = np.asarray([lab.energy for lab in labels])
    f_ref = np.stack([lab.fock for lab in labels])
    apply_fn, sw = config.network()[1], sandwich_settings(config)

    def monitor(params) -> dict:
        de, dh = [], []
        for i, s in enumerate(slices):
            b = kept.get(i)
            if b is None:
                b = _prepare_chunk(config, test_set[s], tensor_cache)
            e, fk = _monitor_outputs(apply_fn, params, b, sw["n_refine"], sw["mix"], sw["mix_at"])
            e, fk = np.atleast_1d(e), np.asarray(fk).reshape((-1,) + f_ref.shape[1:])  # a lone conformer
            if fk.shape[0] != e.shape[0]:
                raise ValueError(
                    f"The model's Fock matrices {np.shape(fk)[1:]} do not match the labels' "
                    f"{f_ref.shape[1:]}: a restricted model against unrestricted labels, or the converse?"
                )
            de.append(np.abs(e - e_ref[s]))
            diff = np.abs(fk - f_ref[s])
            dh.append(diff.reshape(diff.shape[0], -1).mean(axis=1))  # both spins for an open shell
            del b  # a rebuilt chunk is freed before the next is built (3 GB at def2-SVP, exact ERIs)
        return dict(
            energy_mae_mev=float(np.concatenate(de).mean() * MEV_PER_HARTREE),
            hamiltonian_mae_uha=float(np.concatenate(dh).mean() * UHA_PER_HARTREE),
        )

    return monitor


# ----------------------------------------------------------------------------- initial guesses
