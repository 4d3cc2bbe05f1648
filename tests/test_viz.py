"""qpt_nb.viz: pure plotting functions, cube files, the 3Dmol.js source setting."""

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from qpt_nb import viz
from qpt_nb.dft.molecule import Molecule
from qpt_nb.units import EV_PER_HARTREE
from qpt_nb.viz import threedmol


@pytest.fixture(scope="module")
def water_orbitals():
    """Water/STO-3G orbitals from PySCF (no JAX compile: keeps this module fast)."""
    from qpt_nb.dft.reference import pyscf_scf

    mol = Molecule.builtin("water")
    mf, _ = pyscf_scf(mol, "sto-3g", xc="b3lyp5", grid_level=1)
    return mol, mf


@pytest.fixture(autouse=True)
def _reset_3dmol(monkeypatch):
    monkeypatch.delenv(threedmol.ENV_VAR, raising=False)
    threedmol.set_3dmol_js(None)
    yield
    monkeypatch.delenv(threedmol.ENV_VAR, raising=False)
    threedmol.set_3dmol_js(None)


def test_orbital_cube_compact_matches_pyscf(water_orbitals):
    mol, mf = water_orbitals
    full = viz.orbital_cube(mol, "sto-3g", mf.mo_coeff, 4, n=20, compact=False)
    small = viz.orbital_cube(mol, "sto-3g", mf.mo_coeff, 4, n=20)
    assert len(small) < len(full) / 2
    head = 6 + mol.n_atoms
    assert full.splitlines()[:head] == small.splitlines()[:head]  # header verbatim
    a = np.array(" ".join(full.splitlines()[head:]).split(), float)
    b = np.array(" ".join(small.splitlines()[head:]).split(), float) * viz.orbitals.CUBE_QUANTUM
    assert a.size == b.size == 20**3
    assert np.abs(a - b).max() <= 0.5 * viz.orbitals.CUBE_QUANTUM + 1e-12
    assert np.abs(a).max() > 0.1


def test_orbital_cube_rejects_wrong_basis(water_orbitals):
    mol, mf = water_orbitals
    with pytest.raises(ValueError, match="AO rows"):
        viz.orbital_cube(mol, "6-31g", mf.mo_coeff, 0, n=10)
    with pytest.raises(ValueError, match="out of range"):
        viz.orbital_cube(mol, "sto-3g", mf.mo_coeff, 99, n=10)


def test_slice_picks_a_plane_where_the_orbital_lives(water_orbitals):
    mol, mf = water_orbitals
    # water's HOMO is the out-of-plane lone pair: zero in the molecular plane
    *_, vals, _, plane = viz.orbital_on_plane(mol, "sto-3g", mf.mo_coeff, 4, n=21, plane="molecular")
    assert np.abs(vals).max() < 1e-8
    *_, vals, _, plane = viz.orbital_on_plane(mol, "sto-3g", mf.mo_coeff, 4, n=21)
    assert plane != "molecular" and np.abs(vals).max() > 0.1
    fig = viz.orbital_slice_figure(mol, "sto-3g", mf.mo_coeff, 4, mo_energy=mf.mo_energy, n_occ=5, n=21)
    assert isinstance(fig, Figure)
    assert "HOMO" in fig.axes[0].get_title()
    assert viz.figure_png(fig)[:4] == b"\x89PNG"


def test_orbital_labels():
    assert [viz.orbital_label(i, 5) for i in (2, 4, 5, 7)] == ["HOMO-2", "HOMO", "LUMO", "LUMO+2"]


def test_energy_levels_and_convergence_figures(water_orbitals):
    mol, mf = water_orbitals
    fig = viz.energy_levels(mf.mo_energy, 5, reference=mf.mo_energy + 1e-3)
    ax = fig.axes[0]
    texts = " ".join(t.get_text() for t in ax.texts)
    assert "HOMO" in texts and "LUMO" in texts and "gap" in texts
    gap_ev = (mf.mo_energy[5] - mf.mo_energy[4]) * EV_PER_HARTREE
    assert f"{gap_ev:.2f} eV" in texts
    assert "1 deeper level(s) not shown" in texts  # the O 1s core level
    fig = viz.scf_convergence([-75.0, -75.2, -75.27, -75.2799, -75.28], errors=[1, 0.1, 0.01, 1e-3, 1e-5])
    assert fig.axes[0].get_yscale() == "log" and len(fig.axes[0].lines) == 2


def test_training_curves_panels():
    hist = [dict(step=i, loss=-75.0 - 0.01 * i, wall_s=0.1 * i) for i in range(1, 11)]
    fig = viz.training_curves(hist)
    assert len(fig.axes) == 2  # loss vs step, vs wall
    for r in hist[4::5]:
        r.update(test_energy_mae_mev=10.0 ** (4 - 0.4 * r["step"]), test_hamiltonian_mae_uha=100.0)
    fig = viz.training_curves(hist)
    assert len(fig.axes) == 6
    ax = fig.axes[1]
    assert ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_xdata(), [5, 10])
    assert fig.axes[2].get_yscale() == "linear"  # constant H error: no log axis
    assert fig.axes[3].get_xlabel().startswith("wall")
    fig = viz.training_curves(None, runs={"a": hist, "b": hist[:3]})
    assert len(fig.axes[0].lines) == 2


def test_per_conformer_errors_sorting_and_selection():
    rows = [
        dict(index=i, energy_error_mev=e, hamiltonian_mae_uha=h)
        for i, (e, h) in enumerate([(0.1, 50), (-3.0, 20), (1.0, 90)])
    ]
    assert viz.sort_rows(rows, "index") == [0, 1, 2]
    assert viz.sort_rows(rows, "energy_error_mev") == [1, 2, 0]  # by |error|
    assert viz.sort_rows(rows, "hamiltonian_mae_uha") == [2, 0, 1]
    fig = viz.per_conformer_errors(rows, sort_by="energy_error_mev", selected=2)
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == [3.0, 1.0, 0.1]
    colors = [p.get_facecolor() for p in ax.patches]
    assert colors[1] != colors[0]  # selected highlighted
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "0"]
    empty = viz.per_conformer_errors([])
    assert "no evaluation" in empty.axes[0].texts[0].get_text()


def test_orbital_energy_comparison():
    ref = np.array([-19.0, -1.0, -0.5, -0.4, -0.3, 0.2, 0.3])
    fig = viz.orbital_energy_comparison(ref + 1e-4, ref, 5)
    assert "occupied MAE 100.0 uHa" in fig.axes[1].get_title()


# ----------------------------------------------------------------------------- 3Dmol.js source
def _view_html(**kw):
    import py3Dmol  # noqa: F401

    v = threedmol.new_view(200, 150)
    v.addModel("1\n\nH 0 0 0\n", "xyz")
    return threedmol.view_html(v, **kw)


def test_default_source_is_pyscf_cdn():
    src = threedmol.get_3dmol_js()
    assert src["kind"] == "url" and "cdn.jsdelivr.net/npm/3dmol@" in src["url"]
    html = _view_html(fallback_png=b"\x89PNG fake")
    assert src["url"] in html
    assert "qptfallback_" in html and "data:image/png;base64," in html
    # the fallback is removed once the library has loaded
    assert html.index("$3Dmolpromise.then(function() {") < html.index(".remove();")


def test_url_source(monkeypatch):
    monkeypatch.setenv(threedmol.ENV_VAR, "/files/3Dmol-min.js")
    src = threedmol.get_3dmol_js()
    assert src == dict(kind="url", url="/files/3Dmol-min.js", path=None, origin="$QPT_NB_3DMOL_JS")
    assert "loadScriptAsync('/files/3Dmol-min.js')" in _view_html()
    threedmol.set_3dmol_js("https://example.org/3Dmol.js")  # setting beats env
    assert "https://example.org/3Dmol.js" in _view_html()


def test_inline_local_file_once_per_session(tmp_path):
    lib = tmp_path / "3Dmol-min.js"
    lib.write_text("window.$3Dmol = {marker: '</script>'};")
    threedmol.set_3dmol_js(str(lib))
    assert threedmol.get_3dmol_js()["kind"] == "inline"
    first = _view_html()
    assert "URL.createObjectURL(new Blob([" in first
    assert "marker" in first and "<\\/script>" in first and "'</script>'" not in first
    assert threedmol.default_3dmol_url() not in first.split("URL.createObjectURL")[1][:50]
    second = _view_html()
    assert "marker" not in second  # page already has the library
    assert "marker" in _view_html(inline=True)  # save_html always embeds it
    # the blob payload is a valid JS string literal
    payload = first.split("new Blob([", 1)[1].split("], {type:", 1)[0]
    assert json.loads(payload.replace("<\\/", "</")).startswith("window.$3Dmol")


def test_bad_source_is_a_clear_error(monkeypatch):
    with pytest.raises(ValueError, match="neither an existing file nor a URL"):
        threedmol.set_3dmol_js("no/such/3Dmol.js")
    monkeypatch.setenv(threedmol.ENV_VAR, "no/such/file.js")
    with pytest.warns(RuntimeWarning, match="CDN"):
        assert threedmol.get_3dmol_js()["origin"] == "default"


def test_published_table_marks_published_rows():
    from qpt_nb.viz import PUBLISHED_URACIL, comparison_html, comparison_table

    ours = {
        "label-free": dict(
            hamiltonian_mae_uha=1500.0,
            mo_energy_mae_occ_uha=900.0,
            psi_occ_percent=99.95,
            energy_mae_mev=3.2,
            gap_mae_mev=12.5,
        )
    }
    text = comparison_table(ours, basis="sto-3g")
    lines = text.splitlines()
    assert "this run (uracil, sto-3g)" in lines[2]
    assert sum("published, def2-SVP" in l for l in lines) == len(PUBLISHED_URACIL)
    assert "227.8" in text and "0.524" in text and "99.950" in text
    # HOMO/LUMO/gap columns: ours where measured, '-' for the published rows (none reports them)
    assert "gap MAE (meV)" in lines[0] and lines[2].rstrip().endswith("12.5")
    assert all(l.rstrip().endswith("-") for l in lines if "published, def2-SVP" in l)
    html = comparison_html(ours, basis="sto-3g")
    assert html.count("font-style:italic") == len(PUBLISHED_URACIL) and "published numbers" in html


def test_wall_clock_and_distribution_figures():
    h = [dict(step=i, loss=-1.0, wall_s=float(i), test_energy_mae_mev=100.0 / i) for i in range(1, 6)]
    fig = viz.wall_clock_comparison({"free": h, "labels": h}, offsets={"labels": 50.0})
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    free, labels = ax.lines[0], [l for l in ax.lines if l.get_label() == "labels"][0]
    assert any("labelling" in p.get_label() for p in ax.patches)
    np.testing.assert_allclose(labels.get_xdata(), free.get_xdata() + 50.0)
    assert ax.get_legend() is not None and not fig.legends
    many = viz.wall_clock_comparison({f"r{i}": h for i in range(5)}, offsets={"r0": 50.0, "r1": 60.0})
    assert len(many.legends) == 1 and many.axes[0].get_legend() is None  # one shared legend
    assert len(many.legends[0].get_texts()) == 7
    rows = [
        dict(index=i, energy_error_mev=(-1) ** i * 0.5 * (i + 1), hamiltonian_mae_uha=10.0 * (i + 1))
        for i in range(8)
    ]
    fig = viz.error_distribution({"a": rows, "b": rows[:4]})
    assert len(fig.axes) == 2 and fig.axes[0].get_xscale() == "log"
