"""The measured headline benchmark as notebook 03 reads it (qpt_nb.analysis.headline)."""

import json

import pytest

from qpt_nb.analysis.headline import best_l_lines, default_path, display_name, load_headline, ratio_lines
from qpt_nb.analysis.timing import pipeline_of


def test_committed_headline_reads_back():
    h = load_headline()
    assert h.path == default_path()
    data = json.loads(default_path().read_text())
    by = {r["key"]: r for r in h.rows}
    assert set(by) == set(data["runs"])
    for key, run in data["runs"].items():
        trained = [p for p in run["curve"] if p.get("step", 0) > 0] or run["curve"]
        assert by[key]["best_energy_mae_mev"] == min(p["energy_mae_mev"] for p in trained)
        assert by[key]["steps"] == run["steps"]
    lab = [r for r in h.rows if pipeline_of(r["key"]) == "L"][0]
    assert lab["n_labels"] > 0 and h.offsets[lab["name"]] == data["runs"][lab["key"]]["labels_end_s"]
    curve = h.curves[lab["name"]]
    assert curve[0]["wall_s"] >= 0 and "test_energy_mae_mev" in curve[-1]
    lines = ratio_lines(h)
    assert len(lines) == len(data["summary"])
    ratio = next(v["ratio"] for v in data["summary"].values() if v.get("ratio"))
    assert any(f"ratio {ratio:.2f}" in ln for ln in lines)
    assert display_name("Q-s1") == "DFT-energy loss (Q) s1" and display_name("L") == "label-then-train (L)"
    assert "pipeline" in h.table().splitlines()[0]


def test_best_l_lines_name_the_l_to_beat():
    h = load_headline()
    labelled = [r for r in h.rows if pipeline_of(r["key"]) == "L"]
    free = [r for r in h.rows if pipeline_of(r["key"]) != "L"]
    lines = best_l_lines(h)
    days = sorted(str(r["date"])[:10] for r in h.rows)
    assert h.measured() == (days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}")
    assert len(lines) == 2 * (1 + len(free))  # per metric: the best L, then one line per label-free run
    for metric in ("energy_mae_mev", "hamiltonian_mae_uha"):
        ref = h.best_l(metric)
        best = min(r[f"best_{metric}"] for r in labelled)
        assert next(r for r in h.rows if r["key"] == ref)[f"best_{metric}"] == best
        assert any(display_name(ref) in ln and f"{best:.3g}" in ln for ln in lines)
    for r in free:
        c = h.ratios[f"{r['key']}_vs_{h.best_l('energy_mae_mev')}_energy_mae_mev"]
        if c.get("ratio"):
            assert any(f"ratio {c['ratio']:.2f}" in ln and display_name(r["key"]) in ln for ln in lines)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels_vs_dft_loss.py --full"):
        load_headline(tmp_path / "none.json")
    cut = tmp_path / "cut.json"
    cut.write_text(default_path().read_text()[:500])
    with pytest.raises(ValueError, match="truncated"):
        load_headline(cut)
    other = tmp_path / "other.json"
    other.write_text(json.dumps(dict(benchmark="scf_vs_pyscf")))
    with pytest.raises(ValueError, match="not a labels_vs_dft_loss result"):
        load_headline(other)
    part = tmp_path / "part.json"
    part.write_text(json.dumps(dict(json.loads(default_path().read_text()), complete=False)))
    with pytest.raises(ValueError, match="incomplete"):
        load_headline(part)


def test_machines_names_each_cpu_and_its_runs(tmp_path):
    data = json.loads(default_path().read_text())
    keys = list(data["runs"])
    one = tmp_path / "one.json"
    one.write_text(json.dumps(dict(data, cpus={k: "AMD EPYC" for k in keys})))
    assert load_headline(one).machines() == "AMD EPYC"
    two = tmp_path / "two.json"
    cpus = {k: ("Intel Xeon" if k == keys[0] else "AMD EPYC") for k in keys}
    two.write_text(json.dumps(dict(data, cpus=cpus)))
    h = load_headline(two)
    assert f"Intel Xeon ({keys[0]})" in h.machines()
    assert f"AMD EPYC ({', '.join(keys[1:])})" in h.machines()
    assert {r["key"]: r["cpu"] for r in h.rows} == cpus


def test_combined_results_read_back_as_the_headline(tmp_path):
    """The benchmark's --combine writes what load_headline reads: one schema, in the package."""
    from qpt_nb.analysis.headline import combine_results

    data = json.loads(default_path().read_text())
    key = next(iter(data["runs"]))
    one = dict(data, runs={key: data["runs"][key]}, machine=dict(data["machine"], date="2026-01-02"))
    two = dict(data, runs={key: data["runs"][key]}, machine=dict(data["machine"], cpu_model="Other CPU"))
    combined = combine_results([("Q-a", one), ("Q-b", two)])
    assert sorted(combined["runs"]) == ["Q-a", "Q-b"] and combined["dates"]["Q-a"] == "2026-01-02"
    assert combined["cpus"]["Q-b"] == "Other CPU" and combined["complete"]
    path = tmp_path / "combined.json"
    path.write_text(json.dumps(dict(combined, summary={})))
    h = load_headline(path)
    assert [r["key"] for r in h.rows] == ["Q-a", "Q-b"] and h.rows[1]["cpu"] == "Other CPU"
    with pytest.raises(ValueError, match="appears twice"):
        combine_results([("", one), ("", one)])
    with pytest.raises(ValueError, match="one run"):
        combine_results([("Q-x", data)])
