"""Background precompute with a bounded queue, yielding results in source order.

Generic: ``Prefetcher(source, make_item)`` runs ``make_item(x)`` for every ``x`` of
``source`` in worker threads (or processes) while the consumer works on earlier items,
e.g. PySCF integrals/grids for the next conformers while the network trains on earlier
ones. Which item each optimiser step uses, and how often, is the data schedule's business
(`qpt_nb.learn.schedule`), not this module's: it yields each item once. Threads are the default: PySCF's C integral code releases the GIL.

    with Prefetcher(ConformerStream(mol), precompute, workers=2, queue_size=4) as pf:
        for step, tensors in zip(range(n_steps), pf):
            ...
        print(pf.stats(total_seconds=loop_time))
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable, Iterable

from qpt_nb.validate import check_int

__all__ = ["Prefetcher"]

_END = object()
_POLL_SECONDS = 0.05


def _timed_call(fn, x):
    """Worker side: (fn(x), seconds it took). Module level so processes can pickle it."""
    t0 = time.perf_counter()
    out = fn(x)
    return out, time.perf_counter() - t0


class _Stats:
    """Counters shared by the consumer, the feeder thread and future callbacks."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items_made = 0
        self.items_failed = 0
        self.make_seconds = 0.0

    def on_done(self, fut):
        if fut.cancelled():
            return
        exc = fut.exception()
        with self.lock:
            if exc is None:
                self.items_made += 1
                self.make_seconds += fut.result()[1]
            else:
                self.items_failed += 1


class _SourceFailure:
    def __init__(self, exc: BaseException):
        self.exc = exc


def _feed(source, make_item, executor, slots, out, stop, stats):
    """Feeder thread: pull from ``source`` and submit, holding one slot per item.

    Holds no reference to the Prefetcher, so an abandoned Prefetcher can be collected
    (its ``__del__`` then stops this thread)."""
    while not stop.is_set():
        if not slots.acquire(timeout=_POLL_SECONDS):
            continue
        if stop.is_set():
            return
        try:
            x = next(source)
        except StopIteration:
            out.put(_END)
            return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            out.put(_SourceFailure(exc))
            return
        try:
            fut = executor.submit(_timed_call, make_item, x)
        except RuntimeError:  # executor shut down by close()
            return
        fut.add_done_callback(stats.on_done)
        out.put(fut)


class Prefetcher:
    """Runs ``make_item(x)`` for ``x`` from ``source`` in background workers and yields
    the results in source ORDER (deterministic for any ``workers``), each once.

    At most ``queue_size`` items are submitted-but-not-yet-handed-out at any time, so
    memory stays bounded. ``mode="thread"``
    (default) or ``"process"`` (spawned processes: ``make_item``, the items and the
    results must be picklable; JAX is not fork-safe, hence spawn). The source iterator is
    consumed in one background thread, so a slow generator does not block the consumer.

    An exception raised by ``make_item`` (or by the source) is re-raised in the consumer
    at that item's position, after every earlier item was yielded; it is the original
    exception object with its original traceback (process mode: the remote traceback is
    chained as ``__cause__``) plus a note naming the item index. The Prefetcher then
    closes. ``close()`` (also on ``with`` exit and ``del``) cancels queued work, waits for
    running calls to finish and stops all its threads.
    """

    def __init__(
        self,
        source: Iterable,
        make_item: Callable[[Any], Any],
        *,
        workers: int = 1,
        queue_size: int = 4,
        mode: str = "thread",
        name: str = "qpt-prefetch",
    ):
        check_int(workers, "workers", low=1)
        check_int(queue_size, "queue_size", low=1)
        if mode not in ("thread", "process"):
            raise ValueError(f"mode must be 'thread' or 'process', got {mode!r}")
        if not callable(make_item):
            raise TypeError("make_item must be callable")
        self.workers, self.queue_size, self.mode = workers, queue_size, mode
        self.name = name
        if mode == "thread":
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix=name)
        else:
            self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self._stats = _Stats()
        self._slots = threading.BoundedSemaphore(queue_size)
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._closed = False
        self._index = 0  # index of the next item taken from the queue
        self._yielded = 0
        self._wait = 0.0
        self._first_next = None
        self._feeder = threading.Thread(
            target=_feed,
            name=f"{name}-feeder",
            daemon=True,
            args=(iter(source), make_item, self._executor, self._slots, self._queue, self._stop, self._stats),
        )
        self._feeder.start()

    # ------------------------------------------------------------------ iteration
    def __iter__(self):
        return self

    def __next__(self):
        if self._first_next is None:
            self._first_next = time.perf_counter()
        if self._closed:
            raise StopIteration
        t0 = time.perf_counter()
        try:
            entry = self._queue.get()
            if entry is _END:
                self.close()
                raise StopIteration
            if isinstance(entry, _SourceFailure):
                self._fail(entry.exc, "the source iterator raised before item")
            try:
                result, _ = entry.result()
            except BaseException as exc:  # noqa: BLE001
                self._fail(exc, "make_item raised for item")
        finally:
            self._wait += time.perf_counter() - t0
        self._slots.release()
        self._index += 1
        self._yielded += 1
        return result

    def _fail(self, exc: BaseException, what: str):
        self.close()
        if hasattr(exc, "add_note"):
            exc.add_note(f"[{self.name}] {what} #{self._index} (0-based, source order)")
        if isinstance(exc, StopIteration):  # would silently end the consumer's loop
            raise RuntimeError(f"{what} #{self._index}: StopIteration") from exc
        raise exc

    # ------------------------------------------------------------------ stats
    def wait_fraction(self, total_seconds: float | None = None) -> float:
        """Fraction of ``total_seconds`` (default: time since the first ``next``) that the
        consumer spent blocked waiting for items."""
        if total_seconds is None:
            if self._first_next is None:
                return 0.0
            total_seconds = time.perf_counter() - self._first_next
        return self._wait / total_seconds if total_seconds > 0 else 0.0

    def stats(self, total_seconds: float | None = None) -> dict:
        """items_made (successful make_item calls), items_failed, items_consumed (distinct
        items handed out), items_yielded (values returned), wait_seconds
        (consumer blocked in ``next``), make_seconds (sum of worker time in make_item),
        queued (submitted, not yet taken), wait_fraction (see :meth:`wait_fraction`)."""
        with self._stats.lock:
            made, failed, make_s = (
                self._stats.items_made,
                self._stats.items_failed,
                self._stats.make_seconds,
            )
        return {
            "items_made": made,
            "items_failed": failed,
            "items_consumed": self._index,
            "items_yielded": self._yielded,
            "wait_seconds": self._wait,
            "make_seconds": make_s,
            "queued": self._queue.qsize(),
            "wait_fraction": self.wait_fraction(total_seconds),
        }

    # ------------------------------------------------------------------ shutdown
    def close(self, wait: bool = True) -> None:
        """Stop the feeder, cancel queued items, wait (if ``wait``) for running calls."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._stop.set()
        while True:  # cancel what was submitted but not taken
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                break
            if hasattr(entry, "cancel"):
                entry.cancel()
        self._executor.shutdown(wait=wait, cancel_futures=True)
        if wait and self._feeder is not threading.current_thread():
            self._feeder.join(timeout=30.0)  # it polls ``stop`` every 50 ms

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False

    def __del__(self):
        try:
            self.close(wait=False)
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
