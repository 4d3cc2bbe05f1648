"""Per-geometry DFT tensors: integrals, grid and AO values, precomputed with PySCF.

Everything a Kohn-Sham energy needs for one geometry is computed once here (NumPy,
PySCF) and handed to the pure JAX physics functions as one pytree, `DFTTensors`.

Shape glossary
--------------
N  : number of atomic orbitals (spherical basis, PySCF order)
G  : number of grid points (PySCF's grid, padded with zero-weight points)
P  : number of auxiliary (density-fitting) functions
A  : number of atoms

Units: Bohr and Hartree throughout (the `Molecule` holds Angstrom; PySCF converts).

Two-electron integrals come in two flavours (`eri=`):

* ``"dense"``: the full (N, N, N, N) tensor (ij|kl).  Exact; memory 8 N^4 bytes
  (44 AOs: 30 MB, 64 AOs: 134 MB, 132 AOs: 2.4 GB).
* ``"df"``: density fitting, (P, N, N) Cholesky-whitened 3-index integrals
  B[P, i, j] with (ij|kl) ~= sum_P B[P,i,j] B[P,k,l], exactly PySCF's
  ``mf.density_fit(auxbasis)`` (default auxiliary basis: `pyscf.df.make_auxbasis`).
* ``"auto"`` (default): dense for N <= `DENSE_MAX_AO`, density fitting above (the
  size rules, `choose_eri_kind`, `grid_block_size` and the argument checks, are
  `qpt_nb.dft.sizes`).

Memory. `dft_tensors` (and so `qpt_nb.scf`) first runs `qpt_nb.dft.memory`'s estimate
and check, so a job too large for the machine is refused in milliseconds with what to
change, before any heavy PySCF work.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from qpt_nb.dft.memory import check_precompute
from qpt_nb.dft.sizes import (  # noqa: F401  (the constants stay importable from here)
    DENSE_MAX_AO,
    ERI_KINDS,
    GRID_LEVELS,
    PRECISIONS,
    check_eri,
    check_grid_level,
    check_precision,
    choose_eri_kind,
    grid_block_size,
)
from qpt_nb.dft.xc import functional_family


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DFTTensors:
    """Precomputed DFT quantities of one geometry (a JAX pytree).

    Array fields (leaves; a batch of conformers stacks them on a leading axis):
      overlap:     (N, N)  S_ij = <i|j>.
      hcore:       (N, N)  kinetic + nuclear attraction, Hartree.
      orthogonalizer: (N, N) X = L^-T with S = L L^T, so X^T S X = 1.
      eri:         (N, N, N, N) dense (ij|kl), or (P, N, N) fitted B[P,i,j].
      ao:          (4, G, N) AO values and their x/y/z derivatives on the grid
                   (Bohr^-3/2, Bohr^-5/2); (1, G, N) when gradients are not needed.
      weights:     (G,) quadrature weights, Bohr^3 (zero on padding points).
      e_nuc:       () nuclear repulsion, Hartree.
      dm0:         (N, N) PySCF 'minao' initial-guess density matrix.
      ao_element:  (N,) int, atomic number owning each AO.
      ao_index:    (N,) int, index of each AO within its atom's basis.
      ao_position: (N, 3) position (Bohr) of each AO's atom.
    Static fields (part of the tree structure, so jit keys stay static):
      n_occ:       number of doubly occupied orbitals (n_beta for an open shell).
      eri_kind:    'dense' or 'df'.
      grid_block:  grid points per block in the XC quadrature (G is a multiple of
                   it; the padding points have zero weight and zero AO values).
      precision:   'float64' or 'float32', the dtype of `ao` and so of the grid
                   products (the XC functional and every sum stay float64).
      spin:        2S = n_alpha - n_beta of the molecule (0: closed shell; otherwise the
                   unrestricted functions of `qpt_nb.dft.uks` apply, n_alpha = n_occ + spin).
    """

    overlap: jnp.ndarray
    hcore: jnp.ndarray
    orthogonalizer: jnp.ndarray
    eri: jnp.ndarray
    ao: jnp.ndarray
    weights: jnp.ndarray
    e_nuc: jnp.ndarray
    dm0: jnp.ndarray
    ao_element: jnp.ndarray
    ao_index: jnp.ndarray
    ao_position: jnp.ndarray
    n_occ: int = dataclasses.field(metadata=dict(static=True), default=0)
    eri_kind: str = dataclasses.field(metadata=dict(static=True), default="dense")
    grid_block: int = dataclasses.field(metadata=dict(static=True), default=0)
    precision: str = dataclasses.field(metadata=dict(static=True), default="float64")
    spin: int = dataclasses.field(metadata=dict(static=True), default=0)

    @property
    def n_ao(self) -> int:
        return self.overlap.shape[-1]

    @property
    def n_grid(self) -> int:
        return self.weights.shape[-1]

    def nbytes(self) -> int:
        """Total size of the array leaves in bytes."""
        return int(sum(np.asarray(x).nbytes for x in jax.tree_util.tree_leaves(self)))


AO_CHUNK_BYTES = 64 * 2**20  # float64 AO values (and gradients) evaluated per eval_gto call


ALIGN = 64  # bytes: XLA's CPU client aliases (does not copy) host arrays aligned to this


def aligned_empty(shape, dtype) -> np.ndarray:
    """An uninitialised array whose data start on an `ALIGN`-byte boundary, so that
    `to_device` can hand it to JAX without a copy."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    buf = np.empty(nbytes + ALIGN, np.uint8)
    off = (-buf.ctypes.data) % ALIGN
    return buf[off : off + nbytes].view(dtype).reshape(shape)


def to_device(x) -> jnp.ndarray:
    """`x` as a JAX array, aliasing the host memory where the backend can (an aligned
    NumPy array on the CPU): the grid's AO values are then held once, not twice, and the
    peak of the precompute is not doubled by the transfer. The caller drops `x`."""
    x = np.asarray(x)
    if x.dtype == np.float64 and not jax.config.jax_enable_x64:  # keep jnp.asarray's casting
        return jnp.asarray(x)
    try:
        return jax.device_put(x, may_alias=True)
    except TypeError:  # an older JAX without may_alias
        return jnp.asarray(x)


def eval_ao(pmol, coords: np.ndarray, *, gga: bool, dtype="float64") -> np.ndarray:
    """AO values, and for a GGA their gradients, on (G, 3) `coords` (Bohr), screened as
    PySCF's own numint screens them.

    Returns a (4, G, N) array (value, d/dx, d/dy, d/dz) for a GGA, else (1, G, N), in
    `dtype`. The points are evaluated in chunks of about `AO_CHUNK_BYTES`, each with
    the shell mask of `pyscf.dft.gen_grid.make_mask` (``non0tab``: shells below its
    1e-15 cutoff on a block of 56 points are skipped and left zero, as in PySCF's
    ``numint.eval_ao(..., non0tab=grids.non0tab)``), and written straight into the
    result: the peak is the result plus one chunk, not PySCF's full-grid temporaries.
    """
    from pyscf.dft.gen_grid import BLKSIZE, make_mask

    name, comp = ("GTOval_sph_deriv1", 4) if gga else ("GTOval_sph", 1)
    n, g = pmol.nao_nr(), coords.shape[0]
    out = aligned_empty((comp, g, n), dtype)
    chunk = max(BLKSIZE, AO_CHUNK_BYTES // (8 * comp * max(n, 1)) // BLKSIZE * BLKSIZE)
    for start in range(0, g, chunk):
        c = np.ascontiguousarray(coords[start : start + chunk])
        vals = pmol.eval_gto(name, c, non0tab=make_mask(pmol, c))
        out[:, start : start + chunk] = vals.reshape(comp, c.shape[0], n)
    return out


def pad_grid(coords: np.ndarray, weights: np.ndarray, block: int):
    """Pads (G, 3) coords and (G,) weights to a multiple of `block` points.

    Padding points repeat the last coordinate with zero weight (as PySCF's own
    alignment padding does), so they contribute nothing and AO values need no copy.
    """
    pad = (-weights.shape[0]) % block
    if pad:
        coords = np.concatenate([coords, np.repeat(coords[-1:], pad, axis=0)])
        weights = np.concatenate([weights, np.zeros(pad)])
    return coords, weights


def with_precision(t: DFTTensors, precision: str) -> DFTTensors:
    """`t` with its grid work in `precision` (AO values cast; nothing recomputed)."""
    check_precision(precision)
    if t.precision == precision:
        return t
    return dataclasses.replace(t, ao=t.ao.astype(precision), precision=precision)


def build_grid(pmol, grid_level: int):
    """PySCF's DFT grid (Treutler-Ahlrichs radial, NWChem pruning, Becke partition).

    Returns (coords (G, 3) Bohr, weights (G,) Bohr^3) exactly as
    ``pyscf.dft.gen_grid.Grids(mol)`` with ``.level = grid_level`` builds them.
    The number of points depends only on the elements, so all conformers of one
    molecule share G (static shapes for batching).
    """
    from pyscf.dft import gen_grid

    check_grid_level(grid_level)
    grids = gen_grid.Grids(pmol)
    grids.level = int(grid_level)
    grids.build()
    return np.asarray(grids.coords), np.asarray(grids.weights)


def df_tensor(pmol, auxbasis: Optional[str] = None) -> np.ndarray:
    """Whitened 3-index integrals B (P, N, N), as PySCF's `df.incore.cholesky_eri`."""
    from pyscf import df, lib

    if auxbasis is None:
        auxbasis = df.make_auxbasis(pmol)
    cderi = df.incore.cholesky_eri(pmol, auxbasis=auxbasis, aosym="s2ij")
    n = pmol.nao_nr()
    # unpacked into aligned memory, which `to_device` hands to JAX without a copy
    return lib.unpack_tril(cderi, out=aligned_empty((cderi.shape[0], n, n), np.float64))


def dense_eri(pmol) -> np.ndarray:
    """Full (N, N, N, N) electron-repulsion tensor (ij|kl) in chemists' notation.

    PySCF's 8-fold packed integrals are unpacked into aligned memory (PySCF's
    ``ao2mo.restore(1, ...)`` kernel writing into `aligned_empty`), which `to_device` hands to
    JAX without a copy: the precompute then peaks at the tensor plus its packed eighth, not
    twice the tensor (uracil/def2-SVP: 2.4 GB each)."""
    import ctypes

    from pyscf import ao2mo

    n = pmol.nao_nr()
    packed = pmol.intor("int2e", aosym="s8")
    restore = getattr(getattr(ao2mo.addons, "libao2mo", None), "AO2MOrestore_nr8to1", None)
    if restore is None:  # another PySCF layout: its public restore (and a copy on the way to JAX)
        return ao2mo.restore(1, packed, n)
    packed = np.ascontiguousarray(packed, dtype=np.float64)
    npair = n * (n + 1) // 2
    if packed.size != npair * (npair + 1) // 2:  # not the 8-fold layout the kernel reads
        return ao2mo.restore(1, packed, n)
    out = aligned_empty((n, n, n, n), np.float64)
    restore(packed.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(n))
    return out


def _shape_structs(n, n_occ, eri_shape, ao_shape, kind, block, precision) -> DFTTensors:
    """The `DFTTensors` that `dft_tensors` returns, as `jax.ShapeDtypeStruct` leaves (the
    dtypes `to_device` gives its NumPy inputs)."""
    f64 = jax.dtypes.canonicalize_dtype(np.float64)
    i32 = jax.dtypes.canonicalize_dtype(np.int32)

    def s(shape, dtype=f64):
        return jax.ShapeDtypeStruct(tuple(int(v) for v in shape), dtype)

    return DFTTensors(
        overlap=s((n, n)),
        hcore=s((n, n)),
        orthogonalizer=s((n, n)),
        eri=s(eri_shape),
        ao=s(ao_shape, jax.dtypes.canonicalize_dtype(np.dtype(precision))),
        weights=s(ao_shape[1:2]),
        e_nuc=s(()),
        dm0=s((n, n)),
        ao_element=s((n,), i32),
        ao_index=s((n,), i32),
        ao_position=s((n, 3)),
        n_occ=n_occ,
        eri_kind=kind,
        grid_block=block,
        precision=precision,
    )


def ao_labels(pmol):
    """Per-AO atom index, atomic number and index within the atom's basis."""
    n = pmol.nao_nr()
    ao_atom = np.zeros(n, dtype=np.int32)
    for ia, (_, _, p0, p1) in enumerate(pmol.aoslice_by_atom()):
        ao_atom[p0:p1] = ia
    z = np.asarray([pmol.atom_charge(i) for i in range(pmol.natm)], dtype=np.int32)
    ao_index = np.zeros(n, dtype=np.int32)
    for ia, (_, _, p0, p1) in enumerate(pmol.aoslice_by_atom()):
        ao_index[p0:p1] = np.arange(p1 - p0)
    return ao_atom, z[ao_atom], ao_index


def dft_tensors(
    mol,
    basis: str = "def2-svp",
    *,
    grid_level: int = 3,
    eri: str = "auto",
    auxbasis: Optional[str] = None,
    xc: Optional[str] = None,
    frame: str = "input",
    timings: Optional[dict] = None,
    memory_check: bool = True,
    precision: str = "float64",
    on_shapes: Optional[Callable[[DFTTensors], None]] = None,
) -> DFTTensors:
    """Precomputes integrals, grid and AO values for `mol` (a `qpt_nb.Molecule`).

    Args:
      mol: the molecule (Angstrom coordinates inside; converted by PySCF).
      basis: any PySCF basis name ('sto-3g', '6-31g*', 'def2-svp', ...). Every argument
        after `basis` is keyword-only.
      grid_level: PySCF grid level 0..9 (3 is PySCF's default).
      eri: 'auto' | 'dense' | 'df' (see module docstring).
      auxbasis: auxiliary basis for 'df' (default: PySCF's `make_auxbasis`).
      xc: optional functional name; when given, only what it needs is stored
        (no grid for 'hf', no AO gradients for LDA).
      frame: 'input' keeps the given orientation (matrices then match PySCF's for
        the same geometry); 'canonical' first moves the molecule to its centred
        principal-axes frame (`Molecule.canonical`), which makes the energy exactly
        invariant to rotations of the input (PySCF's angular grids are fixed in the
        lab frame, so in 'input' mode a rotation changes E by the grid error).
      timings: optional dict that receives the seconds spent in each part.
      memory_check: first compare `qpt_nb.dft.memory.estimate_memory` with the available memory and
        raise `InsufficientMemoryError` (a MemoryError and a ValueError) saying what to
        change, in milliseconds, instead of failing inside PySCF after minutes.
      precision: 'float64' (default: exact to PySCF) or 'float32': the AO values and
        the grid products of the XC quadrature in float32 (half the memory, about 2x
        faster), as the research code's ``-xc_f32``; the functional, energies and
        matrices stay float64 (errors: BENCHMARKS.md, "float32 grid").
      on_shapes: optional callable, given a `DFTTensors` of `jax.ShapeDtypeStruct` leaves
        (the result's shapes and dtypes) as soon as they are known, before the AO values
        (the longest part) are evaluated: `qpt_nb.scf` compiles its SCF loop meanwhile.

    Returns:
      `DFTTensors` (float64 JAX arrays).

    Example:
      >>> t = dft_tensors('water', 'sto-3g', grid_level=1)
      >>> t.n_ao, t.n_occ
      (7, 5)
    """
    from pyscf import scf as pscf

    from qpt_nb.dft.molecule import as_molecule

    mol = as_molecule(mol)
    family = functional_family(xc)
    clock = {} if timings is None else timings
    if frame not in ("input", "canonical"):
        raise ValueError(f"frame must be 'input' or 'canonical', got {frame!r}.")
    check_grid_level(grid_level)
    check_precision(precision)
    check_eri(eri)
    if frame == "canonical":
        mol = mol.canonical()
    t0 = time.perf_counter()
    pmol = mol.to_pyscf(basis)
    if memory_check:
        check_precompute(pmol, grid_level, eri, xc, auxbasis, mol.name or mol.formula)
    n = pmol.nao_nr()
    kind = choose_eri_kind(n, eri)
    s = pmol.intor("int1e_ovlp")
    hcore = pmol.intor("int1e_kin") + pmol.intor("int1e_nuc")
    chol = np.linalg.cholesky(s)
    x = np.linalg.inv(chol).T
    clock["int1e"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    eri_arr = dense_eri(pmol) if kind == "dense" else df_tensor(pmol, auxbasis)
    clock["eri"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if family == "hf":
        coords, weights = np.zeros((1, 3)), np.zeros(1)
    else:
        coords, weights = build_grid(pmol, grid_level)
    clock["grid"] = time.perf_counter() - t0

    block = grid_block_size(n)
    coords, weights = pad_grid(coords, weights, block)
    if on_shapes is not None:
        comp = 4 if family == "gga" else 1
        on_shapes(
            _shape_structs(
                n, pmol.nelectron // 2, eri_arr.shape, (comp, weights.shape[0], n), kind, block, precision
            )
        )
    t0 = time.perf_counter()
    ao = eval_ao(pmol, coords, gga=family == "gga", dtype=precision)
    clock["ao"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    dm0 = pscf.hf.init_guess_by_minao(pmol)
    ao_atom, ao_z, ao_index = ao_labels(pmol)
    pos = np.asarray(pmol.atom_coords())[ao_atom]
    out = DFTTensors(
        overlap=to_device(s),
        hcore=to_device(hcore),
        orthogonalizer=to_device(x),
        eri=to_device(eri_arr),
        ao=to_device(ao),
        weights=to_device(weights),
        e_nuc=to_device(pmol.energy_nuc()),
        dm0=to_device(dm0),
        ao_element=to_device(ao_z),
        ao_index=to_device(ao_index),
        ao_position=to_device(pos),
        n_occ=(pmol.nelectron - mol.spin) // 2,  # doubly occupied; n_beta for an open shell
        spin=int(mol.spin),
        eri_kind=kind,
        grid_block=block,
        precision=precision,
    )
    clock["other"] = time.perf_counter() - t0
    return out


def stack_tensors(items) -> DFTTensors:
    """Stacks `DFTTensors` of conformers of one molecule along a new leading axis."""
    items = list(items)
    if not items:
        raise ValueError("stack_tensors needs at least one DFTTensors.")
    return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *items)
