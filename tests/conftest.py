"""Shared test helpers: the tiny water training configuration and private caches.

`water_config(**changes)` is the smallest training run the tests use (water/STO-3G, grid
level 0, wiggled conformers, short schedule); a test changes only what it is about.
`isolated_caches` points the label cache at the session's temporary folder, so those tests
never read or write the user's label cache. JAX's persistent compile cache is off for the
whole session (a test that calls the CLI would otherwise turn
it on, in the user's folder, for every test after it; `test_cli` turns it on in a temporary
folder for its own tests), and each module's compiled programs are released when the module
ends (`_release_compiled_programs`).
"""

import gc
import os

import pytest

os.environ["QPT_NB_JAX_CACHE"] = "off"

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


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs():
    """Drops JAX's compiled programs (`jax.clear_caches`) after each test module, so one
    pytest process holds one module's executables at a time, not the whole suite's. Without
    it the full suite, once a few tests were added (commit 75371c3), crashed 5 times out of
    5 near its end: a comparison against libxc or PySCF failed, then XLA segfaulted while
    compiling or loading a program (2026-12-06). With it the same tree passed."""
    import jax

    yield
    jax.clear_caches()
    gc.collect()
