"""Unrestricted SCF speed: qpt_nb's UKS against PySCF's dft.UKS, beside the closed-shell ratio.

    python bench/uks_vs_pyscf.py              # allyl radical / cation, 6-31G*, B3LYP5, grid 3

One run times, side by side on the same machine: the allyl radical (C3H5, spin 1) through
`qpt_nb.scf` (UKS, the device loop) and PySCF's ``dft.UKS``, and the allyl cation (the same
geometry, charge +1, closed shell) through `qpt_nb.scf` (RKS) and ``dft.RKS``. Each is the
whole call (precompute + SCF), the median of `--repeats` runs after one warm-up run (the
compilation, reported apart). Same settings in both codes (basis, functional, grid level,
dense integrals, conv_tol 1e-10, DIIS space 8, minao guess). Threads as the caller sets them.
Writes bench/results/uks_vs_pyscf.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ALLYL = (
    "C 0 0.42 0\nC 1.225 -0.24 0\nC -1.225 -0.24 0\nH 0 1.51 0\nH 2.16 0.30 0\n"
    "H 1.27 -1.32 0\nH -2.16 0.30 0\nH -1.27 -1.32 0"
)


def _time(fn, repeats):
    t0 = time.perf_counter()
    first = fn()
    warm = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), warm, out, first


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--basis", default="6-31g*")
    p.add_argument("--xc", default="b3lyp5")
    p.add_argument("--grid-level", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)

    import qpt_nb
    from qpt_nb.dft.reference import make_rks

    rows = {}
    for label, charge, spin in (("allyl radical (UKS)", 0, 1), ("allyl cation (RKS)", 1, 0)):
        mol = qpt_nb.Molecule.from_xyz(ALLYL, charge=charge, spin=spin, name="allyl")
        kw = dict(xc=args.xc, grid_level=args.grid_level, eri="dense", conv_tol=1e-10)

        def ours():
            return qpt_nb.scf(mol, args.basis, **kw)

        def theirs():
            mf = make_rks(
                mol.to_pyscf(args.basis), xc=args.xc, grid_level=args.grid_level, eri="dense", conv_tol=1e-10
            )
            mf.kernel()
            return mf

        t_q, warm_q, res, _ = _time(ours, args.repeats)
        t_p, warm_p, mf, _ = _time(theirs, args.repeats)
        rows[label] = dict(
            qpt_nb_s=t_q,
            qpt_nb_first_call_s=warm_q,
            pyscf_s=t_p,
            ratio=t_p / t_q,
            qpt_nb_iterations=int(res.n_iter),
            pyscf_iterations=int(mf.cycles),
            energy_difference_ha=float(res.energy - mf.e_tot),
            n_ao=int(res.tensors.n_ao),
        )
        print(
            f"{label:22s} qpt_nb {t_q:6.2f} s ({res.n_iter} it, first call {warm_q:.1f} s)  PySCF {t_p:6.2f} s "
            f"({mf.cycles} it)  ratio {t_p / t_q:.2f}x  dE {res.energy - mf.e_tot:+.1e} Ha",
            flush=True,
        )
    out = dict(settings=vars(args), rows=rows, machine=common.machine_info())
    path = common.write_json(common.RESULTS / "uks_vs_pyscf.json", out)
    print(f"-> {path}")


if __name__ == "__main__":
    main()
