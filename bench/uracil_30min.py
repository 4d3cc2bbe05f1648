"""Issue-3 target run: label-free uracil/STO-3G/B3LYP5, nano, grid 1, 30 minutes of CPU; monitor
every 500 steps on 20 held-out MD conformers (seed 12345). Usage: python bench/uracil_30min.py"""

import json
import time

from qpt_nb.analysis.evaluation import make_monitor, make_test_set
from qpt_nb.learn.train import TrainConfig, Trainer

budget = 30 * 60
cfg = TrainConfig(
    molecule="uracil",
    basis="sto-3g",
    grid_level=1,
    model="nano",
    lr=5e-4,
    warmup_steps=200,
    decay_steps=5000,
    reuse=16,
    sampler="md",
    log_every=100,
    checkpoint_every=500,
)
tr = Trainer(cfg, "runs/uracil_30min")
test = make_test_set(tr.mol, 20)
mon = make_monitor(cfg, test)
tr.monitor, tr.monitor_every = mon, 500
t0 = time.time()


def show(rec):
    if "test_energy_mae_mev" in rec:
        m = {k[len("test_") :]: round(v, 3) for k, v in rec.items() if k.startswith("test_")}
        print(
            json.dumps(
                dict(
                    step=rec["step"],
                    wall_s=round(time.time() - t0),
                    **m,
                    steps_per_s=round(rec["steps_per_s"], 2),
                )
            ),
            flush=True,
        )


tr.run(5000 - tr.step, show, max_seconds=budget)  # checkpoints every 500 steps and at the end
m = mon(tr.params)
print("final", tr.step, round(time.time() - t0), m, flush=True)
