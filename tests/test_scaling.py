"""The budget-scaling analysis (`qpt_nb.analysis.scaling`): ratios at one budget, power-law
fits and the extrapolated ratio, on curves whose answers are known."""

import math

import numpy as np
import pytest

from qpt_nb.analysis import scaling


def _curve(times_s, errors, first_step=1):
    return [
        dict(t_s=t, step=first_step + 10 * k, energy_mae_mev=e, hamiltonian_mae_uha=100 * e)
        for k, (t, e) in enumerate(zip(times_s, errors))
    ]


def test_ratio_against_the_best_l_and_its_converse():
    l_curves = {
        "L-a": _curve([600, 900], [9.0, 6.0]),  # best 6.0 at 900 s
        "L-b": _curve([600, 900], [12.0, 8.0]),
    }
    q_curves = {
        "Q-s0": _curve([150, 300, 900], [10.0, 5.0, 3.0]),  # reaches 6.0 at 300 s: 3x
        "Q-s1": _curve([150, 300, 900], [20.0, 9.0, 7.0]),  # never: L-a reaches 7.0 at 900 s
    }
    r = scaling.ratio_at_budget(l_curves, q_curves, "energy_mae_mev")
    assert r["best_l"] == "L-a" and r["best_l_error"] == 6.0 and r["t_best_l_s"] == 900
    assert r["ratios"]["Q-s0"] == pytest.approx(3.0) and r["reached"]["Q-s0"]
    # converse: L-a first reaches Q-s1's best (7.0) at 900 s, Q-s1 reached it at 900 s
    assert r["ratios"]["Q-s1"] == pytest.approx(1.0) and not r["reached"]["Q-s1"]
    assert (r["lo"], r["hi"]) == (pytest.approx(1.0), pytest.approx(3.0))
    q_slow = {"Q": _curve([300, 900], [9.0, 8.0])}  # L-a reaches 8.0 by 900 s, Q at 900 s
    l_fast = {"L": _curve([300, 900], [8.0, 6.0])}  # ... and this one already at 300 s: 1/3
    assert scaling.ratio_at_budget(l_fast, q_slow, "energy_mae_mev")["ratios"]["Q"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="at least one"):
        scaling.ratio_at_budget({}, q_curves, "energy_mae_mev")


def test_envelope_ratio_uses_the_earliest_run_of_any_budget():
    l_runs = [_curve([600, 900], [9.0, 6.0]), _curve([1800, 3600], [5.0, 3.0])]
    q = {
        "s0": [_curve([300, 900], [7.0, 5.0]), _curve([600, 3600], [8.0, 2.0])],
        "s1": [_curve([900], [7.0])],
    }
    assert scaling.first_reach(l_runs, "energy_mae_mev", 6.0) == 900
    r = scaling.envelope_ratios(l_runs, q, "energy_mae_mev", 6.0)
    assert r == {"s0": pytest.approx(900 / 900), "s1": None}
    assert scaling.envelope_ratios(l_runs, q, "energy_mae_mev", 7.0)["s0"] == pytest.approx(900 / 300)
    with pytest.raises(ValueError, match="no label-then-train run"):
        scaling.envelope_ratios(l_runs, q, "energy_mae_mev", 1.0)


def test_the_power_law_fit_recovers_a_known_law_and_its_spread():
    t = np.array([900, 900, 3600, 3600, 14400, 14400], dtype=float)
    law = scaling.PowerLaw(log_a=math.log(4.0), alpha=0.8)
    e = law(t) * np.exp([0.05, -0.05, 0.05, -0.05, 0.05, -0.05])  # a seed scatter of +-5 %
    fit = scaling.fit_power_law(t, e)
    assert fit.alpha == pytest.approx(0.8, abs=1e-9) and math.exp(fit.log_a) == pytest.approx(4.0, rel=1e-9)
    assert fit.cov is not None and 0 < fit.cov[1][1] < 1e-2 and fit.n == 6
    assert fit.time_to(4.0) == pytest.approx(3600.0)
    assert fit.time_to(4.0 * 2**-0.8) == pytest.approx(7200.0)
    assert scaling.fit_power_law([900, 3600], [8.0, 4.0]).cov is None  # too few points
    with pytest.raises(ValueError, match="two budgets"):
        scaling.fit_power_law([3600, 3600], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        scaling.fit_power_law([900, 3600], [1.0, 0.0])


def test_extrapolated_ratio_follows_the_closed_form():
    # e_L = 8 (t/h)^-0.5, e_Q = 4 (t/h)^-1: ratio(T) = T / t_Q(e_L(T)) = 2 (T/h)^0.5
    l_law = scaling.PowerLaw(math.log(8.0), 0.5)
    q_law = scaling.PowerLaw(math.log(4.0), 1.0)
    for hours in (1.0, 4.0, 31.0):
        r = scaling.extrapolated_ratio(l_law, q_law, hours * 3600)
        assert r["ratio"] == pytest.approx(2.0 * hours**0.5)
        assert r["lo"] == pytest.approx(r["ratio"]) == pytest.approx(r["hi"])  # no covariance: no band
    noisy = scaling.PowerLaw(math.log(4.0), 1.0, cov=((0.01, 0.0), (0.0, 0.01)))
    band = scaling.extrapolated_ratio(l_law, noisy, 31 * 3600)
    assert band["lo"] < band["ratio"] < band["hi"]


def test_through_point_keeps_the_exponent_and_moves_the_amplitude():
    law = scaling.PowerLaw(math.log(4.0), 0.8, cov=((0.01, 0.0), (0.0, 0.04)))
    moved = scaling.through_point(law, 7200.0, [10.0, 10.0])
    assert moved.alpha == 0.8 and float(moved(7200.0)) == pytest.approx(10.0)
    assert moved.cov[1][1] == 0.04 and moved.cov[0][0] == pytest.approx(math.log(2.0) ** 2 * 0.04)


def test_ratio_vs_budget_draws_measured_points_and_the_marked_extrapolation():
    from qpt_nb.viz.plots import ratio_vs_budget

    r = dict(ratios={"Q-s0": 2.0, "Q-s1": 0.8}, reached={"Q-s0": True, "Q-s1": False})
    summary = dict(
        budgets=[dict(basis="sto-3g", budget_min=60, energy_mae_mev=r, hamiltonian_mae_uha=r)],
        replicas=[
            dict(basis="sto-3g", budget_min=15, cpus=["AMD EPYC"], energy_mae_mev=r, hamiltonian_mae_uha=r)
        ],
        extrapolation=dict(
            hours=31.0,
            curves={
                "sto-3g_energy_mae_mev": dict(
                    hours=[1.0, 31.0], ratio=[2.0, 5.0], lo=[1.5, 3.0], hi=[2.5, 8.0]
                )
            },
        ),
        paper_ratio=25.4,
    )
    fig = ratio_vs_budget(summary)
    energy, ham = fig.axes[:2]
    labels = [t.get_text() for t in energy.get_legend().get_texts()]
    assert "sto-3g, in the budget's runs" in labels and "sto-3g, power-law extrapolation" in labels
    assert any(t.startswith("paper (31 h") for t in labels)
    assert "sto-3g, power-law extrapolation" not in [t.get_text() for t in ham.get_legend().get_texts()]
    dots = [ln for ln in energy.lines if ln.get_marker() == "o"]
    assert sorted(ln.get_ydata()[0] for ln in dots) == [0.8, 2.0]
    assert [ln.get_markerfacecolor() for ln in dots if ln.get_ydata()[0] == 0.8] == ["white"]  # converse
    squares = [ln for ln in energy.lines if ln.get_marker() == "s"]
    assert sorted(ln.get_ydata()[0] for ln in squares) == [0.8, 2.0]
    assert "sto-3g, both pipelines again on AMD EPYC" in labels


def test_the_shipped_summary_loads_and_reads_as_sentences(tmp_path):
    s = scaling.load_summary()  # bench/results/budget_scaling.json of this checkout
    lines = scaling.summary_lines(s)
    assert any(line.startswith("sto-3g 60 CPU min, energy: best L") for line in lines)
    assert all(("pending" in line) or ("ratio" in line) for line in lines)
    with pytest.raises(FileNotFoundError, match="budget_scaling.py"):
        scaling.load_summary(tmp_path / "none.json")
    (tmp_path / "cut.json").write_text('{"benchmark": "budget_scal')
    with pytest.raises(ValueError, match="truncated"):
        scaling.load_summary(tmp_path / "cut.json")
    (tmp_path / "other.json").write_text('{"benchmark": "costs"}')
    with pytest.raises(ValueError, match="not a budget_scaling summary"):
        scaling.load_summary(tmp_path / "other.json")


def test_bench_summary_from_run_files(tmp_path):
    """bench/budget_scaling.py on made-up run files: the ratio per budget, the best share per
    seed in L's power law, pending runs listed, the extrapolation written."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
    import budget_scaling

    def write(name, pipeline, times, errors, complete=True):
        run = dict(curve=_curve(times, errors), steps=100)
        data = dict(complete=complete, runs={pipeline: run}, machine=dict(cpu_model="cpu", date="2026-12-06"))
        (tmp_path / f"labels_vs_dft_loss_{name}.json").write_text(json.dumps(data))

    write("Q15w-s0", "Q", [300, 900], [8.0, 4.0])
    write("L15-qpt-s0", "L", [600, 900], [9.0, 6.0])  # Q reaches 6.0 by 900 s: ratio 1
    write("L15-qpt75-s0", "L", [800, 900], [7.0, 5.0])  # the better share: Q reaches 5 at 900 s
    write("Qw-s0", "Q", [900, 3600], [3.0, 1.0])
    write("L-qpt-fit-s0", "L", [1800, 3600], [4.0, 2.0])  # Q reaches 2 at 3600 s: ratio 1
    write("Qsvp-s0", "Q", [1800, 7200], [9.0, 5.0], complete=False)  # not complete: pending
    write("Q15w-amd-s0", "Q", [300, 600, 900], [12.0, 6.5, 5.0])  # the 15-minute pair on another CPU
    write("L15-qpt-amd-s0", "L", [600, 900], [9.0, 7.0])  # Q reaches 7.0 by 600 s: ratio 1.5
    s = budget_scaling.main(["--results", str(tmp_path), "--out", str(tmp_path)])
    (b15_amd,) = s["replicas"]
    r = b15_amd["energy_mae_mev"]
    assert r["best_l"] == "L15-qpt-amd-s0" and r["ratios"]["Q15w-amd-s0"] == pytest.approx(1.5)
    assert b15_amd["pending"] == [] and "Q15w-amd-s0" not in s["pending"]
    assert [tuple(p) for p in s["points"]["sto-3g_Q_energy_mae_mev"]] == [
        (900.0, 4.0),
        (3600.0, 1.0),
    ]  # not pooled
    b15 = s["budgets"][0]
    assert (
        b15["energy_mae_mev"]["best_l"] == "L15-qpt75-s0"
        and b15["energy_mae_mev"]["ratios"]["Q15w-s0"] == 1.0
    )
    assert "Q15w-s1" in b15["pending"] and "Qsvp-s0" in s["pending"]
    assert [tuple(p) for p in s["points"]["sto-3g_L_energy_mae_mev"]] == [
        (900.0, 5.0),
        (3600.0, 2.0),
    ]  # best share
    law = s["laws"]["sto-3g_Q_energy_mae_mev"]
    assert law["alpha"] == pytest.approx(math.log(4.0) / math.log(4.0))  # 4 meV at 15 min, 1 at 1 h
    assert (
        "sto-3g_energy_mae_mev" in s["extrapolation"]["ratios"] and "def2-svp_energy_mae_mev" not in s["laws"]
    )
    assert (tmp_path / "budget_scaling.json").is_file() and (tmp_path / "budget_scaling.png").is_file()
