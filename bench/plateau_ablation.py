"""Why the label-free energy loss plateaus: one row per training setting, same budget, 2 seeds.

Each row trains uracil/STO-3G/B3LYP5 `nano` label-free on fresh MD conformers from the
measured recipe (`qpt_nb.learn.recipe.RECIPE`: loss on grid 0 in float32, lr 1e-3, no
weight decay) with one change, for the same wall-clock budget per run (`--minutes`, the
cosine fitted to it by `qpt_nb.learn.recipe.fit_schedule`), and is scored on the held-out
test set of bench/labels_vs_dft_loss.py (100 MD conformers, seed 12345, PySCF labels at
grid 3 from the label cache; `--test-cache` holds their precomputed tensors). Every run
is single-threaded, so two processes started side by side share the work: each claims
the next (row, seed) not yet done (an exclusive claim file), and writes one JSON per run
into bench/results/plateau_ablation/, so an interrupted sweep keeps what it measured.
`--report` prints the table (mean and spread of the seeds) and writes
bench/results/plateau_ablation.json.

  export OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
  python bench/labels_vs_dft_loss.py --full --prelabel-only --test-cache /tmp/qpt_test
  for lane in 1 2; do python bench/plateau_ablation.py --test-cache /tmp/qpt_test & done; wait
  python bench/plateau_ablation.py --report

Rows: keys are `TrainConfig` fields; "_curriculum": (loss, fraction) trains the first
fraction of the fitted steps with that loss, then resumes with the row's loss. The base of
every row is the recipe of 2026-12-02 (RECIPE with the consecutive data schedule and no
parameter average), so the rows of the 5-minute sweep keep their meaning.

The data-schedule sweep (2026-12-06; `qpt_nb.learn.schedule`): `--rows` from WINDOW_ROWS,
with a budget of process CPU time (`--clock cpu`: main thread, prefetch and PySCF, charged
by `qpt_nb.analysis.timing.ChargedTime`; the cosine fitted to it by
`qpt_nb.learn.recipe.BudgetFit`), evaluation not charged:

  for lane in 1 2; do python bench/plateau_ablation.py --test-cache /work/qpt_test \
      --clock cpu --minutes 15 --rows window & done; wait
  python bench/plateau_ablation.py --report --clock cpu --minutes 15
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "plateau_ablation"
OUT_DIR = common.RESULTS / NAME
ROWS = {
    "recipe": dict(),
    "wd1e-3": dict(weight_decay=1e-3),
    "wd0.1": dict(weight_decay=0.1),
    "lr3e-4": dict(lr=3e-4),
    "lr3e-3": dict(lr=3e-3),
    "reuse4": dict(reuse=4),
    "reuse64": dict(reuse=64),
    "batch4": dict(batch_size=4),
    "n_refine1": dict(n_refine=1),
    "n_refine6": dict(n_refine=6),
    "grid3_f64": dict(train_grid_level=3, precision="float64"),
    "grid1_f32": dict(train_grid_level=1),
    "sc_to_energy": dict(_curriculum=("self_consistency", 0.3)),
    "refined_target": dict(loss="refined_target"),
    "refined_to_energy": dict(_curriculum=("refined_target", 0.5)),
    # the data-schedule sweep (issue: converging training); EMA decay 0.998 averages over
    # about 500 steps, the last eighth of a 15-minute run
    "consec16": dict(data_schedule="consecutive"),
    "window16": dict(data_schedule="window"),
    "window16_ema": dict(data_schedule="window", ema_decay=0.998),
    "window16_b8": dict(data_schedule="window", batch_size=8),
    "window4": dict(data_schedule="window", reuse=4),
    "window16_b4": dict(data_schedule="window", batch_size=4),
    "consec4": dict(data_schedule="consecutive", reuse=4),
    "window16_ema_lr3e-3": dict(data_schedule="window", ema_decay=0.998, lr=3e-3),
    "window16_mixall": dict(data_schedule="window", mix_every=True),
}
# the data-schedule sweep's rows, most telling first
WINDOW_ROWS = (
    "consec16",
    "window16",
    "window16_ema",
    "window16_b8",
    "window4",
    "window16_b4",
    "consec4",
    "window16_ema_lr3e-3",
    "window16_mixall",
)
# the rows run by default, most telling first (seed-major, so a short session gets each once)
DEFAULT_ROWS = (
    "recipe",
    "wd0.1",
    "wd1e-3",
    "lr3e-4",
    "lr3e-3",
    "reuse4",
    "batch4",
    "n_refine1",
    "grid3_f64",
    "sc_to_energy",
    "refined_target",
    "refined_to_energy",
)
TEST = dict(molecule="uracil", basis="sto-3g", xc="b3lyp5", grid_level=3, n_test=100)


def base_config(seed: int):
    from qpt_nb.learn.recipe import RECIPE
    from qpt_nb.learn.train import TrainConfig

    return TrainConfig(
        molecule=TEST["molecule"],
        basis=TEST["basis"],
        xc=TEST["xc"],
        grid_level=TEST["grid_level"],
        model="nano",
        sampler="md",
        seed=seed,
        warmup_steps=100,
        checkpoint_every=10**9,
        log_every=10,
        **{**RECIPE, "data_schedule": "consecutive", "ema_decay": 0.0},
    )


def run_cpu_budget(cfg, run_dir, minutes: float):
    """Trains `cfg` for `minutes` of this process's CPU time (all threads), the cosine fitted
    to that budget by `BudgetFit` on the same clock. Returns (Trainer, wall s, CPU s)."""
    from qpt_nb.analysis.timing import ChargedTime
    from qpt_nb.learn.recipe import BudgetFit
    from qpt_nb.learn.train import Trainer

    budget = 60.0 * minutes
    meter, fit = ChargedTime(time.process_time), BudgetFit(budget)
    tr = Trainer(cfg, run_dir)

    def should_stop():
        fit(tr, meter.seconds)
        return meter.seconds >= budget

    tr.run(None, should_stop=should_stop)
    return tr, meter.wall_seconds, meter.seconds, (fit.result or {}).get("decay_steps", tr.step)


def run_one(name: str, seed: int, minutes: float, monitor_args: dict, run_root: Path, clock="wall") -> dict:
    import shutil

    from qpt_nb.learn.recipe import fit_schedule
    from qpt_nb.learn.train import Trainer

    change = ROWS[name]
    fields = {k: v for k, v in change.items() if not k.startswith("_")}
    cfg = dataclasses.replace(base_config(seed), **fields)
    final_loss = cfg.loss
    curriculum = change.get("_curriculum")
    run_dir = run_root / f"{name}_s{seed}_{clock}"
    shutil.rmtree(run_dir, ignore_errors=True)
    if clock == "cpu":
        if curriculum:
            raise ValueError("curriculum rows run on the wall clock")
        tr, train_wall, train_cpu, steps = run_cpu_budget(cfg, run_dir, minutes)
        return _score(
            tr, name, seed, minutes, monitor_args, final_loss, train_wall, train_cpu, steps, None, clock
        )
    t0, c0 = time.perf_counter(), time.process_time()
    # the schedule is fitted on the final loss's step rate (a cheaper first loss then
    # ends the run a little before the budget: the CPU minutes are reported)
    tr, steps = fit_schedule(Trainer(cfg, run_dir), minutes, start=t0)
    left = lambda: 60.0 * minutes - (time.perf_counter() - t0)  # noqa: E731
    switch = None
    if curriculum:
        first, frac = curriculum
        switch = int(frac * steps)
        tr.close()
        tr = Trainer.resume(run_dir, config=dataclasses.replace(tr.config, loss=first))
        tr.run(max(switch - tr.step, 0), max_seconds=max(left(), 1.0))
        tr.close()
        tr = Trainer.resume(run_dir, config=dataclasses.replace(tr.config, loss=final_loss))
    tr.run(max(steps - tr.step, 0), max_seconds=max(left(), 1.0))
    train_wall, train_cpu = time.perf_counter() - t0, time.process_time() - c0
    return _score(
        tr, name, seed, minutes, monitor_args, final_loss, train_wall, train_cpu, steps, switch, "wall"
    )


def _score(tr, name, seed, minutes, monitor_args, final_loss, train_wall, train_cpu, steps, switch, clock):
    from qpt_nb.analysis.evaluation import make_monitor, make_test_set
    from qpt_nb.dft import reference

    change = ROWS[name]
    params, hist, done = tr.params, list(tr.history), tr.step
    eval_cfg = dataclasses.replace(tr.config, loss=final_loss)
    tr.close()

    mol = eval_cfg.molecule_object()
    test = make_test_set(mol, TEST["n_test"], sampler="md", **eval_cfg.sampler_kwargs())
    labels = reference.label_many(
        test, eval_cfg.basis, xc=eval_cfg.xc, grid_level=eval_cfg.grid_level, eri=eval_cfg.eri
    )
    monitor = make_monitor(eval_cfg, test, labels, **monitor_args)
    m = monitor(params)
    losses = [r["loss"] for r in hist if "loss" in r]
    return dict(
        row=name,
        seed=seed,
        change={k: list(v) if isinstance(v, tuple) else v for k, v in change.items()},
        minutes=minutes,
        clock=clock,
        batch_size=eval_cfg.batch_size,
        conformer_steps_per_cpu_s=done * eval_cfg.batch_size / max(train_cpu, 1e-9),
        config=eval_cfg.to_json(),
        steps=done,
        scheduled_steps=steps,
        switch_step=switch,
        train_wall_s=train_wall,
        train_cpu_s=train_cpu,
        steps_per_s=done / max(train_wall, 1e-9),
        final_train_loss=losses[-1] if losses else None,
        energy_mae_mev=m["energy_mae_mev"],
        hamiltonian_mae_uha=m["hamiltonian_mae_uha"],
        machine=common.machine_info(),
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )


def _claim(path: Path) -> bool:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def _result_name(name, seed, args) -> str:
    unit = "cpumin" if args.clock == "cpu" else "min"  # the wall-clock files keep their names
    return f"{name}_s{seed}_{args.minutes:g}{unit}.json"


def sweep(args):
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    monitor_args = dict(chunk_size=8, keep_bytes=args.monitor_gb * 1e9, tensor_cache=args.test_cache)
    run_root = Path(args.runs)
    for seed in args.seeds:  # seed-major: a short session still gets every row once
        for name in args.rows:
            out = OUT_DIR / _result_name(name, seed, args)
            if out.is_file() or not _claim(out.with_suffix(".claim")):
                continue
            print(f"-- {name} seed {seed}: {ROWS[name] or 'the recipe'}", flush=True)
            try:
                r = run_one(name, seed, args.minutes, monitor_args, run_root, args.clock)
            except BaseException:
                out.with_suffix(".claim").unlink(missing_ok=True)  # let another lane retry it
                raise
            common.write_json(out, r)
            out.with_suffix(".claim").unlink(missing_ok=True)
            print(
                f"   {name} seed {seed}: {r['steps']} steps in {r['train_wall_s'] / 60:.1f} min "
                f"(CPU {r['train_cpu_s'] / 60:.1f} min): E MAE {r['energy_mae_mev']:.2f} meV, "
                f"H MAE {r['hamiltonian_mae_uha']:.1f} uHa",
                flush=True,
            )


def report(args):
    runs = [json.loads(p.read_text()) for p in sorted(OUT_DIR.glob("*.json"))]
    rows = []
    for name in ROWS:
        sel = [
            r
            for r in runs
            if r["row"] == name and r["minutes"] == args.minutes and r.get("clock", "wall") == args.clock
        ]
        if not sel:
            continue
        es = [r["energy_mae_mev"] for r in sel]
        rate = [r.get("conformer_steps_per_cpu_s") for r in sel]
        hs = [r["hamiltonian_mae_uha"] for r in sel]
        rows.append(
            dict(
                row=name,
                change=json.dumps(ROWS[name]) if ROWS[name] else "recipe",
                seeds=len(sel),
                steps=round(sum(r["steps"] for r in sel) / len(sel)),
                cpu_min=sum(r["train_cpu_s"] for r in sel) / len(sel) / 60,
                e_mev=sum(es) / len(es),
                e_spread=max(es) - min(es),
                e_seeds=", ".join(f"{e:.1f}" for e in es),
                h_uha=sum(hs) / len(hs),
                h_spread=max(hs) - min(hs),
                h_range=f"{min(hs):.0f}-{max(hs):.0f}",
                e_range=f"{min(es):.1f}-{max(es):.1f}",
                conf_steps_per_cpu_s=(sum(rate) / len(rate)) if all(rate) else float("nan"),
            )
        )
    cols = [
        ("row", "row", "{}"),
        ("seeds", "seeds", "{}"),
        ("steps", "steps", "{}"),
        ("CPU min", "cpu_min", "{:.1f}"),
        ("E MAE meV", "e_mev", "{:.1f}"),
        ("spread", "e_spread", "{:.1f}"),
        ("per seed", "e_seeds", "{}"),
        ("H MAE uHa", "h_uha", "{:.0f}"),
        ("H min-max", "h_range", "{}"),
        ("conf-steps/CPU s", "conf_steps_per_cpu_s", "{:.2f}"),
    ]
    print(
        f"{args.minutes:g} {args.clock} min per run, {TEST['n_test']} test conformers (grid {TEST['grid_level']})"
    )
    print(common.table(rows, cols))
    suffix = "" if args.clock == "wall" else f"_{args.minutes:g}cpumin"
    common.write_json(
        common.RESULTS / f"{NAME}{suffix}.json",
        dict(benchmark=NAME, minutes=args.minutes, clock=args.clock, rows=rows, runs=runs),
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--rows",
        nargs="+",
        default=list(DEFAULT_ROWS),
        choices=list(ROWS) + ["window"],
        help="rows to run ('window': the data-schedule sweep, WINDOW_ROWS)",
    )
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="what the budget counts")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--minutes", type=float, default=5.0, help="wall-clock budget per run")
    p.add_argument("--test-cache", help="folder of precomputed test tensors (shared by the lanes)")
    p.add_argument("--monitor-gb", type=float, default=2.0, help="test tensors kept in memory per lane")
    p.add_argument("--runs", default="runs/plateau_ablation", help="run directories")
    p.add_argument("--report", action="store_true", help="print the table of the runs done")
    args = p.parse_args(argv)
    if "window" in args.rows:
        args.rows = [r for r in args.rows if r != "window"] + list(WINDOW_ROWS)
    return report(args) if args.report else sweep(args)


if __name__ == "__main__":
    main()
