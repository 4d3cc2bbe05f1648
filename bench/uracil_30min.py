"""Issue-3 target run: label-free uracil/STO-3G/B3LYP5, nano, grid 1, 30 minutes of CPU; monitor
every 500 steps on 20 held-out MD conformers (seed 12345). Usage: python bench/uracil_30min.py"""
import time, json, sys
import qpt_nb
from qpt_nb.learn.train import Trainer, TrainConfig
from qpt_nb.analysis.evaluation import make_test_set, make_monitor, evaluate
budget = 30 * 60
cfg = TrainConfig(molecule="uracil", basis="sto-3g", grid_level=1, model="nano", lr=5e-4, warmup_steps=200,
                  decay_steps=5000, reuse=16, sampler="md", log_every=100, checkpoint_every=500)
tr = Trainer(cfg, "runs/uracil_30min")
test = make_test_set(tr.mol, 20)
mon = make_monitor(cfg, test)
t0 = time.time()
while time.time() - t0 < budget and tr.step < 5000:
    tr.run(100)
    if tr.step % 500 == 0:
        m = mon(tr.params)
        print(json.dumps(dict(step=tr.step, wall_s=round(time.time() - t0), **{k: round(v, 3) for k, v in m.items()},
                              steps_per_s=round(tr.history[-1]["steps_per_s"], 2))), flush=True)
tr.save()
m = mon(tr.params)
print("final", tr.step, round(time.time() - t0), m, flush=True)
