"""qpt_nb.widgets without a browser: create widgets, press buttons, check state and figures."""

import itertools
import threading
import time

import numpy as np
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("py3Dmol")

from qpt_nb import widgets  # noqa: E402
from qpt_nb.dft.molecule import Molecule  # noqa: E402
from qpt_nb.widgets import (
    MoleculeExplorer,
    OrbitalView,
    TrainingDashboard,  # noqa: E402
    orbital_view,
)
from qpt_nb.widgets.explorer import orbital_channel  # noqa: E402
from qpt_nb.widgets.orbital import resolve_orbital_index  # noqa: E402


@pytest.fixture(scope="module")
def water_mf():
    """Water/STO-3G orbitals from PySCF (no JAX compile: keeps this module fast)."""
    from qpt_nb.dft.reference import pyscf_scf

    mol = Molecule.builtin("water")
    mf, _ = pyscf_scf(mol, "sto-3g", xc="b3lyp5", grid_level=1)
    return mol, mf


def test_smoke_helpers(monkeypatch):
    monkeypatch.delenv("QPT_NB_SMOKE", raising=False)
    assert not widgets.smoke_mode() and widgets.steps(100, 3) == 100
    monkeypatch.setenv("QPT_NB_SMOKE", "1")
    assert widgets.smoke_mode() and widgets.steps(100, 3) == 3
    monkeypatch.setenv("QPT_NB_SMOKE", "0")
    assert not widgets.smoke_mode()


def test_resolve_orbital_index():
    assert resolve_orbital_index("homo", 5, 7) == 4
    assert resolve_orbital_index("LUMO", 5, 7) == 5
    assert resolve_orbital_index("homo-2", 5, 7) == 2
    assert resolve_orbital_index("lumo+1", 5, 7) == 6
    assert resolve_orbital_index(-1, 5, 7) == 6
    for bad in ("lumo+2", 7, "homo-x"):
        with pytest.raises(ValueError):
            resolve_orbital_index(bad, 5, 7)


def test_orbital_view_from_pyscf(water_mf, tmp_path):
    mol, mf = water_mf
    ov = orbital_view(mol, mf, "homo", basis="sto-3g", n=16)
    assert isinstance(ov, OrbitalView)
    assert ov.index == 4 and ov.n_occ == 5 and "HOMO" in ov.label
    html = ov.html()
    assert "addIsosurface" in html and "VolumeData" in html and html.count("VolumeData(") == 1
    assert "data:image/png;base64," in html  # static fallback inside
    bundle = ov._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    page = ov.save_html(tmp_path / "homo.html")
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "HOMO" in text
    ov.set_index("lumo")
    assert ov.index == 5 and ov.cube() != ov.set_index(4).cube()
    cube = ov.save_cube(tmp_path / "homo.cube").read_text()
    assert len(cube.splitlines()) > 6 + 3
    fig = ov.slice_figure()
    assert "HOMO" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match="AO"):
        orbital_view(mol, mf.mo_coeff, 0, basis="6-31g")


@pytest.fixture(scope="module")
def explorer():
    ex = MoleculeExplorer("water", "sto-3g", "b3lyp5", grid_level=1, orbital_n=16)
    ex.run_button.click()  # synchronous: SCF + PySCF
    return ex


def test_explorer_runs_and_matches_pyscf(explorer):
    s = explorer.state
    assert s.error is None and s.status == "done"
    assert s.result.converged
    assert abs(s.difference) < 1e-7
    assert s.orbital == 4 and explorer.orbital_w.max == 6
    assert "HOMO" in explorer.orbital_label_w.value
    assert "difference" in explorer.status_w.value
    for img in (explorer.levels_w, explorer.convergence_w):
        assert img.value[:4] == b"\x89PNG"
    out = explorer.orbital_out.outputs
    assert len(out) == 1 and "addIsosurface" in out[0]["data"]["text/html"]
    # a closed shell: restricted, no spin channel to pick
    assert not s.result.unrestricted and s.spin_square == 0.0 and s.pyscf_spin_square is None
    assert explorer.channel_w.disabled and "spin" not in explorer.orbital_label_w.value
    assert orbital_channel(s.result, "beta")[2] == 5


def test_explorer_orbital_slider_and_slice(explorer):
    explorer.orbital_w.value = 5
    assert explorer.state.orbital == 5 and "LUMO" in explorer.orbital_label_w.value
    explorer.view_mode_w.value = "slice"
    assert explorer.slice_w.value[:4] == b"\x89PNG"
    assert explorer.orbital_out.layout.display == "none"
    explorer.view_mode_w.value = "3D"
    assert explorer.slice_w.layout.display == "none"


@pytest.mark.parametrize(
    "xyz, message",
    [
        ("3\n\nO 0 0 0\nH 0 0 0.01\nH 1 0 0", "too close"),
        ("2\n\nO 0 0 0\nH 0 0 0.96", "odd number of electrons"),
        ("1\n\nXx 0 0 0", "unknown element"),
        ("", "paste an xyz"),
        ("3\nwater\nO 0 0 0\nH 0 0 0.96", "wrong atom count"),
    ],
)
def test_explorer_bad_input_is_a_message(explorer, xyz, message):
    explorer.molecule_w.value = "(paste xyz)"
    explorer.xyz_w.value = xyz
    explorer.run_button.click()  # must not raise
    s = explorer.state
    assert s.status == "error" and message in s.error
    assert "Could not run" in explorer.status_w.value and "Traceback" not in explorer.status_w.value
    assert explorer.orbital_w.disabled


@pytest.fixture(scope="module")
def cation_explorer():
    """The water cation (charge 1, spin 1) set through the explorer's boxes: UKS."""
    ex = MoleculeExplorer("water", "sto-3g", "b3lyp5", grid_level=1, orbital_n=12)
    ex.charge_w.value = 1
    ex.spin_w.value = 1
    ex.run_button.click()  # synchronous: UKS + PySCF's dft.UKS
    return ex


def test_explorer_open_shell_is_unrestricted(cation_explorer):
    ex = cation_explorer
    s = ex.state
    assert s.error is None and s.status == "done"
    assert (s.mol.charge, s.mol.spin) == (1, 1) and s.mol.name == "water"
    r = s.result
    assert r.unrestricted and r.converged and r.occupations == (5, 4)
    assert s.spin_square == pytest.approx(r.spin_square[0], abs=1e-12)
    assert 0.75 <= s.spin_square < 0.76  # a doublet, slightly contaminated
    assert abs(s.spin_square - s.pyscf_spin_square) < 1e-6
    assert abs(s.difference) < 1e-7 and s.pyscf_mo_energy.shape == (2, 7)
    assert "S<sup>2</sup>" in ex.status_w.value and "5 alpha + 4 beta" in ex.status_w.value
    assert "<S^2> = 0.75" in s.summary()
    # alpha orbitals by default, the toggle picks beta
    assert s.channel == "alpha" and not ex.channel_w.disabled
    assert s.n_occ == 5 and s.orbital == 4 and ex.orbital_w.max == 6
    assert "HOMO" in ex.orbital_label_w.value and "alpha spin" in ex.orbital_label_w.value
    alpha_png = ex.levels_w.value
    ex.channel_w.value = "beta"
    assert s.channel == "beta" and s.n_occ == 4 and s.orbital == 3
    assert "beta spin" in ex.orbital_label_w.value and "beta spin" in ex.status_w.value
    assert ex.levels_w.value[:4] == b"\x89PNG" and ex.levels_w.value != alpha_png
    eps, c, n = orbital_channel(r, "beta")
    assert n == 4 and np.allclose(eps, r.mo_energy[1]) and np.allclose(c, r.mo_coeff[1])
    assert ex.orbital_view.n_occ == 4 and np.allclose(ex.orbital_view.mo_coeff, r.mo_coeff[1])
    ex.orbital_w.value = 4
    assert "LUMO" in ex.orbital_label_w.value
    ex.channel_w.value = "alpha"
    assert s.orbital == 4 and "HOMO" in ex.orbital_label_w.value


@pytest.mark.parametrize(
    "molecule, xyz, charge, spin, message",
    [
        ("water", "", 0, 1, "spin 1 does not fit 10 electrons"),
        ("water", "", 1, 0, "odd number of electrons (9)"),
        ("water", "", -1, 2, "spin 2 does not fit 11 electrons"),
        ("(paste xyz)", "2\n\nO 0 0 0\nH 0 0 0.97", 0, 0, "a doublet radical is spin=1"),
        ("(paste xyz)", "2\n\nO 0 0 0\nH 0 0 0.97", 0, 2, "spin 2 does not fit 9 electrons"),
    ],
)
def test_explorer_charge_spin_mismatch_is_a_message(molecule, xyz, charge, spin, message):
    ex = MoleculeExplorer("water", grid_level=0, with_pyscf=False)
    ex.molecule_w.value = molecule
    if xyz:
        ex.xyz_w.value = xyz
    ex.charge_w.value, ex.spin_w.value = charge, spin
    ex.run_button.click()  # must not raise
    s = ex.state
    assert s.status == "error" and message in s.error and s.result is None
    assert (s.charge, s.spin) == (charge, spin)
    assert "Could not run" in ex.status_w.value and message in ex.status_w.value
    assert "Traceback" not in ex.status_w.value and ex.orbital_w.disabled and ex.channel_w.disabled


def test_explorer_charge_spin_arguments():
    oh = Molecule.from_xyz("O 0 0 0\nH 0 0 0.97", spin=1)
    ex = MoleculeExplorer(oh)
    assert ex.molecule_w.value == "(paste xyz)" and (ex.charge_w.value, ex.spin_w.value) == (0, 1)
    ex = MoleculeExplorer("water", charge=1, spin=1)
    assert (ex.state.charge, ex.state.spin) == (1, 1) and ex.spin_w.value == 1
    for bad in (dict(spin=7), dict(spin=-1), dict(charge=5)):
        with pytest.raises(ValueError, match="explorer's (spin|charge) box"):
            MoleculeExplorer("water", **bad)


def test_explorer_unknown_functional(explorer):
    explorer.molecule_w.value = "water"
    explorer.xc_w.options = list(explorer.xc_w.options) + ["m06"]
    explorer.xc_w.value = "m06"
    explorer.run()
    assert explorer.state.status == "error" and "m06" in explorer.state.error.lower()
    explorer.xc_w.value = "b3lyp5"


# ----------------------------------------------------------------------------- dashboard
class FakeTrainer:
    """Just enough of qpt_nb.learn.train.Trainer for the dashboard."""

    def __init__(self, dashboard_status=None, fail_at=None):
        self.history, self.step_, self.monitor, self.monitor_every = [], 0, None, 0
        self.timing = dict(steps=0, compile_s=0.0, wait_s=0.0, step_s=0.0)
        self.config = None
        self.params = {}
        self.calls = []  # (n, dashboard status at the call)
        self.statuses = []  # dashboard status at each step
        self.dashboard = None
        self.fail_at = fail_at
        self.threads = set()

    @property
    def step(self):
        return self.step_

    def run(self, n, callback=None, *, should_stop=None, max_seconds=None):
        """Trainer.run's contract: n steps (None: until should_stop), checked after each."""
        self.calls.append((n, self.dashboard.state.status if self.dashboard else None))
        self.threads.add(threading.current_thread().name)
        for _ in itertools.count() if n is None else range(n):
            self.statuses.append(self.dashboard.state.status if self.dashboard else None)
            if self.fail_at is not None and self.step_ + 1 == self.fail_at:
                raise FloatingPointError("loss is NaN")
            time.sleep(0.002)
            self.step_ += 1
            self.timing["steps"] += 1
            if self.timing["steps"] == 1:
                self.timing["compile_s"] = 0.5
            rec = dict(
                step=self.step_,
                loss=-75.0 - 1e-3 * np.log(self.step_),
                wall_s=0.01 * self.step_,
                steps_per_s=100.0,
                wait_fraction=0.1,
            )
            if self.step_ % 5 == 0:
                rec.update(test_energy_mae_mev=10.0 / self.step_, test_hamiltonian_mae_uha=1e3 / self.step_)
            self.history.append(rec)
            if callback:
                callback(rec)
            if should_stop is not None and should_stop():
                break
        return []


def _fake_rows(trainer):
    rng = np.random.default_rng(trainer.step)
    eps = np.array([-19.0, -1.0, -0.5, -0.4, -0.3, 0.2, 0.3])
    return [
        dict(
            index=i,
            energy_error_mev=float(rng.normal()),
            hamiltonian_mae_uha=float(rng.uniform(10, 90)),
            predicted_mo_energy=eps + 1e-4 * i,
            reference_mo_energy=eps,
            n_occ=5,
        )
        for i in range(3)
    ]


@pytest.fixture
def fake_dash():
    tr = FakeTrainer()
    mols = [Molecule.builtin("water")] * 3
    dash = TrainingDashboard(tr, mols, refresh_every=5, evaluate_fn=_fake_rows)
    tr.dashboard = dash
    yield tr, dash
    dash.pause()
    dash.wait(5)


def test_dashboard_step_button(fake_dash):
    tr, dash = fake_dash
    before = dash.curves_w.value
    assert dash.state.status == "idle" and dash.pause_button.disabled
    dash.step_button.click()
    assert dash.wait(10)
    assert tr.step == 5 and dash.state.step == 5
    assert tr.calls == [(5, "compiling")]  # one Trainer.run per press
    assert tr.statuses == ["compiling"] + ["running"] * 4  # the first step compiles
    assert "qpt_nb-dashboard" in tr.threads  # ran in the background thread
    assert dash.curves_w.value != before and dash.curves_w.value[:4] == b"\x89PNG"
    assert dash.state.status == "idle" and not dash.start_button.disabled
    assert "steps/s" in dash.stats_w.value and "waiting for data" in dash.stats_w.value
    assert len(dash.state.rows) == 3 and dash.state.rows_step == 5
    # press Step again: refreshes happen every 5 steps, not every step
    n_refresh = dash.state.refreshes
    dash.step(10)
    dash.wait(10)
    assert tr.step == 15 and dash.state.refreshes == n_refresh + 2


def test_dashboard_start_pause(fake_dash):
    tr, dash = fake_dash
    dash.start_button.click()
    deadline = time.time() + 10
    while tr.step < 12 and time.time() < deadline:
        time.sleep(0.01)
    assert dash.running and not dash.pause_button.disabled and dash.start_button.disabled
    dash.pause_button.click()
    assert dash.wait(10)
    assert dash.state.status == "paused"
    assert tr.step % 5 == 0  # stops at a chunk boundary
    stopped = tr.step
    time.sleep(0.05)
    assert tr.step == stopped
    dash.start(max_steps=stopped + 7)
    dash.wait(10)
    assert tr.step == stopped + 7 and dash.state.status == "idle"


def test_dashboard_blocking_run_and_rows(fake_dash):
    tr, dash = fake_dash
    dash.run(10)
    assert tr.step == 10 and tr.threads == {threading.current_thread().name}
    rows = dash.state.rows
    dash.sort_w.value = "|energy error|"
    order = np.argsort([-abs(r["energy_error_mev"]) for r in rows])
    assert [v for _, v in dash.conformer_w.options] == [rows[i]["index"] for i in order]
    dash.conformer_w.value = 2
    assert dash.state.selected == 2
    assert dash.orbitals_w.value[:4] == b"\x89PNG"
    assert "addModel" in dash.geometry_out.outputs[0]["data"]["text/html"]
    dash.select(1)
    assert dash.conformer_w.value == 1
    with pytest.raises(ValueError):
        dash.select(7)


def test_dashboard_training_error_is_shown():
    tr = FakeTrainer(fail_at=3)
    dash = TrainingDashboard(tr, None, refresh_every=2)
    tr.dashboard = dash
    dash.step(5)
    dash.wait(10)
    assert dash.state.status == "error" and "NaN" in dash.state.error
    assert "NaN" in dash.status_w.value
    assert not dash.step_button.disabled


@pytest.mark.slow
def test_dashboard_with_real_trainer():
    """One short real run: monitor from PySCF labels, per-conformer rows, orbital panel."""
    from qpt_nb.analysis.evaluation import make_test_set
    from qpt_nb.learn.train import TrainConfig, Trainer

    tr = Trainer(
        TrainConfig(
            molecule="water", grid_level=1, warmup_steps=5, sampler="wiggle", reuse=4, checkpoint_every=1000
        )
    )
    try:
        test = make_test_set(tr.mol, 2, sampler="wiggle", seed=7)
        dash = TrainingDashboard(tr, test, refresh_every=3)
        dash.step_button.click()
        assert dash.wait(240)
        assert dash.state.error is None, dash.state.error
        assert tr.step == 3
        assert "test_energy_mae_mev" in tr.history[-1]
        assert len(dash.state.rows) == 2 and dash.state.rows[0]["hamiltonian_mae_uha"] > 0
        assert dash.orbitals_w.value[:4] == b"\x89PNG"
        mean_e = np.mean([abs(r["energy_error_mev"]) for r in dash.state.rows])
        assert mean_e == pytest.approx(tr.history[-1]["test_energy_mae_mev"], rel=1e-6)
    finally:
        tr.close()


def test_find_saved_runs(tmp_path):
    import json

    from qpt_nb.analysis.experiments import LABELLING_FILE, find_runs
    from qpt_nb.learn.train import TrainConfig

    def write(name, loss, molecule="uracil", labelling=True):
        d = tmp_path / "runs" / name
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(TrainConfig(molecule=molecule, loss=loss).to_json()))
        (d / "history.jsonl").write_text(json.dumps(dict(step=1, loss=1.0, wall_s=2.0)) + "\n")
        (d / "metrics.json").write_text(json.dumps(dict(trained=dict(energy_mae_mev=1.0), baseline_w0={})))
        if loss == "supervised" and labelling:
            (d / LABELLING_FILE).write_text(json.dumps(dict(label_seconds=120.0, n_labels=8)))
        return d

    write("demo-uracil-1", "energy")
    write("sup-no-timing", "supervised", labelling=False)  # not comparable: ignored
    write("water-run", "energy", molecule="water")
    sup = write("nested/sup", "supervised")
    runs = find_runs("uracil", "sto-3g", grid_level=3, roots=[tmp_path / "runs", tmp_path / "missing"])
    assert set(runs) == {"label-free", "label-then-train"}
    assert runs["label-free"].path.name == "demo-uracil-1"
    ltt = runs["label-then-train"]
    assert ltt.path == sup and ltt.label_seconds == 120.0 and ltt.total_seconds == 122.0
    assert ltt.metrics == dict(energy_mae_mev=1.0) and ltt.name == "label-then-train (L)"
    assert find_runs("uracil", "def2-svp", roots=[tmp_path / "runs"]) == {}


def test_dashboard_double_click_starts_one_thread(fake_dash):
    tr, dash = fake_dash
    dash.step(5)
    first = dash._thread
    dash.step(5)  # ignored while training
    dash.start()
    assert dash._thread is first
    with pytest.raises(RuntimeError):
        if dash.running:
            dash.run(3)
        else:
            raise RuntimeError("finished already")
    assert dash.wait(10) and tr.step == 5


def test_project_root(tmp_path):
    from qpt_nb.analysis.experiments import project_root

    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    assert project_root(tmp_path / "notebooks") == tmp_path.resolve()


def test_explorer_radical_builtin_gets_its_spin():
    ex = MoleculeExplorer("allyl")
    assert ex.spin_w.value == 1 and ex.state.spin == 1  # 23 electrons: a doublet
    ex.molecule_w.value = "water"
    assert (ex.charge_w.value, ex.spin_w.value) == (0, 0)
    ex.molecule_w.value = "allyl"
    assert ex.spin_w.value == 1
