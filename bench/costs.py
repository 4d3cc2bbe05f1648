"""What one label and one training step cost, per basis: the break-even of label-free training.

For uracil (MD conformers, B3LYP5, nano), single-threaded as the headline runs, CPU seconds of
this process (all threads; one is allowed):

  precompute      `prepare_conformer` at the training grid (level 0, float32): integrals,
                  grid, AO values, H_init; every training conformer pays it once
  label_qpt       one label by qpt_nb's SCF at the QH9 settings (grid 3, conv_tol 1e-13)
  label_pyscf     one label by PySCF (`dft.RKS`, the same settings)
  step_label_free one optimiser step of the recipe's energy loss (three sandwich iterations
                  at grid 0 in float32, backward through them)
  step_supervised one optimiser step of the supervised loss (no grid work)

and the break-even: label-free steps one label buys (label / step_label_free), and a label plus
its share of supervised steps. Medians over --repeats conformers or steps, after a warm-up
(compilation excluded and reported apart).

  export OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
  python bench/costs.py                          # STO-3G and def2-SVP, one thread
  python bench/costs.py --bases sto-3g --repeats 3

Results: bench/results/costs.json (one entry per basis, rewritten after each).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OUT = common.RESULTS / "costs.json"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bases", nargs="+", default=["sto-3g", "def2-svp"])
    p.add_argument("--repeats", type=int, default=3, help="conformers (labels, precompute) per figure")
    p.add_argument("--steps", type=int, default=10, help="optimiser steps timed per loss")
    p.add_argument("--out", default=str(OUT))
    return p.parse_args(argv)


def cpu(fn):
    """(result, CPU seconds of this process) of fn()."""
    c0 = time.process_time()
    out = fn()
    return out, time.process_time() - c0


def measure(basis: str, args) -> dict:
    import jax

    from qpt_nb.analysis.evaluation import make_test_set
    from qpt_nb.dft.molecule import Molecule
    from qpt_nb.dft.reference import compute_label
    from qpt_nb.learn.batch import prepare_conformer, prepare_tensors, without_grid
    from qpt_nb.learn.config import TrainConfig
    from qpt_nb.learn.recipe import RECIPE
    from qpt_nb.learn.train import init_state, make_update

    mol = Molecule.builtin("uracil")
    confs = make_test_set(mol, args.repeats + 1, sampler="md", seed=777)  # not the test seed
    out = dict(basis=basis)
    lab_kw = dict(xc="b3lyp5", grid_level=3, eri="auto", threads=1)
    for engine in ("qpt_nb", "pyscf"):
        if engine == "qpt_nb":
            compute_label(confs[0], basis, engine=engine, **lab_kw)  # compiles
        secs = [cpu(lambda m=m: compute_label(m, basis, engine=engine, **lab_kw))[1] for m in confs[1:]]
        out[f"label_{engine}_s"] = statistics.median(secs)
        print(f"{basis}: label {engine} {out[f'label_{engine}_s']:.2f} CPU-s", flush=True)
    lab = compute_label(confs[0], basis, engine="qpt_nb", **lab_kw)  # the supervised step's target

    def prep(m):
        return prepare_conformer(m, basis, grid_level=0, precision="float32")

    batches = [prep(confs[0])]
    secs = []
    for m in confs[1:]:
        b, s = cpu(lambda m=m: prep(m))
        batches.append(b)
        secs.append(s)
    out["precompute_s"] = statistics.median(secs)
    out["n_ao"] = int(batches[0].tensors.n_ao)
    print(f"{basis}: precompute {out['precompute_s']:.2f} CPU-s ({out['n_ao']} AOs)", flush=True)

    for loss in ("energy", "supervised"):
        cfg = TrainConfig(molecule="uracil", basis=basis, grid_level=3, loss=loss, **RECIPE)
        batch = batches[0]
        if loss == "supervised":
            batch = without_grid(prepare_tensors(batch.tensors, "b3lyp5", ref_fock=lab.fock))
        update = make_update(cfg)
        state = init_state(cfg, batch)
        (state, _), compile_s = cpu(lambda: jax.block_until_ready(update(state, batch)))
        secs = []
        for _ in range(args.steps):
            (state, _), s = cpu(lambda: jax.block_until_ready(update(state, batch)))
            secs.append(s)
        key = "step_label_free_s" if loss == "energy" else "step_supervised_s"
        out[key] = statistics.median(secs)
        out[key[:-2] + "_compile_s"] = compile_s
        print(f"{basis}: {key} {out[key] * 1e3:.1f} CPU-ms (compile {compile_s:.1f} s)", flush=True)
    for engine in ("qpt_nb", "pyscf"):
        out[f"break_even_{engine}"] = out[f"label_{engine}_s"] / out["step_label_free_s"]
    return out


def main(argv=None):
    args = parse_args(argv)
    import json

    import qpt_nb  # noqa: F401  (float64)

    path = Path(args.out)
    data = json.loads(path.read_text()) if path.is_file() else {}
    info = common.machine_info()
    for basis in args.bases:
        data[basis] = measure(basis, args)
        data[basis].update(date=info["date"], machine=common.machine_line(info))
        data["command"] = "python bench/costs.py " + " ".join(sys.argv[1:] if argv is None else argv)
        data["units"] = "CPU seconds of one process, single-threaded"
        common.write_json(path, data)
    rows = [
        dict(basis=b, **{k: v for k, v in data[b].items() if k.endswith("_s") or "break" in k})
        for b in args.bases
    ]
    cols = [
        ("basis", "basis", "{}"),
        ("precompute s", "precompute_s", "{:.2f}"),
        ("label qpt_nb s", "label_qpt_nb_s", "{:.2f}"),
        ("label PySCF s", "label_pyscf_s", "{:.2f}"),
        ("label-free step s", "step_label_free_s", "{:.4f}"),
        ("supervised step s", "step_supervised_s", "{:.4f}"),
        ("steps per qpt_nb label", "break_even_qpt_nb", "{:.0f}"),
        ("steps per PySCF label", "break_even_pyscf", "{:.0f}"),
    ]
    print(common.table(rows, cols))


if __name__ == "__main__":
    main()
