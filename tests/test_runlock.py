"""Run-directory locks and checkpoints that survive divergence."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from qpt_nb.learn import checkpoint as ckpt
from qpt_nb.learn.runlock import RunLock, RunLocked


def _hold_in_child(run_dir):
    """A child process that takes the lock and waits for a line on stdin."""
    code = textwrap.dedent(f"""
      import sys
      from qpt_nb.learn.runlock import RunLock
      lock = RunLock({str(run_dir)!r}).acquire()
      print("locked", flush=True)
      sys.stdin.readline()
  """)
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "locked"
    return child


def test_second_process_is_refused_naming_the_holder(tmp_path):
    child = _hold_in_child(tmp_path / "run")
    try:
        with pytest.raises(RunLocked, match=rf"in use by another qpt-nb process \(pid {child.pid} on "):
            RunLock(tmp_path / "run").acquire()
    finally:
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait(10)
    # the holder is gone: the lock is free again
    with RunLock(tmp_path / "run") as lock:
        assert lock.held


def test_lock_of_a_killed_process_is_stale(tmp_path):
    child = _hold_in_child(tmp_path / "run")
    child.kill()
    child.wait(10)
    assert "pid" in (tmp_path / "run" / ".lock").read_text()  # its description is left behind
    lock = RunLock(tmp_path / "run").acquire()  # but the kernel released the lock
    assert lock.held
    lock.release()


def test_lock_is_reentrant_within_one_process(tmp_path):
    a = RunLock(tmp_path).acquire()
    b = RunLock(tmp_path).acquire()
    b.release()
    child_refused = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from qpt_nb.learn.runlock import RunLock; RunLock({str(tmp_path)!r}).acquire()",
        ],
        capture_output=True,
        text=True,
    )
    assert child_refused.returncode != 0 and "RunLocked" in child_refused.stderr
    a.release()


def test_non_finite_parameters_are_never_written(tmp_path):
    path = tmp_path / "checkpoint.ckpt"
    good = dict(params=dict(w=np.ones(3)), step=1)
    ckpt.save_keeping_previous(path, good, params_key="params")
    bad = dict(params=dict(w=np.array([1.0, np.nan, 2.0])), step=2)
    with pytest.raises(ckpt.CheckpointError, match="not finite"):
        ckpt.save_keeping_previous(path, bad, params_key="params")
    assert ckpt.load(path)["step"] == 1
    ckpt.save_keeping_previous(path, dict(params=dict(w=np.zeros(3)), step=3), params_key="params")
    assert ckpt.load(path)["step"] == 3 and ckpt.load(ckpt.previous_path(path))["step"] == 1


def test_previous_checkpoint_is_named_or_used(tmp_path):
    path = tmp_path / "checkpoint.ckpt"
    ckpt.save_keeping_previous(path, dict(step=1))
    ckpt.save_keeping_previous(path, dict(step=2))
    good = path.read_bytes()
    path.write_bytes(good[:-10])  # corrupt: refused, the previous one named
    with pytest.raises(ckpt.CheckpointError, match=r"corrupt.*checkpoint.ckpt.prev \(step 1\) is intact"):
        ckpt.load_latest(path)
    path.unlink()  # killed between the two renames: used
    with pytest.warns(RuntimeWarning, match="using the previous one"):
        assert ckpt.load_latest(path)["step"] == 1


def test_orphaned_temporary_files_are_removed(tmp_path):
    (tmp_path / ".checkpoint.ckpt.abc123.tmp").write_bytes(b"x" * 100)
    (tmp_path / ".checkpoint.ckpt.new").write_bytes(b"y")
    (tmp_path / "checkpoint.ckpt").write_bytes(b"z")
    removed = ckpt.remove_orphans(tmp_path)
    assert len(removed) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.ckpt"]
