"""The Quantum Physics Transformer (QPT) of arXiv 2402.04030, in dm-haiku.

This is the only module of ``qpt_nb`` that imports haiku.

Tokens are atomic orbitals (AOs): the sequence length is N = n_ao. The network
maps (AO identities, AO positions, physics matrices in the AO basis) to a
symmetric N x N correction W (Hartree) that the caller adds to the one-step
Kohn-Sham Hamiltonian, H = H_init + W.

Shape glossary
--------------
    N  number of atomic orbitals (tokens)
    B  number of physics ("bias") matrices, 8 in the standard order below
    H  attention heads per layer
    d  model width (d_model); d_h = d / H is the per-head width
    L  number of transformer blocks

Public API
----------
    QPTInputs, position_gram, QPTConfig, PRESETS, get_config, make_qpt,
    count_params, bias_head_assignment, check_inputs, QPT (the hk.Module).

Architecture (arXiv 2402.04030 Sec. 3 and the research code, with deviations marked)
-------------------------------------------------------------------------------------
"Research code" = graphcore-research/pyscf-ipu, pyscf_ipu/direct/transformer.py.
1. Token embedding: a learned d-vector per (element, AO index) pair, plus a
   Linear map of position features of the AO's atom: the 3 raw coordinates
   and sin/cos of each coordinate at ``n_freq`` angular frequencies
   2*pi/lambda_k, with periods lambda_k on a geometric ladder from
   ``min_period`` = 0.5 Bohr to ``max_period`` = 100 Bohr (3 + 6*n_freq = 123
   features for n_freq = 20).  Deviation: the research code uses a linear
   ladder f*2*pi/20 (f = 0..19, i.e. periods from infinity down to 1.05 of the
   caller's length unit); the geometric ladder resolves both bond lengths and
   the whole molecule.
   The pair table is kept compact: ``config.elements`` lists the supported
   atomic numbers (default H, C, N, O, F, as the research code) and
   ``config.max_ao`` the AOs per element; row = slot(Z) * max_ao + ao_index.
   Any other Z (up to MAX_Z = 36) shares one extra "unknown element" block of
   rows and ao_index is clipped to max_ao - 1; call ``check_inputs`` outside
   jit to reject such inputs instead.
2. L pre-LayerNorm blocks: x += MHA(LN(x)); x += FFN(LN(x)); FFN width
   ff_mult*d with GELU.  Each block is wrapped in hk.remat when config.remat.
3. Quantum-biased attention: every bias matrix m is scaled to m / (max|m| +
   1e-12) and added to the attention logits of two heads, times a learned
   per-head gain initialised to 1.  Head assignment (``bias_head_assignment``):
   if H >= 2B, heads 0..2B-1 of every layer carry matrices 0,0,1,1,..,B-1,B-1
   (as the research code) and heads >= 2B are plain attention; if H < 2B the
   (matrix, head) pairs are dealt round-robin over the global head index
   l*H + h, so head h of layer l carries matrix ((l*H + h) mod 2B) // 2 and
   every head of the network is biased (tiny, 6 heads and B = 8: layer 0 gets
   matrices 0,0,1,1,2,2, layer 1 3,3,4,4,5,5, layer 2 6,6,7,7,0,0, ...).
   A network needs L*H >= 2B heads in all, else ValueError.
   Deviations: the research code (7 matrices: it passes J - K as one) adds
   the matrices only to heads 0..13, so with tiny's 6 heads only H_core, its
   Gram matrix and L^-1 H_core L^-T were ever used; and its Gram matrix is
   that of the learned position embeddings, not of the raw positions.
4. Softmax over keys (standard).  Deviation: the research code normalises
   over queries (``softmax(score, axis=1)`` on (H, N_q, N_k) logits);
   ``config.softmax_over_queries=True`` reproduces that.
5. Readout: final LN, q = Linear(d)(x), W = s * q q^T / sqrt(d), symmetrised
   as (M + M^T)/2 so that W == W^T bit for bit; s is a learned scalar
   initialised to ``out_scale_init`` = 1e-3 so that the untrained network's
   |W| is a few mHa (training starts near the plain DFT sandwich).
   Deviation: the research code has no separate readout weights (it runs
   L - 1 blocks and reads out with the L-th layer's LN and query projection,
   leaving that layer's other weights unused) and no output scale.
6. Open shells (``spin_channels=2``; an extension, the research code is
   closed-shell): W is a pair (2, N, N), W_alpha and W_beta, from one trunk.
   ``spin_readout='embedding'`` (the default) adds a learned spin vector
   e_s (2, d) to the trunk's output before one shared LN + readout;
   ``'per_spin'`` gives each spin its own readout (query projection and
   output scale). Measured on the allyl radical (BENCHMARKS section 12c):
   the embedding ends 1.4-1.8x lower in energy and H at equal CPU time; the
   two corrections share most of their structure, which one shared readout
   learns from both spins' gradients.

Invariance (what holds; tested in tests/test_qpt.py)
-----------------------------------------------------
The network only sees AO identities, positions in the principal-axes frame and
matrices in the AO basis. The training pipeline (``qpt.prepare_conformer``)
moves every geometry to its canonical frame (``Molecule.canonical``: centred,
inertia axes, third-moment sign convention) BEFORE the integrals and the grid
are computed, so positions, bias matrices, W and the predicted energy are
exactly invariant (1e-8 Ha) to rotating and translating the input, for
asymmetric tops such as uracil. Where the frame is ambiguous the invariance
is only up to that ambiguity: symmetric tops (NH3, CH4, benzene) have
arbitrary axes inside their degenerate plane, and a vanishing third moment
falls back to a first-atom sign rule; W then changes with the orientation and
the energy changes at the level of the network's error. Without the canonical
frame, rotating the molecule rotates p/d blocks of every AO matrix and PySCF's
lab-fixed angular grid, and W is not equivariant.

Parameter counts (N = 132, B = 8; counts do not depend on N or B): per block
12 d^2 + 13 d + H (q/k/v/out, FFN, two LNs, bias gains), plus the pair table
(len(elements)+1)*max_ao*d, the position Linear (3+6F+1)*d, final LN 2d,
readout d^2 + d and the output scale:
    tiny 5,436,553   small 21,563,593   base 85,889,425   medium 303,684,993
i.e. +1.6/+1.1/+0.9/+0.5 % over the research code's own printed totals
(5,352,960 / 21,322,752 / 85,112,832 / 302,276,608: weights only, last layer
reused as readout), and +8.7/+2.7/+1.0/+0.6 % over the paper's rounded labels
5M / 21M / 85M / 302M (5M is how the research code labels its 5.35M tiny).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple, Optional, Union

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

MAX_Z = 36  # largest atomic number the element lookup accepts (Kr)
BIAS_EPS = 1e-12  # m / (max|m| + BIAS_EPS)
SPIN_READOUTS = ("per_spin", "embedding")  # how an open-shell QPT gives W_alpha, W_beta
BIAS_NAMES = ("H_core", "position_gram", "Linv_H_core_LinvT", "D0", "J(D0)", "K(D0)", "V_xc(D0)", "H_init")


class QPTInputs(NamedTuple):
    """One molecule's network inputs (add a leading batch axis and vmap).

    ao_element:  (N,) int32, atomic number of the atom owning each AO.
    ao_index:    (N,) int32, index of the AO within its atom's basis.
    ao_position: (N, 3) float64, Bohr, the owning atom's position in the
                 molecule's centred principal-axes frame (caller canonicalises).
    bias:        (B, N, N) float64, physics matrices in the AO basis, standard
                 order BIAS_NAMES; any B >= 1 is accepted.
    """

    ao_element: jnp.ndarray
    ao_index: jnp.ndarray
    ao_position: jnp.ndarray
    bias: jnp.ndarray


def position_gram(ao_position: jnp.ndarray) -> jnp.ndarray:
    """(N, 3) AO positions (Bohr) -> (N, N) Gram matrix r_i . r_j (Bohr^2)."""
    return ao_position @ ao_position.T


@dataclasses.dataclass(frozen=True)
class QPTConfig:
    """Hyper-parameters of the QPT (see the module docstring)."""

    d_model: int
    n_heads: int
    n_layers: int
    ff_mult: int = 4
    n_freq: int = 20
    remat: bool = True
    min_period: float = 0.5  # Bohr, shortest sin/cos period
    max_period: float = 100.0  # Bohr, longest sin/cos period
    elements: tuple = (1, 6, 7, 8, 9)  # atomic numbers with their own embeddings
    max_ao: int = 32  # embedding rows per element
    bias_gain: bool = True  # learned per-head gain on the bias
    out_scale_init: float = 1e-3  # initial value of the learned output scale
    softmax_over_queries: bool = False  # True: the research code's normalisation
    ln_eps: float = 1e-5
    spin_channels: int = 1  # 1: W (N, N); 2: an open shell's pair W_alpha, W_beta (2, N, N)
    spin_readout: str = "embedding"  # with 2 channels: a spin 'embedding' or 'per_spin' readouts

    def __post_init__(self):
        for field in ("d_model", "n_heads", "n_layers", "ff_mult", "max_ao"):
            if int(getattr(self, field)) < 1:
                raise ValueError(f"QPTConfig.{field} must be >= 1")
        if self.n_freq < 0:
            raise ValueError("QPTConfig.n_freq must be >= 0")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.spin_channels not in (1, 2):
            raise ValueError(f"QPTConfig.spin_channels must be 1 or 2, got {self.spin_channels!r}")
        if self.spin_readout not in SPIN_READOUTS:
            raise ValueError(
                f"QPTConfig.spin_readout must be one of {SPIN_READOUTS}, got {self.spin_readout!r}"
            )
        if not 0 < self.min_period <= self.max_period:
            raise ValueError("need 0 < min_period <= max_period")
        els = tuple(int(z) for z in self.elements)
        if not els or len(set(els)) != len(els) or min(els) < 1 or max(els) > MAX_Z:
            raise ValueError(f"elements must be distinct atomic numbers in 1..{MAX_Z}, got {self.elements}")
        object.__setattr__(self, "elements", els)

    @property
    def vocab_size(self) -> int:
        """Rows of the (element, AO index) table, incl. the unknown block."""
        return (len(self.elements) + 1) * self.max_ao


PRESETS = {
    # nano: CPU-sized; 4 layers x 4 heads = 16 heads = 2 per bias matrix.
    "nano": QPTConfig(64, 4, 4, remat=False),
    "tiny": QPTConfig(192, 6, 12),
    "small": QPTConfig(384, 6, 12),
    "base": QPTConfig(768, 12, 12),
    "medium": QPTConfig(1024, 16, 24),  # the paper's model
}


def get_config(name_or_config: Union[str, QPTConfig]) -> QPTConfig:
    """A preset by name, or a QPTConfig passed through unchanged."""
    if isinstance(name_or_config, QPTConfig):
        return name_or_config
    if isinstance(name_or_config, str) and name_or_config in PRESETS:
        return PRESETS[name_or_config]
    raise ValueError(f"unknown QPT preset {name_or_config!r}; presets are {sorted(PRESETS)}")


def bias_head_assignment(n_bias: int, n_heads: int, n_layers: int) -> np.ndarray:
    """(n_layers, n_heads) int array: which bias matrix each head gets, -1: none.

    H >= 2B: heads 0..2B-1 of every layer get matrices 0,0,1,1,...; otherwise
    head h of layer l gets ((l*H + h) mod 2B) // 2.  Raises ValueError if the
    network has fewer than 2B heads in all (some matrix would get < 2 heads).
    """
    slots = 2 * n_bias
    if n_bias < 1:
        raise ValueError("need at least one bias matrix (B >= 1)")
    if n_heads >= slots:
        out = np.full((n_layers, n_heads), -1, dtype=np.int64)
        out[:, :slots] = np.arange(slots) // 2
        return out
    if n_layers * n_heads < slots:
        raise ValueError(
            f"{n_layers} layers x {n_heads} heads = "
            f"{n_layers * n_heads} heads cannot give each of "
            f"B={n_bias} bias matrices two heads"
        )
    glob = np.arange(n_layers * n_heads).reshape(n_layers, n_heads)
    return (glob % slots) // 2


def check_inputs(inputs: QPTInputs, config: Union[str, QPTConfig]) -> None:
    """Eager (non-jit) validation: shapes, dtypes, supported elements/AO indices."""
    cfg = get_config(config)
    el, idx = np.asarray(inputs.ao_element), np.asarray(inputs.ao_index)
    pos, bias = np.shape(inputs.ao_position), np.shape(inputs.bias)
    n = el.shape[-1] if el.ndim else -1
    if (
        el.ndim != 1
        or idx.shape != (n,)
        or pos != (n, 3)
        or len(bias) != 3
        or bias[1:] != (n, n)
        or bias[0] < 1
    ):
        raise ValueError(
            f"inconsistent unbatched shapes: ao_element {el.shape}, "
            f"ao_index {idx.shape}, ao_position {pos}, bias {bias}"
        )
    bad = sorted(set(el.tolist()) - set(cfg.elements))
    if bad:
        raise ValueError(f"elements {bad} have no embedding; config.elements={cfg.elements}")
    if idx.min() < 0 or idx.max() >= cfg.max_ao:
        raise ValueError(f"ao_index must lie in [0, {cfg.max_ao}), got [{idx.min()}, {idx.max()}]")


def _layer_norm(eps: float, name: str) -> hk.LayerNorm:
    return hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, eps=eps, name=name)


class BiasedSelfAttention(hk.Module):
    """Multi-head self-attention whose logits get scaled physics matrices.

    x: (N, d), scaled_bias: (B, N, N) -> (N, d).  ``assignment`` is one row of
    ``bias_head_assignment`` (length H, -1 for a plain head).
    """

    def __init__(
        self,
        n_heads: int,
        assignment: np.ndarray,
        bias_gain: bool,
        over_queries: bool,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        self.n_heads = n_heads
        self.assignment = np.asarray(assignment)
        self.bias_gain = bias_gain
        self.over_queries = over_queries

    def __call__(self, x: jnp.ndarray, scaled_bias: jnp.ndarray) -> jnp.ndarray:
        n, d = x.shape
        h, dh = self.n_heads, d // self.n_heads
        q = hk.Linear(d, name="query")(x).reshape(n, h, dh)
        k = hk.Linear(d, name="key")(x).reshape(n, h, dh)
        v = hk.Linear(d, name="value")(x).reshape(n, h, dh)
        logits = jnp.einsum("qhc,khc->hqk", q, k) / np.sqrt(dh)  # (H, N, N)
        biased = self.assignment >= 0
        if biased.any():
            per_head = scaled_bias[np.maximum(self.assignment, 0)]  # (H, N, N)
            coef = jnp.asarray(biased, x.dtype)
            if self.bias_gain:
                coef = coef * hk.get_parameter("bias_gain", (h,), x.dtype, init=jnp.ones)
            logits = logits + coef[:, None, None] * per_head
        attn = jax.nn.softmax(logits, axis=1 if self.over_queries else 2)
        out = jnp.einsum("hqk,khc->qhc", attn, v).reshape(n, d)
        return hk.Linear(d, name="out")(out)


class Block(hk.Module):
    """Pre-LN transformer block: x += MHA(LN(x), bias); x += FFN(LN(x))."""

    def __init__(self, config: QPTConfig, assignment: np.ndarray, name: Optional[str] = None):
        super().__init__(name=name)
        self.config = config
        self.assignment = assignment

    def __call__(self, x: jnp.ndarray, scaled_bias: jnp.ndarray) -> jnp.ndarray:
        c = self.config
        h = _layer_norm(c.ln_eps, "ln_attn")(x)
        x = x + BiasedSelfAttention(
            c.n_heads, self.assignment, c.bias_gain, c.softmax_over_queries, name="attn"
        )(h, scaled_bias)
        h = _layer_norm(c.ln_eps, "ln_ffn")(x)
        h = jax.nn.gelu(hk.Linear(c.ff_mult * c.d_model, name="ffn_in")(h))
        return x + hk.Linear(c.d_model, name="ffn_out")(h)


def position_features(pos: jnp.ndarray, n_freq: int, min_period: float, max_period: float) -> jnp.ndarray:
    """(N, 3) Bohr -> (N, 3 + 6 n_freq): [r, sin(w_k r), cos(w_k r)].

    w_k = 2 pi / lambda_k, lambda_k geometric from max_period to min_period.
    """
    if n_freq == 0:
        return pos
    periods = np.geomspace(max_period, min_period, n_freq)
    ang = pos[:, :, None] * (2 * np.pi / periods)  # (N, 3, F)
    n = pos.shape[0]
    return jnp.concatenate([pos, jnp.sin(ang).reshape(n, -1), jnp.cos(ang).reshape(n, -1)], axis=-1)


def scale_bias(bias: jnp.ndarray) -> jnp.ndarray:
    """(B, N, N) -> each matrix divided by (its max |entry| + 1e-12)."""
    return bias / (jnp.max(jnp.abs(bias), axis=(1, 2), keepdims=True) + BIAS_EPS)


@dataclasses.dataclass
class QPT(hk.Module):
    """Quantum Physics Transformer: QPTInputs (unbatched) -> W, (N, N), Hartree
    ((2, N, N), alpha and beta, with ``config.spin_channels=2``).

    Shapes: N AOs, B bias matrices, H heads, d = config.d_model.
    ao_element, ao_index (N,) -> embedding rows (N, d); ao_position (N, 3)
    -> features (N, 3+6F) -> Linear -> (N, d); bias (B, N, N) -> scaled, fed
    to (H, N, N) logits; L blocks keep (N, d); readout q (N, d) -> W (N, N),
    W == W.T exactly.
    """

    config: QPTConfig
    name: Optional[str] = None

    def __call__(self, inputs: QPTInputs) -> jnp.ndarray:
        c = self.config
        pos = jnp.asarray(inputs.ao_position)
        dtype = pos.dtype if jnp.issubdtype(pos.dtype, jnp.floating) else jnp.float64
        pos = pos.astype(dtype)
        el = jnp.asarray(inputs.ao_element)
        if el.ndim != 1:
            raise ValueError(
                f"QPT takes one molecule (ao_element of shape (N,)), "
                f"got {el.shape}; jax.vmap the applied function "
                f"over a batch"
            )
        n = el.shape[0]
        bias = jnp.asarray(inputs.bias, dtype)
        if bias.ndim != 3 or bias.shape[1:] != (n, n) or pos.shape != (n, 3):
            raise ValueError(
                f"expected ao_position (N, 3) and bias (B, N, N) with N={n}, got {pos.shape} and {bias.shape}"
            )
        assignment = bias_head_assignment(bias.shape[0], c.n_heads, c.n_layers)

        # (element, AO index) -> compact table row; other Z -> unknown block.
        slot_of_z = np.full(MAX_Z + 1, len(c.elements), dtype=np.int32)
        slot_of_z[list(c.elements)] = np.arange(len(c.elements))
        z = jnp.clip(el.astype(jnp.int32), 0, MAX_Z)
        a = jnp.clip(jnp.asarray(inputs.ao_index).astype(jnp.int32), 0, c.max_ao - 1)
        rows = jnp.asarray(slot_of_z)[z] * c.max_ao + a
        table = hk.get_parameter(
            "ao_embedding", (c.vocab_size, c.d_model), dtype, init=hk.initializers.TruncatedNormal(1.0)
        )
        feats = position_features(pos, c.n_freq, c.min_period, c.max_period)
        x = table[rows] + hk.Linear(c.d_model, name="position_proj")(feats)

        scaled = scale_bias(bias)
        for layer in range(c.n_layers):
            block = Block(c, assignment[layer], name=f"block_{layer}")
            x = hk.remat(block)(x, scaled) if c.remat else block(x, scaled)

        if c.spin_channels == 1:
            return _readout(c, _layer_norm(c.ln_eps, "ln_final")(x), "", dtype)
        if c.spin_readout == "embedding":
            e = hk.get_parameter(
                "spin_embedding", (2, c.d_model), dtype, init=hk.initializers.TruncatedNormal(1.0)
            )
            xs = _layer_norm(c.ln_eps, "ln_final")(x[None] + e[:, None, :])  # (2, N, d)
            return _readout(c, xs, "", dtype)
        x = _layer_norm(c.ln_eps, "ln_final")(x)
        return jnp.stack([_readout(c, x, "", dtype), _readout(c, x, "_beta", dtype)])


def _readout(c: QPTConfig, x: jnp.ndarray, suffix: str, dtype) -> jnp.ndarray:
    """(..., N, d) -> W = s q q^T / sqrt(d) (..., N, N), symmetric bit for bit."""
    q = hk.Linear(c.d_model, name="readout_query" + suffix)(x)  # (..., N, d)
    m = (q @ jnp.swapaxes(q, -1, -2)) / np.sqrt(c.d_model)
    scale = hk.get_parameter("out_scale" + suffix, (), dtype, init=hk.initializers.Constant(c.out_scale_init))
    return scale * (0.5 * (m + jnp.swapaxes(m, -1, -2)))


def make_qpt(config: Union[str, QPTConfig]) -> hk.Transformed:
    """hk.without_apply_rng(hk.transform(fn)), fn(inputs: QPTInputs) -> W (N, N).

    ``init(rng, inputs)`` / ``apply(params, inputs)`` take one molecule; vmap
    apply over a batch: ``jax.vmap(net.apply, in_axes=(None, 0))``.
    """
    cfg = get_config(config)

    def forward(inputs: QPTInputs) -> jnp.ndarray:
        return QPT(cfg, name="qpt")(inputs)

    return hk.without_apply_rng(hk.transform(forward))


def count_params(params) -> int:
    """Number of scalars in a parameter pytree (arrays or ShapeDtypeStructs)."""
    return int(sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params)))


@functools.lru_cache(maxsize=None)
def _transformed(config: QPTConfig) -> hk.Transformed:
    return make_qpt(config)


def network_fns(
    model: Union[str, QPTConfig] = "nano",
    *,
    spin_channels: Optional[int] = None,
    spin_readout: Optional[str] = None,
):
    """(init_fn, apply_fn) of a QPT preset or config, the pair the losses and the Trainer use.

    ``spin_channels=2`` (an open-shell model) returns W_alpha, W_beta (2, N, N) from the
    preset's trunk, the two readouts made as `spin_readout` says (`QPTConfig`); None keeps
    the config's own value.

    ``init_fn(rng, batch)`` initialises from one conformer of a `QPTBatch` (batched
    or not); ``apply_fn(params, inputs)`` maps one conformer's `QPTInputs` to W (N, N).
    Both are the same objects for equal configs (cached), so they are stable keys
    for ``jax.jit(static_argnums=...)``.
    """
    cfg = get_config(model)
    given = dict(spin_channels=spin_channels, spin_readout=spin_readout)
    given = {k: v for k, v in given.items() if v is not None and v != getattr(cfg, k)}
    if given:
        cfg = dataclasses.replace(cfg, **given)
    net = _transformed(cfg)
    return _init_fn(net), net.apply


@functools.lru_cache(maxsize=None)
def _init_fn(net: hk.Transformed):
    def init_fn(rng, batch):
        inputs = batch.inputs
        if batch.batched:
            inputs = jax.tree_util.tree_map(lambda x: x[0], inputs)
        return net.init(rng, inputs)

    return init_fn
