"""The data schedule of a training run: a pure map from optimiser step to conformer batch.

Conformer batches are numbered 0, 1, 2, ... in the order the sampler draws them (batch b
holds conformers ``b * batch_size ... (b + 1) * batch_size - 1`` of the run's stream). A
`DataSchedule` says which batch optimiser step s (0-based) trains on. Nothing else decides
it: the `Trainer` asks it what to precompute and when a batch may be dropped, a resumed run
asks it which batches were live at its step, and the experiments ask it how many conformers
a run of n steps draws.

Two modes:

``window`` (the default; graphcore-research/pyscf-ipu, branch ``train``,
``pyscf_ipu/direct/train.py``, the training loop with ``-mol_repeats 16 -shuffle``):
    Round r draws one new batch, r. The window holds the last ``reuse`` batches
    ``max(0, r - reuse + 1) .. r``; the round takes one optimiser step on each of them, in an
    order shuffled per round (a generator seeded by ``(seed, r)``). So every batch is trained
    on ``reuse`` times, spread over ``reuse`` rounds and interleaved with the ``reuse - 1``
    batches around it. Round r has ``min(r + 1, reuse)`` steps, so the first ``reuse`` rounds
    ramp up (1, 2, ..., reuse steps), as the research code's window fills.
    (The research code shuffles its window list in place and then drops its first entry, so
    with ``-shuffle`` a batch leaves the window at a random round; here the window is exactly
    the last ``reuse`` batches, which makes every batch count the same.)

``consecutive`` (kept for comparison): batch ``s // reuse`` at step s, each batch for
    ``reuse`` steps in a row.

    >>> sch = DataSchedule("window", reuse=3, seed=0)
    >>> [sch.batch_at(s) for s in range(9)]   # rounds of 1, 2, 3, 3 steps
    [0, 0, 1, 2, 1, 0, 3, 2, 1]
    >>> sch.live_batches(7)                    # the window at step 7: batches 1..3
    range(1, 4)
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from qpt_nb.validate import check_int

MODES = ("window", "consecutive")


@dataclasses.dataclass(frozen=True)
class DataSchedule:
    """Which conformer batch each optimiser step trains on (see the module docstring).

    Attributes:
      mode: 'window' or 'consecutive'.
      reuse: optimiser steps per batch (the window's length in 'window' mode).
      seed: the run's seed; the window's order in round r is shuffled by ``(seed, r)``.
    """

    mode: str = "window"
    reuse: int = 16
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"Unknown data schedule {self.mode!r}; choose one of {MODES}.")
        check_int(self.reuse, "reuse", low=1)

    # ------------------------------------------------------------------ rounds
    def round_start(self, r: int) -> int:
        """The first step of round r (window mode; in consecutive mode, of batch r)."""
        if self.mode == "consecutive":
            return r * self.reuse
        k = self.reuse
        if r <= k:
            return r * (r + 1) // 2
        return k * (k + 1) // 2 + (r - k) * k

    def round_of(self, step: int) -> int:
        """The round (window mode) or batch (consecutive mode) that `step` belongs to."""
        step = int(step)
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}.")
        if self.mode == "consecutive":
            return step // self.reuse
        k = self.reuse
        ramp = k * (k + 1) // 2
        if step >= ramp:
            return k + (step - ramp) // k
        r = (math.isqrt(8 * step + 1) - 1) // 2  # largest r with r (r + 1) / 2 <= step
        return r

    @functools.lru_cache(maxsize=64)  # noqa: B019 - a frozen dataclass: its rounds never change
    def round_order(self, r: int) -> tuple:
        """The batch indices stepped in round r, in order (window mode)."""
        first = max(0, r - self.reuse + 1)
        batches = np.arange(first, r + 1)
        rng = np.random.default_rng([int(self.seed), int(r)])
        return tuple(int(b) for b in batches[rng.permutation(len(batches))])

    # ------------------------------------------------------------------ the map
    def batch_at(self, step: int) -> int:
        """The batch that optimiser step `step` (0-based) trains on."""
        r = self.round_of(step)
        if self.mode == "consecutive":
            return r
        return int(self.round_order(r)[int(step) - self.round_start(r)])

    def live_batches(self, step: int) -> range:
        """The batches a run at `step` (0-based, not yet taken) must hold: those stepped in
        the current round from `step` on, and any needed later in that round. At most
        ``reuse`` batches (consecutive mode: one), so resuming at any step costs at most
        ``reuse`` precomputes. Batches below ``live_batches(step).start`` are never used
        again."""
        r = self.round_of(step)
        if self.mode == "consecutive":
            return range(r, r + 1)
        return range(max(0, r - self.reuse + 1), r + 1)

    @property
    def max_live(self) -> int:
        """The most batches a run holds at once (besides the prefetch queue)."""
        return self.reuse if self.mode == "window" else 1

    def n_batches(self, n_steps: int) -> int:
        """Batches that the first `n_steps` steps draw: one per round begun (the conformers a
        run of n_steps costs, divided by the batch size; the newest may not be stepped on yet)."""
        if n_steps <= 0:
            return 0
        return self.round_of(int(n_steps) - 1) + 1
