"""QPT batches: everything one optimiser step needs for B conformers of one molecule.

A `QPTBatch` holds, for conformers with shared shapes, the DFT tensors, the first
DFT iteration from the minao guess (arXiv 2402.04030, Sec. 3: H_init), the network
inputs and, for the supervised loss, PySCF's Fock labels. Building one is the
per-geometry precompute; the losses (`qpt_nb.learn.losses`) only read it.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from qpt_nb.dft.sandwich import InitialIteration, initial_iteration
from qpt_nb.dft.tensors import DFTTensors, dft_tensors
from qpt_nb.dft.xc import get_xc
from qpt_nb.learn.network import QPTInputs, position_gram


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

    Open shells (an unrestricted `init`, spin axis first): D0 = D0_a + D0_b,
    K(D0) = K(D0_a) + K(D0_b), and V_xc and H_init averaged over the two spins, so the
    eight matrices are those of the closed-shell formulas whenever D0_a = D0_b. The spin
    state reaches the network through the model's two readouts
    (`qpt_nb.learn.network.QPTConfig.spin_channels`), not through its inputs.
    """
    x = t.orthogonalizer
    dm0, k, v, h = init.dm0, init.exchange, init.vxc, init.h_init
    if dm0.ndim == 3:  # unrestricted: spin sums / means
        dm0, k, v, h = dm0.sum(0), k.sum(0), v.mean(0), h.mean(0)
    bias = jnp.stack([t.hcore, position_gram(t.ao_position), x.T @ t.hcore @ x, dm0, init.coulomb, k, v, h])
    return QPTInputs(
        ao_element=t.ao_element.astype(jnp.int32),
        ao_index=t.ao_index.astype(jnp.int32),
        ao_position=t.ao_position,
        bias=bias,
    )


@functools.partial(jax.jit, static_argnums=(1,))
def _prepare(t, xc):
    init = initial_iteration(t, xc)
    return init, network_inputs(t, init)


def prepare_tensors(t: DFTTensors, xc: str = "b3lyp5", ref_fock=None) -> QPTBatch:
    """Wraps precomputed tensors into a single-conformer `QPTBatch`."""
    func = get_xc(xc)
    init, inputs = _prepare(t, func)
    ref = jnp.zeros((0,)) if ref_fock is None else jnp.asarray(ref_fock)
    return QPTBatch(t, init, inputs, ref, func.name)


def prepare_conformer(
    mol,
    basis: str = "sto-3g",
    *,
    xc: str = "b3lyp5",
    grid_level: int = 3,
    eri: str = "auto",
    ref_fock=None,
    precision: str = "float64",
) -> QPTBatch:
    """Precomputes one conformer (integrals, grid, AO values, first iteration).

    The geometry is moved to its principal-axes frame first (`frame='canonical'`),
    so everything the network sees is invariant to rotating or translating `mol`.
    `ref_fock` (optional) must be in that same frame (see `qpt_nb.dft.reference`).
    `precision`: the grid work's dtype (`dft_tensors`; 'float32' for fast training).
    """
    t = dft_tensors(mol, basis, grid_level=grid_level, eri=eri, xc=xc, frame="canonical", precision=precision)
    return prepare_tensors(t, xc, ref_fock)


def without_grid(batch: QPTBatch) -> QPTBatch:
    """`batch` with its grid (AO values, weights) and two-electron tensor replaced by
    zero-size arrays: what the supervised loss reads (network inputs, H_init, labels)
    and no more, about 0.2 MB per uracil/STO-3G conformer instead of 230 MB at grid 3.
    The losses that run DFT iterations need the full batch."""
    t = batch.tensors
    lead = t.overlap.shape[:-2]  # () or (B,)

    def empty(x):
        return jnp.zeros(lead + (0,) * (x.ndim - len(lead)), x.dtype)

    light = dataclasses.replace(t, eri=empty(t.eri), ao=empty(t.ao), weights=empty(t.weights))
    return dataclasses.replace(batch, tensors=light)


def stack_batch(items) -> QPTBatch:
    """Stacks single-conformer batches (same molecule, same settings) on axis 0."""
    items = list(items)
    if not items:
        raise ValueError("stack_batch needs at least one QPTBatch.")
    # NumPy stacking: no per-shape compile of a stack op (the arrays are on the host).
    return jax.tree_util.tree_map(lambda *xs: jnp.asarray(np.stack([np.asarray(x) for x in xs])), *items)
