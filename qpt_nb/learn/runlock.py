"""One process per run directory: an exclusive advisory lock on ``RUN/.lock``.

`RunLock` takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on the lock file and writes the
holder's pid, host and start time into it. The kernel releases the lock when the
holding process exits, however it dies (SIGKILL included), so a lock left by a
killed run is recognised as stale by simply being lockable again; its file's
contents then only describe the dead holder. A second process asking for a held
lock gets `RunLocked`, a ValueError whose one-line message names the holder, or with
``acquire(wait=True)`` waits for it (how budget runs side by side take turns at their
memory-hungry evaluations, `qpt_nb.analysis.budget`).

    with RunLock("runs/uracil"):
        ...                                  # train, checkpoint, write history
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

LOCK_FILE = ".lock"
_HELD: dict = {}  # resolved lock path -> [file handle, holders in this process]


class RunLocked(ValueError):
    """The run directory is locked by another live process."""


class RunLock:
    """Exclusive lock on a run directory (POSIX flock; a no-op where fcntl is missing).

    Re-entrant within one process (a notebook may resume a run whose first Trainer is
    still alive); exclusive between processes.
    """

    def __init__(self, run_dir, file: str = LOCK_FILE):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / file
        self._fh = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self, *, wait: bool = False, on_wait=None) -> "RunLock":
        """Takes the lock or raises `RunLocked` naming the process that holds it; with
        `wait`, blocks until the holder releases it instead (``on_wait(holder)`` is called
        once before waiting, with the holder's description)."""
        if self._fh is not None:
            return self
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        if key in _HELD:
            _HELD[key][1] += 1
            self._fh = _HELD[key][0]
            return self
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = _describe(fh.read())
            if not wait:
                fh.close()
                raise RunLocked(
                    f"{self.run_dir} is in use by another qpt-nb process ({holder}); "
                    "wait for it to finish or use another --out."
                ) from None
            if on_wait is not None:
                on_wait(holder)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(
            json.dumps(
                dict(pid=os.getpid(), host=socket.gethostname(), since=time.strftime("%Y-%m-%d %H:%M:%S"))
            )
        )
        fh.flush()
        _HELD[key] = [fh, 1]
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is None:
            return
        key = str(self.path.resolve())
        self._fh = None
        entry = _HELD.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _HELD[key]
            import fcntl

            try:
                fcntl.flock(entry[0].fileno(), fcntl.LOCK_UN)
            finally:
                entry[0].close()

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def __del__(self):
        try:
            self.release()
        except Exception:
            pass


def _describe(text: str) -> str:
    try:
        d = json.loads(text)
        return f"pid {d['pid']} on {d['host']}, since {d['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"
