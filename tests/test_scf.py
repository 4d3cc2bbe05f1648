"""Energies, Fock matrices and SCF drivers against PySCF (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pyscf import dft

import qpt_nb  # noqa: F401  (enables x64)
from qpt_nb.analysis.compare import compare_with_pyscf
from qpt_nb.dft.kohn_sham import energy, energy_and_fock, energy_components
from qpt_nb.dft.molecule import Molecule
from qpt_nb.dft.reference import pyscf_scf
from qpt_nb.dft.scf import scf, scf_fixed, scf_loop
from qpt_nb.dft.tensors import dft_tensors

FUNCTIONALS = ["hf", "lda,vwn", "pbe", "b3lyp5", "b3lyp"]


def pyscf_rks(mol, basis, xc, grid_level, conv_tol=1e-11, density_fit=False):
    mf, _ = pyscf_scf(
        mol, basis, xc=xc, grid_level=grid_level, conv_tol=conv_tol, eri="df" if density_fit else "dense"
    )
    assert mf.converged
    return mf


def check_against_pyscf(mol, basis, xc, grid_level, eri="auto"):
    res = scf(mol, basis, xc=xc, grid_level=grid_level, conv_tol=1e-10, eri=eri)
    assert res.converged
    df = res.tensors.eri_kind == "df"
    mf = pyscf_rks(mol, basis, xc, grid_level, density_fit=df)
    # Same grid, integrals (and auxiliary basis under DF) and conv_tol 1e-10 on both sides.
    assert abs(res.energy - mf.e_tot) < 1e-8, (res.energy, mf.e_tot)
    assert np.max(np.abs(res.mo_energy - mf.mo_energy)) < 1e-5
    # The Fock matrix is dE/dD and equals PySCF's for the same density.
    np.testing.assert_allclose(res.fock, mf.get_fock(dm=res.density), atol=1e-9)
    return res, mf


@pytest.mark.parametrize("xc", FUNCTIONALS)
def test_water_sto3g_all_functionals(xc):
    check_against_pyscf(Molecule.builtin("water"), "sto-3g", xc, 3)


@pytest.mark.parametrize(
    "name,basis,xc,level",
    [
        ("ammonia", "6-31g*", "b3lyp", 2),
        ("methane", "def2-svp", "pbe", 2),
        ("water", "def2-svp", "b3lyp5", 3),
    ],
)
def test_small_molecules_bases(name, basis, xc, level):
    check_against_pyscf(Molecule.builtin(name), basis, xc, level)


def test_density_fitting_matches_pyscf_density_fit():
    mol = Molecule.builtin("water")
    res, mf = check_against_pyscf(mol, "def2-svp", "b3lyp5", 2, eri="df")
    assert res.tensors.eri_kind == "df"
    exact = scf(mol, "def2-svp", xc="b3lyp5", grid_level=2, eri="dense")
    assert 1e-7 < abs(exact.energy - res.energy) < 1e-3  # fitting error is real but small


@pytest.mark.slow
@pytest.mark.parametrize("name", ["water", "ammonia", "methane", "ethanol", "uracil"])
@pytest.mark.parametrize("basis", ["sto-3g", "6-31g*", "def2-svp"])
@pytest.mark.parametrize("xc", FUNCTIONALS)
def test_full_matrix(name, basis, xc):
    check_against_pyscf(Molecule.builtin(name), basis, xc, 3)


def test_energy_components_match_pyscf():
    mol = Molecule.builtin("water")
    t = dft_tensors(mol, "6-31g*", grid_level=2)
    pm = mol.to_pyscf("6-31g*")
    mf = dft.RKS(pm, xc="b3lyp5")
    mf.grids.level = 2
    d = np.asarray(t.dm0)
    parts = {k: float(v) for k, v in energy_components(jnp.asarray(d), t, "b3lyp5").items()}
    veff = mf.get_veff(dm=d)
    assert abs(parts["one_electron"] - np.einsum("ij,ji", d, mf.get_hcore())) < 1e-10
    assert abs(parts["coulomb"] - veff.ecoul) < 1e-9
    assert abs(parts["xc"] + parts["exact_exchange"] - veff.exc) < 1e-9
    assert abs(parts["nuclear"] - pm.energy_nuc()) < 1e-12
    assert abs(parts["total"] - mf.energy_tot(dm=d)) < 1e-9


def test_fixed_driver_agrees_with_loop():
    mol = Molecule.builtin("water")
    t = dft_tensors(mol, "6-31g*", grid_level=1)
    loop = scf_loop(t, "pbe", conv_tol=1e-12)
    fixed = scf_fixed(t, "pbe", n_iter=25)
    assert abs(float(fixed.energy) - loop.energy) < 1e-8
    np.testing.assert_allclose(np.asarray(fixed.mo_energy), loop.mo_energy, atol=1e-6)
    e = np.asarray(fixed.energies)
    assert e[0] > e[-1]


def test_fixed_driver_gradient_matches_finite_differences():
    """d E(after a fixed SCF from D0 + eps V) / d eps against central differences."""
    mol = Molecule.builtin("water")
    t = dft_tensors(mol, "sto-3g", grid_level=1)
    rng = np.random.default_rng(0)
    v = rng.normal(size=(t.n_ao, t.n_ao))
    v = jnp.asarray(0.01 * (v + v.T))

    def e_of(eps):  # two DIIS-free iterations: the start density still matters
        return scf_fixed(t, "b3lyp5", n_iter=2, dm0=t.dm0 + eps * v, diis_space=0).energy

    g = float(jax.grad(e_of)(0.0))
    assert abs(g) > 1e-4
    h = 1e-4
    fd = float((e_of(h) - e_of(-h)) / (2 * h))
    assert abs(g - fd) <= 1e-5 * abs(fd) + 1e-10, (g, fd)


def test_convergence_is_reported(recwarn):
    mol = Molecule.builtin("water")
    with pytest.warns(RuntimeWarning, match="did not converge"):
        res = scf(mol, "sto-3g", xc="pbe", grid_level=1, max_cycle=2)
    assert not res.converged and res.n_iter == 2


def test_callback_sees_every_iteration():
    seen = []
    res = scf(Molecule.builtin("water"), "sto-3g", xc="lda,vwn", grid_level=1, callback=seen.append)
    assert [s["iteration"] for s in seen] == list(range(1, res.n_iter + 1))
    assert abs(seen[-1]["energy"] - res.energy) < 1e-12


def test_open_shell_cannot_be_forced_restricted():
    mol = Molecule.builtin("water")
    with pytest.raises(ValueError, match="open-shell"):
        scf(
            Molecule.from_arrays(mol.symbols, mol.coords_angstrom, charge=1, spin=1),
            "sto-3g",
            xc="pbe",
            grid_level=1,
            unrestricted=False,
        )


def test_unknown_functional_and_basis():
    mol = Molecule.builtin("water")
    with pytest.raises(ValueError, match="m06"):
        scf(mol, "sto-3g", xc="m06", grid_level=1)
    with pytest.raises(ValueError, match="(?i)basis"):
        scf(mol, "no-such-basis", xc="pbe", grid_level=1)


def _random_rotation(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_rotation_translation_invariance():
    mol = Molecule.builtin("ethanol")
    moved = mol.with_coords(mol.coords_angstrom @ _random_rotation(1).T + np.array([1.3, -0.7, 2.1]))

    def e(m, frame):
        t = dft_tensors(m, "sto-3g", grid_level=2, frame=frame)
        return float(scf_fixed(t, "b3lyp5", n_iter=30).energy)

    # Canonical frame: exactly invariant (the grid moves with the molecule).
    assert abs(e(mol, "canonical") - e(moved, "canonical")) < 1e-8
    # Input frame: translation is exact, rotation changes E only by the grid error.
    shifted = mol.with_coords(mol.coords_angstrom + np.array([0.5, 0.2, -0.3]))
    assert abs(e(mol, "input") - e(shifted, "input")) < 1e-8
    assert abs(e(mol, "input") - e(moved, "input")) < 1e-4


@pytest.mark.parametrize("xc", ["lda,vwn", "b3lyp"])
def test_fock_is_the_derivative_of_the_energy(xc):
    """F = dE/dD: <F, V> against central differences of E(D + eps V)."""
    t = dft_tensors(Molecule.builtin("water"), "6-31g", grid_level=1)
    v = np.random.default_rng(3).normal(size=(t.n_ao, t.n_ao))
    v = jnp.asarray(0.01 * (v + v.T))
    _, f = energy_and_fock(t.dm0, t, xc)
    h = 1e-4
    fd = (energy(t.dm0 + h * v, t, xc) - energy(t.dm0 - h * v, t, xc)) / (2 * h)
    assert abs(float(jnp.sum(f * v)) - float(fd)) < 1e-7 * abs(float(fd)) + 1e-9


@pytest.mark.parametrize("xc,eri", [("hf", "dense"), ("pbe", "df"), ("b3lyp5", "dense")])
def test_explicit_fock_equals_autodiff_gradient(xc, eri):
    from qpt_nb.dft.kohn_sham import fock_autodiff

    t = dft_tensors(Molecule.builtin("water"), "6-31g", grid_level=1, eri=eri)
    d = t.dm0 + 0.01 * jnp.eye(t.n_ao)
    e, f = energy_and_fock(d, t, xc)
    np.testing.assert_allclose(f, fock_autodiff(d, t, xc), atol=1e-11)
    assert abs(float(e) - float(energy(d, t, xc))) < 1e-11


# ----------------------------------------------------------------------------- one DIIS step
@pytest.mark.parametrize("diis_space", [8, 3, 0])
def test_three_loops_follow_the_same_iterates(diis_space):
    """The teaching loop, the lax.scan driver and the device while-loop share the DIIS step
    of qpt_nb.dft.diis: the same energies iteration by iteration, on water / STO-3G (a DIIS
    space smaller than the iteration count exercises the ring buffer's wrap-around)."""
    from qpt_nb.dft.scf_device import scf_device

    t = dft_tensors(Molecule.builtin("water"), "sto-3g", grid_level=1)
    host = scf_loop(t, "b3lyp5", diis_space=diis_space, conv_tol=1e-11)
    device = scf_device(t, "b3lyp5", diis_space=diis_space, conv_tol=1e-11)
    fixed = scf_fixed(t, "b3lyp5", n_iter=host.n_iter - 1, diis_space=diis_space)
    assert host.converged and device.converged and host.n_iter == device.n_iter > 3
    np.testing.assert_allclose(device.energies, host.energies, rtol=0, atol=1e-10)
    # scf_fixed's energies[k] is E[D_k] entering iteration k; its .energy is E[D_{n_iter}],
    # the density the teaching loop's last (converged) iteration evaluated
    np.testing.assert_allclose(np.asarray(fixed.energies), host.energies[:-1], rtol=0, atol=1e-10)
    assert abs(float(fixed.energy) - host.energy) < 1e-10
    assert abs(device.energy - host.energy) < 1e-10
    np.testing.assert_allclose(np.asarray(fixed.density), host.density, atol=1e-8)


def test_diis_step_is_written_once():
    """Only qpt_nb/dft/diis.py computes DIIS weights; the loops call its diis_step."""
    import ast
    from pathlib import Path

    import qpt_nb.dft

    folder = Path(qpt_nb.dft.__file__).parent
    callers = {}
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                callers.setdefault(node.func.id, set()).add(path.name)
    assert callers["diis_coefficients"] == {"diis.py"}
    assert callers["diis_step"] >= {"scf.py", "scf_device.py"}
    assert callers["warn_not_converged"] == {"scf.py", "scf_device.py"}
    assert callers["check_loop_args"] >= {"scf.py", "scf_device.py"}


def test_diis_step_shapes_and_ring_buffer():
    from qpt_nb.dft.diis import diis_coefficients, diis_init, diis_step

    rng = np.random.default_rng(0)
    n, space = 4, 3
    hist = diis_init(n, space)
    assert hist.focks.shape == hist.errors.shape == (space, n, n)
    focks = [jnp.asarray(rng.normal(size=(n, n))) for _ in range(5)]
    errs = [jnp.asarray(rng.normal(size=(n, n))) for _ in range(5)]
    for k in range(5):
        f_ext, hist = diis_step(hist, focks[k], errs[k], k, space=space)
    # after 5 steps the ring holds steps 2, 3, 4 (in slots 2, 0, 1): the extrapolation of
    # a chronological history of the last three
    c = diis_coefficients(jnp.stack(errs[2:]), jnp.ones(3, bool))
    np.testing.assert_allclose(f_ext, jnp.einsum("m,mij->ij", c, jnp.stack(focks[2:])), atol=1e-12)
    assert abs(float(c.sum()) - 1.0) < 1e-12
    f0, _ = diis_step(diis_init(n, 0), focks[0], errs[0], 0, space=0)  # DIIS off: F itself
    np.testing.assert_array_equal(f0, focks[0])


# ----------------------------------------------------------------------------- keyword-only
def test_settings_after_the_basis_are_keyword_only():
    from qpt_nb.dft import reference
    from qpt_nb.dft.memory import estimate_memory

    water = Molecule.builtin("water")
    calls = [
        lambda: scf(water, "sto-3g", "pbe", 1),
        lambda: dft_tensors(water, "sto-3g", 1),
        lambda: estimate_memory(water, "sto-3g", 1),
        lambda: reference.label(water, "sto-3g", "pbe", 1),
        lambda: reference.label_many([water], "sto-3g", "pbe", 1),
        lambda: reference.compute_label(water, "sto-3g", "pbe", 1),
        lambda: reference.cache_key(water, "sto-3g", "pbe", 1),
        lambda: reference.make_rks(water.to_pyscf("sto-3g"), "pbe", 1),
        lambda: reference.pyscf_scf(water, "sto-3g", "pbe", 1),
        lambda: compare_with_pyscf(water, "sto-3g", "pbe", 1),
    ]
    for call in calls:
        with pytest.raises(TypeError, match="positional argument"):
            call()


def test_eri_kind_is_a_deprecated_name_of_eri(tmp_path):
    from qpt_nb.dft import reference

    water = Molecule.builtin("water")
    key = reference.cache_key(water, "sto-3g", xc="pbe", grid_level=0, eri="df")
    with pytest.warns(DeprecationWarning, match="eri_kind"):
        assert reference.cache_key(water, "sto-3g", xc="pbe", grid_level=0, eri_kind="df") == key
    with pytest.warns(DeprecationWarning, match="eri_kind"), pytest.raises(TypeError, match="eri="):
        reference.cache_key(water, "sto-3g", xc="pbe", grid_level=0, eri="dense", eri_kind="df")
    h2 = Molecule.builtin("h2")
    new = reference.label(h2, "sto-3g", xc="lda,vwn", grid_level=0, eri="dense", cache_dir=tmp_path)
    with pytest.warns(DeprecationWarning, match="label_many"):
        (old,) = reference.label_many(
            [h2], "sto-3g", xc="lda,vwn", grid_level=0, eri_kind="dense", cache_dir=tmp_path
        )
    assert old.cached and old.key == new.key and old.energy == new.energy
    assert old.n_iter == old.n_cycles >= 1  # n_cycles: the deprecated name of n_iter


# ----------------------------------------------------------------------------- bad input
def test_non_finite_density_is_refused():
    import qpt_nb as q

    t = dft_tensors(Molecule.builtin("water"), "sto-3g", grid_level=0)
    for bad in (np.nan, np.inf):
        d = np.array(t.dm0)
        d[2, 3] = d[3, 2] = bad
        for fn in (q.energy, q.fock, q.energy_and_fock, q.energy_components):
            with pytest.raises(ValueError, match=r"non-finite entries \(first: \[2, 3\]"):
                fn(d, t, "pbe")
        with pytest.raises(ValueError, match="non-finite"):
            scf_loop(t, "pbe", dm0=d)
    # traced densities are not checked (jit, grad): the same function still compiles
    d = np.array(t.dm0)
    d[0, 0] = np.nan
    assert np.isnan(float(jax.jit(energy, static_argnums=2)(jnp.asarray(d), t, "pbe")))
    g = jax.grad(energy)(t.dm0, t, "pbe")
    assert np.all(np.isfinite(np.asarray(g)))
