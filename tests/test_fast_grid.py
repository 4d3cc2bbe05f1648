"""The fast grid path: float32 grid work, the explicit XC-kernel VJP, occupied-orbital
densities, the device-side SCF loop, and the training-grid settings of TrainConfig."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qpt_nb  # noqa: F401  (float64)
from qpt_nb.dft import kohn_sham as ks
from qpt_nb.dft.scf import scf, scf_loop
from qpt_nb.dft.scf_device import scf_device
from qpt_nb.dft.tensors import dft_tensors, with_precision
from qpt_nb.dft.xc import get_xc


@pytest.fixture(scope="module")
def water():
    return dft_tensors("water", "sto-3g", grid_level=1)


@pytest.fixture(scope="module")
def water_svp():
    return dft_tensors("water", "def2-svp", grid_level=0)


def _autodiff_xc(t, func, d):
    """The XC quadrature written without the custom VJP (plain autodiff of the blocks)."""
    block, _ = ks._grid_blocks(t)
    e, a = 0.0, 0.0
    for start in range(0, t.n_grid, block):
        eb, ab = ks._xc_block(func, *ks._block_slices(t, start, block), d)
        e, a = e + eb, a + ab
    return e, a + a.T


@pytest.mark.parametrize("xc", ["b3lyp5", "pbe", "lda,vwn"])
def test_xc_kernel_vjp_equals_autodiff(water, xc):
    func = get_xc(xc)
    d = water.dm0 * 1.02
    y = jax.random.normal(jax.random.PRNGKey(1), d.shape)

    def loss(fn):
        return lambda d: (lambda ev: 0.7 * ev[0] + jnp.sum(ev[1] * y))(fn(d))

    g_auto = jax.grad(loss(lambda d: _autodiff_xc(water, func, d)))(d)
    g_vjp = jax.jit(jax.grad(loss(lambda d: ks.xc_energy_and_potential(d, water, func))))(d)
    np.testing.assert_allclose(g_vjp, g_auto, atol=1e-12)
    # and a central finite difference along a non-symmetric direction
    x = jax.random.normal(jax.random.PRNGKey(2), d.shape)
    f = loss(lambda d: ks.xc_energy_and_potential(d, water, func))
    fd = (f(d + 1e-5 * x) - f(d - 1e-5 * x)) / 2e-5
    assert abs(float(fd - jnp.sum(g_vjp * x))) < 1e-7


def test_derivative_wrt_tensors_is_refused(water):
    with pytest.raises(NotImplementedError, match="density only"):
        jax.grad(lambda w: ks.energy(water.dm0, dataclasses.replace(water, weights=w)))(water.weights)
    with pytest.raises(NotImplementedError, match="density only"):
        jax.grad(
            lambda w: ks.xc_energy_and_potential(water.dm0, dataclasses.replace(water, weights=w), "pbe")[0]
        )(water.weights)


def test_float32_grid_close_to_float64(water):
    t32 = with_precision(water, "float32")
    assert t32.ao.dtype == jnp.float32 and t32.precision == "float32"
    assert with_precision(water, "float64") is water
    e64, f64 = ks.energy_and_fock(water.dm0, water, "b3lyp5")
    e32, f32 = ks.energy_and_fock(water.dm0, t32, "b3lyp5")
    assert e32.dtype == jnp.float64 and f32.dtype == jnp.float64
    assert abs(float(e32 - e64)) < 1e-5
    assert float(jnp.max(jnp.abs(f32 - f64))) < 1e-5
    # the training gradient through the sandwich
    from qpt_nb.dft.sandwich import sandwich_energy

    w = 0.01 * jax.random.normal(jax.random.PRNGKey(0), water.overlap.shape)
    g = [jax.grad(lambda w: sandwich_energy(w, t, "b3lyp5")[0])(w) for t in (water, t32)]
    assert float(jnp.linalg.norm(g[1] - g[0]) / jnp.linalg.norm(g[0])) < 1e-4


def test_precision_argument_checked():
    with pytest.raises(ValueError, match="precision"):
        dft_tensors("water", "sto-3g", grid_level=0, precision="float16")
    t = dft_tensors("water", "sto-3g", grid_level=0, precision="float32")
    assert t.ao.dtype == jnp.float32


def test_occupied_orbital_density_matches(water_svp):
    t = water_svp
    assert 2 * t.n_occ < t.n_ao  # the orbital path is taken
    res = scf_loop(t, "pbe", conv_tol=1e-9)
    c_occ = jnp.asarray(res.mo_coeff[:, : t.n_occ])
    d = 2.0 * c_occ @ c_occ.T
    e1, f1 = ks.energy_and_fock(d, t, "pbe")
    e2, f2 = ks.energy_and_fock(d, t, "pbe", occ_coeff=c_occ)
    assert abs(float(e1 - e2)) < 1e-11
    np.testing.assert_allclose(f2, f1, atol=1e-11)


@pytest.mark.parametrize("diis_space", [8, 0])
def test_device_loop_agrees_with_teaching_loop(water, diis_space):
    a = scf_loop(water, "b3lyp5", diis_space=diis_space, max_cycle=60)
    b = scf_device(water, "b3lyp5", diis_space=diis_space, max_cycle=60)
    assert a.converged and b.converged and a.n_iter == b.n_iter
    assert abs(a.energy - b.energy) < 1e-10
    np.testing.assert_allclose(b.density, a.density, atol=1e-8)
    np.testing.assert_allclose(b.energies, a.energies, atol=1e-10)


def test_scf_loop_option(water):
    seen = []
    r = scf("water", "sto-3g", xc="b3lyp5", grid_level=1, callback=seen.append)  # a callback: the host loop
    assert len(seen) == r.n_iter
    r2 = scf("water", "sto-3g", xc="b3lyp5", grid_level=1, loop="device")
    assert abs(r.energy - r2.energy) < 1e-10
    with pytest.raises(ValueError, match="loop"):
        scf("water", "sto-3g", loop="gpu")
    with pytest.raises(ValueError, match="host"):
        scf("water", "sto-3g", loop="device", callback=print)


def test_device_loop_reports_non_convergence(water):
    with pytest.warns(RuntimeWarning, match="did not converge"):
        r = scf_device(water, "b3lyp5", max_cycle=2)
    assert not r.converged and r.n_iter == 2


def test_train_config_training_grid():
    from qpt_nb.learn.config import TrainConfig
    from qpt_nb.learn.train import Trainer

    with pytest.raises(ValueError, match="train_grid_level"):
        TrainConfig(train_grid_level=12)
    with pytest.raises(TypeError, match="train_grid_level"):
        TrainConfig(train_grid_level=1.5)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="half")
    cfg = TrainConfig(molecule="water", grid_level=2, train_grid_level=0, precision="float32", warmup_steps=1)
    assert cfg.loss_grid_level == 0 and TrainConfig(grid_level=2).loss_grid_level == 2
    assert TrainConfig.from_json(cfg.to_json()) == cfg
    tr = Trainer(cfg)
    b = tr.make_batch([tr.mol])
    level0 = dft_tensors("water", "sto-3g", grid_level=0)
    assert b.tensors.ao.dtype == jnp.float32
    assert b.tensors.weights.shape[-1] == level0.n_grid
    rec = tr.run(2)
    assert np.isfinite(rec[-1]["loss"])


def test_multihost_flags_checked(capsys):
    from qpt_nb.cli.main import main

    assert main(["train", "--molecule", "water", "--steps", "1", "--coordinator", "localhost:1"]) == 2
    assert "--num-processes" in capsys.readouterr().err
    args = ["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"]
    assert main(["train", "--molecule", "water", "--steps", "1", *args]) == 2
    assert "must be <" in capsys.readouterr().err


def test_eval_ao_is_pyscfs_screened_values_in_chunks(monkeypatch):
    """Chunked, non0tab-screened AO values equal PySCF's unscreened eval_gto to 1e-13
    (screened shells are below PySCF's 1e-15 cutoff), across chunk boundaries."""
    from qpt_nb.dft import tensors as tmod

    pmol = qpt_nb.Molecule.builtin("water").to_pyscf("6-31g")
    coords, _ = tmod.build_grid(pmol, 0)
    monkeypatch.setattr(tmod, "AO_CHUNK_BYTES", 8 * 4 * pmol.nao_nr() * 3 * 56)  # 3 PySCF blocks a chunk
    ref = pmol.eval_gto("GTOval_sph_deriv1", coords)
    got = tmod.eval_ao(pmol, coords, gga=True)
    assert got.shape == ref.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-13)
    lda = tmod.eval_ao(pmol, coords, gga=False, dtype="float32")
    assert lda.shape == (1,) + ref.shape[1:] and lda.dtype == np.float32
    np.testing.assert_allclose(lda[0], ref[0], rtol=1e-6, atol=1e-7)


def test_two_electron_tensors_are_pyscfs_in_aligned_memory():
    """The dense (ij|kl) equals PySCF's unpacked int2e, and both it and the DF tensor start on
    an `ALIGN` boundary (so `to_device` hands them to JAX without a copy)."""
    from qpt_nb.dft import tensors as tmod

    pmol = qpt_nb.Molecule.builtin("water").to_pyscf("6-31g")
    eri = tmod.dense_eri(pmol)
    np.testing.assert_allclose(eri, pmol.intor("int2e"), rtol=0, atol=1e-14)
    b = tmod.df_tensor(pmol)
    assert b.shape[1:] == (pmol.nao_nr(),) * 2
    np.testing.assert_allclose(b, b.transpose(0, 2, 1), rtol=0, atol=0)
    assert eri.ctypes.data % tmod.ALIGN == 0 and b.ctypes.data % tmod.ALIGN == 0


def test_occupied_orbital_df_exchange_matches():
    tdf = dft_tensors("water", "def2-svp", grid_level=0, eri="df")
    assert tdf.eri_kind == "df" and 2 * tdf.n_occ < tdf.n_ao
    res = scf_loop(tdf, "b3lyp5", conv_tol=1e-9)
    c_occ = jnp.asarray(res.mo_coeff[:, : tdf.n_occ])
    d = 2.0 * c_occ @ c_occ.T
    k1 = ks.exchange(d, tdf)
    k2 = ks.exchange(d, tdf, factor=jnp.sqrt(2.0) * c_occ)
    np.testing.assert_allclose(k2, k1, atol=1e-12)
    e1, f1 = ks.energy_and_fock(d, tdf, "b3lyp5")
    e2, f2 = ks.energy_and_fock(d, tdf, "b3lyp5", occ_coeff=c_occ)
    assert abs(float(e1 - e2)) < 1e-11
    np.testing.assert_allclose(f2, f1, atol=1e-11)
    # the gradient still flows through the density (K is linear in D)
    g1 = jax.grad(lambda x: jnp.sum(x * ks.exchange(x, tdf)))(d)
    g2 = jax.grad(lambda x: jnp.sum(x * ks.exchange(x, tdf, factor=jnp.sqrt(2.0) * c_occ)))(d)
    np.testing.assert_allclose(g2, g1, atol=1e-11)


def test_dense_exchange_row_by_row_matches(monkeypatch):
    """Dense K row by row (tensors past `DENSE_K_ROWS_BYTES`, here set to 0) equals the
    einsum: batched over densities (the evaluation's pair of corrections) and over tensors
    too (a monitor chunk) to 1e-13, in its gradient, and in the gradient through the Fock
    matrix (the training loss differentiates F[D] again)."""
    t = dft_tensors("water", "6-31g", grid_level=0, eri="dense")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, t.n_ao, t.n_ao))
    d = jnp.asarray(a + np.swapaxes(a, 1, 2))
    ref = jnp.einsum("ikjl,bkl->bij", t.eri, d)
    stacked = jnp.stack([t.eri, 2.0 * t.eri])
    ref_stacked = jnp.einsum("bikjl,bkl->bij", stacked, d)
    loss = lambda x: jnp.sum(jnp.sin(x) * ks.exchange(x, t))  # noqa: E731
    g_ref = jax.grad(loss)(d[0])

    def through_fock(x):
        return jnp.sum(jnp.cos(x) * ks.energy_and_fock(x, t, "b3lyp5")[1])

    d0 = jnp.asarray(scf_loop(t, "b3lyp5", conv_tol=1e-6).density)
    gf_ref = jax.grad(through_fock)(d0)
    monkeypatch.setattr(ks, "DENSE_K_ROWS_BYTES", 0)
    np.testing.assert_allclose(jax.vmap(lambda x: ks.exchange(x, t))(d), ref, rtol=0, atol=1e-13)
    k_rows = jax.vmap(lambda e, x: ks.exchange(x, dataclasses.replace(t, eri=e)))(stacked, d)
    np.testing.assert_allclose(k_rows, ref_stacked, rtol=0, atol=1e-13)
    np.testing.assert_allclose(jax.jit(jax.grad(loss))(d[0]), g_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(jax.grad(through_fock)(d0), gf_ref, rtol=0, atol=1e-11)


@pytest.mark.parametrize(
    "xc,eri,precision",
    [
        ("b3lyp5", "dense", "float64"),
        ("lda,vwn", "df", "float64"),
        ("hf", "dense", "float64"),
        ("pbe", "df", "float32"),
    ],
)
def test_on_shapes_announces_the_tensors_shapes(xc, eri, precision):
    seen = []
    t = dft_tensors(
        "water", "sto-3g", grid_level=0, eri=eri, xc=xc, precision=precision, on_shapes=seen.append
    )
    assert len(seen) == 1
    got, tree_s = jax.tree_util.tree_flatten(seen[0])
    want, tree_t = jax.tree_util.tree_flatten(t)
    assert tree_s == tree_t  # static fields (n_occ, eri_kind, grid_block, precision) included
    assert [(x.shape, x.dtype) for x in got] == [(x.shape, x.dtype) for x in want]


def test_scf_compiles_its_loop_during_the_precompute():
    from qpt_nb.dft import scf_device as sd

    sd._AHEAD.clear()
    res = scf("water", "sto-3g", xc="b3lyp5", grid_level=1)
    assert len(sd._AHEAD) == 1 and "compile_wait" in res.timings
    ref = scf_loop(res.tensors, "b3lyp5")
    assert abs(res.energy - ref.energy) < 1e-10 and res.n_iter == ref.n_iter
    # a cached loop for other shapes is not used: another molecule takes the jit path
    other = scf(
        "water",
        "6-31g",
        xc="b3lyp5",
        grid_level=1,
        loop="device",
        tensors=dft_tensors("water", "6-31g", grid_level=1),
    )
    assert other.converged and len(sd._AHEAD) == 1
