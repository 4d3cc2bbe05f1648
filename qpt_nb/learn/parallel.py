"""Data parallelism for training: a 1-D device mesh, replicated state, sharded batches.

With ``TrainConfig.devices = K`` the batch's leading (conformer) axis is split over K
JAX devices and the jitted update runs data-parallel (XLA all-reduces the batch-mean
loss and so the gradients). Multi-host: call ``jax.distributed.initialize()`` first;
`jax.devices()` then spans all hosts.
"""

from __future__ import annotations

import jax
import numpy as np


def data_mesh(devices: int):
    """A 1-D device mesh with axis 'data' over the first `devices` JAX devices
    (None for one device). Multi-host: call `jax.distributed.initialize()` first
    (see `qpt-nb train --help`); then `jax.devices()` spans all hosts."""
    if devices <= 1:
        return None
    available = jax.devices()
    if len(available) < devices:
        raise ValueError(
            f"devices={devices} requested but JAX sees {len(available)} "
            f"({available[0].platform}); on a CPU set "
            f"XLA_FLAGS=--xla_force_host_platform_device_count={devices} before starting Python."
        )
    return jax.sharding.Mesh(np.asarray(available[:devices]), ("data",))


def replicate(tree, mesh):
    """Places every leaf of `tree` on all devices of `mesh` (no-op without a mesh)."""
    if mesh is None:
        return tree
    rep = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return jax.device_put(tree, rep)


def shard_batch(batch, mesh):
    """Splits the leading (conformer) axis of every batch leaf across the mesh.

    The jitted update then runs data-parallel: XLA all-reduces the batch-mean loss
    and so the gradients, which equal one device's for the same global batch.
    """
    if mesh is None:
        return batch
    spec = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
    if jax.process_count() > 1:  # every process holds the global batch: it passes its rows
        return jax.tree_util.tree_map(
            lambda x: jax.make_array_from_process_local_data(spec, _local_rows(x, mesh), x.shape), batch
        )
    return jax.device_put(batch, spec)


def _local_rows(x, mesh):
    """This process's rows of the global batch `x` (the mesh's devices are in order, each
    process's consecutive)."""
    devices = list(mesh.devices.flat)
    mine = [i for i, d in enumerate(devices) if d.process_index == jax.process_index()]
    per = x.shape[0] // len(devices)
    return np.asarray(x)[mine[0] * per : (mine[-1] + 1) * per]
