"""The headline: accuracy vs wall-clock time of label-trained vs label-free (DFT-loss) training.

Same network preset, same conformer sampler ('md' when tblite is installed, else
'normal_modes': `qpt_nb.learn.conformers.md_or_fallback`), same optimiser, same held-out test set
(`qpt_nb.analysis.evaluation.make_test_set`, seed 12345, labels from
`qpt_nb.dft.reference.label` at the QH9 settings; test labels are not charged to anyone).
The pipelines are `qpt_nb.analysis.experiments`'s, each one `Trainer.run`:

  L  labels (`label_then_train_run`): labels the first conformers of the Trainer's stream
     (--seed, default 0) with PySCF, or with qpt_nb's own SCF at the same settings (--label-engine
     qpt_nb) (charged; into the label cache, where the Trainer finds them; a
     label already cached is charged what it cost on the same clock), then trains
     loss='supervised' (|H_init + W - F_ref|^2) cycling over the labelled set
     (TrainConfig.dataset_size; each conformer precomputed once and kept without its grid,
     `Trainer.make_batch`; one step per conformer per epoch, --l-reuse). By default
     labelling stops after half of the budget (--label-fraction; --n-labels fixes the
     count instead). Its cosine is fitted to the budget (--l-schedule fit, the default):
     once every labelled conformer has been built, the step rate on the charged clock sets
     decay_steps so the learning rate reaches its floor when the budget ends
     (`qpt_nb.learn.recipe.BudgetFit`); --l-schedule fixed keeps TrainConfig.decay_steps.
  Q  label-free (`label_free_run`): loss='energy' (the DFT energy E[D3]), fresh conformers;
     its cosine as set (--set decay_steps=N), or fitted to the budget (--q-schedule fit).
  SC self-consistency: loss='self_consistency' (label-free too).

Each pipeline is paused and evaluated on the test set (energy MAE, meV; Hamiltonian MAE
of F[D3], uHa; evaluation time not charged) every --eval-every seconds of charged time, or
at the --eval-at minutes after its training starts (L: after labelling). Charged time is
wall-clock by default; --clock cpu charges the process's CPU time instead (all threads,
prefetch and PySCF included), so single-threaded pipelines can run side by side on one
machine without charging each other for the sharing. The JSON is rewritten after every
evaluation (complete=false until the end), so an interrupted run keeps its curves, and
--test-cache DIR stores the precomputed test tensors on disk for every process to reuse
(`qpt_nb.analysis.evaluation.make_monitor`, which evaluates the test set in chunks).
Reported: the wall-clock ratio  t_L(best) / t_Q(reaches L's best), per metric (the
paper: 786 h / 31 h = 25x), and one figure of both metrics against charged wall-clock.

  python bench/labels_vs_dft_loss.py          # quick: water/sto-3g grid 1, 8 test conformers, 30 s each
  python bench/labels_vs_dft_loss.py --full   # uracil/sto-3g grid 3, 100 test conformers, 60 min each

  # the three pipelines side by side on a 2-core machine, one thread each, CPU-time charged:
  export OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
  python bench/labels_vs_dft_loss.py --full --prelabel-only --test-cache /tmp/qpt_test
  for P in L Q SC; do python bench/labels_vs_dft_loss.py --full --clock cpu --label-threads 1 \
      --test-cache /tmp/qpt_test --pipelines $P --tag $P & done; wait
  python bench/labels_vs_dft_loss.py --full --combine bench/results/labels_vs_dft_loss_{L,Q,SC}.json

  # a label-free variant (L and the test set unchanged): train Q on the coarser grid 1
  python bench/labels_vs_dft_loss.py --full --clock cpu --pipelines Q --tag Q_grid1 \
      --set grid_level=1 decay_steps=8000
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "labels_vs_dft_loss"
QUICK = dict(
    molecule="water",
    basis="sto-3g",
    grid_level=1,
    n_test=8,
    budget_s=30.0,
    eval_every_s=5.0,
    warmup_steps=100,
)
FULL = dict(
    molecule="uracil",
    basis="sto-3g",
    grid_level=3,
    n_test=100,
    budget_s=3600.0,
    eval_every_s=300.0,
    warmup_steps=100,
    eval_at_min=(2, 5, 10, 20, 30, 45),
)
PAPER_RATIO = 786.0 / 31.0
MONITOR_CHUNK = 8  # test conformers per jitted monitor call


# ----------------------------------------------------------------------------- printing
def _print_eval(run):
    """`on_eval` of the pipelines: one line per evaluation (and L's labelling summary)."""
    rec = run.curve[-1]
    if rec.get("phase") == "labelled":
        n = max(run.n_labels, 1)
        cycles = sum(run.label_cycles) / n
        print(
            f"   [L] {run.n_labels} conformers labelled in {run.label_seconds:.1f} s "
            f"({run.label_seconds / n:.2f} s each, {cycles:.1f} PySCF cycles, "
            f"{run.labels_converged} converged)",
            flush=True,
        )
    print(
        f"   [{run.name}] t={rec['t_s']:8.1f}s step={rec['step']:6d}  E MAE "
        f"{rec['energy_mae_mev']:10.3f} meV  H MAE {rec['hamiltonian_mae_uha']:10.1f} uHa",
        flush=True,
    )


def _result(run) -> dict:
    """A pipeline's entry of the JSON (as before the pipelines moved into qpt_nb)."""
    if run.error:
        raise SystemExit(f"pipeline {run.name} failed: {run.error}")
    tm, steps = run.timing, run.steps
    out = dict(
        curve=run.curve,
        steps=steps,
        setup_s=tm.get("setup_s"),
        wait_s=tm.get("wait_s"),
        compile_s=tm.get("compile_s"),
        conformers=tm.get("conformers"),
        decay_steps=run.config.decay_steps,
        schedule_fits=tm.get("schedule_fits"),
    )
    if run.kind == "label-then-train":
        n = max(run.n_labels, 1)
        out.update(
            n_labels=run.n_labels,
            label_s=run.label_seconds,
            label_s_each=run.label_seconds / n,
            label_cycles=run.label_cycles,
            labels_converged=run.labels_converged,
            epochs=steps * run.config.batch_size / n,
            labels_end_s=tm.get("labels_end_s"),
        )
    return out


def _crossing_line(summary, other, ref, key, unit, budget, best_ref):
    """One sentence on how soon run `other` reaches run `ref`'s best `key` (and, when it
    never does, the converse)."""
    c = summary.get(f"{other}_vs_{ref}_{key}")
    if c is None:
        return None
    tag = " (the best L)" if ref == best_ref else ""
    if c.get("note"):
        return f"{other} vs {ref} on {key}: {c['note']}"
    if c["ratio"]:
        return (
            f"{other} reaches {ref}'s best {key}{tag} ({c['best']:.3f} {unit}, {ref} needed "
            f"{c['t_ref_s']:.0f} s) after {c['t_other_s']:.0f} s: ratio {c['ratio']:.2f}x"
        )
    msg = (
        f"{other} does NOT reach {ref}'s best {key}{tag} ({c['best']:.3f} {unit}, at {c['t_ref_s']:.0f} s) "
        f"within {budget:.0f} s (its best {c['other_best']:.3f} {unit})"
    )
    # The converse: how soon L reaches the best accuracy the other pipeline reached.
    back = summary[f"{ref}_vs_{other}_{key}"]
    if back.get("ratio"):
        r = back["ratio"]
        msg += (
            f"\n    converse: {ref} reaches {other}'s best ({back['best']:.3f} {unit}, {other} needed "
            f"{back['t_ref_s']:.0f} s) after {back['t_other_s']:.0f} s: to that accuracy {other} is "
            + (f"{r:.2f}x slower" if r >= 1 else f"{1 / r:.2f}x faster")
        )
    return msg


def report(runs, budget):
    """Prints final/best metrics and the L-vs-Q/SC crossing ratios of every pair of runs
    (runs are named by pipeline and tag, e.g. 'L', 'Q-s1', 'L-qpt-s0'); returns the summary
    (`qpt_nb.analysis.timing.crossing_summary` of the curves)."""
    from qpt_nb.analysis.timing import best_run, crossing_summary, pipeline_of

    curves = {name: r["curve"] for name, r in runs.items()}
    summary = crossing_summary(curves)
    refs = [n for n in runs if pipeline_of(n) == "L"]
    others = [n for n in runs if pipeline_of(n) in ("Q", "SC")]
    width = max(len(n) for n in runs)
    print()
    for key, unit in (("energy_mae_mev", "meV"), ("hamiltonian_mae_uha", "uHa")):
        for name, r in runs.items():
            last = r["curve"][-1]
            print(
                f"{name:{width}s} {key:20s} final {last[key]:12.3f} {unit}   best "
                f"{min(c[key] for c in r['curve']):12.3f} {unit}   steps {r['steps']}"
                + ("   (interrupted)" if r.get("partial") else "")
            )
        best_ref = best_run(curves, "L", key)
        for ref in refs:
            for other in others:
                msg = _crossing_line(summary, other, ref, key, unit, budget, best_ref)
                if msg:
                    print("  " + msg + f"   [paper: {PAPER_RATIO:.0f}x]")
    for name, r in runs.items():
        if r.get("partial"):
            continue
        if pipeline_of(name) == "L":
            print(
                f"{name}: {r['n_labels']} labels, {r['label_s_each']:.2f} s each ({r['label_s']:.0f} s in all), "
                f"{r['steps']} steps = {r['epochs']:.1f} epochs"
            )
        else:
            print(
                f"{name}: {r['steps']} steps on {r['conformers']} fresh conformers, compile "
                f"{r['compile_s']:.1f} s, waiting for data {r['wait_s']:.1f} s"
            )
    return summary


def parse_overrides(cfg, items, flag="--set", also_fixed=()):
    """--set KEY=VALUE strings -> a copy of `cfg` (`experiments.override_config`: the
    comparison's fixed fields, and `also_fixed`, refused); a bad item exits with the list of
    fields."""
    from qpt_nb.analysis.experiments import FIXED_FIELDS, override_config

    try:
        return override_config(cfg, items, fixed=FIXED_FIELDS + tuple(also_fixed))
    except ValueError as exc:
        raise SystemExit(f"{flag} {exc}") from None


# ----------------------------------------------------------------------------- driver
def main(argv=None):
    p = common.make_parser(__doc__, NAME)
    p.add_argument("--molecule")
    p.add_argument("--basis")
    p.add_argument("--xc", default="b3lyp5")
    p.add_argument("--grid-level", type=int)
    p.add_argument(
        "--test-eri",
        choices=("auto", "dense", "df"),
        help="ERIs of the test labels and of the evaluation (default: the training's, "
        "TrainConfig.eri='auto'); 'dense' scores a density-fitted model against exact integrals",
    )
    p.add_argument("--model", default="nano")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of every pipeline (parameters, conformer stream, L's labels)",
    )
    p.add_argument("--sampler", help="default: md if tblite is installed, else normal_modes")
    p.add_argument("--n-test", type=int)
    p.add_argument("--budget-min", type=float, help="charged minutes per pipeline (full: 60)")
    p.add_argument(
        "--eval-every-min",
        type=float,
        help="minutes between evaluations (full: at "
        "2, 5, 10, 20, 30, 45 min after training starts, and at the end)",
    )
    p.add_argument(
        "--n-labels",
        type=int,
        help="labelled conformers for L (default: label until --label-fraction of the budget is spent)",
    )
    p.add_argument("--label-fraction", type=float, default=0.5)
    p.add_argument(
        "--l-reuse",
        type=int,
        default=1,
        help="L's steps per labelled conformer per visit (default 1: a plain epoch over the "
        "labelled set; its conformers are built once, so revisits are free)",
    )
    p.add_argument(
        "--label-engine",
        choices=("pyscf", "qpt_nb"),
        default="pyscf",
        help="who solves L's training labels (same settings; the test labels stay PySCF's)",
    )
    p.add_argument(
        "--label-threads", type=int, help="PySCF threads (default qpt_nb.settings.label_threads())"
    )
    p.add_argument("--pipelines", default="L,Q,SC", help="subset of L,Q,SC")
    p.add_argument(
        "--eval-at",
        type=float,
        nargs="+",
        metavar="MIN",
        help="evaluate at these charged minutes after training starts (L: after "
        "labelling) instead of every --eval-every-min",
    )
    p.add_argument(
        "--skip-start-eval",
        action="store_true",
        help="no evaluation before the first step (the untrained network; the crossing ratios "
        "never use it): for test sets that take long to evaluate",
    )
    p.add_argument(
        "--eval-turns",
        action="store_true",
        help="evaluate only while no other run on the machine does (a lock file): for test "
        "sets whose evaluation is too large for two runs at once (def2-SVP, exact integrals)",
    )
    p.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="wall",
        help="charged time: wall-clock (default) or the process's CPU time",
    )
    p.add_argument(
        "--test-cache",
        metavar="DIR",
        help="keep the precomputed test tensors in DIR (about 0.25 GB per uracil/STO-3G "
        "conformer at grid 3), shared by processes run side by side; --test-cache= keeps none",
    )
    p.add_argument("--monitor-gb", type=float, default=4.0, help="test tensors kept in memory")
    p.add_argument(
        "--monitor-chunk",
        type=int,
        default=MONITOR_CHUNK,
        help=f"test conformers per jitted monitor call (default {MONITOR_CHUNK}; uracil/def2-SVP "
        "with exact integrals is about 3 GB per conformer: use 1)",
    )
    p.add_argument(
        "--run-dir",
        metavar="DIR",
        help="train each pipeline in the run directory DIR/L, DIR/Q, DIR/SC, checkpointed at every "
        "evaluation and every 10 charged minutes; the same command run again resumes an "
        "interrupted pipeline from there (charged clock, curve and fitted schedule as they "
        "stood, `qpt_nb.analysis.budget`) and keeps a finished one",
    )
    p.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="TrainConfig fields for the label-free pipelines Q and SC only, e.g. "
        "decay_steps=2600 or grid_level=1 (the test set and L keep the defaults)",
    )
    p.add_argument(
        "--l-schedule",
        choices=("fit", "fixed"),
        default="fit",
        help="L's cosine: 'fit' (default) refits decay_steps to the steps the budget leaves once "
        "labelling and the first epoch are done (qpt_nb.learn.recipe.BudgetFit, on the charged "
        "clock); 'fixed' keeps TrainConfig.decay_steps (or --set-l decay_steps=N)",
    )
    p.add_argument(
        "--q-schedule",
        choices=("fit", "fixed"),
        default="fixed",
        help="the label-free pipelines' cosine: 'fixed' (default) keeps decay_steps (set it with "
        "--set); 'fit' fits it to the budget from the measured step rate, as --l-schedule fit",
    )
    p.add_argument(
        "--set-l",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        dest="l_overrides",
        help="TrainConfig fields for label-then-train L only, e.g. decay_steps=130000 to fit "
        "its cosine to the steps the budget leaves after labelling (labels and test set unchanged)",
    )
    p.add_argument(
        "--prelabel-only",
        action="store_true",
        help="only label the test set into the cache ($QPT_NB_CACHE) and stop",
    )
    p.add_argument(
        "--prelabel-reverse",
        action="store_true",
        help="with --prelabel-only, label from the last test conformer back: a second process "
        "started so shares the labelling with a first one (each skips what the other cached)",
    )
    p.add_argument(
        "--combine",
        nargs="+",
        metavar="[NAME=]JSON",
        help="merge the pipelines of earlier runs' JSON files (e.g. L, Q and SC run in "
        "separate processes with --pipelines) and report them together; NAME=JSON renames "
        "a file's one run, e.g. Q-s1=..._Q_s1.json (a name is its pipeline, then '-' and tags)",
    )
    args = p.parse_args(argv)
    args.test_cache = args.test_cache or None  # --test-cache= : none
    if args.combine:
        return combine(args)
    sel = dict(FULL if args.full else QUICK)
    for k in ("molecule", "basis", "grid_level", "n_test"):
        if getattr(args, k) is not None:
            sel[k] = getattr(args, k)
    budget = args.budget_min * 60 if args.budget_min else sel["budget_s"]
    every = args.eval_every_min * 60 if args.eval_every_min else sel["eval_every_s"]
    json_path, png_path = common.out_paths(args, NAME)

    import qpt_nb  # noqa: F401
    from qpt_nb import settings
    from qpt_nb.analysis import experiments
    from qpt_nb.analysis.evaluation import make_monitor, make_test_set
    from qpt_nb.dft import reference
    from qpt_nb.learn.train import TrainConfig

    clock = experiments.CLOCKS[args.clock]
    from qpt_nb.learn.conformers import md_or_fallback

    sampler = md_or_fallback(args.sampler or "md")
    cfg = TrainConfig(
        molecule=sel["molecule"],
        basis=sel["basis"],
        xc=args.xc,
        grid_level=sel["grid_level"],
        model=args.model,
        sampler=sampler,
        warmup_steps=sel["warmup_steps"],
        seed=args.seed,
        checkpoint_every=10**9,
        log_every=10**9,
    )
    mol = cfg.molecule_object()
    free_cfg = parse_overrides(cfg, args.overrides)
    eval_at_min = args.eval_at or (sel.get("eval_at_min") if not args.eval_every_min else None)
    when = (
        f"evaluation at {', '.join(f'{m:g}' for m in eval_at_min)} min after training starts"
        if eval_at_min
        else f"evaluation every {every:.0f} s"
    )
    print(
        f"{cfg.molecule}/{cfg.basis}/{cfg.xc} grid {cfg.grid_level}, model {cfg.model}, sampler "
        f"{sampler}, budget {budget:.0f} s ({args.clock} time) per pipeline, {when}",
        flush=True,
    )
    l_cfg = parse_overrides(  # L's labels and test set stay those of `cfg`
        dataclasses.replace(cfg, label_engine=args.label_engine, reuse=args.l_reuse),
        args.l_overrides,
        flag="--set-l",
        also_fixed=("grid_level", "seed"),
    )
    if args.l_schedule == "fit" and any(o.split("=")[0].strip() == "decay_steps" for o in args.l_overrides):
        p.error("--set-l decay_steps=N fixes L's schedule: add --l-schedule fixed")
    if args.q_schedule == "fit" and any(o.split("=")[0].strip() == "decay_steps" for o in args.overrides):
        p.error("--set decay_steps=N fixes the label-free schedule: drop it or use --q-schedule fixed")
    if args.overrides:
        print(f"Q and SC train with {', '.join(args.overrides)}", flush=True)
    if args.l_overrides:
        print(f"L trains with {', '.join(args.l_overrides)}", flush=True)
    t0 = time.perf_counter()
    test = make_test_set(mol, sel["n_test"], sampler=sampler, **cfg.sampler_kwargs())
    test_cfg = dataclasses.replace(cfg, eri=args.test_eri) if args.test_eri else cfg
    if args.prelabel_only and args.prelabel_reverse:
        reference.label_many(test[::-1], cfg.basis, **test_cfg.dft_settings())
    test_labels = reference.label_many(test, cfg.basis, **test_cfg.dft_settings())
    if args.prelabel_only:
        if args.test_cache:  # fills the tensor cache, keeps nothing in memory
            make_monitor(
                test_cfg,
                test,
                test_labels,
                chunk_size=args.monitor_chunk,
                keep_bytes=0,
                tensor_cache=args.test_cache,
            )
        print(
            f"{len(test)} test labels in {settings.cache_dir('labels')}"
            + (f", test tensors in {args.test_cache}" if args.test_cache else "")
        )
        return None
    monitor = make_monitor(
        test_cfg,
        test,
        test_labels,
        chunk_size=args.monitor_chunk,
        keep_bytes=args.monitor_gb * 1e9,
        tensor_cache=args.test_cache,
    )
    test_info = dict(
        seconds=[lab.seconds for lab in test_labels],
        cached=[lab.cached for lab in test_labels],
        cycles=[lab.n_iter for lab in test_labels],
        converged=[lab.converged for lab in test_labels],
    )
    print(
        f"test set: {len(test)} conformers labelled/loaded in {time.perf_counter() - t0:.1f} s "
        f"(not charged; PySCF {sum(lab.seconds for lab in test_labels) / len(test):.1f} s and "
        f"{sum(test_info['cycles']) / len(test):.1f} cycles per label, "
        f"{sum(test_info['converged'])}/{len(test)} converged, {sum(test_info['cached'])} from cache)",
        flush=True,
    )

    runs, info = {}, dict(common.machine_info(), clock=args.clock)
    settings = dict(vars(args), **dict(sel, budget_s=budget, eval_every_s=every, sampler=sampler))

    def save(summary=None, complete=False, partial=None):
        """(Re)writes the JSON: finished runs, plus the curve of the one in progress."""
        shown = dict(runs)
        if partial is not None:
            name, curve = partial
            shown[name] = dict(curve=list(curve), steps=curve[-1]["step"], partial=True)
        common.write_json(
            json_path,
            dict(
                benchmark=NAME,
                mode="full" if args.full else "quick",
                complete=complete,
                settings=settings,
                config=cfg.to_json(),
                machine=info,
                runs=shown,
                test_labels=test_info,
                summary=summary or {},
                paper_ratio=PAPER_RATIO,
            ),
        )

    def on_eval(run):
        _print_eval(run)
        save(partial=(run.name, run.curve))

    eval_at = [60.0 * m for m in eval_at_min] if eval_at_min else None
    timed = dict(
        budget_s=budget,
        every_s=every,
        eval_at_s=eval_at,
        monitor=monitor,
        clock=clock,
        on_eval=on_eval,
        eval_start=not args.skip_start_eval,
        eval_turns=args.eval_turns,
    )
    wanted = args.pipelines.split(",")

    def run_dir(name):
        return dict(run_dir=Path(args.run_dir) / name, resume=True) if args.run_dir else {}

    if args.run_dir:  # how the run's models were trained (bench/train_pretrained.py --from-run)
        common.record_command(args.run_dir, argv)

    if "L" in wanted:
        print("-- L: labels + supervised", flush=True)
        runs["L"] = _result(
            experiments.label_then_train_run(
                l_cfg,
                name="L",
                **run_dir("L"),
                n_labels=args.n_labels,
                label_fraction=args.label_fraction,
                label_threads=args.label_threads,
                fit_schedule=args.l_schedule == "fit",
                **timed,
            )
        )
    for name, loss, what in (
        ("Q", "energy", "DFT energy loss"),
        ("SC", "self_consistency", "self-consistency loss"),
    ):
        if name in wanted:
            print(f"-- {name}: label-free, {what}", flush=True)
            run = experiments.label_free_run(
                dataclasses.replace(free_cfg, loss=loss),
                name=name,
                fit_schedule=args.q_schedule == "fit",
                **run_dir(name),
                **timed,
            )
            runs[name] = _result(run)
            if args.run_dir:
                print(f"   [{name}] saved to {Path(args.run_dir) / name}", flush=True)

    summary = report(runs, budget)
    info = dict(common.machine_info(), clock=args.clock)
    print("machine:", common.machine_line(info))
    save(summary, complete=True)
    _plot(
        runs,
        png_path,
        f"{cfg.molecule}/{cfg.basis}/{cfg.xc}, {cfg.model}, {len(test)} test conformers",
        clock_name=args.clock,
    )
    print(f"wrote {json_path} and {png_path}")
    return runs, summary


def combine(args):
    """--combine: one report, JSON and figure from the pipelines of several result files."""
    import json

    from qpt_nb.analysis.headline import combine_results

    parts = []
    for item in args.combine:
        # NAME=PATH renames the file's one run (e.g. Q-s1=..._Q_s1.json, for seeds side by side)
        name, _, path = item.rpartition("=") if "=" in item else ("", "", item)
        parts.append((name, json.loads(Path(path).read_text())))
    try:
        combined = combine_results(parts)
    except ValueError as exc:
        raise SystemExit(f"--combine: {exc}") from None
    runs, first = combined["runs"], parts[0][1]
    summary = report(runs, combined["budget_s"])
    json_path, png_path = common.out_paths(args, NAME)
    common.write_json(json_path, dict(combined, summary=summary, combined_from=args.combine))
    c = first["config"]
    _plot(
        runs,
        png_path,
        f"{c['molecule']}/{c['basis']}/{c['xc']}, {c['model']}, "
        f"{first['settings']['n_test']} test conformers",
        clock_name=first["settings"].get("clock", "wall"),
    )
    print(f"wrote {json_path} and {png_path}")
    return runs, summary


def _plot(runs, path, title, clock_name="wall"):
    from qpt_nb.analysis.headline import display_name
    from qpt_nb.analysis.timing import best_run, pipeline_of

    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = dict(L=("C0", "C9", "C4", "C5"), Q=("C3", "C1", "C6"), SC=("C2", "C8"))
    seen, style = {}, {}
    for name in runs:
        base = pipeline_of(name)
        k = seen[base] = seen.get(base, -1) + 1
        palette = colours.get(base, ("k",))
        style[name] = (palette[k % len(palette)], display_name(name))
    scale, unit = (
        (60.0, "min") if max((r["curve"][-1]["t_s"] for r in runs.values()), default=0) > 600 else (1.0, "s")
    )
    curves = {n: r["curve"] for n, r in runs.items()}
    for ax, (key, label) in zip(
        axes,
        (("energy_mae_mev", "energy MAE (meV)"), ("hamiltonian_mae_uha", "Hamiltonian MAE of F[D3] (uHa)")),
    ):
        for name, r in runs.items():
            colour, text = style[name]
            ax.plot(
                [c["t_s"] / scale for c in r["curve"]],
                [c[key] for c in r["curve"]],
                "o-",
                ms=3,
                color=colour,
                label=text,
            )
            if "labels_end_s" in r:
                ax.axvline(r["labels_end_s"] / scale, color=colour, ls=":", lw=1)
        best = best_run(curves, "L", key)
        if best is not None:
            ax.axhline(
                min(c[key] for c in curves[best] if c["step"] > 0),
                color="gray",
                ls="--",
                lw=1,
                label="best of L" if best == "L" else f"best of L ({best})",
            )
        ax.set_yscale("log")
        what = "CPU time (one core each)" if clock_name == "cpu" else "wall-clock"
        ax.set_xlabel(f"{what}, {unit}; labelling included (dotted: done)")
        ax.set_ylabel(label)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    common.save_figure(fig, path)


if __name__ == "__main__":
    main()
