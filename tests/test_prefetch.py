"""Tests for qpt_nb.learn.prefetch.Prefetcher (generic background precompute)."""

import gc
import itertools
import operator
import random
import threading
import time
import traceback

import pytest

from qpt_nb.learn.prefetch import Prefetcher


def _prefetch_threads(prefix):
    return [t for t in threading.enumerate() if t.name.startswith(prefix) and t.is_alive()]


def _jittery_square(x):
    time.sleep(random.Random(x).uniform(0.0, 0.02))  # out-of-order completion
    return x * x


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_order_is_source_order_for_any_worker_count(workers):
    with Prefetcher(range(25), _jittery_square, workers=workers, queue_size=5) as pf:
        out = list(pf)
    assert out == [x * x for x in range(25)]
    s = pf.stats()
    assert s["items_made"] == 25 and s["items_consumed"] == 25 and s["items_yielded"] == 25
    assert s["make_seconds"] > 0


def test_each_item_is_yielded_once_in_order():
    with Prefetcher(iter("abc"), str.upper, workers=2) as pf:
        out = list(pf)
    assert out == ["A", "B", "C"]
    s = pf.stats()
    assert s["items_yielded"] == 3 and s["items_consumed"] == 3 and s["items_made"] == 3


def test_wait_seconds_large_when_make_item_is_slow():
    def slow(x):
        time.sleep(0.05)
        return x

    t0 = time.perf_counter()
    with Prefetcher(range(8), slow, workers=1, queue_size=2) as pf:
        assert list(pf) == list(range(8))
    total = time.perf_counter() - t0
    s = pf.stats(total_seconds=total)
    assert s["wait_seconds"] > 0.25  # ~8 x 0.05 s, consumer idle
    assert s["wait_fraction"] > 0.5
    assert s["make_seconds"] == pytest.approx(0.4, rel=0.5)


def test_wait_seconds_small_when_make_item_is_fast():
    with Prefetcher(range(10), operator.neg, workers=2, queue_size=4) as pf:
        next(pf)
        time.sleep(0.05)  # let the queue fill
        first_wait = pf.stats()["wait_seconds"]
        for _ in pf:
            time.sleep(0.02)  # consumer is the bottleneck
    s = pf.stats()
    assert s["items_consumed"] == 10
    assert s["wait_seconds"] - first_wait < 0.05
    assert pf.wait_fraction(total_seconds=0.2) < 0.5


def test_queue_is_bounded():
    pulled = []

    def source():
        for i in itertools.count():
            pulled.append(i)
            yield i

    with Prefetcher(source(), operator.neg, workers=2, queue_size=3) as pf:
        assert next(pf) == 0
        time.sleep(0.3)
        assert len(pulled) <= 1 + 3  # the one handed out + queue_size
        assert [next(pf) for _ in range(5)] == [-1, -2, -3, -4, -5]


def _fails_at_three(x):
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def test_worker_exception_propagates_in_order_with_traceback():
    pf = Prefetcher(range(10), _fails_at_three, workers=2)
    got = []
    with pytest.raises(ValueError, match="bad item 3") as info:
        for item in pf:
            got.append(item)
    assert got == [0, 1, 2]  # earlier items still delivered
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "_fails_at_three" in frames  # original worker traceback kept
    assert any("#3" in note for note in getattr(info.value, "__notes__", []))
    assert pf.closed
    with pytest.raises(StopIteration):
        next(pf)


def test_source_exception_propagates():
    def source():
        yield 1
        raise KeyError("source broke")

    with Prefetcher(source(), operator.neg) as pf:
        assert next(pf) == -1
        with pytest.raises(KeyError, match="source broke"):
            next(pf)


def test_close_stops_all_threads():
    def slow(x):
        time.sleep(0.02)
        return x

    prefix = "test-close-pf"
    pf = Prefetcher(itertools.count(), slow, workers=2, queue_size=4, name=prefix)
    assert next(pf) == 0 and next(pf) == 1
    assert _prefetch_threads(prefix)
    pf.close()
    assert not _prefetch_threads(prefix)
    with pytest.raises(StopIteration):
        next(pf)
    pf.close()  # idempotent


def test_abandoned_prefetcher_is_collected_and_stops():
    prefix = "test-gc-pf"
    pf = Prefetcher(itertools.count(), operator.neg, workers=1, name=prefix)
    next(pf)
    del pf
    gc.collect()
    deadline = time.time() + 5
    while _prefetch_threads(prefix) and time.time() < deadline:
        time.sleep(0.05)
    assert not _prefetch_threads(prefix)


def test_process_mode_keeps_order():
    with Prefetcher(range(-6, 6), abs, workers=2, queue_size=3, mode="process") as pf:
        assert list(pf) == [abs(x) for x in range(-6, 6)]


@pytest.mark.parametrize("kw", [dict(workers=0), dict(queue_size=0), dict(queue_size=1.5), dict(mode="gpu")])
def test_bad_arguments(kw):
    with pytest.raises(ValueError):
        Prefetcher(range(3), abs, **kw)
