"""The same Kohn-Sham SCF with PySCF and with qpt_nb, side by side, and a FLOP floor.

For every molecule x basis:
  * PySCF: ``dft.RKS`` (grid level 3, conv_tol 1e-10, DIIS 8; density fitting with
    ``df.make_auxbasis`` whenever qpt_nb's ``eri='auto'`` picks DF, so it is the same
    calculation); ``kernel()`` timed (PySCF builds its grid and integrals inside it).
  * qpt_nb: ``qpt_nb.scf`` called once to compile (compile time = first - second call),
    then timed INCLUDING its own precompute (integrals, grid, AO values).
  Each side runs in its own fresh process, so their peak RSS values are separable.
  * FLOP floor of one qpt_nb SCF iteration at this machine's measured float64 matmul
    rates: XC 2 x 2 G N^2 (rho and V_xc matmuls, at the tall-skinny (G x N)@(N x N)
    rate) + J/K (dense 2 x 2 N^4; DF 2 x 2 P N^2 + 2 x 2 P N^2 n_occ, K through the
    occupied orbitals) + eigh 9 N^3 (at the
    2000 x 2000 rate); compared with (qpt time - precompute) / iterations.
    XLA's own flop count of the jitted Fock build (cost_analysis) is printed beside it.

  python bench/scf_vs_pyscf.py            # quick: water, uracil x sto-3g (about 1 min)
  python bench/scf_vs_pyscf.py --full     # water, ethanol, uracil, benzene x sto-3g, def2-svp
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "scf_vs_pyscf"
QUICK = dict(molecules=["water", "uracil"], bases=["sto-3g"])
FULL = dict(molecules=["water", "ethanol", "uracil", "benzene"], bases=["sto-3g", "def2-svp"])
# (molecule, basis) -> (minimum PySCF/qpt speed-up, maximum time-per-iteration / floor)
TARGETS = {("uracil", "sto-3g"): (5.0, None), ("uracil", "def2-svp"): (2.0, 2.0)}


# ----------------------------------------------------------------------------- workers
def pyscf_worker(atoms, basis, xc, grid_level, conv_tol, density_fit):
    """PySCF RKS kernel() wall time, in a fresh process; the RKS object is qpt_nb's one
    factory (`qpt_nb.dft.reference.make_rks`: DIIS 8, PySCF's auxiliary basis for DF)."""
    import time

    from pyscf import gto

    from qpt_nb.dft.reference import make_rks

    pm = gto.M(atom=[(s, tuple(c)) for s, c in atoms], unit="Angstrom", basis=basis, cart=False, verbose=0)
    mf = make_rks(pm, xc=xc, grid_level=grid_level, eri="df" if density_fit else "dense", conv_tol=conv_tol)
    t0 = time.perf_counter()
    mf.kernel()
    seconds = time.perf_counter() - t0
    return dict(
        energy=float(mf.e_tot),
        seconds=seconds,
        cycles=int(mf.cycles),
        converged=bool(mf.converged),
        n_ao=int(pm.nao_nr()),
    )


def qpt_memory_worker(molecule, basis, xc, grid_level, conv_tol, eri):
    """One `qpt_nb.scf` of one geometry in a fresh process and nothing else: its peak RSS
    (added by `run_isolated`) is the memory per geometry, against PySCF's kernel()."""
    import qpt_nb

    res = qpt_nb.scf(
        qpt_nb.Molecule.builtin(molecule), basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri=eri
    )
    return dict(energy=float(res.energy), cycles=int(res.n_iter))


def qpt_worker(molecule, basis, xc, grid_level, conv_tol, eri):
    """qpt_nb.scf: warm-up call (compiles), timed call, flop floor at measured rates."""
    import time

    import numpy as np

    import qpt_nb
    from qpt_nb.dft.kohn_sham import energy_and_fock, energy_and_fock_jit
    from qpt_nb.dft.xc import get_xc

    mol = qpt_nb.Molecule.builtin(molecule)
    t0 = time.perf_counter()
    qpt_nb.scf(mol, basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri=eri)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = qpt_nb.scf(mol, basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri=eri)
    seconds = time.perf_counter() - t0
    # the teaching loop (one host round trip per iteration) beside the device loop
    qpt_nb.scf(mol, basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri=eri, loop="host")
    t0 = time.perf_counter()
    res_host = qpt_nb.scf(mol, basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri=eri, loop="host")
    seconds_host = time.perf_counter() - t0
    t = res.tensors
    n, g_pad = t.n_ao, t.n_grid
    g = int(np.count_nonzero(np.asarray(t.weights)))
    p = int(t.eri.shape[0]) if t.eri_kind == "df" else 0
    f = get_xc(xc)
    pre = res.timings["precompute"]
    per_iter = (seconds - pre) / res.n_iter
    # measured matmul rates (GFLOP/s): tall-skinny like the XC quadrature, square 2000
    rate_tall = common.matmul_rate_shape(g_pad, n, n, repeats=3)
    rate_sq = common.matmul_rate(2000, repeats=3)
    fl_xc = 2 * 2 * g_pad * n**2 if f.family != "hf" else 0
    if t.eri_kind == "dense":
        fl_j, fl_k = 2 * n**4, 2 * n**4
    else:
        # K through the occupied orbitals (kohn_sham.exchange with a factor) once 2 n_occ < N
        k_cols = t.n_occ if 2 * t.n_occ < n else n
        fl_j, fl_k = 2 * 2 * p * n**2, 2 * 2 * p * n**2 * k_cols
    if f.hyb == 0:
        fl_k = 0
    fl_eigh = 9 * n**3
    floor = fl_xc / (rate_tall * 1e9) + (fl_j + fl_k + fl_eigh) / (rate_sq * 1e9)
    fl_total = fl_xc + fl_j + fl_k + fl_eigh
    counted = common.jaxpr_flops(lambda d, tt: energy_and_fock(d, tt, f), t.dm0, t)
    xla = common.xla_flops(energy_and_fock_jit, t.dm0, t, f)
    tm = {k: float(v) for k, v in res.timings.items()}
    return dict(
        energy=float(res.energy),
        seconds=seconds,
        seconds_host_loop=seconds_host,
        host_loop_energy_diff=float(res_host.energy - res.energy),
        compile_s=max(first - seconds, 0.0),
        first_call_s=first,
        precompute_s=pre,
        timings=tm,
        cycles=int(res.n_iter),
        converged=bool(res.converged),
        eri=t.eri_kind,
        n_ao=n,
        n_grid=g,
        n_grid_padded=g_pad,
        n_aux=p,
        per_iter_s=per_iter,
        floor_s=floor,
        per_iter_over_floor=per_iter / floor,
        floor_square_rate_s=fl_total / (rate_sq * 1e9),
        flops_iter=dict(
            xc=fl_xc,
            j=fl_j,
            k=fl_k,
            eigh=fl_eigh,
            total=fl_total,
            counted_fock_matmul=counted["matmul"],
            xla_fock=xla,
        ),
        rate_tall_gflops=rate_tall,
        rate_square_gflops=rate_sq,
    )


# ----------------------------------------------------------------------------- driver
def main(argv=None):
    p = common.make_parser(__doc__, NAME)
    p.add_argument("--molecules", help="comma-separated built-in molecules (overrides the mode)")
    p.add_argument("--bases", help="comma-separated basis sets (overrides the mode)")
    p.add_argument("--xc", default="b3lyp5")
    p.add_argument("--grid-level", type=int, default=3)
    p.add_argument("--conv-tol", type=float, default=1e-10)
    p.add_argument("--eri", default="auto", choices=["auto", "dense", "df"])
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per subprocess")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="OMP_NUM_THREADS for PySCF (and single-threaded XLA when 1); 0: defaults",
    )
    args = p.parse_args(argv)
    env = {}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
        if args.threads == 1:
            env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    sel = FULL if args.full else QUICK
    molecules = args.molecules.split(",") if args.molecules else sel["molecules"]
    bases = args.bases.split(",") if args.bases else sel["bases"]
    json_path, png_path = common.out_paths(args, NAME)
    import qpt_nb
    from qpt_nb.dft.reference import resolve_eri

    rows = []
    for basis in bases:
        for name in molecules:
            mol = qpt_nb.Molecule.builtin(name)
            pmol = mol.to_pyscf(basis)
            n_ao, kind = pmol.nao_nr(), resolve_eri(pmol, args.eri)
            print(f"-- {name}/{basis} ({n_ao} AOs, ERI {kind}) ...", flush=True)
            case = dict(
                timeout=args.timeout,
                env=env,
                molecule=name,
                basis=basis,
                xc=args.xc,
                grid_level=args.grid_level,
                conv_tol=args.conv_tol,
                eri=args.eri,
            )
            q = common.run_isolated(__file__, "qpt_worker", **case)
            mem = common.run_isolated(__file__, "qpt_memory_worker", **case)
            q["peak_rss_one_scf_mb"] = mem.get("peak_rss_mb")
            atoms = [(s, [float(v) for v in c]) for s, c in zip(mol.symbols, mol.coords_angstrom)]
            py = common.run_isolated(
                __file__,
                "pyscf_worker",
                timeout=args.timeout,
                env=env,
                atoms=atoms,
                basis=basis,
                xc=args.xc,
                grid_level=args.grid_level,
                conv_tol=args.conv_tol,
                density_fit=kind == "df",
            )
            for side, r in (("qpt", q), ("pyscf", py)):
                if "error" in r:
                    print(f"   {side} FAILED: {r['error']}", flush=True)
            row = dict(molecule=name, basis=basis, n_ao=n_ao, eri=kind, qpt=q, pyscf=py)
            if "error" not in q and "error" not in py:
                row.update(
                    speedup=py["seconds"] / q["seconds"],
                    dE=q["energy"] - py["energy"],
                    per_iter_s=q["per_iter_s"],
                    floor_s=q["floor_s"],
                    per_iter_over_floor=q["per_iter_over_floor"],
                )
                target = TARGETS.get((name, basis))
                if target:
                    ok = row["speedup"] >= target[0]
                    if target[1] is not None:
                        ok = ok and row["per_iter_over_floor"] <= target[1]
                    row["target"] = f">= {target[0]:g}x" + (f", <= {target[1]:g}x floor" if target[1] else "")
                    row["target_met"] = bool(ok)
            rows.append(row)

    flat = [
        dict(
            case=f"{r['molecule']}/{r['basis']}",
            n_ao=r["n_ao"],
            eri=r["eri"],
            py_s=r["pyscf"].get("seconds"),
            qpt_s=r["qpt"].get("seconds"),
            host_s=r["qpt"].get("seconds_host_loop"),
            speedup=r.get("speedup"),
            comp_s=r["qpt"].get("compile_s"),
            pre_s=r["qpt"].get("precompute_s"),
            it_py=r["pyscf"].get("cycles"),
            it_qpt=r["qpt"].get("cycles"),
            rss_py=r["pyscf"].get("peak_rss_mb"),
            rss_qpt=r["qpt"].get("peak_rss_mb"),
            rss_one=r["qpt"].get("peak_rss_one_scf_mb"),
            rss_ratio=(r["qpt"].get("peak_rss_one_scf_mb") or float("nan")) / r["pyscf"]["peak_rss_mb"]
            if r["pyscf"].get("peak_rss_mb")
            else None,
            dE=r.get("dE"),
            it_ms=1e3 * r["per_iter_s"] if "per_iter_s" in r else None,
            floor_ms=1e3 * r["floor_s"] if "floor_s" in r else None,
            over=r.get("per_iter_over_floor"),
            target=r.get("target", ""),
            met={True: "yes", False: "NO"}.get(r.get("target_met"), ""),
        )
        for r in rows
    ]
    print()
    print(
        common.table(
            flat,
            [
                ("case", "case", "{}"),
                ("AOs", "n_ao", "{}"),
                ("ERI", "eri", "{}"),
                ("PySCF s", "py_s", "{:.2f}"),
                ("qpt s", "qpt_s", "{:.2f}"),
                ("qpt s (host loop)", "host_s", "{:.2f}"),
                ("PySCF/qpt", "speedup", "{:.2f}x"),
                ("compile s", "comp_s", "{:.1f}"),
                ("precomp s", "pre_s", "{:.2f}"),
                ("it PySCF", "it_py", "{}"),
                ("it qpt", "it_qpt", "{}"),
                ("RSS PySCF MB", "rss_py", "{:.0f}"),
                ("RSS qpt MB", "rss_qpt", "{:.0f}"),
                ("RSS 1 SCF MB", "rss_one", "{:.0f}"),
                ("RSS/PySCF", "rss_ratio", "{:.2f}x"),
                ("E_qpt-E_PySCF Ha", "dE", "{:+.1e}"),
                ("ms/iter", "it_ms", "{:.1f}"),
                ("floor ms", "floor_ms", "{:.2f}"),
                ("iter/floor", "over", "{:.1f}x"),
                ("target", "target", "{}"),
                ("met", "met", "{}"),
            ],
        )
    )
    q0 = next((r["qpt"] for r in rows if "rate_square_gflops" in r["qpt"]), {})
    if q0:
        print(
            f"\nmeasured float64 matmul: 2000x2000 {q0['rate_square_gflops']:.1f} GFLOP/s; "
            "tall-skinny (G x N)@(N x N) per case: "
            + ", ".join(
                f"{r['molecule']}/{r['basis']} {r['qpt']['rate_tall_gflops']:.1f}"
                for r in rows
                if "rate_tall_gflops" in r["qpt"]
            )
            + " GFLOP/s"
        )
        print(
            "flops per iteration: floor model (XC+J/K+eigh) / matmul flops counted on the jaxpr of "
            "the Fock build (J/K via autodiff) / XLA cost_analysis (counts a lax.scan body once): "
            + ", ".join(
                f"{r['molecule']}/{r['basis']} {r['qpt']['flops_iter']['total']:.2e} / "
                f"{r['qpt']['flops_iter']['counted_fock_matmul']:.2e} / "
                f"{r['qpt']['flops_iter']['xla_fock']:.2e}"
                for r in rows
                if "flops_iter" in r["qpt"]
            )
        )
    print(
        "RSS = whole-process high-water mark (Python + imports included; baseline after "
        "imports in the JSON). 'RSS qpt' is the timing process (two loops, flop counting); "
        "'RSS 1 SCF' a fresh process running one qpt_nb.scf, the memory per geometry "
        "(target for uracil/def2-SVP: <= 2x PySCF's). Threads: "
        + (f"{args.threads}" if args.threads else "library defaults (PySCF OpenMP and XLA use all cores)")
        + "."
    )
    info = common.machine_info()
    print("machine:", common.machine_line(info))
    common.write_json(
        json_path,
        dict(
            benchmark=NAME,
            mode="full" if args.full else "quick",
            settings=vars(args),
            machine=info,
            rows=rows,
            table=flat,
        ),
    )
    _plot(rows, png_path)
    print(f"wrote {json_path} and {png_path}")
    return rows


def _plot(rows, path):
    import numpy as np

    plt = common.pyplot()
    ok = [r for r in rows if "speedup" in r]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    if ok:
        labels = [f"{r['molecule']}\n{r['basis']}" for r in ok]
        x = np.arange(len(ok))
        ax = axes[0]
        ax.bar(x - 0.2, [r["pyscf"]["seconds"] for r in ok], 0.4, label="PySCF kernel()")
        ax.bar(x + 0.2, [r["qpt"]["seconds"] for r in ok], 0.4, label="qpt_nb.scf (incl. precompute)")
        for xi, r in zip(x, ok):
            ax.text(
                xi,
                max(r["pyscf"]["seconds"], r["qpt"]["seconds"]) * 1.15,
                f"{r['speedup']:.1f}x",
                ha="center",
                fontsize=8,
            )
        ax.set_yscale("log")
        ax.set_ylim(top=4 * max(r["pyscf"]["seconds"] for r in ok))
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("wall time (s)")
        ax.set_title("SCF wall time (ratio = PySCF / qpt_nb)")
        ax.legend(fontsize=8)
        ax = axes[1]
        ax.bar(x - 0.2, [1e3 * r["per_iter_s"] for r in ok], 0.4, label="qpt_nb measured / iteration")
        ax.bar(x + 0.2, [1e3 * r["floor_s"] for r in ok], 0.4, label="FLOP floor at measured matmul rate")
        for xi, r in zip(x, ok):
            ax.text(
                xi, 1e3 * r["per_iter_s"] * 1.15, f"{r['per_iter_over_floor']:.1f}x", ha="center", fontsize=8
            )
        ax.set_yscale("log")
        ax.set_ylim(top=4e3 * max(r["per_iter_s"] for r in ok))
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel("ms per SCF iteration")
        ax.set_title("time per iteration vs FLOP floor")
        ax.legend(fontsize=8)
    common.save_figure(fig, path)


if __name__ == "__main__":
    main()
