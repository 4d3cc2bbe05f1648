"""Which training settings let `make demo` learn in its few minutes: a seeded sweep.

Each row trains the demo's setting (uracil/STO-3G/B3LYP5, `nano`, grid level 1, MD
conformers, `qpt_nb.cli.demo.DEMO`) for the same number of optimiser steps with one
change of recipe, for two seeds, and scores it with `qpt_nb.evaluate` on the demo's
10 test conformers (seed 12345, PySCF labels at the same grid level, cached). Steps
rather than minutes are fixed, so rows are comparable on a shared machine; the
steady steps/s are printed too. Results are rewritten after every run (JSON), so an
interrupted sweep keeps what it measured.

  python bench/demo_recipe.py                      # all rows, 2 seeds, 120 steps
  python bench/demo_recipe.py --rows base wd0 --seeds 0 --steps 40
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "demo_recipe"
ROWS = {
    "base": dict(),  # the demo before this sweep
    "wd0": dict(weight_decay=0.0),
    "lr1e-3_wd0": dict(lr=1e-3, weight_decay=0.0),
    "lr2e-3_wd0": dict(lr=2e-3, weight_decay=0.0),
    "lr2e-3_wd0_reuse4": dict(lr=2e-3, weight_decay=0.0, reuse=4),
    "lr5e-3_wd0": dict(lr=5e-3, weight_decay=0.0),
    # the fast grid (training loss on a coarser grid in float32, evaluation unchanged):
    # the same minutes buy 5-10x more steps; "_steps" overrides --steps for the row
    "L1f32_lr1e-3_wd0_600": dict(
        train_grid_level=1, precision="float32", lr=1e-3, weight_decay=0.0, _steps=600
    ),
    "L0f32_lr1e-3_wd0_1200": dict(
        train_grid_level=0, precision="float32", lr=1e-3, weight_decay=0.0, _steps=1200
    ),
    "L0f32_lr5e-4_wd0_1200": dict(
        train_grid_level=0, precision="float32", lr=5e-4, weight_decay=0.0, _steps=1200
    ),
}


def row_steps(name, default):
    """Optimiser steps of row `name` (its "_steps", else `default`)."""
    return ROWS[name].get("_steps", default)


def run_row(name, change, seed, steps, n_test):
    import dataclasses

    import qpt_nb
    from qpt_nb.analysis.evaluation import make_test_set
    from qpt_nb.cli.demo import demo_fields
    from qpt_nb.learn.recipe import warmup_steps_for
    from qpt_nb.learn.train import TrainConfig, Trainer

    base = TrainConfig(
        **demo_fields(), sampler="md", decay_steps=steps, warmup_steps=warmup_steps_for(steps), seed=seed
    )
    cfg = dataclasses.replace(base, **{k: v for k, v in change.items() if not k.startswith("_")})
    test = make_test_set(cfg.molecule_object(), n_test, sampler="md", **cfg.sampler_kwargs())
    tr = Trainer(cfg)
    t0 = time.perf_counter()
    try:
        tr.run(steps)
    finally:
        tr.close()
    train_s = time.perf_counter() - t0
    res = qpt_nb.evaluate(tr, test)
    rec = tr.history[-1]
    return dict(
        row=name,
        seed=seed,
        steps=steps,
        change=change,
        train_s=train_s,
        steps_per_s=rec["steps_per_s"],
        compile_s=tr.timing["compile_s"],
        final_loss=rec["loss"],
        energy_mae_mev=res.trained["energy_mae_mev"],
        hamiltonian_mae_uha=res.trained["hamiltonian_mae_uha"],
        baseline_energy_mae_mev=res.baseline_w0["energy_mae_mev"],
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--n-test", type=int, default=10)
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / f"{NAME}.json"))
    args = p.parse_args(argv)
    out = dict(machine=common.machine_info(), command=" ".join(sys.argv), runs=[])
    path = Path(args.out)
    if path.is_file():  # continue an interrupted sweep
        out["runs"] = json.loads(path.read_text()).get("runs", [])
    done = {(r["row"], r["seed"], r["steps"]) for r in out["runs"]}
    for name in args.rows:
        for seed in args.seeds:
            steps = row_steps(name, args.steps)
            if (name, seed, steps) in done:
                continue
            r = run_row(name, ROWS[name], seed, steps, args.n_test)
            out["runs"].append(r)
            common.write_json(path, out)
            print(
                f"{name:20s} seed {seed}: E MAE {r['energy_mae_mev']:8.2f} meV  H MAE "
                f"{r['hamiltonian_mae_uha']:7.1f} uHa  (W=0: {r['baseline_energy_mae_mev']:.1f} meV)  "
                f"{r['steps_per_s']:.2f} steps/s",
                flush=True,
            )
    print(f"\n{'row':20s} {'E MAE (meV) per seed':>26s} {'mean':>8s} {'H MAE (uHa)':>12s}")
    for name in args.rows:
        sel = [r for r in out["runs"] if r["row"] == name and r["steps"] == row_steps(name, args.steps)]
        if sel:
            es = [r["energy_mae_mev"] for r in sel]
            hs = [r["hamiltonian_mae_uha"] for r in sel]
            ts = [r["train_s"] for r in sel]
            print(
                f"{name:20s} {', '.join(f'{e:.1f}' for e in es):>26s} {sum(es) / len(es):8.1f} "
                f"{sum(hs) / len(hs):12.1f}   train {sum(ts) / len(ts):.0f} s"
            )


if __name__ == "__main__":
    main()
