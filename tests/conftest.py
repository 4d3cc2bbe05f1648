"""Shared test helpers: the tiny water training configuration and private caches.

`water_config(**changes)` is the smallest training run the tests use (water/STO-3G, grid
level 0, wiggled conformers, short schedule); a test changes only what it is about.
`isolated_caches` points the label cache at the session's temporary folder and turns the
JAX compile cache off, so tests never read or write the user's caches.
"""

import pytest

from qpt_nb.learn.train import TrainConfig

WATER = dict(
    molecule="water",
    basis="sto-3g",
    grid_level=0,
    sampler="wiggle",
    reuse=2,
    warmup_steps=1,
    decay_steps=50,
    checkpoint_every=2,
)


def water_config(**changes) -> TrainConfig:
    """The tiny water run of the tests, with `changes` applied."""
    return TrainConfig(**{**WATER, **changes})


@pytest.fixture
def isolated_caches(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("QPT_NB_JAX_CACHE", "off")
