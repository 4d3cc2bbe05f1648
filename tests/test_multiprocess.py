"""Multi-host data parallelism for real: two processes on localhost (jax.distributed with
JAX's gloo CPU collectives) give the parameters of one process with the same global batch."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = """
import sys, numpy as np, jax
n_proc, pid, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
if n_proc > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=n_proc, process_id=pid)
import qpt_nb
from qpt_nb.learn.train import Trainer, TrainConfig
cfg = TrainConfig(molecule="water", basis="sto-3g", grid_level=0, batch_size=2, devices=2,
                  lr=2e-3, warmup_steps=2, decay_steps=50, reuse=2, sampler="wiggle")
tr = Trainer(cfg)
tr.run(5)
leaves = [np.asarray(jax.device_get(x.addressable_data(0) if hasattr(x, "addressable_data") else x))
          for x in jax.tree_util.tree_leaves(tr.params)]
np.savez(out, *leaves)
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _load(path):
    data = np.load(path)
    return [data[k] for k in sorted(data.files, key=lambda s: int(s.split("_")[1]))]


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    port = str(_free_port())
    env1 = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SCRIPT, "2", str(i), port, str(tmp_path / f"p{i}.npz")],
            env=env1,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
    env2 = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    single = subprocess.run(
        [sys.executable, "-c", SCRIPT, "1", "0", port, str(tmp_path / "single.npz")],
        env=env2,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    ref, a, b = (_load(tmp_path / f) for f in ("single.npz", "p0.npz", "p1.npz"))
    assert len(ref) == len(a) == len(b)
    for r, x, y in zip(ref, a, b):
        np.testing.assert_allclose(x, r, rtol=0, atol=1e-10)
        np.testing.assert_allclose(y, r, rtol=0, atol=1e-10)
    assert any(np.abs(r).max() > 0 for r in ref)
