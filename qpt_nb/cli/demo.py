"""`qpt-nb demo` / `make demo`: the main job, label-free training on the default molecule.

`DEMO` holds its settings (uracil/STO-3G/B3LYP5, `nano`, grid level 1 for the labels and
evaluation, the training recipe of `qpt_nb.learn.recipe` on grid 0 in float32), `run_demo`
runs it: PySCF labels for a small test set, a schedule fitted to the time budget, training
with a small live monitor, then the metrics against PySCF.
"""

from __future__ import annotations

from pathlib import Path

from qpt_nb import settings
from qpt_nb.analysis.runs import new_run_dir
from qpt_nb.cli.train import attach_monitor, check_option, finish, test_data, train_loop, xyz_geometry
from qpt_nb.learn.recipe import new_run_settings

DEMO = dict(
    molecule="uracil",
    basis="sto-3g",
    xc="b3lyp5",
    grid_level=1,
    model="nano",
    steps=None,  # None: the cosine fitted to `minutes` (fit_schedule), so it ends at its floor
    minutes=3.0,
    n_test=10,
    monitor_n=3,
    reuse=16,  # the recipe's sliding window of 16 conformers (TrainConfig.data_schedule)
)
DEMO_SMOKE = dict(DEMO, molecule="water", steps=8, minutes=0.4, n_test=2, monitor_n=0, reuse=4)


def demo_fields(d: dict = DEMO) -> dict:
    """The `TrainConfig` fields of a demo's settings `d` (`DEMO` or `DEMO_SMOKE` with the
    user's options): molecule, basis, xc, grid level, model and window length."""
    return {k: d[k] for k in ("molecule", "basis", "xc", "grid_level", "model", "reuse")}


def add_demo_args(p) -> None:
    """Adds the demo's own options to a parser that already has the molecule options
    (`qpt_nb.cli.main.add_molecule_args`); --molecule, --basis, --xc and --grid-level then
    default to None, meaning the demo's choice (`DEMO`)."""
    p.add_argument("--model", help="QPT preset (default: the demo's)")
    p.add_argument("--steps", type=int, help="optimiser steps (default: the demo's)")
    p.add_argument("--minutes", type=float, help="training time cap in minutes")
    p.add_argument("--n-test", type=int, help="test conformers evaluated against PySCF")
    p.add_argument("--out", help="run directory (default runs/demo-MOLECULE-TIME)")
    p.add_argument("--cache-dir", help="PySCF label cache (default $QPT_NB_CACHE/labels)")
    p.set_defaults(molecule=None, basis=None, xc=None, grid_level=None)


def run_demo(args) -> int:
    """The main job: label-free training of `nano` on uracil/STO-3G/B3LYP5, then PySCF metrics.

    Reads (all optional) args.molecule, xyz, basis, xc, grid_level, model, steps,
    minutes, n_test, out, cache_dir, no_pyscf. Defaults: `DEMO` (about 3-5 min on 2 CPU
    cores, mostly PySCF labels the first time; they are cached). Without --steps the cosine
    is fitted to `minutes` of training on this machine (`qpt_nb.learn.recipe.fit_schedule`)
    and every fitted step is taken, so the learning rate ends at its floor on a slow machine
    too; with --steps, `minutes` caps the time. ``QPT_NB_SMOKE=1`` uses `DEMO_SMOKE` (water,
    8 steps, under a minute).
    """
    from qpt_nb.learn.train import TrainConfig, Trainer

    settings.enable_compile_cache()
    smoke = settings.smoke_mode()
    d = dict(DEMO_SMOKE if smoke else DEMO)
    for k in ("molecule", "basis", "xc", "grid_level", "model", "steps", "minutes", "n_test"):
        if getattr(args, k, None) is not None and not (smoke and k == "molecule"):
            d[k] = getattr(args, k)
    if d["steps"] is not None:
        check_option("--steps", d["steps"], 1)
    if not d["minutes"] > 0:
        raise ValueError(f"--minutes must be > 0, got {d['minutes']}")
    check_option("--n-test", d["n_test"])
    if getattr(args, "no_pyscf", False):
        d["n_test"] = 0
    from qpt_nb.learn.conformers import md_or_fallback

    sampler = md_or_fallback("md")
    over = dict(demo_fields(d), sampler=sampler, checkpoint_every=50)
    if getattr(args, "xyz", None):
        over.update(xyz=xyz_geometry(args.xyz)[0], molecule=Path(args.xyz).stem)
    config = TrainConfig(**new_run_settings(over, d["steps"]))  # without steps: refitted below
    config.molecule_object()
    out = Path(getattr(args, "out", None) or new_run_dir(config, prefix="demo"))
    cache_dir = getattr(args, "cache_dir", None)
    print(
        f"QPT demo{' (smoke)' if smoke else ''}: label-free training of '{config.model}' on "
        f"{config.molecule} / {config.basis} / {config.xc} / grid level {config.grid_level}, "
        f"{sampler} conformers, "
        + (f"up to {d['steps']} steps or {d['minutes']} min" if d["steps"] else f"{d['minutes']} min")
        + f" -> {out}"
    )
    test_set, labels = [], None
    if d["n_test"]:
        print(f"PySCF labels for {d['n_test']} test conformers (seed 12345, cached after the first run)")
        test_set, labels = test_data(config, d["n_test"], seed=None, cache_dir=cache_dir, progress=True)
    trainer = Trainer(config, out)
    try:
        steps, cap = d["steps"], d["minutes"]
        if steps is None:  # fit the cosine to the budget; then take every step it holds
            from qpt_nb.learn.recipe import fit_schedule

            trainer, steps = fit_schedule(trainer, d["minutes"])
            cap = 2.0 * d["minutes"]  # a safety net only: the fitted schedule ends the run
        if labels and d["monitor_n"]:
            attach_monitor(trainer, test_set, labels, n=d["monitor_n"], every=steps // 6)
        train_loop(trainer, steps, progress=True, minutes=cap)
    finally:
        trainer.close()
    return finish(trainer, out, test_set, labels, cache_dir=cache_dir, progress=True, seed=None)
