"""QPT batches and the three losses: DFT energy (label-free), self-consistency, supervised.

A `QPTBatch` holds everything one optimiser step needs for B conformers of one
molecule (shared shapes): the DFT tensors, the first DFT iteration from the
minao guess, the network inputs and, for the supervised loss, PySCF's Fock labels.

    W = NN(inputs)                      (B, N, N) symmetric, Hartree
    H = H_init + W
    energy loss:           E[D_n(H)]                       (REFERENCE section 1)
    self-consistency loss: |H - stopgrad(F[D(H)])|^2       (Zhang et al., ICML 2024)
    supervised loss:       |H - F_ref|^2                   (labels from PySCF)

Batch-averaged; matrix losses are means over the N^2 entries (Hartree^2).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Union

import jax
import jax.numpy as jnp
import numpy as np

from .energy import energy, energy_and_fock
from .linalg import density_from_fock
from .model import QPTConfig, QPTInputs, get_config, make_qpt, position_gram
from .sandwich import InitialIteration, initial_iteration, refine
from .tensors import DFTTensors, dft_tensors
from .xc import get_xc

LOSSES = ("energy", "self_consistency", "supervised")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QPTBatch:
  """One conformer (or B stacked on a leading axis) ready for the network.

  tensors: `DFTTensors`;  init: `InitialIteration` (H_init and its parts);
  inputs: `QPTInputs`;  ref_fock: (N, N) PySCF Fock labels or an empty (0,) array.
  Static: xc, the functional name the tensors and H_init were built for.
  """
  tensors: DFTTensors
  init: InitialIteration
  inputs: QPTInputs
  ref_fock: jnp.ndarray
  xc: str = dataclasses.field(metadata=dict(static=True), default="b3lyp5")

  @property
  def batched(self) -> bool:
    return self.tensors.overlap.ndim == 3


def network_inputs(t: DFTTensors, init: InitialIteration) -> QPTInputs:
  """QPTInputs for one conformer: tokens and the 8 physics bias matrices.

  Bias order: H_core, position Gram, L^-1 H_core L^-T (= X^T H_core X), D0,
  J(D0), K(D0), V_xc(D0), H_init.  Positions are those of `t` (build the
  tensors with frame='canonical' so they are in the principal-axes frame).
  """
  x = t.orthogonalizer
  bias = jnp.stack([t.hcore, position_gram(t.ao_position), x.T @ t.hcore @ x, init.dm0,
                    init.coulomb, init.exchange, init.vxc, init.h_init])
  return QPTInputs(ao_element=t.ao_element.astype(jnp.int32), ao_index=t.ao_index.astype(jnp.int32),
                   ao_position=t.ao_position, bias=bias)


@functools.partial(jax.jit, static_argnums=(1,))
def _prepare(t, xc):
  init = initial_iteration(t, xc)
  return init, network_inputs(t, init)


def prepare_tensors(t: DFTTensors, xc: str = "b3lyp5", ref_fock=None) -> QPTBatch:
  """Wraps precomputed tensors into a single-conformer `QPTBatch`."""
  f = get_xc(xc)
  init, inputs = _prepare(t, f)
  ref = jnp.zeros((0,)) if ref_fock is None else jnp.asarray(ref_fock)
  return QPTBatch(t, init, inputs, ref, f.name)


def prepare_conformer(mol, basis: str = "sto-3g", xc: str = "b3lyp5", grid_level: int = 3, *,
                      eri: str = "auto", ref_fock=None) -> QPTBatch:
  """Precomputes one conformer (integrals, grid, AO values, first iteration).

  The geometry is moved to its principal-axes frame first (`frame='canonical'`),
  so everything the network sees is invariant to rotating or translating `mol`.
  `ref_fock` (optional) must be in that same frame (see `qpt_nb.reference`).
  """
  t = dft_tensors(mol, basis, grid_level, eri=eri, xc=xc, frame="canonical")
  return prepare_tensors(t, xc, ref_fock)


def stack_batch(items) -> QPTBatch:
  """Stacks single-conformer batches (same molecule, same settings) on axis 0."""
  items = list(items)
  if not items:
    raise ValueError("stack_batch needs at least one QPTBatch.")
  # NumPy stacking: no per-shape compile of a stack op (the arrays are on the host).
  return jax.tree_util.tree_map(lambda *xs: jnp.asarray(np.stack([np.asarray(x) for x in xs])),
                                *items)


@functools.lru_cache(maxsize=None)
def _transformed(config: QPTConfig):
  return make_qpt(config)


def predict_correction(params, batch: QPTBatch, model: Union[str, QPTConfig] = "nano"):
  """The network's W (B, N, N) (or (N, N) for an unbatched batch), Hartree."""
  apply = _transformed(get_config(model)).apply
  if batch.batched:
    return jax.vmap(lambda inp: apply(params, inp))(batch.inputs)
  return apply(params, batch.inputs)


def _per_conformer(fn, batch: QPTBatch, w):
  if batch.batched:
    return jax.vmap(fn)(batch.tensors, batch.init, batch.ref_fock, w)
  return fn(batch.tensors, batch.init, batch.ref_fock, w)


def sandwich_outputs(params, batch: QPTBatch, *, model="nano", n_refine: int = 3,
                     mix: float = 0.5, zero_correction: bool = False):
  """(energies (B,), final densities D_n (B, N, N), W (B, N, N)) of the sandwich."""
  w = predict_correction(params, batch, model)
  if zero_correction:
    w = jnp.zeros_like(w)
  f = get_xc(batch.xc)

  def one(t, init, _, wi):
    d = refine(init.h_init + wi, t, f, n_refine, mix=mix)
    return energy(d, t, f), d

  e, d = _per_conformer(one, batch, w)
  return e, d, w


def qpt_energy(params, batch: QPTBatch, *, model="nano", n_refine: int = 3, mix: float = 0.5):
  """The label-free QPT loss: E[D_n] (Hartree) averaged over the batch."""
  return jnp.mean(sandwich_outputs(params, batch, model=model, n_refine=n_refine, mix=mix)[0])


def self_consistency_loss(params, batch: QPTBatch, *, model="nano"):
  """mean |H - stopgrad(F[D(H)])|^2 over entries and conformers (Hartree^2)."""
  w = predict_correction(params, batch, model)
  f = get_xc(batch.xc)

  def one(t, init, _, wi):
    h = init.h_init + wi
    d = density_from_fock(h, t.orthogonalizer, t.n_occ)
    target = jax.lax.stop_gradient(energy_and_fock(d, t, f)[1])
    return jnp.mean((h - target) ** 2)

  return jnp.mean(_per_conformer(one, batch, w))


def supervised_loss(params, batch: QPTBatch, *, model="nano"):
  """mean |H_init + W - F_ref|^2 (Hartree^2) against PySCF Fock labels."""
  if batch.ref_fock.ndim < 2 or batch.ref_fock.shape[-1] == 0:
    raise ValueError("The supervised loss needs PySCF Fock labels (ref_fock) in the batch.")
  w = predict_correction(params, batch, model)
  return jnp.mean((batch.init.h_init + w - batch.ref_fock) ** 2)


def loss_fn(params, batch: QPTBatch, *, loss: str = "energy", model="nano", n_refine: int = 3,
            mix: float = 0.5):
  """Dispatches to the chosen loss (one of `LOSSES`)."""
  if loss == "energy":
    return qpt_energy(params, batch, model=model, n_refine=n_refine, mix=mix)
  if loss == "self_consistency":
    return self_consistency_loss(params, batch, model=model)
  if loss == "supervised":
    return supervised_loss(params, batch, model=model)
  raise ValueError(f"Unknown loss {loss!r}; choose one of {LOSSES}.")


def init_params(rng, batch: QPTBatch, model="nano"):
  """Initial network parameters for inputs shaped like `batch` (one conformer)."""
  inputs = jax.tree_util.tree_map(lambda x: x[0], batch.inputs) if batch.batched else batch.inputs
  return _transformed(get_config(model)).init(rng, inputs)
