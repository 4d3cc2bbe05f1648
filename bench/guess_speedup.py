"""SCF started from the trained QPT's density vs the usual initial guesses; predict throughput.

For each held-out test conformer (`make_test_set`, seed 12345), to conv_tol 1e-10 with the
run's basis, functional, grid level and ERI kind (DIIS 8):
  * PySCF RKS from the model's density (`initial_guess`: precompute + network +
    3-iteration sandwich, rotated back to the input frame) and from PySCF's 'minao',
    'atom' and 'huckel' guesses (`qpt_nb.analysis.guesses.guess_speedup`);
  * qpt_nb's own SCF (`qpt_nb.scf`, device loop) from minao, and from the model
    (`qpt_nb.model_scf`: the prediction's tensors reused, no second precompute)
    (`qpt_nb_guess_speedup`).
Every row's seconds are what a user waits for one conformer: PySCF's kernel (it builds its
integrals and grid inside), qpt_nb's precompute + SCF, the model's prediction + SCF.
Printed: mean cycles and seconds per row, the ratios the issue's targets name, and
`qpt_nb.predict`'s throughput on --predict-frames MD frames against PySCF's SCF per frame.

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
    from qpt_nb.learn.conformers import md_or_fallback
    from qpt_nb.learn.train import TrainConfig, Trainer

    sampler = md_or_fallback("md")
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
    p.add_argument(
        "--predict-frames", type=int, help="MD frames for predict's throughput (quick 8, full 100)"
    )
    args = p.parse_args(argv)
    n_test = args.n_test or (20 if args.full else 4)
    json_path, png_path = common.out_paths(args, NAME)
    import qpt_nb  # noqa: F401
    from qpt_nb.analysis.evaluation import make_test_set, resolve_model
    from qpt_nb.analysis.guesses import guess_speedup, qpt_nb_guess_speedup

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
        own = qpt_nb_guess_speedup(run, test, conv_tol=args.conv_tol)
    summ, g_s = res["summary"], res["model_guess_seconds"]
    rows = [
        dict(
            guess=f"PySCF {g}",
            cycles=s["mean_cycles"],
            seconds=s["mean_seconds"] + (g_s if g == "model" else 0.0),
            conv=f"{s['converged']}/{n_test}",
        )
        for g, s in summ.items()
    ]
    rows += [
        dict(guess=g, cycles=s["mean_cycles"], seconds=s["mean_seconds"], conv=f"{s['converged']}/{n_test}")
        for g, s in own["summary"].items()
    ]
    best = next(r for r in rows if r["guess"] == "qpt_nb model")
    for r in rows:
        r["cyc_ratio"] = r["cycles"] / best["cycles"]
        r["t_ratio"] = r["seconds"] / best["seconds"]
    print()
    print(
        common.table(
            rows,
            [
                ("start", "guess", "{}"),
                ("mean cycles", "cycles", "{:.1f}"),
                ("mean s per conformer", "seconds", "{:.3f}"),
                ("converged", "conv", "{}"),
                ("cycles / qpt_nb model's", "cyc_ratio", "{:.2f}x"),
                ("seconds / qpt_nb model's", "t_ratio", "{:.2f}x"),
            ],
        )
    )
    by = {r["guess"]: r for r in rows}
    targets = dict(
        cycles_model_over_minao=by["qpt_nb model"]["cycles"] / by["qpt_nb minao"]["cycles"],
        speedup_vs_qpt_nb_minao=by["qpt_nb minao"]["seconds"] / by["qpt_nb model"]["seconds"],
        speedup_vs_pyscf_minao=by["PySCF minao"]["seconds"] / by["qpt_nb model"]["seconds"]
        if "PySCF minao" in by
        else None,
    )
    print(
        f"PySCF model row: PySCF's kernel + the model's guess ({g_s:.3f} s per conformer). qpt_nb rows: "
        f"compiled beforehand ({own['warmup_seconds']:.1f} s on the first conformer). Model-seeded "
        f"and minao SCF energies agree to {own['max_energy_difference']:.1e} Ha."
    )
    print(
        f"targets: qpt_nb cycles from the model / from minao {targets['cycles_model_over_minao']:.2f} "
        f"(target <= 0.3); net speed-up over qpt_nb from minao {targets['speedup_vs_qpt_nb_minao']:.2f}x "
        f"(>= 2); over PySCF from minao "
        + (f"{targets['speedup_vs_pyscf_minao']:.2f}x (>= 3)" if targets["speedup_vs_pyscf_minao"] else "n/a")
    )
    n_frames = args.predict_frames or (100 if args.full else 8)
    throughput = predict_throughput(run, cfg, n_frames, by.get("PySCF minao"))
    print(f"benchmark took {t.seconds + throughput['wall_seconds']:.1f} s")
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
            qpt_nb=own,
            targets=targets,
            predict=throughput,
            table=rows,
        ),
    )
    _plot(rows, png_path, f"{cfg.molecule}/{cfg.basis}/{cfg.xc}, {n_test} test conformers")
    print(f"wrote {json_path} and {png_path}")
    return res


def predict_throughput(run, cfg, n_frames: int, pyscf_minao) -> dict:
    """`qpt_nb.predict` on `n_frames` MD frames (test seed + 1, so not the test set): frames
    per second, compilation excluded, against PySCF's SCF per frame from minao."""
    from qpt_nb.analysis.evaluation import TEST_SEED, make_test_set
    from qpt_nb.analysis.predict import predict

    frames = make_test_set(
        cfg.molecule_object(), n_frames, sampler=cfg.sampler, seed=TEST_SEED + 1, **cfg.sampler_kwargs()
    )
    with common.Timer() as t:
        preds = predict(run, frames)
    fps = len(preds) / max(preds.wall_seconds - preds.compile_seconds, 1e-12)
    pyscf_fps = 1.0 / pyscf_minao["seconds"] if pyscf_minao else None
    line = (
        f"qpt_nb.predict on {n_frames} {cfg.sampler} frames: {fps:.2f} frames/s "
        f"({preds.compile_seconds:.1f} s of compilation excluded; {t.seconds:.1f} s wall in all)"
    )
    if pyscf_fps:
        line += (
            f"; PySCF's SCF from minao: {pyscf_fps:.2f} frames/s (predict {fps / pyscf_fps:.1f}x that rate)"
        )
    print(line)
    return dict(
        n_frames=n_frames,
        frames_per_second=fps,
        pyscf_scf_frames_per_second=pyscf_fps,
        compile_seconds=preds.compile_seconds,
        wall_seconds=t.seconds,
    )


def _plot(rows, path, title):
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    names = [r["guess"].replace(" ", "\n", 1) for r in rows]
    colors = ["C3" if "model" in r["guess"] else ("C2" if "qpt_nb" in r["guess"] else "C0") for r in rows]
    axes[0].bar(names, [r["cycles"] for r in rows], color=colors)
    axes[0].set_ylabel("mean SCF cycles")
    axes[1].bar(names, [r["seconds"] for r in rows], color=colors)
    axes[1].set_ylabel("mean seconds per conformer (guess included)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title)
    common.save_figure(fig, path)


if __name__ == "__main__":
    main()
