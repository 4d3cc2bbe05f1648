"""The size rules of a DFT precompute: which ERI kind, which grid level, which precision,
how many grid points per block.

One module owns them so that `qpt_nb.dft.tensors` (which builds the tensors) and
`qpt_nb.dft.memory` (which predicts their bytes before anything is built) apply the same
rules, and neither imports the other for them.

    ERI_KINDS      'auto' | 'dense' | 'df' (`check_eri`); `choose_eri_kind` resolves 'auto':
                   dense (N, N, N, N) integrals for N <= `DENSE_MAX_AO`, density fitting above
    GRID_LEVELS    PySCF grid levels 0..9 (`check_grid_level`)
    PRECISIONS     'float64' | 'float32', the dtype of the grid work (`check_precision`)
    grid_block_size(N)   grid points per XC block for N atomic orbitals
"""

from __future__ import annotations

import numpy as np

from qpt_nb.validate import check_int

DENSE_MAX_AO = 64  # 'auto' keeps dense ERIs up to this many AOs (64 AOs: 134 MB)
ERI_KINDS = ("auto", "dense", "df")
GRID_LEVELS = range(0, 10)
PRECISIONS = ("float64", "float32")


def check_eri(eri) -> str:
    """`eri` if it is one of `ERI_KINDS`, else a ValueError naming them."""
    if eri not in ERI_KINDS:
        raise ValueError(f"Unknown eri={eri!r}; choose one of {ERI_KINDS}.")
    return eri


def choose_eri_kind(n_ao: int, eri: str = "auto") -> str:
    """Resolves ``eri='auto'`` to 'dense' (N <= DENSE_MAX_AO) or 'df'; 'dense' and 'df'
    are returned as they are, anything else is a ValueError naming `ERI_KINDS`."""
    if check_eri(eri) == "auto":
        return "dense" if n_ao <= DENSE_MAX_AO else "df"
    return eri


def check_grid_level(grid_level) -> int:
    """`grid_level` as an int if it is one of `GRID_LEVELS` (0..9), else a ValueError."""
    return check_int(grid_level, "grid_level", low=min(GRID_LEVELS), high=max(GRID_LEVELS))


def check_precision(precision) -> str:
    """`precision` if it is one of PRECISIONS, else a ValueError naming them."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")
    return precision


def grid_block_size(n_ao: int) -> int:
    """Grid points per XC block: about 4 MB of AO values and gradients per block,
    so a block stays in cache (2-3x faster than one pass over the whole grid).
    A power of two in 256..8192 (the grid is padded to a multiple of it)."""
    target = 131072 // max(n_ao, 1)
    return int(min(max(2 ** int(round(np.log2(max(target, 1)))), 256), 8192))
