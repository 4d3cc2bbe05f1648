"""The headline benchmark's bookkeeping (bench/labels_vs_dft_loss.py; the benchmark itself
runs in `make bench`), now in qpt_nb: evaluation schedule, charged time, crossing ratios,
--set overrides (`qpt_nb.analysis.experiments`), the chunked, disk-cached monitor
(`qpt_nb.analysis.evaluation.make_monitor`) and a short label-then-train pipeline on a
charged-time budget."""

import numpy as np
import pytest

from qpt_nb.analysis import experiments as ex


def test_schedule_every_and_eval_at():
    s = ex.Schedule(10.0, 100.0, 25.0)
    assert s.times == [35.0, 60.0, 85.0]
    s = ex.Schedule(10.0, 100.0, 25.0, eval_at_s=[60.0, 5.0, 120.0])
    assert s.times == [15.0, 70.0]  # offsets after start, sorted, inside the budget
    assert not s.due(14.9)
    assert s.due(80.0)  # passing two times at once gives one evaluation
    assert not s.due(99.0) and s.times == []
    assert ex.Schedule(0.0, 100.0).times == []  # neither: only the start and the end


def test_charged_time_excludes_pauses_and_adds_charges():
    now = [0.0]
    meter = ex.ChargedTime(lambda: now[0])
    now[0] = 5.0
    with meter.paused():
        now[0] = 12.0  # e.g. an evaluation: not charged
    assert meter.seconds == 5.0
    meter.charge(2.5)  # e.g. a cached label's own PySCF seconds
    now[0] = 13.0
    assert meter.seconds == 8.5
    assert set(ex.CLOCKS) == {"wall", "cpu"}


def test_crossing_ratio():
    L = [dict(t_s=0, step=0, e=9.0), dict(t_s=100, step=10, e=4.0), dict(t_s=200, step=20, e=2.0)]
    Q = [dict(t_s=0, step=0, e=9.0), dict(t_s=20, step=5, e=3.0), dict(t_s=50, step=9, e=1.5)]
    c = ex.crossing(L, Q, "e")
    assert c["best"] == 2.0 and c["t_ref_s"] == 200 and c["t_other_s"] == 50
    assert c["ratio"] == pytest.approx(4.0)
    c = ex.crossing(L, Q[:2], "e")
    assert c["ratio"] is None and c["other_best"] == 3.0
    c = ex.crossing(L[:1], Q, "e")  # L never trained: a note, no ratio
    assert c["ratio"] is None and "labelling" in c["note"]


def test_summary_gives_the_converse_when_q_misses():
    def curve(pts):
        return [dict(t_s=t, step=s, energy_mae_mev=e, hamiltonian_mae_uha=10 * e) for t, s, e in pts]

    curves = dict(
        L=curve([(0, 0, 9.0), (100, 10, 2.0), (300, 50, 1.0)]),
        Q=curve([(0, 0, 9.0), (50, 5, 5.0), (250, 20, 2.0)]),
    )
    summary = ex.crossing_summary(curves)
    assert summary["Q_vs_L_energy_mae_mev"]["ratio"] is None  # Q never reaches 1.0
    back = summary["L_vs_Q_energy_mae_mev"]  # L reaches Q's 2.0 at 100 s
    assert back["best"] == 2.0 and back["t_ref_s"] == 250 and back["t_other_s"] == 100
    assert back["ratio"] == pytest.approx(2.5)  # Q is 2.5x slower
    assert "SC_vs_L_energy_mae_mev" not in summary and ex.crossing_summary(dict(Q=curves["Q"])) == {}


def test_summary_of_tagged_runs_pairs_every_l_with_every_label_free_run():
    """Seeds and label engines side by side: 'L-pyscf', 'L-qpt', 'Q-s0', 'Q-s1'."""
    from qpt_nb.analysis.timing import best_run, pipeline_of

    def curve(pts):
        return [dict(t_s=t, step=s, energy_mae_mev=e, hamiltonian_mae_uha=10 * e) for t, s, e in pts]

    curves = {
        "L-pyscf": curve([(0, 0, 9.0), (200, 10, 3.0)]),
        "L-qpt": curve([(0, 0, 9.0), (100, 10, 2.0), (300, 20, 1.5)]),
        "Q-s0": curve([(0, 0, 9.0), (150, 5, 1.0)]),
        "Q-s1": curve([(0, 0, 9.0), (150, 5, 2.5)]),
    }
    assert [pipeline_of(n) for n in curves] == ["L", "L", "Q", "Q"]
    assert best_run(curves, "L", "energy_mae_mev") == "L-qpt" and best_run(curves, "SC", "x") is None
    summary = ex.crossing_summary(curves)
    assert summary["Q-s0_vs_L-qpt_energy_mae_mev"]["ratio"] == pytest.approx(2.0)  # 300 s / 150 s
    assert summary["Q-s1_vs_L-pyscf_energy_mae_mev"]["ratio"] == pytest.approx(200 / 150)
    assert summary["Q-s1_vs_L-qpt_energy_mae_mev"]["ratio"] is None  # never reaches 1.5
    assert summary["L-qpt_vs_Q-s1_energy_mae_mev"]["t_other_s"] == 100  # the converse
    assert len([k for k in summary if k.startswith("Q-") and "energy" in k]) == 4


def test_overrides_apply_to_a_copy_and_reject_unknown_keys():
    from qpt_nb.learn.train import TrainConfig

    cfg = TrainConfig(molecule="water", grid_level=3)
    new = ex.override_config(cfg, ["decay_steps=2600", "grid_level=1", "lr=1e-3"])
    assert (new.decay_steps, new.grid_level, new.lr) == (2600, 1, 1e-3)
    assert cfg.grid_level == 3 and cfg.decay_steps != 2600
    # Optional fields take their annotation's type (the recipe's settings from the command line)
    new = ex.override_config(cfg, ["train_grid_level=0", "precision=float32", "phi_range=0,90"])
    assert new.train_grid_level == 0 and isinstance(new.train_grid_level, int)
    assert new.precision == "float32" and new.phi_range == (0.0, 90.0)
    assert ex.override_config(new, ["train_grid_level=none"]).train_grid_level is None
    with pytest.raises(ValueError, match="KEY one of"):
        ex.override_config(cfg, ["no_such_field=1"])
    with pytest.raises(ValueError, match="KEY one of"):
        ex.override_config(cfg, ["loss=energy"])  # the comparison holds the loss fixed
    with pytest.raises(ValueError, match="needs a int"):
        ex.override_config(cfg, ["decay_steps=soon"])
    # L's --set-l also holds its labels' grid and seed fixed
    assert ex.override_config(cfg, ["decay_steps=9"], fixed=ex.FIXED_FIELDS + ("seed",)).decay_steps == 9
    with pytest.raises(ValueError, match="KEY one of"):
        ex.override_config(cfg, ["seed=3"], fixed=ex.FIXED_FIELDS + ("seed",))


@pytest.fixture
def h2(tmp_path):
    from qpt_nb.analysis.evaluation import make_test_set
    from qpt_nb.dft import reference
    from qpt_nb.learn.train import TrainConfig

    cfg = TrainConfig(
        molecule="h2", basis="sto-3g", xc="lda,vwn", grid_level=0, model="nano", sampler="wiggle"
    )
    test = make_test_set(cfg.molecule_object(), 3, sampler="wiggle")
    labels = reference.label_many(
        test, cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level, cache_dir=tmp_path / "l"
    )
    return cfg, test, labels


def test_monitor_chunks_and_disk_cache_give_the_same_metrics(tmp_path, h2, monkeypatch):
    from qpt_nb.analysis import evaluation
    from qpt_nb.analysis.evaluation import make_monitor
    from qpt_nb.learn.batch import prepare_conformer, stack_batch
    from qpt_nb.learn.train import init_state

    cfg, test, labels = h2
    whole = make_monitor(cfg, test, labels)  # one chunk, in memory
    prepared = []
    real_prepare = evaluation._prepare_chunk
    monkeypatch.setattr(
        evaluation, "_prepare_chunk", lambda *a, **k: prepared.append(1) or real_prepare(*a, **k)
    )
    plain = make_monitor(cfg, test, labels, chunk_size=2, keep_bytes=0)
    assert not prepared  # keeping none, it prepares none until called
    monkeypatch.setattr(evaluation, "_prepare_chunk", real_prepare)
    cached = make_monitor(cfg, test, labels, chunk_size=2, keep_bytes=0, tensor_cache=tmp_path / "t")
    assert len(list((tmp_path / "t").glob("*.pkl"))) == 2  # written at construction
    assert not list((tmp_path / "t").glob("*.tmp"))  # atomically
    again = make_monitor(cfg, test, labels, chunk_size=2, keep_bytes=0, tensor_cache=tmp_path / "t")
    mol = cfg.molecule_object()
    params = init_state(
        cfg, stack_batch([prepare_conformer(mol, cfg.basis, xc=cfg.xc, grid_level=cfg.grid_level)])
    ).params

    def values(mon):
        m = mon(params)
        return [m["energy_mae_mev"], m["hamiltonian_mae_uha"]]

    a = values(plain)
    assert a[0] > 0
    for mon in (cached, again):  # these read the pickles
        np.testing.assert_allclose(values(mon), a, rtol=1e-12)
    np.testing.assert_allclose(values(whole), a, rtol=1e-9)  # other vmap sizes: rounding only
    # one conformer a call goes unbatched (no stacked copy): the same metrics
    single = make_monitor(cfg, test, labels, chunk_size=1, keep_bytes=0)
    np.testing.assert_allclose(values(single), a, rtol=1e-9)
    # chunks read back from the disk cache are aligned once, so jit takes them without a copy
    from qpt_nb.analysis.evaluation import _aligned
    from qpt_nb.dft.tensors import ALIGN

    x = np.arange(17.0)[1:]
    y = _aligned(x)
    assert y.ctypes.data % ALIGN == 0 and np.array_equal(x, y)
    with pytest.raises(ValueError, match="chunk_size"):
        make_monitor(cfg, test, labels, keep_bytes=1)  # one chunk that cannot fit


def test_label_then_train_on_a_budget(tmp_path, monkeypatch, h2):
    """The bench's pipeline L at toy size: labels charged first, then Trainer.run until the
    budget, the monitor evaluated at the start and the end and not charged."""
    import dataclasses

    from qpt_nb.analysis.evaluation import make_monitor

    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))
    cfg, test, labels = h2
    cfg = dataclasses.replace(cfg, reuse=1, warmup_steps=1, checkpoint_every=10**9, log_every=10**9)
    seen = []
    run = ex.label_then_train_run(
        cfg,
        n_steps=50,
        n_labels=2,
        budget_s=1e9,
        name="L",
        monitor=make_monitor(cfg, test, labels),
        on_eval=lambda r: seen.append(r.curve[-1]["step"]),
        run_dir=tmp_path / "run",
    )
    assert run.error is None, run.error
    assert run.n_labels == 2 and run.label_seconds > 0 and len(run.label_cycles) == 2
    assert run.config.loss == "supervised" and run.config.dataset_size == 2
    assert run.steps == 50 and seen == [0, 50]  # n_steps came first
    assert run.curve[0]["phase"] == "labelled" and run.curve[0]["t_s"] >= run.label_seconds
    assert run.curve[-1]["t_s"] > run.curve[0]["t_s"]
    assert (tmp_path / "run" / ex.LABELLING_FILE).is_file()
    found = ex.find_runs("h2", roots=[tmp_path])["label-then-train"]
    assert found.n_labels == 2 and found.label_seconds == pytest.approx(run.label_seconds)


def test_label_free_run_stops_at_the_budget(h2):
    """Pipeline Q at toy size on a fake clock (one second per reading): Trainer.run(None)
    ends through should_stop once the budget is charged, evaluations on the schedule."""
    import dataclasses
    import itertools

    from qpt_nb.analysis.evaluation import make_monitor

    cfg, test, labels = h2
    cfg = dataclasses.replace(cfg, reuse=2, warmup_steps=1, log_every=10**9)
    ticks = itertools.count()
    run = ex.label_free_run(
        cfg,
        budget_s=40.0,
        every_s=10.0,
        monitor=make_monitor(cfg, test, labels),
        clock=lambda: float(next(ticks)),
        name="Q",
    )
    assert run.error is None, run.error
    t = [r["t_s"] for r in run.curve]
    assert run.curve[0]["step"] == 0 and t == sorted(t) and t[-1] >= 40.0
    assert len(run.curve) >= 4 and run.curve[-1]["step"] == run.steps > 0
    assert run.timing["steps"] == run.steps and run.timing["setup_s"] > 0
    from qpt_nb.learn.train import Trainer

    tr = Trainer(cfg)
    with pytest.raises(ValueError, match="should_stop or max_seconds"):
        tr.run(None)
    assert [r["step"] for r in tr.run(None, max_seconds=0.0)] == [1]  # at least one step
    tr.close()


def test_cached_labels_are_charged_on_the_meters_clock(tmp_path, monkeypatch, h2):
    """A reused label costs its original CPU seconds under the CPU clock (wall seconds under
    the wall clock); one cached before CPU seconds were kept is redone, not guessed."""
    import dataclasses

    import numpy as np

    from qpt_nb.analysis.timing import CLOCKS, ChargedTime

    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))
    cfg = dataclasses.replace(h2[0], seed=3)

    def label_two(clock):
        run = ex.PaperRun(name="L", kind="label-then-train", config=cfg, path=None)
        ex._label_training_set(run, cfg, ChargedTime(CLOCKS[clock]), n=2)
        return run

    label_two("cpu")  # fresh
    files = sorted((tmp_path / "cache" / "labels").glob("*.npz"))
    assert len(files) == 2
    stored = {f: dict(np.load(f)) for f in files}
    cpu = sum(float(z["cpu_seconds"]) for z in stored.values())
    wall = sum(float(z["seconds"]) for z in stored.values())
    assert label_two("cpu").label_seconds == pytest.approx(cpu)
    assert label_two("wall").label_seconds == pytest.approx(wall)
    old = files[0]  # as written before 2026-12-03: no CPU seconds
    np.savez(old, **{k: v for k, v in stored[old].items() if k != "cpu_seconds"})
    assert label_two("wall").label_seconds == pytest.approx(wall)  # still a hit on the wall clock
    label_two("cpu")
    assert "cpu_seconds" in np.load(old).files  # redone and rewritten


def test_label_then_train_fits_its_cosine_to_the_budget(tmp_path, monkeypatch, h2):
    """fit_schedule: once the labelled set is built, the step rate on the charged clock (a fake
    one, one second per reading) sets decay_steps so the cosine ends with the budget."""
    import dataclasses
    import itertools

    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))
    cfg = dataclasses.replace(h2[0], reuse=1, warmup_steps=1, decay_steps=10**6, log_every=10**9)
    ticks = itertools.count()
    run = ex.label_then_train_run(
        cfg, n_labels=2, budget_s=1500.0, clock=lambda: float(next(ticks)), name="L", fit_schedule=True
    )
    assert run.error is None, run.error
    fits = run.timing["schedule_fits"]
    assert len(fits) == 4 and run.timing["schedule_fit"] == fits[-1]  # the fit and three refits
    fit = fits[-1]
    assert run.config.decay_steps == fit["decay_steps"] < 10**6
    assert fits[0]["step"] >= 200 and fit["rate"] > 0
    # the fitted cosine ends within the few percent of safety of where the budget did
    assert 0.9 * run.steps <= fit["decay_steps"] <= run.steps + 1


def test_label_free_run_can_fit_its_cosine_too(h2):
    """The same fit for Q (`--q-schedule fit`): its data is ready after the first step."""
    import dataclasses
    import itertools

    cfg = dataclasses.replace(h2[0], reuse=4, warmup_steps=1, decay_steps=10**6, log_every=10**9)
    ticks = itertools.count()
    run = ex.label_free_run(
        cfg, budget_s=900.0, clock=lambda: float(next(ticks)), name="Q", fit_schedule=True
    )
    assert run.error is None, run.error
    fits = run.timing["schedule_fits"]
    assert len(fits) == 4 and run.config.decay_steps == fits[-1]["decay_steps"] < 10**6
    assert 0.9 * run.steps <= fits[-1]["decay_steps"] <= run.steps + 1


def test_a_model_taken_from_a_run_records_how_the_run_trained(tmp_path, monkeypatch):
    """bench/labels_vs_dft_loss.py writes its command into --run-dir; bench/train_pretrained.py
    --from-run RUN/Q puts it before its own (resumed starts append; the first is the one)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import common
    import train_pretrained

    monkeypatch.setattr(sys, "argv", ["bench/labels_vs_dft_loss.py"])
    common.record_command(tmp_path, ["--full", "--seed", "1"])
    common.record_command(tmp_path, ["--full", "--seed", "1", "--resumed"])
    own = ["--from-run", str(tmp_path / "Q"), "--eri", "dense"]
    assert train_pretrained.command_line(own, tmp_path / "Q") == (
        "python bench/labels_vs_dft_loss.py --full --seed 1 && "
        f"python bench/train_pretrained.py --from-run {tmp_path / 'Q'} --eri dense"
    )
    assert train_pretrained.command_line(own, tmp_path / "elsewhere" / "Q").startswith(
        "python bench/train_pretrained.py"
    )  # no record: its own command alone
