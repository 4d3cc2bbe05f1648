"""Data-parallel training over two (forced) CPU devices equals one device."""

import os
import subprocess
import sys

import numpy as np

SCRIPT = """
import sys, numpy as np, qpt_nb, jax
from qpt_nb.learn.train import Trainer, TrainConfig
devices = int(sys.argv[1])
assert jax.device_count() >= devices, jax.devices()
cfg = TrainConfig(molecule="water", basis="sto-3g", grid_level=0, batch_size=2, devices=devices,
                  lr=2e-3, warmup_steps=2, decay_steps=50, reuse=2, sampler="wiggle")
tr = Trainer(cfg)
tr.run(5)
leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tr.params)]
np.savez(sys.argv[2], *leaves)
"""


def _run(devices, out):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(devices), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = np.load(out)
    return [data[k] for k in sorted(data.files, key=lambda s: int(s.split("_")[1]))]


def test_two_devices_match_one_device(tmp_path):
    one = _run(1, tmp_path / "one.npz")
    two = _run(2, tmp_path / "two.npz")
    assert len(one) == len(two)
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10)
    assert any(np.abs(a).max() > 0 for a in one)
