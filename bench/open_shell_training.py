"""Label-free training on a radical: the allyl radical (C3H5, a doublet), UKS sandwich.

Each row trains the recipe (`qpt_nb.learn.recipe.RECIPE`, the research code's sliding window,
the cosine fitted to the budget) label-free for --minutes of this process's CPU time on MD
conformers (GFN2-xTB, multiplicity 2), then scores it with `qpt_nb.evaluate` on --n-test
held-out MD conformers (test seed 12345) against PySCF ``dft.UKS`` labels, beside the
W = 0 sandwich (three unrestricted iterations from minao). The two ways the network gives
W_alpha and W_beta (`QPTConfig.spin_readout`: 'per_spin' readouts or a spin 'embedding')
are rows of their own.

  python bench/open_shell_training.py                              # both readouts, seeds 0 1
  python bench/open_shell_training.py --rows per_spin-s0 --minutes 2  # one row, short

Results: one JSON per row in bench/results/open_shell_allyl/ (written when the row ends; a
complete row with the same budget is skipped on a rerun, so two processes can run different
rows side by side); runs in runs/open-shell-<row>. ``--summary`` prints the table of all rows. Targets (the open-shell issue): energy
MAE <= 20 meV and >= 100x below W = 0's after 10 CPU minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import train_pretrained as tp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "open_shell_allyl"
ROWS = ("per_spin-s0", "embedding-s0", "per_spin-s1", "embedding-s1")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=list(ROWS), help="READOUT-sSEED rows (default: all)")
    p.add_argument("--minutes", type=float, default=10.0, help="CPU minutes of training per row")
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--grid-level", type=int, default=3, help="labels and evaluation (training: grid 0)")
    p.add_argument("--out", default=str(OUT), help="folder of the per-row JSON files")
    p.add_argument("--summary", action="store_true", help="print the table of the rows done and stop")
    return p.parse_args(argv)


def run_row(row: str, args) -> dict:
    readout, seed = row.rsplit("-s", 1)
    targs = tp.parse_args(
        [
            "--molecule", "allyl", "--grid-level", str(args.grid_level), "--sampler", "md",
            "--seed", seed, "--set", f"spin_readout={readout}", "--minutes", str(args.minutes),
            "--clock", "cpu", "--n-test", str(args.n_test),
        ]
    )  # fmt: skip
    cfg = tp.base_config(targs)
    run_dir = ROOT / "runs" / f"open-shell-{row}"
    shutil.rmtree(run_dir, ignore_errors=True)  # an incomplete row starts again
    tr, wall, cpu = tp.train(cfg, run_dir, steps=None, minutes=args.minutes, clock="cpu")
    from qpt_nb.analysis.evaluation import TEST_SEED, evaluate

    res = evaluate((tr.config, tr.params), args.n_test)  # MD test set, seed 12345, PySCF UKS labels
    print(row, "\n" + res.table(), flush=True)
    meta = res.metadata
    trained, base = res.trained, res.baseline_w0
    s2 = [r.get("spin_square") for r in tr.history if "spin_square" in r]
    return dict(
        readout=readout,
        seed=int(seed),
        steps=tr.step,
        train_cpu_seconds=cpu,
        train_wall_seconds=wall,
        trained=trained,
        baseline_w0=base,
        energy_ratio_vs_w0=base["energy_mae_mev"] / trained["energy_mae_mev"],
        hamiltonian_ratio_vs_w0=base["hamiltonian_mae_uha"] / trained["hamiltonian_mae_uha"],
        train_spin_square_max=max(s2) if s2 else None,
        spin_contaminated_steps=sum(bool(r.get("spin_contaminated")) for r in tr.history),
        test_set=dict(n=args.n_test, sampler=tr.config.sampler, seed=TEST_SEED, stride=50),
        labels=dict(
            basis=meta["basis"], xc=meta["xc"], grid_level=meta["grid_level"], eri_kind=meta["eri_kind"]
        ),
    )


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    if args.summary:
        print(summary(out))
        return
    import qpt_nb  # noqa: F401  (float64)
    from qpt_nb.fileio import save_json

    info = common.machine_info()
    for row in args.rows:
        path = out / f"{row}.json"
        if path.is_file() and json.loads(path.read_text()).get("minutes") == args.minutes:
            print(f"{row}: complete, skipped", flush=True)
            continue
        rec = run_row(row, args)
        rec.update(
            minutes=args.minutes,
            molecule="allyl",
            basis="sto-3g",
            xc="b3lyp5",
            machine=common.machine_line(info),
            date=info["date"],
            command="python bench/open_shell_training.py " + " ".join(sys.argv[1:] if argv is None else argv),
            units=dict(energy="meV", hamiltonian="uHa", mo_energy="uHa", seconds="s"),
        )
        out.mkdir(parents=True, exist_ok=True)
        save_json(path, rec)
    print(summary(out), flush=True)


def summary(folder: Path) -> str:
    """The table of every row's JSON in `folder`."""
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}
    lines = [
        f"{'row':16s} {'steps':>7s} {'E MAE meV':>10s} {'W=0 meV':>9s} {'ratio':>7s} {'H uHa':>8s} {'<S2> MAE':>9s}"
    ]
    for row, r in rows.items():
        t, b = r["trained"], r["baseline_w0"]
        lines.append(
            f"{row:16s} {r['steps']:7d} {t['energy_mae_mev']:10.2f} {b['energy_mae_mev']:9.1f} "
            f"{r['energy_ratio_vs_w0']:7.1f} {t['hamiltonian_mae_uha']:8.1f} {t['spin_square_mae']:9.4f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
