"""`qpt-nb train` and `qpt-nb evaluate`, registered by `qpt_nb.cli` (the demo: `qpt_nb.cli.demo`).

    qpt-nb train --molecule uracil --basis sto-3g --xc b3lyp5 --model nano --steps 2000 --out runs/u
    qpt-nb train --out runs/u --resume --steps 4000      # continue to step 4000 in total
    qpt-nb evaluate --run runs/u --n-test 100

Errors in the user's input raise ValueError / FileNotFoundError with a one-line
message; `qpt_nb.cli.main` prints ``qpt-nb CMD: error: ...`` and exits with 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

from qpt_nb import settings
from qpt_nb.analysis.runs import check_out_dir, new_run_dir, trained_steps
from qpt_nb.learn.recipe import new_run_settings, stretched_decay
from qpt_nb.validate import check_int

# option name -> TrainConfig field, for options that map one to one
_FIELDS = dict(
    molecule="molecule",
    charge="charge",
    spin="spin",
    spin_readout="spin_readout",
    basis="basis",
    xc="xc",
    grid_level="grid_level",
    train_grid_level="train_grid_level",
    precision="precision",
    eri="eri",
    model="model",
    loss="loss",
    label_engine="label_engine",
    sampler="sampler",
    temperature="temperature",
    sigma="sigma",
    phi_range="phi_range",
    psi_range="psi_range",
    batch_size="batch_size",
    reuse="reuse",
    data_schedule="data_schedule",
    ema_decay="ema_decay",
    seed="seed",
    lr="lr",
    warmup="warmup_steps",
    decay_steps="decay_steps",
    checkpoint_every="checkpoint_every",
    n_refine="n_refine",
    devices="devices",
    weight_decay="weight_decay",
    clip_norm="clip_norm",
)


def _add_train_args(p):
    g = p.add_argument_group("system (defaults: TrainConfig's; on --resume: the run's)")
    g.add_argument("--molecule", help="built-in molecule name (see `qpt-nb list`; default uracil)")
    g.add_argument("--xyz", help="xyz file (Angstrom) instead of a built-in molecule")
    g.add_argument("--charge", type=int)
    g.add_argument("--spin", type=int, help="2S (default 0; a radical builtin such as allyl: 1)")
    g.add_argument(
        "--spin-readout",
        choices=("embedding", "per_spin"),
        help="open shells: W_alpha, W_beta from a spin embedding and one readout (default) or one readout per spin",
    )
    g.add_argument("--basis")
    g.add_argument("--xc", help="functional, PySCF's meaning (default b3lyp5)")
    g.add_argument("--grid-level", type=int, help="PySCF grid level 0..9 (default 3)")
    g.add_argument("--eri", choices=("auto", "dense", "df"))
    g.add_argument(
        "--train-grid-level",
        type=int,
        help="grid level of the training loss (new runs: 0, the research code's; labels and "
        "evaluations always use --grid-level)",
    )
    g.add_argument(
        "--precision",
        choices=("float64", "float32"),
        help="grid work of the training loss (new runs: float32; evaluations are float64)",
    )
    g = p.add_argument_group("training")
    g.add_argument("--model", help="QPT preset: nano, tiny, small, base, medium")
    g.add_argument(
        "--loss", help="energy (label-free), self_consistency, refined_target (label-free) or supervised"
    )
    g.add_argument(
        "--label-engine",
        choices=("pyscf", "qpt_nb"),
        help="who solves the supervised loss's labels (same settings; default pyscf)",
    )
    g.add_argument("--n-refine", type=int)
    g.add_argument("--sampler", help="wiggle, normal_modes, md or dihedral")
    g.add_argument("--temperature", type=float, help="K, for md / normal_modes")
    g.add_argument("--sigma", type=float, help="wiggle std, Angstrom")
    g.add_argument(
        "--phi-range",
        metavar="LOW,HIGH",
        help="dihedral sampler: phi region, degrees (default 0,180; "
        "a negative LOW needs the = form, --phi-range=-90,90)",
    )
    g.add_argument(
        "--psi-range", metavar="LOW,HIGH", help="dihedral sampler: psi region, degrees (default 0,180)"
    )
    g.add_argument("--batch-size", type=int)
    g.add_argument("--reuse", type=int, help="optimiser steps per conformer batch (the window's length)")
    g.add_argument(
        "--data-schedule",
        choices=("window", "consecutive"),
        help="window (default: the research code's sliding window of the last --reuse batches) "
        "or consecutive (each batch --reuse steps in a row)",
    )
    g.add_argument("--ema-decay", type=float, help="moving average of the parameters (0: off)")
    g.add_argument("--seed", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate (new runs: 1e-3)")
    g.add_argument("--warmup", type=int, help="warm-up steps (default min(1000, steps // 10))")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay (new runs: 0)")
    g.add_argument("--clip-norm", type=float, help="global gradient-norm clip (default 1)")
    g.add_argument("--decay-steps", type=int, help="cosine decay length (default: --steps)")
    g.add_argument("--checkpoint-every", type=int)
    g.add_argument(
        "--devices",
        type=int,
        help="data-parallel JAX devices (batch split across them; on a CPU start with "
        "XLA_FLAGS=--xla_force_host_platform_device_count=K; multi-host: call "
        "jax.distributed.initialize() first)",
    )
    g.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-host: jax.distributed coordinator (process 0's address); with --num-processes "
        "and --process-id; --devices counts all hosts' devices",
    )
    g.add_argument("--num-processes", type=int, help="multi-host: number of processes")
    g.add_argument("--process-id", type=int, help="multi-host: this process's index (0 writes --out)")
    g.add_argument("--steps", type=int, help="total optimiser steps (also with --resume)")
    g.add_argument(
        "--minutes",
        type=float,
        help="training wall-clock budget; a new run without --steps fits its cosine schedule to it "
        "(a 60-step calibration measures the rate), otherwise it caps the run",
    )
    g.add_argument("--out", help="run directory (default runs/MOLECULE-BASIS-MODEL-TIME)")
    g.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="DIR",
        help="continue the run in --out (or DIR) from its checkpoint",
    )
    g = p.add_argument_group("evaluation")
    g.add_argument(
        "--n-test", type=int, default=20, help="test conformers evaluated against PySCF at the end (0: none)"
    )
    g.add_argument("--monitor-every", type=int, default=0, help="record test errors every K steps (0: never)")
    g.add_argument("--monitor-n", type=int, default=4, help="test conformers the monitor uses")
    g.add_argument("--test-seed", type=int, default=None, help="test-set seed (default 12345)")
    g.add_argument("--cache-dir", help="PySCF label cache (default $QPT_NB_CACHE or ~/.cache)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_train_commands(sub) -> None:
    """Adds the `train` and `evaluate` sub-commands to an argparse sub-parsers object."""
    p = sub.add_parser("train", help="label-free training of a QPT (writes a run directory)")
    _add_train_args(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("evaluate", help="compare a trained run with PySCF on a test set")
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--test-seed", type=int, default=None)
    p.add_argument("--grid-level", type=int, help="override the run's grid level")
    p.add_argument(
        "--guess",
        type=int,
        default=0,
        metavar="K",
        help="also time PySCF from the model's initial guess on K conformers",
    )
    p.add_argument("--cache-dir")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_evaluate)


# ----------------------------------------------------------------------------- helpers


def check_option(name, value, low=0):
    """An integer command-line option (None: not given) of at least `low`."""
    if value is not None:
        check_int(value, name, low=low)


def xyz_geometry(path) -> tuple:
    """The geometry of `path` as xyz text for `TrainConfig.xyz`: a file of any format
    ``ase.io.read`` reads (`qpt_nb.dft.atoms_io.read_frames`); of a multi-frame file the
    first frame. An xyz file is kept as written (its comment line may name torsions).
    Returns (text, Molecule): the molecule has the frame's charge and spin."""
    from qpt_nb.dft.molecule import read_xyz_frames

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"No file {path}.")
    mols = read_xyz_frames(p)  # validates (atom count, symbols, coordinates, pbc)
    if len(mols) > 1:
        print(f"{p.name}: {len(mols)} frames; training starts from the first")
    if p.suffix.lower() == ".xyz" and len(mols) == 1:
        return p.read_text(), mols[0]
    return mols[0].to_xyz(comment=mols[0].name or p.stem), mols[0]


def _overrides(args) -> dict:
    out = {
        field: getattr(args, opt) for opt, field in _FIELDS.items() if getattr(args, opt, None) is not None
    }
    if getattr(args, "xyz", None):
        out["xyz"], mol = xyz_geometry(args.xyz)
        out.setdefault("molecule", Path(args.xyz).stem)
        out.setdefault("charge", mol.charge)  # from the file's info (extxyz), unless --charge
        out.setdefault("spin", mol.spin)
    return out


def _check_sampler(name):
    if name == "md":
        from qpt_nb.learn.conformers import require_md

        try:
            require_md()
        except ImportError as exc:
            raise ValueError(str(exc)) from None


def test_data(config, n, *, seed, cache_dir, progress):
    """(test_set, labels): n conformers of the run's molecule (its sampler, test seed)
    and their PySCF labels (canonical frame, cached)."""
    from qpt_nb.analysis.evaluation import TEST_SEED, make_test_set
    from qpt_nb.dft.reference import label_many

    mol = config.molecule_object()
    test = make_test_set(
        mol, n, sampler=config.sampler, seed=TEST_SEED if seed is None else seed, **config.sampler_kwargs()
    )
    labels = label_many(test, config.basis, **config.dft_settings(), cache_dir=cache_dir, progress=progress)
    return test, labels


def train_loop(trainer, target, *, progress, minutes=None):
    """Runs `trainer` up to step `target` (or until `minutes` are spent) with a tqdm bar.

    One `Trainer.run` call (it checkpoints every `checkpoint_every` steps and at the
    end); Ctrl-C saves a checkpoint first. Returns the wall-clock seconds it took.
    """
    from tqdm.auto import tqdm

    bar = tqdm(
        total=target,
        initial=trainer.step,
        desc="train",
        unit="step",
        disable=not progress,
        dynamic_ncols=True,
    )
    post = {}

    def callback(rec):
        bar.update(rec["step"] - bar.n)
        post["loss"] = f"{rec['loss']:.6f}"
        if "test_energy_mae_mev" in rec:
            post["test_E_meV"] = f"{rec['test_energy_mae_mev']:.2f}"
            post["test_H_uHa"] = f"{rec['test_hamiltonian_mae_uha']:.0f}"
        post["steps/s"] = f"{rec['steps_per_s']:.2f}"
        bar.set_postfix(post, refresh=False)

    t0 = time.perf_counter()
    try:
        trainer.run(
            max(target - trainer.step, 0), callback, max_seconds=None if minutes is None else 60.0 * minutes
        )
    except KeyboardInterrupt:
        bar.close()
        if trainer.run_dir is not None:
            trainer.save()
            print(
                f"\ninterrupted at step {trainer.step}; checkpoint saved in {trainer.run_dir} "
                f"(continue with --resume)",
                file=sys.stderr,
            )
        raise
    finally:
        bar.close()
    if minutes is not None and trainer.step < target:
        print(f"time budget of {minutes} min reached at step {trainer.step}", file=sys.stderr)
    return time.perf_counter() - t0


def finish(trainer, out, test_set, labels, *, cache_dir, progress, seed):
    """Writes plots, evaluates (if a test set is given) and prints the summary."""
    from qpt_nb.analysis.evaluation import TEST_SEED, evaluate
    from qpt_nb.viz.plots import save_run_plots

    print(
        f"run dir: {out}  (step {trainer.step}, {trainer.n_params:,} parameters, "
        f"{trainer.steady_steps_per_s:.2f} steps/s after a {trainer.timing['compile_s']:.1f} s first step)"
    )
    if test_set:
        res = evaluate(
            trainer,
            test_set,
            labels=labels,
            cache_dir=cache_dir,
            progress=progress,
            seed=TEST_SEED if seed is None else seed,
        )
        paths = res.save(out, plot=save_run_plots)
        m = res.metadata
        print(
            f"\nTest set: {len(test_set)} conformers ({trainer.config.sampler}, seed {m['test_seed']}), "
            f"PySCF {m['label_seconds_mean']:.1f} s per label, QPT {m['predict_seconds_mean']:.2f} s "
            f"+ {m['precompute_seconds_mean']:.2f} s precompute per conformer"
        )
        print(res.table())
        print(
            "files: "
            + ", ".join(str(p) for p in (paths["metrics"], paths["per_conformer"], paths["test_set"]))
        )
        plots = paths["plots"]
    else:
        plots = save_run_plots(out, trainer.history)
    if plots:
        print("plots: " + ", ".join(str(p) for p in plots))
    return 0


# ----------------------------------------------------------------------------- commands
def attach_monitor(trainer, test_set, labels, *, n: int, every: int) -> None:
    """Evaluates the first `n` test conformers every `every` steps while `trainer` trains
    (`qpt_nb.analysis.evaluation.make_monitor`); their errors go into the history records."""
    from qpt_nb.analysis.evaluation import make_monitor

    k = min(int(n), len(test_set))
    trainer.monitor = make_monitor(trainer.config, test_set[:k], labels[:k])
    trainer.monitor_every = max(int(every), 1)


def _monitored(args) -> int:
    """Test conformers the monitor of `qpt-nb train` will hold (0 without one)."""
    return min(args.monitor_n, args.n_test) if args.n_test and args.monitor_every else 0


def memory_line(config, monitor_n: int = 0) -> str:
    """Checks that training `config` fits in memory (InsufficientMemoryError otherwise,
    before anything compiles) and returns the one-line estimate of what training holds:
    the data schedule's live batches and the prefetch queue (``max_live + queue_size + 1``
    batches of `batch_size` conformers) on the training grid (`loss_grid_level`, in
    `precision`), plus the monitor's `monitor_n` test conformers on `grid_level` in float64
    (at most `MONITOR_MAX_BYTES`, what the monitor keeps in memory)."""
    from qpt_nb.analysis.evaluation import MONITOR_MAX_BYTES
    from qpt_nb.dft.memory import check_memory, estimate_memory, format_memory

    mol = config.molecule_object().canonical()
    held = config.data_schedule_object().max_live + config.queue_size + 1
    est = estimate_memory(
        mol,
        config.basis,
        grid_level=config.loss_grid_level,
        eri=config.eri,
        xc=config.xc,
        batch=config.batch_size * held,
        precision=config.precision,
    )
    if monitor_n:
        mon = estimate_memory(mol, config.basis, **config.dft_settings(), batch=monitor_n)
        est["held_bytes"] = min(mon["per_batch_bytes"], MONITOR_MAX_BYTES)
        est["held_what"] = f"monitor of {monitor_n} test conformers"
        est["total_bytes"] += est["held_bytes"]
    check_memory(est)
    return "memory: " + format_memory(est)


def cmd_train(args) -> int:
    """`qpt-nb train`: fresh or resumed label-free training, then evaluation."""
    with contextlib.ExitStack() as held:  # the run directory's lock, released on any exit
        return _train_command(args, held)


def init_distributed(args) -> int:
    """jax.distributed.initialize from --coordinator/--num-processes/--process-id (JAX's
    gloo collectives on CPUs); returns this process's index (0 without them). Process 0
    owns --out; process k > 0 keeps its replica of the run in --out/worker-k."""
    given = [getattr(args, k, None) is not None for k in ("coordinator", "num_processes", "process_id")]
    if not any(given):
        return 0
    if not all(given):
        raise ValueError("multi-host training needs all of --coordinator, --num-processes and --process-id.")
    check_option("--num-processes", args.num_processes, 1)
    check_option("--process-id", args.process_id)
    if args.process_id >= args.num_processes:
        raise ValueError(f"--process-id {args.process_id} must be < --num-processes {args.num_processes}.")
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(args.coordinator, num_processes=args.num_processes, process_id=args.process_id)
    return int(args.process_id)


def _train_command(args, held) -> int:
    """`cmd_train` with `held`, the ExitStack that keeps the run directory's `RunLock`."""
    from qpt_nb.analysis.runs import load_run
    from qpt_nb.learn.runlock import RunLock
    from qpt_nb.learn.train import TrainConfig, Trainer

    rank = init_distributed(args)
    if rank > 0:  # a replica: its own run directory beside process 0's, no evaluation
        if not args.out:
            raise ValueError("multi-host training needs --out (process 0's run directory).")
        args.out, args.n_test = str(Path(args.out) / f"worker-{rank}"), 0
    settings.enable_compile_cache()
    check_option("--steps", args.steps, 0 if args.resume else 1)
    if args.minutes is not None and not args.minutes > 0:
        raise ValueError(f"--minutes must be > 0, got {args.minutes}")
    fit = not args.resume and args.steps is None and args.minutes is not None
    if fit and (args.num_processes or 1) > 1:
        raise ValueError(
            "multi-host training needs --steps (each process would fit its own schedule to --minutes)"
        )
    check_option("--n-test", args.n_test)
    check_option("--monitor-every", args.monitor_every)
    check_option("--monitor-n", args.monitor_n, 1)
    over = _overrides(args)
    progress = not args.no_progress
    if args.resume:
        if isinstance(args.resume, str):
            if args.out and Path(args.out) != Path(args.resume):
                raise ValueError(f"--resume {args.resume} and --out {args.out} name different runs.")
            args.out = args.resume
        if not args.out:
            raise ValueError("--resume needs the run directory (--out DIR or --resume DIR).")
        out = Path(args.out)
        if not out.is_dir():
            raise FileNotFoundError(f"--resume: no run directory {out}.")
        check_out_dir(out)
        held.enter_context(RunLock(out))  # RunLocked: one line, exit 2
        saved, _, step = load_run(out)  # CheckpointError if missing
        stretched = stretched_decay(saved.decay_steps, args.steps, over)
        if stretched is not None:
            print(
                f"extending the learning-rate schedule from {saved.decay_steps} to {stretched} "
                "steps (--decay-steps sets it explicitly)",
                file=sys.stderr,
            )
            over["decay_steps"] = stretched
        config = dataclasses.replace(saved, **over)
        config.molecule_object()
        _check_sampler(config.sampler)
        mem = memory_line(config, _monitored(args))
        trainer = Trainer.resume(out, config=config)  # ValueError if incompatible
        target = args.steps if args.steps is not None else config.decay_steps
        if target < trainer.step:
            print(f"the run is already at step {trainer.step} >= --steps {target}", file=sys.stderr)
    else:
        if args.steps is None and args.minutes is None:
            raise ValueError("a new run needs --steps, or --minutes to fit the schedule to a time budget.")
        config = TrainConfig(**new_run_settings(over, args.steps))  # fitted below with --minutes alone
        config.molecule_object()
        _check_sampler(config.sampler)
        out = Path(args.out) if args.out is not None else new_run_dir(config)
        check_out_dir(out)
        held.enter_context(RunLock(out))  # RunLocked: one line, exit 2
        done = trained_steps(out)
        if done:
            raise ValueError(f"{out} already holds a run at step {done}: use --resume, or another --out.")
        mem = memory_line(config, _monitored(args))
        trainer = Trainer(config, out)
        target = args.steps
    print(
        f"{config.molecule} / {config.basis} / {config.xc} / grid level {config.grid_level} / "
        f"{config.model} / loss {config.loss} / sampler {config.sampler} -> {out}"
    )
    print(mem)
    test_set, labels = [], None
    if args.n_test:
        test_set, labels = test_data(
            config, args.n_test, seed=args.test_seed, cache_dir=args.cache_dir, progress=progress
        )
        if args.monitor_every:
            attach_monitor(trainer, test_set, labels, n=args.monitor_n, every=args.monitor_every)
    minutes = args.minutes
    try:
        if fit:
            from qpt_nb.learn.recipe import fit_schedule

            t0 = time.perf_counter()
            trainer, target = fit_schedule(trainer, minutes, start=t0)
            minutes -= (time.perf_counter() - t0) / 60.0
        train_loop(trainer, target, progress=progress, minutes=minutes)
    finally:
        trainer.close()
    return finish(
        trainer, out, test_set, labels, cache_dir=args.cache_dir, progress=progress, seed=args.test_seed
    )


def cmd_evaluate(args) -> int:
    """`qpt-nb evaluate`: metrics of a saved run against PySCF, written into the run dir."""
    from qpt_nb.analysis.evaluation import TEST_SEED, evaluate
    from qpt_nb.analysis.guesses import guess_speedup
    from qpt_nb.analysis.runs import resolve_model
    from qpt_nb.fileio import save_json
    from qpt_nb.viz.plots import save_run_plots

    check_option("--n-test", args.n_test, 1)
    check_option("--guess", args.guess)
    settings.enable_compile_cache()
    run = Path(args.run)
    if not run.is_dir():
        raise FileNotFoundError(f"No run directory {run}.")
    cfg, params, step = resolve_model(run)
    if args.grid_level is not None:
        cfg = dataclasses.replace(cfg, grid_level=args.grid_level)
    seed = TEST_SEED if args.test_seed is None else args.test_seed
    res = evaluate(
        (cfg, params), args.n_test, seed=seed, cache_dir=args.cache_dir, progress=not args.no_progress
    )
    res.metadata["step"] = step
    paths = res.save(run, plot=save_run_plots)
    print(f"{run} (step {step}): {cfg.molecule} / {cfg.basis} / {cfg.xc} / grid level {cfg.grid_level}")
    print(res.table())
    print("files: " + ", ".join(str(paths[k]) for k in ("metrics", "per_conformer", "test_set")))
    if paths["plots"]:
        print("plots: " + ", ".join(str(p) for p in paths["plots"]))
    if args.guess:
        g = guess_speedup((cfg, params), res.test_set[: args.guess], guesses=("minao",))
        save_json(run / "guess_speedup.json", g)
        for name, s in g["summary"].items():
            print(f"PySCF from {name:6s} guess: {s['mean_cycles']:.1f} iterations, {s['mean_seconds']:.2f} s")
    return 0
