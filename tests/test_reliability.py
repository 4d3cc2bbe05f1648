"""Failure modes a user meets: memory estimates before the precompute, argument checks,
unreadable xyz files, corrupted Hessian caches and explorer arguments (water/STO-3G)."""

import hashlib
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qpt_nb  # noqa: F401  (enables x64)
from qpt_nb.dft import memory as T
from qpt_nb.dft import tensors as tensors_module
from qpt_nb.dft.kohn_sham import energy, energy_and_fock, energy_components, fock
from qpt_nb.dft.memory import InsufficientMemoryError, check_memory, estimate_memory, format_memory
from qpt_nb.dft.molecule import Molecule, as_molecule, read_xyz_frames
from qpt_nb.dft.scf import scf, scf_fixed, scf_loop
from qpt_nb.dft.tensors import dft_tensors
from qpt_nb.fileio import ChecksumError, checksum_path, load_npy_checksummed, save_npy_checksummed


@pytest.fixture(scope="module")
def water():
    return Molecule.builtin("water")


@pytest.fixture(scope="module")
def t_water(water):
    return dft_tensors(water, "sto-3g", grid_level=0)


def carbon_chain(n=200):
    """A linear C_n chain, 1.3 Angstrom apart (closed shell: 6 n electrons)."""
    return Molecule.from_arrays(
        ["C"] * n, np.c_[np.arange(n) * 1.3, np.zeros(n), np.zeros(n)], name=f"C{n} chain"
    )


# ============================================================================ 1. memory
@pytest.mark.parametrize(
    "basis,level,xc,eri",
    [
        ("sto-3g", 1, None, "auto"),  # GGA: AO values and gradients, dense ERIs
        ("sto-3g", 0, "lda,vwn", "auto"),  # LDA: AO values only
        ("sto-3g", 1, "hf", "dense"),  # HF: no grid (one padded block)
        ("6-31g", 0, "pbe", "df"),  # density fitting: P N^2
    ],
)
def test_estimate_memory_matches_the_tensors(water, basis, level, xc, eri):
    est = estimate_memory(water, basis, grid_level=level, xc=xc, eri=eri)
    t = dft_tensors(water, basis, grid_level=level, xc=xc, eri=eri)
    assert est["n_ao"] == t.n_ao and est["n_grid"] == t.n_grid and est["eri_kind"] == t.eri_kind
    assert est["ao_bytes"] == t.ao.nbytes
    assert est["eri_bytes"] == t.eri.nbytes
    assert est["ao_derivatives"] == (t.ao.shape[0] == 4)
    assert abs(est["per_geometry_bytes"] - t.nbytes()) <= 64  # e_nuc and the like
    assert est["per_batch_bytes"] == est["per_geometry_bytes"]
    assert est["total_bytes"] == est["per_batch_bytes"] + est["precompute_bytes"]
    if eri == "df":
        assert est["n_aux"] == t.eri.shape[0]


def test_estimate_memory_batch_and_arguments(water):
    one = estimate_memory(water, "sto-3g", grid_level=1)
    five = estimate_memory(water, "sto-3g", grid_level=1, batch=5)
    assert five["per_batch_bytes"] == 5 * one["per_geometry_bytes"]
    assert five["total_bytes"] == 5 * one["per_geometry_bytes"] + one["precompute_bytes"]
    assert estimate_memory("water", "sto-3g", grid_level=1)["n_grid"] == one["n_grid"]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch must be (an integer )?>= 1"):
            estimate_memory(water, "sto-3g", grid_level=1, batch=bad)
    with pytest.raises(ValueError, match="grid_level must be in 0..9"):
        estimate_memory(water, "sto-3g", grid_level=10)
    with pytest.raises(ValueError, match="Unknown eri"):
        estimate_memory(water, "sto-3g", grid_level=1, eri="full")


def test_format_memory_is_one_line(water):
    line = format_memory(estimate_memory(water, "sto-3g", grid_level=1))
    assert "\n" not in line
    assert line.startswith("water / sto-3g / grid level 1: 7 AOs")
    assert "grid points" in line and "dense ERIs" in line and "per geometry" in line


def test_available_memory_reads_the_machine():
    avail = T.available_memory()
    assert isinstance(avail, int) and avail > 0
    with open("/proc/meminfo") as fh:
        total = next(int(l.split()[1]) * 1024 for l in fh if l.startswith("MemTotal:"))
    assert avail <= total


def test_check_memory_message_says_what_to_change(water):
    est = estimate_memory(water, "sto-3g", grid_level=3, batch=1000)
    assert check_memory(est, available=est["total_bytes"]) is est  # fits exactly
    with pytest.raises(InsufficientMemoryError) as info:
        check_memory(est, available=200 * 2**20)
    exc = info.value
    assert isinstance(exc, MemoryError) and isinstance(exc, ValueError)
    assert exc.estimate is est and exc.available == 200 * 2**20
    msg = str(exc)
    assert "water / sto-3g / grid level 3" in msg and "needs about" in msg
    assert "200.0 MiB is available" in msg
    assert "1000 geometries held at once" in msg
    assert "smaller grid level" in msg and "a smaller batch (batch=" in msg
    k = int(msg.split("a smaller batch (batch=")[1].split()[0])
    assert (
        est["precompute_bytes"] + k * est["per_geometry_bytes"]
        <= 200 * 2**20
        < est["precompute_bytes"] + (k + 1) * est["per_geometry_bytes"]
    )
    # dense ERIs that dominate: density fitting is suggested with its size
    big = estimate_memory(Molecule.builtin("benzene"), "def2-svp", grid_level=0, eri="dense")
    with pytest.raises(InsufficientMemoryError, match=r"eri='df' \(density fitting: "):
        check_memory(big, available=big["eri_bytes"] // 2)


def test_check_memory_unknown_availability_is_no_check(water, monkeypatch):
    monkeypatch.setattr(T, "available_memory", lambda: None)
    est = estimate_memory(water, "sto-3g", grid_level=1, batch=10**9)
    assert check_memory(est) is est


def test_dft_tensors_checks_before_any_integral(water, monkeypatch):
    monkeypatch.setattr(T, "available_memory", lambda: 2**20)  # 1 MiB

    def no_integrals(*a, **k):
        raise AssertionError("ERIs computed before the memory check")

    monkeypatch.setattr(tensors_module, "dense_eri", no_integrals)
    with pytest.raises(InsufficientMemoryError, match="only 1.0 MiB is available"):
        dft_tensors(water, "sto-3g", grid_level=1)
    monkeypatch.undo()
    monkeypatch.setattr(T, "available_memory", lambda: 2**20)
    t = dft_tensors(water, "sto-3g", grid_level=1, memory_check=False)  # opt-out
    assert t.n_ao == 7


def test_carbon_chain_is_refused_in_seconds(monkeypatch):
    chain = carbon_chain(200)
    est = estimate_memory(chain, "def2-svp", grid_level=3, xc="b3lyp5")
    assert est["eri_kind"] == "df" and est["n_ao"] == 2800 and est["total_bytes"] > 2**40
    if est["total_bytes"] <= T.available_memory():  # a 1 TiB+ machine
        monkeypatch.setattr(T, "available_memory", lambda: 64 * 2**30)
    for call in (
        lambda: dft_tensors(chain, "def2-svp", grid_level=3),
        lambda: qpt_nb.scf(chain, "def2-svp", xc="b3lyp5", grid_level=3),
    ):
        t0 = time.perf_counter()
        with pytest.raises(InsufficientMemoryError) as info:
            call()
        assert time.perf_counter() - t0 < 10
        msg = str(info.value)
        assert "C200 chain / def2-svp / grid level 3: it needs about" in msg
        assert "AO values and gradients on" in msg and "DF tensors (P=" in msg
        assert "is available" in msg and "grid_level=" in msg


# ============================================================================ 2. API checks
def _no_precompute(monkeypatch):
    import qpt_nb.dft.scf as S

    def fail(*a, **k):
        raise AssertionError("precompute started before the arguments were checked")

    monkeypatch.setattr(S, "dft_tensors", fail)


@pytest.mark.parametrize(
    "kw,exc,match",
    [
        (dict(max_cycle=0), ValueError, r"max_cycle must be >= 1 \(the number of Fock builds"),
        (dict(max_cycle=-3), ValueError, "max_cycle must be >= 1"),
        (dict(max_cycle=2.5), TypeError, "max_cycle must be an integer"),
        (dict(max_cycle=True), TypeError, "max_cycle must be an integer"),
        (dict(conv_tol=-1e-8), ValueError, "conv_tol must be a positive, finite tolerance"),
        (dict(conv_tol=float("nan")), ValueError, "conv_tol must be a positive, finite"),
        (dict(conv_tol=0.0), ValueError, "conv_tol must be a positive"),
        (dict(conv_tol=float("inf")), ValueError, "conv_tol must be a positive, finite"),
        (dict(conv_tol="1e-8"), TypeError, "conv_tol must be a positive number"),
        (dict(conv_tol_grad=float("nan")), ValueError, "conv_tol_grad must be a positive"),
        (dict(diis_space=-1), ValueError, "diis_space must be >= 0"),
        (dict(callback="print"), TypeError, "callback must be callable"),
    ],
)
def test_scf_rejects_bad_arguments_before_the_precompute(water, monkeypatch, kw, exc, match):
    _no_precompute(monkeypatch)
    with pytest.raises(exc, match=match):
        scf(water, "sto-3g", xc="pbe", grid_level=0, **kw)


def test_scf_loop_rejects_bad_arguments(t_water):
    with pytest.raises(ValueError, match="max_cycle must be >= 1"):
        scf_loop(t_water, "pbe", max_cycle=0)
    with pytest.raises(ValueError, match="conv_tol must be a positive, finite"):
        scf_loop(t_water, "pbe", conv_tol=float("nan"))
    with pytest.raises(TypeError, match="needs the DFTTensors"):
        scf_loop(Molecule.builtin("water"), "pbe")
    with pytest.raises(ValueError, match=r"dm0 must be an \(7, 7\) matrix"):
        scf_loop(t_water, "pbe", dm0=np.eye(6))


def test_scf_molecule_types(water, monkeypatch):
    _no_precompute(monkeypatch)
    with pytest.raises(ValueError, match="'nosuch' is not a built-in molecule.*ammonia, benzene"):
        scf("nosuch", "sto-3g", xc="pbe", grid_level=0)
    for bad in (42, None, ["O", "H", "H"]):
        with pytest.raises(TypeError, match="must be a qpt_nb.Molecule or the name of a built-in molecule"):
            scf(bad, "sto-3g", xc="pbe", grid_level=0)
    with pytest.raises(TypeError, match="Molecule.from_xyz"):
        dft_tensors(3.0, "sto-3g", grid_level=0)


def test_as_molecule(water):
    assert as_molecule(water) is water
    assert as_molecule("water") == water and as_molecule(" H2O ") == water
    with pytest.raises(ValueError, match="available: alanine_dipeptide, allyl, ammonia"):
        as_molecule("nosuch")
    with pytest.raises(TypeError, match=r"got int"):
        as_molecule(1)


def test_scf_accepts_a_builtin_name(water):
    by_name = scf("water", "sto-3g", xc="lda,vwn", grid_level=0, conv_tol=1e-9)
    by_mol = scf(water, "sto-3g", xc="lda,vwn", grid_level=0, conv_tol=1e-9)
    assert by_name.converged and abs(by_name.energy - by_mol.energy) < 1e-12


def test_energy_checks_the_density_shape(t_water):
    for bad in (jnp.zeros((6, 6)), jnp.zeros((7,)), jnp.zeros((2, 7, 7)), np.zeros((7, 8))):
        for fn in (energy, energy_and_fock, fock, energy_components):
            with pytest.raises(
                ValueError,
                match=r"density must be an \(7, 7\) matrix for these "
                r"tensors \(7 AOs\), got shape",
            ):
                fn(bad, t_water, "pbe")
    with pytest.raises(ValueError, match=r"\(7, 7\) matrix"):  # also under jit
        jax.jit(energy, static_argnums=2)(jnp.zeros((6, 6)), t_water, "pbe")
    with pytest.raises(TypeError, match="t must be the DFTTensors"):
        energy(t_water.dm0, {"overlap": t_water.overlap}, "pbe")


def test_energy_rejects_an_asymmetric_density(t_water):
    d = np.asarray(t_water.dm0)
    e_sym = float(energy(jnp.asarray(d), t_water, "b3lyp5"))
    asym = np.triu(d) * 2 - np.diag(np.diag(d))  # same upper triangle, lower zero
    for fn in (energy, energy_and_fock):
        with pytest.raises(ValueError, match=r"density is not symmetric \(max \|D - D\^T\| = "):
            fn(jnp.asarray(asym), t_water, "b3lyp5")
    with pytest.raises(ValueError, match="not symmetric"):
        energy(asym, t_water, "b3lyp5")  # NumPy input too
    # round-off asymmetry is fine, and the value is unchanged
    tiny = d + 1e-12 * np.triu(np.ones_like(d), 1)
    assert abs(float(energy(jnp.asarray(tiny), t_water, "b3lyp5")) - e_sym) < 1e-9
    # under jit / grad the value is not inspected (tracers), shapes still are
    e_jit = float(jax.jit(energy, static_argnums=2)(jnp.asarray(d), t_water, "b3lyp5"))
    assert abs(e_jit - e_sym) < 1e-10
    g = jax.grad(energy)(jnp.asarray(d), t_water, "b3lyp5")
    assert g.shape == d.shape


def test_scf_fixed_argument_types(t_water):
    for bad in (2.5, "3", True, None, jnp.array(2.0)):
        with pytest.raises(TypeError, match="n_iter must be an integer"):
            scf_fixed(t_water, "hf", n_iter=bad)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="n_iter must be >= 1"):
            scf_fixed(t_water, "hf", n_iter=bad)
    with pytest.raises(TypeError, match="diis_space must be an integer"):
        scf_fixed(t_water, "hf", n_iter=2, diis_space=1.5)
    with pytest.raises(ValueError, match=r"dm0 must be an \(7, 7\) matrix"):
        scf_fixed(t_water, "hf", n_iter=2, dm0=np.eye(3))
    with pytest.raises(ValueError, match="dm0 is not symmetric"):
        scf_fixed(t_water, "hf", n_iter=2, dm0=np.triu(np.ones((7, 7))))
    a = scf_fixed(t_water, "hf", n_iter=np.int64(2), diis_space=0)
    b = scf_fixed(t_water, "hf", n_iter=2, diis_space=0)
    assert float(a.energy) == float(b.energy)


# ============================================================================ 3. molecule input
BINARY = bytes([0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) + bytes(64)


def test_binary_file_given_as_xyz(tmp_path):
    path = tmp_path / "model.xyz"
    path.write_bytes(BINARY)
    for arg in (path, str(path)):
        with pytest.raises(
            ValueError,
            match=r"model\.xyz' is not a text xyz file: byte 0xd0 "
            r"at offset 0 is not UTF-8 text",
        ):
            Molecule.from_xyz(arg)
        with pytest.raises(ValueError, match="is not a text xyz file"):
            read_xyz_frames(arg)
    utf16 = tmp_path / "utf16.xyz"
    utf16.write_bytes(Molecule.builtin("water").to_xyz().encode("utf-16-le"))
    with pytest.raises(ValueError, match=r"utf16\.xyz' is not a text xyz file: it contains NUL"):
        Molecule.from_xyz(utf16)


def test_utf8_bom_xyz_file_is_read(tmp_path):
    path = tmp_path / "bom.xyz"
    water = Molecule.builtin("water")
    path.write_bytes(b"\xef\xbb\xbf" + water.to_xyz().encode())
    assert np.allclose(Molecule.from_xyz(path).coords_angstrom, water.coords_angstrom)


def test_odd_electron_message_suggests_a_charge():
    xyz = Molecule.builtin("water").coords_angstrom
    with pytest.raises(ValueError) as info:
        Molecule.from_arrays(["O", "H", "H"], xyz, charge=1)
    msg = str(info.value)
    assert msg.startswith(
        "odd number of electrons (9) for H2O (sum Z = 10) with charge=1 and "
        "spin=0: a doublet radical is spin=1 (unrestricted Kohn-Sham), or use charge=2 or "
        "charge=0 for a closed shell"
    )
    with pytest.raises(ValueError, match="or use charge=-1 for a closed shell"):
        Molecule.from_xyz("H 0 0 0")  # charge=+1 would leave no electron


def test_restricted_functions_refuse_open_shell_tensors():
    t = dft_tensors(Molecule.from_xyz("H 0 0 0", spin=1), "sto-3g", grid_level=0)
    assert (t.n_occ, t.spin) == (0, 1)
    with pytest.raises(ValueError, match=r"open-shell molecule \(spin=1\).*qpt_nb.dft.uks"):
        qpt_nb.energy(np.zeros((1, 1)), t, "lda,vwn")


# ============================================================================ 4. Hessian cache
def test_checksummed_npy_round_trip(tmp_path):
    a = np.arange(12.0).reshape(3, 4)
    path = tmp_path / "a.npy"
    digest = save_npy_checksummed(path, a)
    assert checksum_path(path).read_text() == f"{digest}  a.npy\n"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    back, verified = load_npy_checksummed(path)
    assert verified and np.array_equal(back, a)
    checksum_path(path).unlink()
    assert load_npy_checksummed(path)[1] is False
    with pytest.raises(ChecksumError, match="no checksum file a.npy.sha256"):
        load_npy_checksummed(path, require_checksum=True)


@pytest.fixture(scope="module")
def water_rhf_hessian(water):
    from qpt_nb.learn import conformers as C

    return C._hessian_pyscf(water)


@pytest.fixture
def hessian_cache(tmp_path, monkeypatch, water_rhf_hessian):
    """A private cache; the RHF Hessian is 'computed' from the fixture and counted."""
    from qpt_nb.learn import conformers as C

    monkeypatch.setenv("QPT_NB_CACHE", str(tmp_path / "cache"))
    C._HESSIAN_MEMO.clear()
    calls = []

    def fake(mol):
        calls.append(mol)
        return water_rhf_hessian.copy()

    monkeypatch.setattr(C, "_hessian_pyscf", fake)
    yield C, tmp_path / "cache" / "hessians", calls
    C._HESSIAN_MEMO.clear()


def _compute(C, water):
    C._HESSIAN_MEMO.clear()
    return C.compute_hessian(water, "rhf/sto-3g")


def test_hessian_cache_writes_a_checksum(water, hessian_cache, water_rhf_hessian):
    C, folder, calls = hessian_cache
    h = _compute(C, water)
    (path,) = folder.glob("*.npy")
    side = checksum_path(path)
    assert side.read_text().split() == [hashlib.sha256(path.read_bytes()).hexdigest(), path.name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_compute(C, water), h)  # from disk, silently
    assert len(calls) == 1


def _corrupt_and_expect(C, water, path, calls, reason, expected):
    with pytest.warns(RuntimeWarning, match=f"Hessian cache file {path} is invalid \\({reason}"):
        h = _compute(C, water)
    np.testing.assert_array_equal(h, expected)
    assert len(calls) == 2  # recomputed
    back, verified = load_npy_checksummed(path)  # and rewritten
    assert verified and np.array_equal(back, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _compute(C, water)
    assert len(calls) == 2


def test_hessian_cache_flipped_bit_is_detected(water, hessian_cache, water_rhf_hessian):
    C, folder, calls = hessian_cache
    _compute(C, water)
    (path,) = folder.glob("*.npy")
    data = bytearray(path.read_bytes())
    data[-8 * 40 + 3] ^= 0x01  # one bit of the 41st-last entry
    path.write_bytes(bytes(data))
    _corrupt_and_expect(C, water, path, calls, "SHA-256 mismatch", water_rhf_hessian)


@pytest.mark.parametrize(
    "bad,reason",
    [
        (np.zeros((4, 4)), r"shape \(4, 4\), expected \(9, 9\)"),
        ("nan", "1 non-finite entries"),
        ("asym", "not symmetric"),
        (np.zeros(9, dtype=np.int64), r"shape \(9,\)"),
    ],
)
def test_hessian_cache_bad_content_is_recomputed(water, hessian_cache, water_rhf_hessian, bad, reason):
    C, folder, calls = hessian_cache
    _compute(C, water)
    (path,) = folder.glob("*.npy")
    if isinstance(bad, str):
        h = water_rhf_hessian.copy()
        if bad == "nan":
            h[2, 3] = np.nan
        else:
            h[2, 3] += 1e-3
        bad = h
    save_npy_checksummed(path, bad)  # a valid checksum of a bad array
    _corrupt_and_expect(C, water, path, calls, reason, water_rhf_hessian)


def test_hessian_cache_truncated_file(water, hessian_cache, water_rhf_hessian):
    C, folder, calls = hessian_cache
    _compute(C, water)
    (path,) = folder.glob("*.npy")
    path.write_bytes(path.read_bytes()[:100])
    checksum_path(path).unlink()  # as if written by an old version
    _corrupt_and_expect(C, water, path, calls, "not a readable .npy array", water_rhf_hessian)


def test_hessian_cache_old_format_is_still_read(water, hessian_cache, water_rhf_hessian):
    C, folder, calls = hessian_cache
    _compute(C, water)
    (path,) = folder.glob("*.npy")
    checksum_path(path).unlink()
    old = water_rhf_hessian * 1.0
    old[0, 0] += 1e-6  # distinguishable from a recompute
    np.save(path, old)  # the old writer: a bare .npy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_compute(C, water), old)
    assert len(calls) == 1
    assert load_npy_checksummed(path)[1] is True  # its checksum was added
    np.save(path, np.full((9, 9), np.nan))  # an old file with NaN: recomputed
    checksum_path(path).unlink()
    _corrupt_and_expect(C, water, path, calls, "81 non-finite entries", water_rhf_hessian)


# ============================================================================ 5. explorer
@pytest.fixture
def explorer_cls():
    pytest.importorskip("ipywidgets")
    from qpt_nb.widgets.explorer import MoleculeExplorer

    return MoleculeExplorer


def test_explorer_rejects_bad_grid_level(explorer_cls):
    for bad in (99, -1, 6, 2.5, "1", True):
        with pytest.raises(
            ValueError,
            match=r"grid_level must be an integer 0\.\.5 \(the "
            r"explorer's grid levels\), got",
        ):
            explorer_cls("water", grid_level=bad)
    assert explorer_cls("water", grid_level=5).grid_w.value == 5


def test_explorer_rejects_unknown_molecule(explorer_cls):
    with pytest.raises(
        ValueError,
        match="unknown molecule 'nosuch': the built-in molecules are alanine_dipeptide, allyl, ammonia, benzene, .*water",
    ):
        explorer_cls("nosuch")
    with pytest.raises(TypeError, match="molecule must be the name of a built-in molecule"):
        explorer_cls(42)
    ex = explorer_cls("H2O")  # an alias: the water entry
    assert ex.state.molecule == "water" and ex.molecule_w.value == "water"


def test_explorer_rejects_other_bad_arguments(explorer_cls):
    with pytest.raises(ValueError, match="Unsupported XC functional 'm06'"):
        explorer_cls("water", xc="m06")
    with pytest.raises(ValueError, match="unknown basis 'no-such-basis'"):
        explorer_cls("water", basis="no-such-basis")
    with pytest.raises(ValueError, match="view_mode must be '3D' or 'slice'"):
        explorer_cls("water", view_mode="2D")
    with pytest.raises(ValueError, match="orbital_n must be >= 2"):
        explorer_cls("water", orbital_n=0)


def test_explorer_keeps_a_molecules_charge(explorer_cls):
    xyz = Molecule.builtin("water").coords_angstrom
    ex = explorer_cls(Molecule.from_arrays(["O", "H", "H"], xyz, charge=2))
    assert ex.molecule_w.value == "(paste xyz)" and ex.charge_w.value == 2
    assert ex.state.charge == 2


def test_explorer_run_errors_are_still_messages(explorer_cls, monkeypatch):
    ex = explorer_cls("water", grid_level=0, with_pyscf=False)
    monkeypatch.setattr(T, "available_memory", lambda: 2**10)
    ex.run()  # must not raise
    assert ex.state.status == "error" and "not enough memory" in ex.state.error
    assert "Could not run" in ex.status_w.value
