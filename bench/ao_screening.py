"""How much would screening AO values per block of grid points save? (fast-grid issue, item 1)

PySCF skips, per block of grid points, the AOs whose values are negligible there (its
`non0tab`). With static shapes (what XLA compiles), a screened block must still hold a
fixed number K of AOs: the largest count over all blocks. This script measures, on the
toolkit's own grid and blocking (`build_grid`, `pad_grid`, `grid_block_size`), how many
AOs each block needs at a cutoff on max |phi| and |grad phi| over the block's points:
  * K_max / N: the static-shape saving (the AO work of the grid products scales with K / N),
  * K_mean / N: what a ragged (per-block K) scheme could save at best,
once in PySCF's point order (atom by atom, radial shell by shell) and once with the points
sorted along a Morton (Z-order) curve, which makes blocks spatially compact.

  python bench/ao_screening.py                   # uracil, sto-3g and def2-svp, grid level 3
  python bench/ao_screening.py --molecules uracil,alanine_dipeptide --bases def2-svp
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "ao_screening"


def morton_order(coords: np.ndarray, bits: int = 10) -> np.ndarray:
    """Permutation sorting (G, 3) points along a Z-order curve of a 2^bits-cell box grid."""
    lo, hi = coords.min(0), coords.max(0)
    q = ((coords - lo) / np.maximum(hi - lo, 1e-12) * (2**bits - 1)).astype(np.uint64)
    code = np.zeros(len(coords), np.uint64)
    for i in range(bits):
        for d in range(3):
            code |= ((q[:, d] >> np.uint64(i)) & np.uint64(1)) << np.uint64(3 * i + d)
    return np.argsort(code, kind="stable")


def block_counts(pmol, coords, block: int, cutoffs) -> dict:
    """{cutoff: (n_blocks,) AOs per block with max |value or gradient| > cutoff}."""
    from qpt_nb.dft.tensors import pad_grid

    c, _ = pad_grid(coords, np.ones(len(coords)), block)
    n = pmol.nao_nr()
    peak = np.zeros((c.shape[0] // block, n))
    for start in range(0, c.shape[0], 16 * block):  # bounded memory: 16 blocks at a time
        ao = np.abs(pmol.eval_gto("GTOval_sph_deriv1", c[start : start + 16 * block])).max(axis=0)
        peak[start // block : start // block + ao.shape[0] // block] = ao.reshape(-1, block, n).max(axis=1)
    return {cut: (peak > cut).sum(axis=1) for cut in cutoffs}


def main(argv=None):
    p = common.make_parser(__doc__, NAME)
    p.add_argument("--molecules", default="uracil")
    p.add_argument("--bases", default="sto-3g,def2-svp")
    p.add_argument("--grid-level", type=int, default=3)
    p.add_argument("--cutoffs", default="1e-8,1e-10")
    args = p.parse_args(argv)
    import qpt_nb
    from qpt_nb.dft.sizes import grid_block_size
    from qpt_nb.dft.tensors import build_grid

    cutoffs = [float(x) for x in args.cutoffs.split(",")]
    rows = []
    for name in args.molecules.split(","):
        for basis in args.bases.split(","):
            pmol = qpt_nb.Molecule.builtin(name).to_pyscf(basis)
            coords, _ = build_grid(pmol, args.grid_level)
            n, block = pmol.nao_nr(), grid_block_size(pmol.nao_nr())
            for order in ("pyscf", "morton"):
                c = coords if order == "pyscf" else coords[morton_order(coords)]
                for cut, k in block_counts(pmol, c, block, cutoffs).items():
                    rows.append(
                        dict(
                            molecule=name,
                            basis=basis,
                            n_ao=n,
                            block=block,
                            order=order,
                            cutoff=cut,
                            k_max=int(k.max()),
                            static=k.max() / n,
                            ragged=k.mean() / n,
                        )
                    )
    print(
        common.table(
            rows,
            [
                ("molecule", "molecule", "{}"),
                ("basis", "basis", "{}"),
                ("N", "n_ao", "{}"),
                ("block", "block", "{}"),
                ("point order", "order", "{}"),
                ("cutoff", "cutoff", "{:.0e}"),
                ("K max", "k_max", "{}"),
                ("K_max / N (static)", "static", "{:.2f}"),
                ("K_mean / N (ragged)", "ragged", "{:.2f}"),
            ],
        )
    )
    info = common.machine_info()
    print("machine:", common.machine_line(info))
    json_path, _ = common.out_paths(args, NAME)
    common.write_json(json_path, dict(benchmark=NAME, settings=vars(args), machine=info, rows=rows))
    print(f"wrote {json_path}")
    return rows


if __name__ == "__main__":
    main()
