"""PySCF SCF started from the trained QPT's density vs PySCF's own initial guesses.

For each held-out test conformer (`evaluate.make_test_set`, seed 12345) PySCF RKS is run
to conv_tol 1e-10 (the run's basis, functional, grid level and ERI kind; DIIS 8) from
  * the model's density (`evaluate.initial_guess`: precompute + network + 3-iteration
    sandwich, rotated back to the input frame), and
  * PySCF's 'minao', 'atom' and 'huckel' guesses,
through `evaluate.guess_speedup`. Printed: mean SCF cycles and kernel seconds per guess,
their ratios to the model's, and the net speed-up once the model's own guess time is paid.

  python bench/guess_speedup.py                    # quick: trains a short water run itself
  python bench/guess_speedup.py --run runs/uracil  # a trained run, 4 test conformers
  python bench/guess_speedup.py --full --run runs/uracil   # 20 test conformers
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "guess_speedup"
GUESSES = ("minao", "atom", "huckel")


def train_quick_run(run_dir: Path, steps: int) -> Path:
    """A short label-free water/STO-3G run (grid level 1) to have a model to test."""
    from qpt_nb.learn.train import TrainConfig, Trainer

    try:
        import tblite  # noqa: F401

        sampler = "md"
    except ImportError:
        sampler = "wiggle"
    cfg = TrainConfig(
        molecule="water",
        basis="sto-3g",
        grid_level=1,
        model="nano",
        sampler=sampler,
        warmup_steps=20,
        checkpoint_every=10**9,
        log_every=50,
    )
    tr = Trainer(cfg, run_dir)
    with common.Timer() as t:
        tr.run(steps)
    tr.close()
    print(f"   trained {steps} steps in {t.seconds:.1f} s -> {run_dir}", flush=True)
    return run_dir


def main(argv=None):
    p = common.make_parser(__doc__, NAME)
    p.add_argument("--run", help="trained run directory (default in quick mode: train one)")
    p.add_argument("--n-test", type=int, help="test conformers (quick 4, full 20)")
    p.add_argument("--train-steps", type=int, default=150, help="steps of the quick water run")
    p.add_argument("--conv-tol", type=float, default=1e-10)
    p.add_argument("--guesses", default=",".join(GUESSES))
    args = p.parse_args(argv)
    n_test = args.n_test or (20 if args.full else 4)
    json_path, png_path = common.out_paths(args, NAME)
    import qpt_nb  # noqa: F401
    from qpt_nb.analysis.evaluation import guess_speedup, make_test_set, resolve_model

    if args.run:
        run = Path(args.run)
    elif args.full:
        p.error(
            "--full needs --run DIR (e.g. qpt-nb train --molecule uracil --steps 20000 --out runs/uracil)"
        )
    else:
        import tempfile

        print("-- no --run given: training a short water run (temporary folder)", flush=True)
        tmp = tempfile.TemporaryDirectory(prefix="qpt_guess_run_")
        run = train_quick_run(Path(tmp.name), args.train_steps)
    cfg, _, step = resolve_model(run)
    test = make_test_set(cfg.molecule_object(), n_test, sampler=cfg.sampler, **cfg.sampler_kwargs())
    guesses = tuple(g for g in args.guesses.split(",") if g)
    print(
        f"-- {cfg.molecule}/{cfg.basis}/{cfg.xc} grid {cfg.grid_level}, run {run} (step {step}), "
        f"{n_test} test conformers, guesses model + {', '.join(guesses)}",
        flush=True,
    )
    with common.Timer() as t:
        res = guess_speedup(run, test, guesses=guesses, conv_tol=args.conv_tol)
    summ, g_s = res["summary"], res["model_guess_seconds"]
    model = summ["model"]
    rows = []
    for g, s in summ.items():
        rows.append(
            dict(
                guess=g,
                cycles=s["mean_cycles"],
                seconds=s["mean_seconds"],
                conv=f"{s['converged']}/{n_test}",
                cyc_ratio=s["mean_cycles"] / model["mean_cycles"],
                t_ratio=s["mean_seconds"] / model["mean_seconds"],
                net=s["mean_seconds"] / (model["mean_seconds"] + g_s),
            )
        )
    print()
    print(
        common.table(
            rows,
            [
                ("guess", "guess", "{}"),
                ("mean cycles", "cycles", "{:.1f}"),
                ("mean kernel s", "seconds", "{:.3f}"),
                ("converged", "conv", "{}"),
                ("cycles / model's", "cyc_ratio", "{:.2f}x"),
                ("time / model's", "t_ratio", "{:.2f}x"),
                ("time / (model's + guess cost)", "net", "{:.2f}x"),
            ],
        )
    )
    print(
        f"model guess cost (precompute + network + sandwich, after the first): {g_s:.3f} s "
        f"per conformer; benchmark took {t.seconds:.1f} s"
    )
    info = common.machine_info()
    print("machine:", common.machine_line(info))
    common.write_json(
        json_path,
        dict(
            benchmark=NAME,
            mode="full" if args.full else "quick",
            settings=dict(vars(args), n_test=n_test),
            run=str(run),
            run_step=step,
            config=cfg.to_json(),
            machine=info,
            result=res,
            table=rows,
        ),
    )
    _plot(rows, g_s, png_path, f"{cfg.molecule}/{cfg.basis}/{cfg.xc}, {n_test} test conformers")
    print(f"wrote {json_path} and {png_path}")
    return res


def _plot(rows, guess_s, path, title):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [r["guess"] for r in rows]
    colors = ["C3" if n == "model" else "C0" for n in names]
    axes[0].bar(names, [r["cycles"] for r in rows], color=colors)
    axes[0].set_ylabel("mean PySCF SCF cycles")
    axes[1].bar(names, [r["seconds"] for r in rows], color=colors, label="PySCF kernel")
    axes[1].bar(["model"], [guess_s], bottom=[rows[0]["seconds"]], color="C1", label="model's guess cost")
    axes[1].set_ylabel("mean seconds per conformer")
    axes[1].legend(fontsize=8)
    fig.suptitle(title)
    common.save_figure(fig, path)


if __name__ == "__main__":
    main()
