"""Alanine dipeptide: the research code's phi/psi energy map (label-free QPT vs PySCF).

The experiment of graphcore-research/pyscf-ipu (branch code-for-paper-plots,
``pyscf_ipu/direct/train.py -alanine``, figure by ``another_plot.py``): label-free training
on conformers with phi, psi ~ U[0, 180) (the 'dihedral' sampler,
`qpt_nb.learn.dihedral_sampler`, plus the usual 0.05 Angstrom wiggle), then the trained
sandwich's energy, the W = 0 sandwich's and PySCF's (same basis, functional, grid level,
the QH9 convergence settings; `qpt_nb.dft.reference.label_many`, cached) on a regular
grid over [0, 360)^2, so the map shows interpolation inside the training region and
extrapolation outside it; and a psi scan at fixed phi (the research code's inference
sweep, 5-degree steps there). Computation: `qpt_nb.analysis.ramachandran`; figures:
`qpt_nb.viz.ramachandran`.

  python bench/alanine_map.py          # quick: grid level 0, ~20 steps, 3 x 3 grid (~5 min, 2 cores)
  python bench/alanine_map.py --full   # STO-3G/B3LYP5 grid 3, nano, 60 min of training, 12 x 12 grid,
                                       # 36-point psi scan at phi = 75 (then 180 PySCF labels)

Both train with the measured recipe (`qpt_nb.learn.recipe.RECIPE`: the loss on grid level 0
in float32, lr 1e-3, no weight decay); the map and the labels are on the benchmark's grid
level in float64. --full fits the cosine schedule to the 60 minutes (`fit_schedule`).

Outputs (bench/results/): alanine_map[_quick].json, rewritten after training and after
every row of PySCF labels (``stage``, ``labelled``; complete=false until the end), then
the maps (`EnergyMap.to_json`: Hartree and degrees; errors in meV inside / outside the
training region); alanine_map[_quick].png (the 2 x 3 figure), ..._w0.png (the same for
W = 0) and ..._scan.png. The run directory (runs/alanine_map[_quick]/) is kept: a second
call resumes it (up to --steps, within --minutes more) and finds the labels in the cache,
so an interrupted benchmark continues where it stopped (with the schedule it was fitted to).
--steps sets the cosine schedule's length instead (the training stops at --steps or
--minutes, whichever comes first).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NAME = "alanine_map"
QUICK = dict(grid_level=0, model="nano", steps=20, minutes=1.5, n_grid=3, n_scan=3, scan_phi=180.0, reuse=4)
FULL = dict(
    grid_level=3, model="nano", steps=None, minutes=60.0, n_grid=12, n_scan=36, scan_phi=75.0, reuse=16
)


def _config(sel, args):
    from qpt_nb.learn.recipe import RECIPE, warmup_steps_for
    from qpt_nb.learn.train import TrainConfig

    return TrainConfig(
        molecule="alanine_dipeptide",
        basis="sto-3g",
        xc="b3lyp5",
        grid_level=sel["grid_level"],
        model=sel["model"],
        sampler="dihedral",
        phi_range=args.phi_range,
        psi_range=args.psi_range,
        reuse=sel["reuse"],
        warmup_steps=warmup_steps_for(sel["steps"] or 2000, cap=200),
        decay_steps=sel["steps"] or 10**6,  # None: fitted to the budget (fit_schedule)
        checkpoint_every=50,
        log_every=1,
        **RECIPE,
    )


def _trainer(cfg, run_dir, sel):
    """A fresh Trainer in run_dir, or the saved run there resumed (keeping its schedule).
    Without sel['steps'] a fresh run's schedule is fitted to sel['minutes']
    (`qpt_nb.learn.recipe.fit_schedule`) and sel['steps'] set to it."""
    from qpt_nb.analysis.runs import trained_steps
    from qpt_nb.learn.recipe import fit_schedule
    from qpt_nb.learn.train import Trainer

    if run_dir.is_dir() and trained_steps(run_dir):
        print(f"resuming the run in {run_dir}")
        tr = Trainer.resume(run_dir)
        sel["steps"] = sel["steps"] or tr.config.decay_steps
        return tr
    tr = Trainer(cfg, run_dir)
    if sel["steps"] is None:
        tr, sel["steps"] = fit_schedule(tr, sel["minutes"])
    return tr


def _train(tr, sel, write, t0):
    """Trains up to sel['steps'] until sel['minutes'] after `t0` (perf_counter; the
    calibration counts); returns a summary dict."""
    last = [t0]

    def show(rec):
        if time.perf_counter() - last[0] > 60 or rec["step"] in (1, sel["steps"]):
            last[0] = time.perf_counter()
            print(
                f"  step {rec['step']:5d}  loss {rec['loss']:.6f} Ha  {rec['steps_per_s']:.2f} steps/s",
                flush=True,
            )
            write(dict(stage="training", step=rec["step"], loss_ha=rec["loss"]))

    left = 60.0 * sel["minutes"] - (time.perf_counter() - t0)
    tr.run(max(sel["steps"] - tr.step, 0), show, max_seconds=max(left, 1.0))
    h = tr.history
    return dict(
        steps=tr.step,
        seconds=time.perf_counter() - t0,
        wall_s=h[-1]["wall_s"] if h else 0.0,
        final_loss_ha=h[-1]["loss"] if h else None,
        steps_per_s=h[-1]["steps_per_s"] if h else None,
        compile_s=tr.timing["compile_s"],
        n_params=tr.n_params,
        loss_curve=[dict(step=r["step"], loss_ha=r["loss"]) for r in h[:: max(len(h) // 200, 1)]],
    )


def _label_rows(cfg, mols, n_per_row, write, what):
    """PySCF labels of `mols` (None: a clash), one grid row at a time, into the cache."""
    from qpt_nb.dft.reference import label_many

    todo = [m for m in mols if m is not None]
    t0, done = time.perf_counter(), 0
    for start in range(0, len(todo), n_per_row):
        chunk = todo[start : start + n_per_row]
        labs = label_many(chunk, cfg.basis, **cfg.dft_settings())
        done += len(chunk)
        fresh = sum(not lab.cached for lab in labs)
        print(
            f"  {what}: {done}/{len(todo)} labelled ({fresh} computed now, {time.perf_counter() - t0:.0f} s)"
        )
        write(dict(stage=f"labels {what}", labelled=done, to_label=len(todo)))


def main(argv=None):
    p = common.make_parser(__doc__, NAME)
    p.add_argument("--steps", type=int, help="optimiser steps, the schedule's length (full: 1500)")
    p.add_argument("--minutes", type=float, help="training time cap (full: 60)")
    p.add_argument("--grid", type=int, help="map points per angle (full: 12)")
    p.add_argument("--scan", type=int, help="psi-scan points over [0, 360) (full: 36)")
    p.add_argument("--scan-phi", type=float, help="phi of the psi scan, degrees (full: 75)")
    p.add_argument("--grid-level", type=int, help="DFT grid level (full: 3)")
    p.add_argument("--model", help="QPT preset (default nano)")
    p.add_argument("--phi-range", default="0,180", help="training phi region, degrees (default 0,180)")
    p.add_argument("--psi-range", default="0,180", help="training psi region, degrees (default 0,180)")
    p.add_argument("--run-dir", help="run directory (default runs/alanine_map[_quick])")
    args = p.parse_args(argv)

    from qpt_nb import settings
    from qpt_nb.analysis.ramachandran import angle_grid, energy_map, map_geometries, psi_scan
    from qpt_nb.viz.ramachandran import energy_map_figure, psi_scan_figure

    settings.enable_compile_cache()
    sel = dict(FULL if args.full else QUICK)
    for key, opt in dict(
        steps="steps", minutes="minutes", n_grid="grid", n_scan="scan", scan_phi="scan_phi"
    ).items():
        if getattr(args, opt) is not None:
            sel[key] = getattr(args, opt)
    if args.grid_level is not None:
        sel["grid_level"] = args.grid_level
    if args.model:
        sel["model"] = args.model
    cfg = _config(sel, args)
    json_path, png_path = common.out_paths(args, NAME)
    stem = png_path.with_suffix("")
    run_dir = Path(args.run_dir or f"runs/{NAME}{'' if args.full else '_quick'}")
    machine = common.machine_info()
    out = dict(
        name=NAME,
        mode="full" if args.full else "quick",
        settings=sel,
        config=cfg.to_json(),
        run_dir=str(run_dir),
        machine=machine,
        complete=False,
    )

    def write(update):
        out.update(update)
        common.write_json(json_path, out)

    print(
        f"alanine dipeptide / {cfg.basis} / {cfg.xc} / grid level {cfg.grid_level} / {cfg.model}: "
        f"phi {list(cfg.phi_range)}, psi {list(cfg.psi_range)}; up to {sel['steps']} steps or "
        f"{sel['minutes']} min -> {run_dir}\n{common.machine_line(machine)}"
    )
    t_start = time.perf_counter()
    tr = _trainer(cfg, run_dir, sel)
    try:
        training = _train(tr, sel, write, t_start)
        write(dict(stage="training", config=tr.config.to_json(), training=training))
        phi = angle_grid(sel["n_grid"])
        scan_psi = angle_grid(sel["n_scan"])
        mol = cfg.molecule_object()
        _label_rows(cfg, map_geometries(mol, phi, phi), len(phi), write, "map")
        _label_rows(cfg, map_geometries(mol, [sel["scan_phi"]], scan_psi), len(scan_psi), write, "scan")
        t0 = time.perf_counter()
        emap = energy_map(tr, phi)
        scan = psi_scan(tr, sel["scan_phi"], scan_psi)
        predict_s = time.perf_counter() - t0
    finally:
        tr.close()
    print(f"\nmap {emap.shape[0]} x {emap.shape[1]} ({emap.metadata['n_clash']} clashes), energies in meV:")
    print(emap.table())
    print(f"psi scan at phi = {sel['scan_phi']:g}:")
    print(scan.table())
    write(
        dict(stage="done", complete=True, predict_seconds=predict_s, map=emap.to_json(), scan=scan.to_json())
    )
    common.save_figure(
        energy_map_figure(emap, title=f"alanine dipeptide, {cfg.model} after {tr.step} steps (QPT)"), png_path
    )
    common.save_figure(energy_map_figure(emap, key="w0", title="alanine dipeptide, W = 0"), f"{stem}_w0.png")
    common.save_figure(psi_scan_figure(scan), f"{stem}_scan.png")
    print(f"wrote {json_path}, {png_path}, {stem}_w0.png, {stem}_scan.png")
    return out


if __name__ == "__main__":
    main()
