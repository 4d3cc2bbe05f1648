"""Train a model label-free, score it on held-out conformers and ship it in qpt_nb/pretrained/.

The run is an ordinary `Trainer` run directory (config.json, history.jsonl, checkpoint.ckpt;
`qpt-nb evaluate --run DIR` and `qpt-nb predict --run DIR` work on it). With a time budget
(--minutes) and no --steps, a short calibration measures the steady steps/s first and the
cosine schedule is then stretched to the steps that fit (one `Trainer.resume` with the new
decay length), so the learning rate reaches its floor when the budget ends. The model is
scored with `qpt_nb.evaluate` on --n-test MD (or normal-mode) conformers drawn with the test
seed 12345, once with its float64 parameters and once rounded to float32; float32 is shipped
when no metric moves by 1 % or more (`qpt_nb.pretrained.save`; each .npz <= 2 MB).

  python bench/train_pretrained.py                             # water/STO-3G/B3LYP5 nano, 3 min
  python bench/train_pretrained.py --molecule uracil --minutes 30
  python bench/train_pretrained.py --molecule uracil --steps 20000 --grid-level 1 --n-test 50

  # ship a model trained elsewhere (a benchmark's run directory, e.g. bench/headline_runs.sh's
  # def2-SVP runs), scored and predicting with exact integrals though trained with density fitting
  # (--eval-turns: its two evaluations take turns with the budget runs beside it)
  python bench/train_pretrained.py --from-run RUNS/Qsvp-s0/Q --eri dense --n-test 100 \
      --eval-turns --name uracil_def2-svp_b3lyp5_nano

Single process; PySCF labels of the test set are cached (`qpt_nb.dft.reference`). The .npz
and .json land in qpt_nb/pretrained/ (--folder elsewhere); nothing else in the checkout is
touched except the run directory (default runs/pretrained-NAME).
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLOAT32_TOLERANCE = 0.01  # largest relative change of a test metric float32 storage may cause


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--molecule", default="water", help="built-in molecule (default water)")
    p.add_argument("--basis", default="sto-3g")
    p.add_argument("--xc", default="b3lyp5")
    p.add_argument("--model", default="nano", help="QPT preset")
    p.add_argument("--grid-level", type=int, default=1, help="grid of training, labels and predictions")
    p.add_argument("--sampler", default="md", help="md (GFN2-xTB; normal_modes without tblite) or wiggle")
    p.add_argument("--minutes", type=float, default=3.0, help="training budget (see --clock)")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="what --minutes counts: wall-clock, or this process's CPU time (all threads), so that "
        "a run beside others on a shared machine gets its budget",
    )
    p.add_argument("--steps", type=int, help="schedule length (default: what fits in --minutes)")
    p.add_argument("--warmup", type=int, default=200, help="warm-up steps (at most a fifth of the run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="other TrainConfig fields")
    p.add_argument("--n-test", type=int, default=20, help="held-out test conformers (seed 12345)")
    p.add_argument("--name", help="model name (default MOLECULE_BASIS_XC_MODEL)")
    p.add_argument("--run-dir", help="run directory (default runs/pretrained-NAME; must not hold a run)")
    p.add_argument("--folder", help="where the .npz/.json go (default qpt_nb/pretrained/)")
    p.add_argument("--dtype", choices=("auto", "float32", "float64"), default="auto")
    p.add_argument(
        "--from-run",
        metavar="DIR",
        help="ship the model of this run directory instead of training one (its settings; "
        "--molecule, --basis, --minutes and the other training options are ignored)",
    )
    p.add_argument(
        "--eri",
        choices=("auto", "dense", "df"),
        help="ERIs the shipped model predicts with and is scored with (default: the training's); "
        "'dense' for a model trained with density fitting that should match exact-integral labels",
    )
    p.add_argument(
        "--eval-turns",
        action="store_true",
        help="score while holding the machine's evaluation lock, taking turns with budget runs "
        "beside it that evaluate with --eval-turns (qpt_nb.analysis.budget.one_at_a_time)",
    )
    return p.parse_args(argv)


def from_run(run_dir):
    """(config, params, steps, CPU seconds charged or None) of a finished run directory; the
    seconds are the budget run's charged time (`qpt_nb.analysis.budget`) when it was one."""
    from qpt_nb.analysis import budget
    from qpt_nb.analysis.runs import resolve_model

    cfg, params, step = resolve_model(str(run_dir))
    state = budget.resumable(run_dir)
    return cfg, params, step, (state["charged_s"] if state else None)


def command_line(argv, run_dir=None) -> str:
    """This script's command line; with a run taken over (``--from-run``), preceded by the
    command that trained it when the run recorded one (`common.record_command`)."""
    own = "python bench/train_pretrained.py " + " ".join(argv if argv is not None else sys.argv[1:])
    trained = common.recorded_command(run_dir) if run_dir is not None else None
    return f"{trained} && {own}" if trained else own


def git_commit() -> str:
    """HEAD's hash, '+dirty' when the work tree has changes, 'unknown' outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def base_config(args):
    from qpt_nb.analysis.experiments import override_config
    from qpt_nb.learn.conformers import md_or_fallback
    from qpt_nb.learn.recipe import RECIPE
    from qpt_nb.learn.train import TrainConfig

    sampler = md_or_fallback(args.sampler)
    cfg = TrainConfig(
        molecule=args.molecule,
        basis=args.basis,
        xc=args.xc,
        grid_level=args.grid_level,
        model=args.model,
        sampler=sampler,
        seed=args.seed,
        warmup_steps=min(args.warmup, max(args.steps // 5, 1)) if args.steps else args.warmup,
        decay_steps=max(args.steps or 10**6, args.warmup + 1),
        checkpoint_every=500,
        log_every=10,
        **RECIPE,
    )
    return override_config(cfg, args.set, fixed=("molecule", "xyz", "basis", "xc", "model"))


def train(cfg, run_dir: Path, *, steps, minutes, clock="wall"):
    """Trains in `run_dir`; returns (trainer, wall seconds, CPU seconds). Without `steps` the
    schedule is fitted to `minutes` of `clock` (`qpt_nb.learn.recipe.fit_schedule`)."""
    from qpt_nb.analysis.timing import CLOCKS
    from qpt_nb.learn.recipe import fit_schedule
    from qpt_nb.learn.train import Trainer

    budget, tick = 60.0 * minutes, CLOCKS[clock]
    wall0, cpu0, t0 = time.perf_counter(), time.process_time(), tick()
    tr = Trainer(cfg, run_dir)
    if steps is None:
        tr, steps = fit_schedule(tr, minutes, start=t0, clock=tick)

    def show(rec):
        if rec["step"] % 500 == 0:
            print(
                f"step {rec['step']}: loss {rec['loss']:.8f} Ha, {rec['steps_per_s']:.1f} steps/s", flush=True
            )

    try:
        tr.run(max(steps - tr.step, 0), show, should_stop=lambda: tick() - t0 >= budget)
    finally:
        tr.close()
    return tr, time.perf_counter() - wall0, time.process_time() - cpu0


def score(cfg, params, n_test, *, dtype, turns=False):
    """(metadata pieces, dtype) from `evaluate` on the held-out set with float64 parameters
    and with them rounded to float32; with `turns`, each evaluation holds the machine's
    evaluation lock."""
    import jax
    import numpy as np

    from qpt_nb.analysis import budget
    from qpt_nb.analysis.evaluation import TEST_SEED, make_test_set
    from qpt_nb.analysis.evaluation import evaluate as evaluate_now
    from qpt_nb.dft.reference import label_many

    def evaluate(model, test, labels):
        if turns:
            return budget.one_at_a_time(lambda: evaluate_now(model, test, labels=labels), "score")
        return evaluate_now(model, test, labels=labels)

    kw = cfg.sampler_kwargs()
    test = make_test_set(cfg.molecule_object(), n_test, sampler=cfg.sampler, seed=TEST_SEED, **kw)
    labels = label_many(test, cfg.basis, **cfg.dft_settings(), progress=sys.stderr.isatty())
    first = evaluate((cfg, params), test, labels=labels)
    kind = first.metadata["eri_kind"]
    p32 = jax.tree_util.tree_map(lambda x: np.asarray(np.asarray(x, np.float32), np.float64), params)
    r32 = evaluate((cfg, p32), test, labels=labels)
    change = {
        k: abs(r32.trained[k] - v) / max(abs(v), 1e-300)
        for k, v in first.trained.items()
        if k != "n_conformers"
    }
    if dtype == "auto":
        dtype = "float32" if max(change.values()) < FLOAT32_TOLERANCE else "float64"
    shipped = r32 if dtype == "float32" else first
    test_set = dict(n=len(test), sampler=cfg.sampler, seed=TEST_SEED, **kw)
    if cfg.sampler == "md":
        test_set["stride"] = 50
    meta = dict(
        test_errors=shipped.trained,
        test_errors_float64=first.trained,
        float32_relative_change=change,
        baseline_w0=first.baseline_w0,
        test_set=test_set,
        labels=dict(basis=cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level, eri_kind=kind),
        predict_seconds_mean=first.metadata["predict_seconds_mean"],
        precompute_seconds_mean=first.metadata["precompute_seconds_mean"],
    )
    return meta, dtype, first


def main(argv=None):
    args = parse_args(argv)
    import qpt_nb  # noqa: F401  (float64)
    from qpt_nb import pretrained
    from qpt_nb.learn.network import count_params

    info = common.machine_info()
    if args.from_run:
        run_dir = Path(args.from_run)
        cfg, params, steps, cpu = from_run(run_dir)
        wall = None
        trained_eri = cfg.eri
        print(f"{run_dir}: {steps} steps, {cpu or float('nan'):.0f} CPU s charged", flush=True)
    else:
        cfg = base_config(args)
    name = args.name or f"{cfg.molecule}_{cfg.basis}_{cfg.xc}_{cfg.model}".lower().replace("*", "s")
    if not args.from_run:
        run_dir = Path(args.run_dir or ROOT / "runs" / f"pretrained-{name}")
        if (run_dir / "checkpoint.ckpt").exists():
            raise SystemExit(f"{run_dir} already holds a run: pass another --run-dir (or move it away)")
        print(f"{name}: {common.machine_line(info)}\nrun dir {run_dir}", flush=True)
        tr, wall, cpu = train(cfg, run_dir, steps=args.steps, minutes=args.minutes, clock=args.clock)
        print(f"trained {tr.step} steps in {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
        cfg, params, steps, trained_eri = tr.config, tr.params, tr.step, tr.config.eri
    if args.eri:
        cfg = dataclasses.replace(cfg, eri=args.eri)
    meta, dtype, res = score(cfg, params, args.n_test, dtype=args.dtype, turns=args.eval_turns)
    from qpt_nb.viz.plots import save_run_plots

    res.save(run_dir, plot=save_run_plots)
    print(res.table(), flush=True)
    from qpt_nb.viz import comparison_table

    print(comparison_table({name: meta["test_errors"]}, basis=cfg.basis, molecule=cfg.molecule), flush=True)
    meta.update(
        config=cfg.to_json(),
        steps=steps,
        trained_eri=trained_eri,
        n_params=count_params(params),
        train_wall_seconds=wall,
        train_cpu_seconds=cpu,
        commit=git_commit(),
        created=info["date"],
        machine=common.machine_line(info),
        command=command_line(argv, run_dir if args.from_run else None),
        units=dict(energy="meV", hamiltonian="uHa", mo_energy="uHa", psi="%", seconds="s"),
    )
    path = pretrained.save(name, params, meta, dtype=dtype, folder=args.folder)
    change = max(meta["float32_relative_change"].values())
    print(
        f"wrote {path} ({path.stat().st_size / 1024:.0f} kB, {dtype}; float32 moves the metrics by "
        f"<= {100 * change:.3f} %) and {path.with_suffix('.json').name}",
        flush=True,
    )


if __name__ == "__main__":
    main()
