"""A trained model in ASE: approximate-force error, geometry optimisation and MD (uracil/STO-3G).

Three parts, each writing bench/results/ase_md_<part>.json as it goes (rerun to resume: a
part whose JSON says complete is skipped; the MD part appends steps to its JSON):

  python bench/ase_md.py --part grad   # Prediction.gradient (the model's orbitals) vs exact
  python bench/ase_md.py --part opt    # BFGS fmax 0.01 eV/A: scf, seeded, PySCF + geomeTRIC
  python bench/ase_md.py --part md     # velocity Verlet 300 K: scf, seeded, PySCF per step
  python bench/ase_md.py --part step --steps 10   # the per-step cost, the codes interleaved

Settings: the shipped uracil model's (STO-3G, B3LYP5, grid level 1), conv_tol 1e-10,
forces with the grid response (`qpt_nb.dft.pyscf_mf.nuclear_gradient`) in every mode,
PySCF included. Threads: OMP_NUM_THREADS and XLA flags as set by the caller (single-threaded
like the headline runs: OMP_NUM_THREADS=1). `--steps` sets the MD length (200 by default),
`--n-test` the conformers of the force part (20).

- grad: on the held-out MD conformers of the shipped model's record (`make_test_set`, seed
  12345, its sampler at 300 K), the model's
  approximate forces (`Prediction.gradient`) against the exact forces of the SCF from the
  model's density (`qpt_nb.scf(mol, guess=model).gradient()`): MAE and max, meV/Angstrom.
- opt: uracil distorted by 0.05 A (seed 0), optimised by `ase.optimize.BFGS` to fmax
  0.01 eV/A with `QPTCalculator` in 'scf' and 'seeded' modes, and by PySCF's RKS driven by
  geomeTRIC (`pyscf.geomopt.geometric_solver`, gmax 1.9e-4 Ha/Bohr = 0.01 eV/A); RMSD of
  the minima after alignment (Angstrom), SCF iterations and wall seconds of each.
- md: the same initial velocities (Maxwell-Boltzmann 300 K, seed 0), 0.5 fs, in 'scf'
  (previous-step density as guess), 'seeded' (model density) and PySCF (RKS from the
  previous step's density + its analytic gradient); seconds per step (the first step,
  compilation, excluded), SCF iterations per step, total-energy drift (meV), and per step
  which guess needed fewer iterations (previous density vs model density).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

MODEL = "uracil"
CONV_TOL = 1e-10
FMAX = 0.01  # eV/Angstrom (--fmax)


def _settings():
    import qpt_nb

    c = qpt_nb.pretrained.load(MODEL).config
    return dict(basis=c.basis, xc=c.xc, grid_level=c.grid_level)


def _out(part):
    return common.RESULTS / f"ase_md_{part}.json"


def _load(part):
    p = _out(part)
    return json.loads(p.read_text()) if p.is_file() else None


def _save(part, data):
    data["machine"] = common.machine_info()
    common.write_json(_out(part), data)


# ----------------------------------------------------------------------------- approximate forces
def part_grad(n_test: int):
    import qpt_nb
    from qpt_nb.analysis.evaluation import make_test_set
    from qpt_nb.ase import FORCE_UNIT

    model = qpt_nb.pretrained.load(MODEL)
    cfg = model.config  # the shipped model's own test set (its recorded errors' conformers)
    test = make_test_set(cfg.molecule_object(), n_test, sampler=cfg.sampler, **cfg.sampler_kwargs())
    rows = []
    for i, mol in enumerate(test):
        t0 = time.perf_counter()
        (p,) = qpt_nb.predict(model, mol, progress=False)
        approx = -p.gradient() * FORCE_UNIT
        t1 = time.perf_counter()
        res = qpt_nb.scf(mol, guess=model, conv_tol=CONV_TOL)
        exact = -res.gradient() * FORCE_UNIT
        t2 = time.perf_counter()
        d = np.abs(approx - exact) * 1000.0
        rows.append(
            dict(
                index=i,
                mae_mev_per_a=float(d.mean()),
                max_mev_per_a=float(d.max()),
                force_scale_mev_per_a=float(np.abs(exact).mean() * 1000.0),
                energy_error_mev=float((p.energy - res.energy) * qpt_nb.units.MEV_PER_HARTREE),
                model_seconds=t1 - t0,
                seeded_seconds=t2 - t1,
            )
        )
        print(
            f"  {i}: force MAE {rows[-1]['mae_mev_per_a']:.1f} meV/A (max {rows[-1]['max_mev_per_a']:.1f}), "
            f"|F| {rows[-1]['force_scale_mev_per_a']:.0f} meV/A",
            flush=True,
        )
        _save("grad", dict(model=MODEL, settings=_settings(), rows=rows, complete=False))
    summary = dict(
        n=len(rows),
        mae_mev_per_a=float(np.mean([r["mae_mev_per_a"] for r in rows])),
        max_mev_per_a=float(np.max([r["max_mev_per_a"] for r in rows])),
        mean_force_mev_per_a=float(np.mean([r["force_scale_mev_per_a"] for r in rows])),
    )
    print(
        f"approximate forces: MAE {summary['mae_mev_per_a']:.1f} meV/A, max {summary['max_mev_per_a']:.1f} "
        f"(mean |F| {summary['mean_force_mev_per_a']:.0f} meV/A) on {len(rows)} conformers"
    )
    _save("grad", dict(model=MODEL, settings=_settings(), rows=rows, summary=summary, complete=True))


# ----------------------------------------------------------------------------- optimisation
def _distorted():
    import qpt_nb

    mol = qpt_nb.Molecule.builtin("uracil")
    rng = np.random.default_rng(0)
    return mol.with_coords(mol.coords_angstrom + rng.normal(scale=0.05, size=mol.coords_angstrom.shape))


def _aligned_rmsd(a, b) -> float:
    from ase import Atoms
    from ase.build import minimize_rotation_and_translation

    x, y = Atoms(positions=a), Atoms(positions=b)
    minimize_rotation_and_translation(x, y)
    return float(np.sqrt(((x.positions - y.positions) ** 2).sum(axis=1).mean()))


def part_opt():
    from ase.optimize import BFGS

    from qpt_nb.ase import QPTCalculator

    s = _settings()
    start = _distorted()
    done = _load("opt") or dict(runs={})
    if done.get("fmax_ev_per_a") not in (None, FMAX) or done.get("geometric_grid_response") is not True:
        done = dict(runs={})  # another threshold, or the run before geomeTRIC had the grid response
    runs = done["runs"]
    for mode in ("scf", "seeded", "pyscf"):
        if mode in runs:
            continue
        t0 = time.perf_counter()
        if mode == "pyscf":
            pos, cycles, n_steps = _pyscf_geometric(start, s)
        else:
            atoms = start.to_ase()
            calc = (
                QPTCalculator(MODEL, mode=mode, conv_tol=CONV_TOL)
                if mode == "seeded"
                else QPTCalculator(mode="scf", conv_tol=CONV_TOL, **s)
            )
            atoms.calc = calc
            opt = BFGS(atoms, logfile=None)
            opt.run(fmax=FMAX, steps=300)
            pos, cycles, n_steps = (
                atoms.positions.copy(),
                sum(h["n_iter"] for h in calc.history),
                len(calc.history),
            )
        runs[mode] = dict(
            positions=np.asarray(pos).tolist(),
            scf_iterations=int(cycles),
            gradient_calls=int(n_steps),
            seconds=time.perf_counter() - t0,
        )
        print(
            f"  {mode}: {n_steps} gradient calls, {cycles} SCF iterations, {runs[mode]['seconds']:.0f} s",
            flush=True,
        )
        _save(
            "opt",
            dict(settings=s, fmax_ev_per_a=FMAX, geometric_grid_response=True, runs=runs, complete=False),
        )
    ref = np.asarray(runs["pyscf"]["positions"])
    for mode in ("scf", "seeded"):
        runs[mode]["rmsd_vs_pyscf_a"] = _aligned_rmsd(np.asarray(runs[mode]["positions"]), ref)
        print(f"  {mode}: RMSD to PySCF+geomeTRIC minimum {runs[mode]['rmsd_vs_pyscf_a']:.2e} A")
    _save("opt", dict(settings=s, fmax_ev_per_a=FMAX, geometric_grid_response=True, runs=runs, complete=True))


def _pyscf_geometric(start, s):
    from pyscf.geomopt.geometric_solver import optimize

    from qpt_nb.dft.reference import make_rks
    from qpt_nb.units import ANGSTROM_PER_BOHR, EV_PER_HARTREE

    mf = make_rks(start.to_pyscf(s["basis"]), xc=s["xc"], grid_level=s["grid_level"], conv_tol=CONV_TOL)
    cycles = []

    def count(envs):
        cycles.append(int(envs.get("cycle", 0)) + 1)

    mf.callback = count
    grad_calls = []
    gmax = FMAX / (EV_PER_HARTREE / ANGSTROM_PER_BOHR)  # fmax in Hartree/Bohr
    conv = dict(
        convergence_gmax=gmax,
        convergence_grms=gmax / 2,
        convergence_energy=1e-8,
        convergence_drms=1e-4,
        convergence_dmax=2e-4,
    )

    def cb(envs):
        grad_calls.append(1)

    g = mf.nuc_grad_method()
    g.grid_response = True  # the derivative of the energy the SCF computes, as QPTCalculator's
    mol_eq = optimize(g, maxsteps=300, callback=cb, **conv)
    return mol_eq.atom_coords(unit="Angstrom"), len(cycles), len(grad_calls)


# ----------------------------------------------------------------------------- MD
class _PySCFCalculator:
    """PySCF's RKS + analytic gradient per step, the previous step's density as guess."""

    def __new__(cls, s):
        from ase.calculators.calculator import Calculator, all_changes

        from qpt_nb.ase import FORCE_UNIT
        from qpt_nb.dft.molecule import Molecule
        from qpt_nb.dft.reference import make_rks
        from qpt_nb.units import EV_PER_HARTREE

        class Calc(Calculator):
            implemented_properties = ["energy", "forces"]

            def __init__(self):
                super().__init__()
                self.history, self.dm = [], None

            def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
                super().calculate(atoms, properties, system_changes)
                t0 = time.perf_counter()
                mol = Molecule.from_ase(self.atoms)
                mf = make_rks(
                    mol.to_pyscf(s["basis"]), xc=s["xc"], grid_level=s["grid_level"], conv_tol=CONV_TOL
                )
                mf.kernel(dm0=self.dm)
                self.dm = mf.make_rdm1()
                t1 = time.perf_counter()
                g = mf.nuc_grad_method()
                g.grid_response = True
                grad = g.kernel()
                self.history.append(
                    dict(
                        mode="pyscf",
                        n_iter=int(mf.cycles),
                        seconds=time.perf_counter() - t0,
                        scf_seconds=t1 - t0,
                        guess="previous" if self.history else "minao",
                        energy_hartree=float(mf.e_tot),
                    )
                )
                self.results = dict(energy=mf.e_tot * EV_PER_HARTREE, forces=-grad * FORCE_UNIT)

        return Calc()


def part_md(steps: int, modes):
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    from qpt_nb.ase import QPTCalculator

    s = _settings()
    data = _load("md") or dict(runs={})
    for mode in modes:
        run = data["runs"].get(mode)
        if run and run.get("complete") and len(run["steps"]) >= steps:
            continue
        atoms = _md_start().to_ase()
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(0))
        if mode == "pyscf":
            calc = _PySCFCalculator(s)
        elif mode == "seeded":
            calc = QPTCalculator(MODEL, mode="seeded", conv_tol=CONV_TOL)
        else:
            calc = QPTCalculator(mode="scf", conv_tol=CONV_TOL, **s)
        atoms.calc = calc
        dyn = VelocityVerlet(atoms, timestep=0.5 * units.fs)
        rows = []

        def record():
            h = calc.history[-1]
            rows.append(
                dict(
                    step=len(rows),
                    epot_ev=float(atoms.get_potential_energy()),
                    ekin_ev=float(atoms.get_kinetic_energy()),
                    n_iter=h["n_iter"],
                    seconds=h["seconds"],
                    guess=h["guess"],
                )
            )
            if len(rows) % 10 == 0:
                data["runs"][mode] = _md_summary(rows, False)
                _save("md", dict(settings=s, timestep_fs=0.5, temperature_k=300, **data))
                print(f"  {mode}: step {len(rows)}, {rows[-1]['seconds']:.2f} s/step", flush=True)

        dyn.attach(record, interval=1)
        dyn.run(steps)
        data["runs"][mode] = _md_summary(rows, True)
        _save("md", dict(settings=s, timestep_fs=0.5, temperature_k=300, **data))
    runs = data["runs"]
    if "scf" in runs and "seeded" in runs:
        a, b = runs["scf"]["steps"], runs["seeded"]["steps"]
        n = min(len(a), len(b))
        wins = sum(b[k]["n_iter"] < a[k]["n_iter"] for k in range(1, n))
        ties = sum(b[k]["n_iter"] == a[k]["n_iter"] for k in range(1, n))
        data["guess_wins"] = dict(
            steps=n - 1, model_fewer=wins, equal=ties, previous_fewer=n - 1 - wins - ties
        )
    if "pyscf" in runs:
        for m in ("scf", "seeded"):
            if m in runs:
                runs[m]["speedup_vs_pyscf"] = runs["pyscf"]["seconds_per_step"] / runs[m]["seconds_per_step"]
    _save("md", dict(settings=s, timestep_fs=0.5, temperature_k=300, **data))
    print(json.dumps({m: {k: v for k, v in r.items() if k != "steps"} for m, r in runs.items()}, indent=1))
    if "guess_wins" in data:
        print("guess per step:", data["guess_wins"])


def part_step(n_steps: int):
    """Energy + forces per MD-like step, the three calculators interleaved on the same
    geometries (a random walk of 0.005 A per atom and step from uracil), so that each step of
    each code runs under the same machine load: the fair per-step ratio."""
    from qpt_nb.ase import QPTCalculator

    s = _settings()
    calcs = dict(
        scf=QPTCalculator(mode="scf", conv_tol=CONV_TOL, **s),
        seeded=QPTCalculator(MODEL, mode="seeded", conv_tol=CONV_TOL),
        pyscf=_PySCFCalculator(s),
    )
    rng = np.random.default_rng(1)
    mol = _md_start()
    x = mol.coords_angstrom.copy()
    for k in range(n_steps + 1):  # step 0 compiles and starts from minao: not counted
        for calc in calcs.values():
            atoms = mol.with_coords(x).to_ase()
            atoms.calc = calc
            atoms.get_forces()
        x = x + rng.normal(scale=0.005, size=x.shape)
    out = {}
    for name, calc in calcs.items():
        h = calc.history[1:]
        out[name] = dict(
            seconds_per_step=float(np.median([r["seconds"] for r in h])),
            scf_seconds_per_step=float(np.median([r.get("scf_seconds", np.nan) for r in h])),
            scf_iterations=float(np.mean([r["n_iter"] for r in h])),
        )
    for name in ("scf", "seeded"):
        out[name]["speedup_vs_pyscf"] = out["pyscf"]["seconds_per_step"] / out[name]["seconds_per_step"]
    print(json.dumps(out, indent=1))
    _save("step", dict(settings=s, n_steps=n_steps, runs=out, complete=True))


def _md_start():
    import qpt_nb

    return qpt_nb.Molecule.builtin("uracil")


def _md_summary(rows, complete):
    etot = np.array([r["epot_ev"] + r["ekin_ev"] for r in rows])
    steady = [r["seconds"] for r in rows[1:]] or [rows[0]["seconds"]]
    return dict(
        steps=rows,
        complete=complete,
        n_steps=len(rows),
        seconds_per_step=float(np.mean(steady)),
        mean_scf_iterations=float(np.mean([r["n_iter"] for r in rows[1:]] or [0])),
        drift_mev=float((etot.max() - etot.min()) * 1000.0),
        drift_end_mev=float((etot[-1] - etot[0]) * 1000.0),
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("grad", "opt", "md", "step"), required=True)
    p.add_argument("--n-test", type=int, default=20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--fmax", type=float, default=FMAX, help="optimisation threshold, eV/Angstrom (opt)")
    p.add_argument("--modes", nargs="+", default=["scf", "seeded", "pyscf"])
    args = p.parse_args(argv)
    global FMAX
    FMAX = args.fmax
    if args.part == "grad":
        part_grad(args.n_test)
    elif args.part == "opt":
        part_opt()
    elif args.part == "step":
        part_step(args.steps)
    else:
        part_md(args.steps, args.modes)


if __name__ == "__main__":
    main()
