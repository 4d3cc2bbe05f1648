"""The headline benchmark's bookkeeping: evaluation schedule, disk-cached test tensors,
crossing ratios (bench/labels_vs_dft_loss.py; the benchmark itself runs in `make bench`)."""
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import labels_vs_dft_loss as hl  # noqa: E402


def test_schedule_every_and_eval_at():
  s = hl.Schedule(10.0, 100.0, 25.0)
  assert s.times == [35.0, 60.0, 85.0]
  s = hl.Schedule(10.0, 100.0, 25.0, eval_at_s=[60.0, 5.0, 120.0])
  assert s.times == [15.0, 70.0]            # offsets after start, sorted, inside the budget
  assert not s.due(14.9)
  assert s.due(80.0)                        # passing two times at once gives one evaluation
  assert not s.due(99.0) and s.times == []


def test_crossing_ratio():
  L = [dict(t_s=0, step=0, e=9.0), dict(t_s=100, step=10, e=4.0), dict(t_s=200, step=20, e=2.0)]
  Q = [dict(t_s=0, step=0, e=9.0), dict(t_s=20, step=5, e=3.0), dict(t_s=50, step=9, e=1.5)]
  c = hl.crossing(L, Q, "e")
  assert c["best"] == 2.0 and c["t_ref_s"] == 200 and c["t_other_s"] == 50
  assert c["ratio"] == pytest.approx(4.0)
  c = hl.crossing(L, Q[:2], "e")
  assert c["ratio"] is None and c["other_best"] == 3.0


def test_report_gives_the_converse_when_q_misses(capsys):
  def curve(pts):
    return [dict(t_s=t, step=s, energy_mae_mev=e, hamiltonian_mae_uha=10 * e) for t, s, e in pts]
  runs = dict(L=dict(curve=curve([(0, 0, 9.0), (100, 10, 2.0), (300, 50, 1.0)]), steps=50,
                     partial=True),
              Q=dict(curve=curve([(0, 0, 9.0), (50, 5, 5.0), (250, 20, 2.0)]), steps=20,
                     partial=True))
  summary = hl.report(runs, 300.0)
  assert summary["Q_vs_L_energy_mae_mev"]["ratio"] is None          # Q never reaches 1.0
  back = summary["L_vs_Q_energy_mae_mev"]                             # L reaches Q's 2.0 at 100 s
  assert back["best"] == 2.0 and back["t_ref_s"] == 250 and back["t_other_s"] == 100
  assert "Q is 2.50x slower" in capsys.readouterr().out


def test_monitor_disk_cache_gives_the_same_metrics(tmp_path):
  from qpt_nb.dft import reference
  from qpt_nb.analysis.evaluation import make_test_set
  from qpt_nb.learn.train import TrainConfig, init_state
  cfg = TrainConfig(molecule="h2", basis="sto-3g", xc="lda,vwn", grid_level=0, model="nano",
                    sampler="wiggle")
  mol = cfg.molecule_object()
  test = make_test_set(mol, 3, sampler="wiggle")
  labels = reference.label_many(test, cfg.basis, cfg.xc, cfg.grid_level, cache_dir=tmp_path / "l")
  plain = hl.ChunkedMonitor(cfg, test, labels, chunk=2, keep_gb=0.0)
  cached = hl.ChunkedMonitor(cfg, test, labels, chunk=2, keep_gb=0.0, cache_dir=tmp_path / "t")
  cached.fill_cache()
  assert len(list((tmp_path / "t").glob("*.pkl"))) == 2
  from qpt_nb.learn.losses import prepare_conformer, stack_batch
  params = init_state(cfg, stack_batch([prepare_conformer(mol, cfg.basis, cfg.xc,
                                                          cfg.grid_level)])).params
  a, b = plain(params), cached(params)              # the second reads the pickles
  assert a["energy_mae_mev"] > 0
  np.testing.assert_allclose([b["energy_mae_mev"], b["hamiltonian_mae_uha"]],
                             [a["energy_mae_mev"], a["hamiltonian_mae_uha"]], rtol=1e-12)


def test_overrides_apply_to_a_copy_and_reject_unknown_keys():
  from qpt_nb.learn.train import TrainConfig
  cfg = TrainConfig(molecule="water", grid_level=3)
  new = hl.parse_overrides(cfg, ["decay_steps=2600", "grid_level=1", "lr=1e-3"])
  assert (new.decay_steps, new.grid_level, new.lr) == (2600, 1, 1e-3)
  assert cfg.grid_level == 3 and cfg.decay_steps != 2600
  with pytest.raises(SystemExit, match="KEY one of"):
    hl.parse_overrides(cfg, ["no_such_field=1"])
  with pytest.raises(SystemExit, match="needs a int"):
    hl.parse_overrides(cfg, ["decay_steps=soon"])
