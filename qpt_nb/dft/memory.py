"""Memory a DFT precompute needs, predicted in milliseconds, and the refusal of jobs too large.

`estimate_memory` counts the bytes of a `qpt_nb.dft.tensors.dft_tensors` precompute
from the basis size, PySCF's grid point count and the auxiliary basis size, without
computing integrals or AO values (matches the real `DFTTensors` byte for byte on
water); `check_memory` compares them with the memory the machine has available and
raises `InsufficientMemoryError` (a `MemoryError` and a `ValueError`) naming what to
change; `format_memory` is a one-line summary for logs and the command line. The
estimate is a lower bound of the peak: JAX's own working memory is not counted.

The size rules (which ERI kind, how many grid points per block) are `qpt_nb.dft.sizes`,
the same that `dft_tensors` applies; `dft_tensors` calls `check_precompute` from here.
"""

from __future__ import annotations

import os
from typing import Optional

from qpt_nb.dft.sizes import check_grid_level, choose_eri_kind, grid_block_size
from qpt_nb.dft.xc import functional_family
from qpt_nb.validate import check_int


class InsufficientMemoryError(MemoryError, ValueError):
    """A precompute would need more memory than the machine has available.

    Raised by `check_memory` (so by `dft_tensors` and `qpt_nb.scf`) before any large
    allocation. It is a `MemoryError` and a `ValueError`, so ``except ValueError`` (the
    CLI's bad-input handler) reports it in one line. ``.estimate`` is the estimate dict,
    ``.available`` the bytes available."""

    def __init__(self, message, estimate=None, available=None):
        super().__init__(message)
        self.estimate, self.available = estimate, available


def format_bytes(n) -> str:
    """'1.5 GiB', '730 KiB', '12 B' (binary units)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _grid_point_count(pmol, grid_level: int) -> int:
    """Points of PySCF's grid (with its alignment padding) without building it: the atomic
    grids are generated per element (milliseconds), the Becke partition is skipped."""
    from pyscf.dft import gen_grid

    grids = gen_grid.Grids(pmol)
    grids.level = int(grid_level)
    tab = grids.gen_atomic_grids(pmol, grids.atom_grid, grids.radi_method, grids.level, grids.prune)
    g = int(sum(tab[pmol.atom_symbol(i)][1].size for i in range(pmol.natm)))
    align = int(getattr(grids, "alignment", 0) or 0)
    return g + (-g) % align if align > 1 else g


def _aux_count(pmol, auxbasis=None) -> Optional[int]:
    """Auxiliary (density-fitting) functions P of `df_tensor` (None if PySCF cannot say)."""
    from pyscf import df

    try:
        return int(df.addons.make_auxmol(pmol, auxbasis or df.make_auxbasis(pmol)).nao_nr())
    except Exception:  # an exotic basis without fitting set: no DF estimate
        return None


def _memory_parts(n, g, p, kind, n_deriv, batch, grid_itemsize=8) -> dict:
    """Bytes of one geometry's tensors (as `dft_tensors` stores them) and of the precompute;
    `grid_itemsize` 4 for the float32 grid work (AO values and weights)."""
    f8 = 8
    npair = n * (n + 1) // 2
    if kind == "dense":
        eri, packed = n**4 * f8, npair * (npair + 1) // 2 * f8  # + the s8 integrals
    else:
        eri, packed = (p or 0) * n * n * f8, (p or 0) * npair * f8  # + packed cderi
    ao = n_deriv * g * n * grid_itemsize
    grid = g * grid_itemsize  # weights
    matrices = 4 * n * n * f8 + n * (3 * f8 + 8)  # S, h, X, dm0; AO labels
    per_geometry = ao + eri + grid + matrices
    # while one geometry is built: PySCF's packed integrals and the grid coordinates, and its
    # NumPy arrays beside JAX's copies where JAX cannot alias host memory (`to_device`); where
    # it can, that term is the margin for the first iterations' working memory (uracil/def2-SVP
    # with exact integrals: estimated 6.0 GB, an evaluation measured 4.9 GB over training)
    precompute = per_geometry + 3 * g * f8 + packed
    return dict(
        ao_bytes=ao,
        eri_bytes=eri,
        grid_bytes=grid,
        matrices_bytes=matrices,
        per_geometry_bytes=per_geometry,
        per_batch_bytes=batch * per_geometry,
        precompute_bytes=precompute,
        total_bytes=batch * per_geometry + precompute,
    )


def _estimate(
    pmol, grid_level, eri, family, batch, auxbasis, name, details=True, precision="float64"
) -> dict:
    """`estimate_memory` of a built Mole; ``details=False`` skips what only the advice of
    `check_memory` needs (lower grid levels, P for dense ERIs): the quick path of
    `dft_tensors`."""
    n = pmol.nao_nr()
    kind = choose_eri_kind(n, eri)
    block = grid_block_size(n)
    pad = lambda k: k + (-k) % block  # noqa: E731
    if family == "hf":
        g, by_level = pad(1), {}
    else:
        g = pad(_grid_point_count(pmol, grid_level))
        by_level = {lvl: pad(_grid_point_count(pmol, lvl)) for lvl in range(grid_level)} if details else {}
    p = _aux_count(pmol, auxbasis) if details or kind == "df" else None
    if kind == "df" and p is None:
        p = _aux_count(pmol, None) or 0
    n_deriv = 4 if family == "gga" else 1
    out = dict(
        molecule=name,
        basis=str(pmol.basis) if isinstance(pmol.basis, str) else "custom",
        grid_level=int(grid_level),
        xc_family=family,
        eri_kind=kind,
        batch=int(batch),
        n_ao=int(n),
        n_grid=int(g),
        n_aux=p,
        ao_derivatives=n_deriv == 4,
        n_grid_by_level=by_level,
        precision=precision,
    )
    out.update(_memory_parts(n, g, p, kind, n_deriv, batch, 4 if precision == "float32" else 8))
    return out


def estimate_memory(
    mol,
    basis: str = "def2-svp",
    *,
    grid_level: int = 3,
    eri: str = "auto",
    xc: Optional[str] = None,
    batch: int = 1,
    auxbasis: Optional[str] = None,
    precision: str = "float64",
) -> dict:
    """Bytes `dft_tensors(mol, basis, grid_level=, eri=, xc=, precision=)` needs, in milliseconds.

    Arguments as `dft_tensors` (every one after `basis` keyword-only); `batch` geometries
    held at once.

    Builds only the PySCF Mole, counts the grid points per element (no Becke partition,
    no AO values) and the auxiliary functions (``pyscf.df.make_auxbasis``).

    Returns a dict: settings ('molecule', 'basis', 'grid_level', 'xc_family', 'eri_kind',
    'batch'), sizes ('n_ao', 'n_grid' (padded), 'n_aux', 'ao_derivatives',
    'n_grid_by_level' for the lower grid levels) and bytes:
      ao_bytes       AO values (and x/y/z gradients for GGAs) on the grid: 8 (4) G N, in
                     float64 (half that in float32)
      eri_bytes      dense ERIs 8 N^4, or DF tensors 8 P N^2
      grid_bytes, matrices_bytes   weights; S, h, X, the guess density, AO labels
      per_geometry_bytes   one `DFTTensors`
      per_batch_bytes      `batch` of them (a stacked training batch)
      precompute_bytes     extra while one geometry is built (its NumPy arrays beside the
                           JAX copies, the grid coordinates, PySCF's packed integrals)
      total_bytes          per_batch_bytes + precompute_bytes
    A lower bound on the peak: JAX's working memory (jit temporaries) is not included.

    Example:
      >>> est = estimate_memory('water', 'sto-3g', grid_level=1)
      >>> est['n_ao'], est['eri_kind']
      (7, 'dense')
    """
    from qpt_nb.dft.molecule import as_molecule

    mol = as_molecule(mol)
    check_grid_level(grid_level)
    batch = check_int(batch, "batch", low=1, hint=" (geometries held at once)")
    family = functional_family(xc)
    return _estimate(
        mol.to_pyscf(basis),
        grid_level,
        eri,
        family,
        batch,
        auxbasis,
        mol.name or mol.formula,
        precision=precision,
    )


def _read_int(path) -> Optional[int]:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_available() -> Optional[int]:
    """limit - working set of this process's memory cgroup (v2, then v1), or None."""
    for limit_f, usage_f, stat_f, inactive in (
        ("memory.max", "memory.current", "memory.stat", "inactive_file"),
        (
            "memory/memory.limit_in_bytes",
            "memory/memory.usage_in_bytes",
            "memory/memory.stat",
            "total_inactive_file",
        ),
    ):
        limit = _read_int(f"/sys/fs/cgroup/{limit_f}")
        usage = _read_int(f"/sys/fs/cgroup/{usage_f}")
        if limit is None or usage is None or limit >= 2**60:  # 'max' or no limit
            continue
        try:
            with open(f"/sys/fs/cgroup/{stat_f}") as fh:
                stat = dict(line.split()[:2] for line in fh if len(line.split()) >= 2)
            usage -= int(stat.get(inactive, 0))  # page cache is reclaimable
        except (OSError, ValueError):
            pass
        return max(limit - usage, 0)
    return None


def available_memory() -> Optional[int]:
    """Bytes of memory available to this process: /proc/meminfo's MemAvailable (else
    ``os.sysconf`` free pages), capped by the cgroup (container) limit; None if unknown."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            avail = int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
        except (AttributeError, OSError, ValueError):
            avail = None
    cg = _cgroup_available()
    if cg is not None:
        avail = cg if avail is None else min(avail, cg)
    return avail


def _suggestions(est: dict, available: int) -> list:
    n, p, b = est["n_ao"], est["n_aux"], est["batch"]
    n_deriv = 4 if est["ao_derivatives"] else 1

    size = 4 if est.get("precision") == "float32" else 8
    held = est.get("held_bytes", 0)

    def total(g=est["n_grid"], kind=est["eri_kind"], batch=b):
        return _memory_parts(n, g, p, kind, n_deriv, batch, size)["total_bytes"] + held

    out, now = [], total()
    levels = {
        lvl: g for lvl, g in (est.get("n_grid_by_level") or {}).items() if total(g=g) < 0.9 * now
    }  # only levels that help
    if levels:
        fits = [lvl for lvl, g in levels.items() if total(g=g) <= available]
        if fits:
            lvl = max(fits)
            out.append(f"a smaller grid level (grid_level={lvl} needs {format_bytes(total(g=levels[lvl]))})")
        else:
            lvl = min(levels)
            out.append(
                f"a smaller grid level (even grid_level={lvl} needs {format_bytes(total(g=levels[lvl]))})"
            )
    if est["eri_kind"] == "dense" and p and total(kind="df") < 0.9 * now:
        out.append(f"eri='df' (density fitting: {format_bytes(total(kind='df'))})")
    if b > 1:
        per, fixed = est["per_geometry_bytes"], est["precompute_bytes"] + held
        k = int((available - fixed) // per) if available > fixed else 0
        out.append(f"a smaller batch (batch={k} fits)" if k >= 1 else "a smaller batch")
    out.append("a smaller basis or molecule")
    return out


def check_memory(estimate: dict, available: Optional[int] = None) -> dict:
    """Raises `InsufficientMemoryError` when ``estimate['total_bytes']`` (from
    `estimate_memory`) exceeds `available` bytes (default `available_memory()`; no check
    when that is unknown). The message says how much is needed and what to change
    (grid level, eri='df', batch). Returns the estimate."""
    if available is None:
        available = available_memory()
    if available is None or estimate["total_bytes"] <= available:
        return estimate
    e = estimate
    aux = f" (P={e['n_aux']})" if e["eri_kind"] == "df" else ""
    parts = [
        f"AO values{' and gradients' if e['ao_derivatives'] else ''} on "
        f"{e['n_grid']:,} grid points x {e['n_ao']} AOs: {format_bytes(e['ao_bytes'])}",
        f"{'dense ERIs' if e['eri_kind'] == 'dense' else 'DF tensors' + aux}: {format_bytes(e['eri_bytes'])}",
    ]
    if e["batch"] > 1:
        parts.append(f"{e['batch']} geometries held at once: {format_bytes(e['per_batch_bytes'])}")
    if e.get("held_bytes"):
        parts.append(f"{e.get('held_what', 'other')}: {format_bytes(e['held_bytes'])}")
    raise InsufficientMemoryError(
        f"not enough memory for the DFT precompute of {e['molecule']} / {e['basis']} / grid "
        f"level {e['grid_level']}: it needs about {format_bytes(e['total_bytes'])} "
        f"({'; '.join(parts)}) but only {format_bytes(available)} is available. "
        f"Use {', or '.join(_suggestions(e, available))}.",
        estimate,
        available,
    )


def format_memory(estimate: dict) -> str:
    """One line: '<molecule> / <basis> / grid level k: N AOs, G grid points, ERI kind:
    AO ... + ERI ... = ... per geometry; total ... (batch b)'."""
    e = estimate
    eri = "dense ERIs" if e["eri_kind"] == "dense" else f"DF tensors (P={e['n_aux']})"
    ao = "AO values+gradients" if e["ao_derivatives"] else "AO values"
    return (
        f"{e['molecule']} / {e['basis']} / grid level {e['grid_level']}: {e['n_ao']} AOs, "
        f"{e['n_grid']:,} grid points; {ao} {format_bytes(e['ao_bytes'])} + {eri} "
        f"{format_bytes(e['eri_bytes'])} = {format_bytes(e['per_geometry_bytes'])} per "
        f"geometry; total {format_bytes(e['total_bytes'])} with the precompute "
        f"({e['batch']} geometries held"
        + (f", {e.get('held_what', 'other')} {format_bytes(e['held_bytes'])}" if e.get("held_bytes") else "")
        + ")"
    )


def check_precompute(pmol, grid_level: int, eri: str, xc, auxbasis, name: str) -> None:
    """The check `dft_tensors` runs before its PySCF work: a quick estimate first, the
    detailed one (for the advice) only when the quick one does not fit."""
    family = functional_family(xc)
    quick = _estimate(pmol, grid_level, eri, family, 1, auxbasis, name, details=False)
    available = available_memory()
    if available is not None and quick["total_bytes"] > available:
        check_memory(_estimate(pmol, grid_level, eri, family, 1, auxbasis, name), available)
