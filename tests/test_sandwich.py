"""The QPT sandwich and the guarded eigensolver: gradients against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import qpt_nb  # noqa: F401
from qpt_nb.dft.kohn_sham import fock
from qpt_nb.dft.linalg import eigh_guarded, solve_fock
from qpt_nb.dft.molecule import Molecule
from qpt_nb.dft.sandwich import initial_iteration, mix_schedule, refine, sandwich_energy
from qpt_nb.dft.scf import scf_loop
from qpt_nb.dft.tensors import dft_tensors


@pytest.fixture(scope="module")
def water():
    return dft_tensors(Molecule.builtin("water"), "6-31g", grid_level=1)


def test_h_init_is_fock_of_minao(water):
    it = initial_iteration(water, "b3lyp5")
    np.testing.assert_allclose(it.h_init, fock(water.dm0, water, "b3lyp5"), atol=1e-11)


def test_mix_schedule():
    np.testing.assert_allclose(mix_schedule(3), [0.5, 1.0])
    np.testing.assert_allclose(mix_schedule(1), np.zeros(0))


def test_sandwich_gradient_matches_finite_differences(water):
    rng = np.random.default_rng(1)
    v = rng.normal(size=(water.n_ao, water.n_ao))
    v = jnp.asarray(1e-2 * (v + v.T))

    def e_of(eps):
        return sandwich_energy(eps * v, water, "b3lyp5", n_refine=3)[0]

    g = float(jax.grad(e_of)(0.0))
    h = 1e-4
    fd = float((e_of(h) - e_of(-h)) / (2 * h))
    assert abs(g - fd) <= 1e-5 * abs(fd), (g, fd)


def test_sandwich_with_exact_hamiltonian_is_self_consistent(water):
    ref = scf_loop(water, "b3lyp5", conv_tol=1e-12)
    w = jnp.asarray(ref.fock) - initial_iteration(water, "b3lyp5").h_init
    e, d = sandwich_energy(w, water, "b3lyp5")
    assert abs(float(e) - ref.energy) < 1e-9
    # W = 0 is worse, and the energy is variational (above the SCF minimum).
    e0, _ = sandwich_energy(jnp.zeros_like(w), water, "b3lyp5")
    assert float(e0) > ref.energy


def test_eigh_guarded_is_finite_on_degenerate_levels():
    h = jnp.diag(jnp.array([-1.0, -1.0, 0.5, 0.5]))  # degenerate occupied and virtual pairs

    def loss(hh):
        eps, q, p = eigh_guarded(hh, 2)
        return jnp.sum(p * jnp.arange(16.0).reshape(4, 4)) + jnp.sum(eps) + jnp.sum(q**2)

    g = jax.grad(loss)(h)
    assert np.all(np.isfinite(np.asarray(g)))


def test_density_gradient_through_solve_matches_fd(water):
    rng = np.random.default_rng(2)
    v = rng.normal(size=(water.n_ao, water.n_ao))
    v = jnp.asarray(v + v.T)
    h0 = initial_iteration(water, "pbe").h_init
    probe = jnp.asarray(rng.normal(size=(water.n_ao, water.n_ao)))

    def f(eps):
        d = solve_fock(h0 + eps * v, water.orthogonalizer, water.n_occ)[2]
        return jnp.sum(d * probe)

    g = float(jax.grad(f)(0.0))
    fd = float((f(1e-5) - f(-1e-5)) / 2e-5)
    assert abs(g - fd) < 1e-6 * max(1.0, abs(fd))


def test_refine_more_steps_approaches_scf(water):
    ref = scf_loop(water, "pbe", conv_tol=1e-12)
    h = initial_iteration(water, "pbe").h_init
    errs = [abs(float(sandwich_energy(jnp.zeros_like(h), water, "pbe", n)[0]) - ref.energy) for n in (1, 3)]
    assert errs[1] < errs[0]
    d = refine(h, water, "pbe", 3)
    np.testing.assert_allclose(jnp.trace(d @ water.overlap), 2 * water.n_occ, atol=1e-10)
