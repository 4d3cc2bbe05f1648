"""qpt_nb.dft.xc_spin against PySCF 2.14 / libxc 7, spin=1 (values and first derivatives)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pyscf.dft import libxc

import qpt_nb  # noqa: F401  (enables float64 before any array is created)
from qpt_nb.dft import xc, xc_spin

NAMES = ("lda,vwn", "pbe", "b3lyp5", "b3lyp")

# libxc component (PySCF spelling) -> our polarised component fn(rho (2, G), sigma (3, G))
COMPONENTS = {
    "lda_x": lambda r, s: xc_spin.slater_exchange(r),
    "gga_x_b88": xc_spin.b88_exchange,
    "gga_x_pbe": xc_spin.pbe_exchange,
    ",lda_c_vwn": lambda r, s: xc_spin.vwn5_correlation(r),
    ",lda_c_vwn_rpa": lambda r, s: xc_spin.vwn_rpa_correlation(r),
    ",gga_c_lyp": xc_spin.lyp_correlation,
    ",gga_c_pbe": xc_spin.pbe_correlation,
}

# Errors are measured against |ref| + |closed-shell ref at the same total density
# and gradient| (a natural magnitude: LYP vanishes at full polarisation, exchange of
# an empty spin channel is 0), and vrho against the larger of the two spins.
# Tight where the density is not tiny (rho >= 1e-10, and for vrho_s also rho_s >=
# 1e-10), 1e-9 at tiny densities (libxc's own rounding at rs ~ 1e4, as in
# test_xc.py, and the minority-spin vrho near zeta = +-1, which carries libxc's
# rounding of 1 - zeta amplified by d(1 - zeta)^(2/3)/dzeta in PBE's phi).
RTOL = 3e-14
RTOL_LOOSE = {",gga_c_pbe": 3e-12, "pbe": 3e-12}  # libxc's GGA_C_PBE loses digits (test_xc.py)
RTOL_TINY = 1e-9
NOT_TINY = 1e-10


def _reduced_grad(rho_s, s, rng):
    """Random-direction gradients of spin density rho_s with reduced gradient s, (3, G)."""
    u = rng.normal(size=(3, rho_s.size))
    u /= np.linalg.norm(u, axis=0)
    return u * s * 2.0 * (6.0 * np.pi**2 * rho_s) ** (1.0 / 3.0) * rho_s


def _points(n=240, seed=0):
    """Spin densities (ra, rb) and gradients (ga, gb) (3, G) on n + 36 points:
    total rho log-uniform in [1e-5, 1e2], zeta uniform, zeta within 1e-15..1e-1 of
    +-1, exactly rho_b = 0 and rho_a = 0, then a block of tiny densities around the
    thresholds and padded zeros."""
    rng = np.random.default_rng(seed)
    rho = 10.0 ** rng.uniform(-5.0, 2.0, n)
    zeta = rng.uniform(-1.0, 1.0, n)
    k = n // 4
    zeta[:k] = np.where(rng.uniform(size=k) < 0.5, -1.0, 1.0) * (1.0 - 10.0 ** rng.uniform(-15.0, -1.0, k))
    ra, rb = rho * (1.0 + zeta) / 2.0, rho * (1.0 - zeta) / 2.0
    rb[k : k + 12] = 0.0
    ra[k + 12 : k + 20] = 0.0
    ra[k + 20 : k + 24] = 0.0  # one-electron-like tails: exactly one spin, large density
    rb[k + 20 : k + 24] = [10.0, 30.0, 80.0, 200.0]
    tiny = np.array([0.0, 1e-20, 5e-16, 1e-15, 2e-15, 8e-15, 3e-14, 6e-13, 2e-12, 1e-11, 1e-9, 1e-7])
    ta, tb = np.meshgrid(tiny, tiny[[0, 2, 4, 7, 10]] * 1.0)
    sel = np.arange(ta.size) % 2 == 0  # keep the table small
    ra = np.concatenate([ra, ta.ravel()[sel], [0.0] * 6])
    rb = np.concatenate([rb, tb.ravel()[sel], [0.0] * 6])
    m = ra.size
    sa, sb = 10.0 ** rng.uniform(-3.0, np.log10(5.0), m), 10.0 ** rng.uniform(-3.0, np.log10(5.0), m)
    sa[::17] = 0.0
    sb[::13] = 0.0
    return ra, rb, _reduced_grad(ra, sa, rng), _reduced_grad(rb, sb, rng)


RA, RB, GA, GB = _points()
RHO = np.stack([RA, RB])
SIGMA = np.stack([np.sum(GA * GA, 0), np.sum(GA * GB, 0), np.sum(GB * GB, 0)])


def _libxc(name, ra, rb, ga, gb):
    """(e = rho*exc (G,), vrho (2, G), vsigma (3, G) or None), PySCF eval_xc spin=1."""
    if libxc.xc_type(name) == "LDA":
        exc, vxc = libxc.eval_xc(name, (ra, rb), spin=1, deriv=1)[:2]
        return (ra + rb) * exc, vxc[0].T, None
    exc, vxc = libxc.eval_xc(name, (np.vstack([ra, ga]), np.vstack([rb, gb])), spin=1, deriv=1)[:2]
    return (ra + rb) * exc, vxc[0].T, vxc[1].T


def _libxc_closed(name, ra, rb, ga, gb):
    """(|e|, |vrho|, |vsigma|) of the closed-shell functional at the same total density."""
    r, g = ra + rb, ga + gb
    if libxc.xc_type(name) == "LDA":
        exc, vxc = libxc.eval_xc(name, r, 0, deriv=1)[:2]
        return np.abs(r * exc), np.abs(vxc[0]), 0.0
    exc, vxc = libxc.eval_xc(name, np.vstack([r, g]), 0, deriv=1)[:2]
    return np.abs(r * exc), np.abs(vxc[0]), np.abs(vxc[1])


_JIT = {}


def _spin_fn(name):
    """Our polarised fn(rho (2, G), sigma (3, G)): a COMPONENTS key or a functional name."""
    if name in COMPONENTS:
        return COMPONENTS[name]
    f = xc.get_xc(name)
    return lambda r, s: xc_spin.spin_xc_energy_density(f, r, s if f.needs_gradient else None)


def _ours(name, rho, sigma, closed_shell=False):
    """(e (G,), vrho, vsigma) under jax.jit: e and jax.grad of its grid sum (each e(r)
    depends only on the densities at r, so the gradient is vrho / vsigma pointwise).
    Polarised `name` on rho (2, G), sigma (3, G), or with closed_shell xc.py's
    functional on (G,) arrays.  Compiled once per (name, kind, G) and reused by every test."""
    key = (name, closed_shell)
    if key not in _JIT:
        fn = xc.get_xc(name).energy_density if closed_shell else _spin_fn(name)

        def run(r, s):
            return fn(r, s), jax.grad(lambda a, b: jnp.sum(fn(a, b)), argnums=(0, 1))(r, s)

        _JIT[key] = jax.jit(run)
    e, (vr, vs) = _JIT[key](jnp.asarray(rho), jnp.asarray(sigma))
    return np.asarray(e), np.asarray(vr), np.asarray(vs)


def _padded(rho, sigma):
    """rho (2, g), sigma (3, g) padded with zeros to the G of RHO (shared compilations)."""
    pad = ((0, 0), (0, RHO.shape[1] - rho.shape[1]))
    return np.pad(np.asarray(rho), pad), np.pad(np.asarray(sigma), pad)


def _worst(got, ref, scale, mask):
    err = np.abs(got - ref) / np.where(scale > 0, scale, 1.0)
    return float(np.max(np.where(mask, err, 0.0), initial=0.0))


def _check(name, rtol, parts=None):
    """Compare ours against libxc `name`; error scales from `parts` [(coef, component)].
    Returns the worst relative errors {quantity: (not tiny, tiny)}."""
    e, vr, vs = _ours(name, RHO, SIGMA)
    e_ref, vr_ref, vs_ref = _libxc(name, RA, RB, GA, GB)
    # zero pattern (thresholds) identical
    np.testing.assert_array_equal(e == 0.0, e_ref == 0.0)
    sc_e, sc_r, sc_s = 0.0, 0.0, 0.0
    for coef, comp in parts or [(1.0, name)]:
        ce, cr, cs = _libxc(comp, RA, RB, GA, GB)
        ue, ur, us = _libxc_closed(comp, RA, RB, GA, GB)
        sc_e = sc_e + abs(coef) * (np.abs(ce) + ue)
        sc_r = sc_r + abs(coef) * (np.max(np.abs(cr), axis=0) + ur)
        if cs is not None:
            sc_s = sc_s + abs(coef) * (np.abs(cs) + us)
    big = RA + RB >= NOT_TINY
    big_s = big & (RHO >= NOT_TINY)
    quantities = [("e", e, e_ref, sc_e, big), ("vrho", vr, vr_ref, sc_r, big_s)]
    if vs_ref is None:
        assert np.all(vs == 0.0)
    else:
        quantities.append(("vsigma", vs, vs_ref, sc_s, big))
    errs = {q: (_worst(a, b, sc, m), _worst(a, b, sc, ~m)) for q, a, b, sc, m in quantities}
    assert max(t for t, _ in errs.values()) <= rtol, f"{name}: worst relative errors {errs}"
    assert max(t for _, t in errs.values()) <= RTOL_TINY, f"{name}: worst relative errors {errs}"
    return errs


@pytest.mark.parametrize("cname", list(COMPONENTS))
def test_components_match_libxc(cname):
    _check(cname, RTOL_LOOSE.get(cname, RTOL))


# decomposition of each functional into libxc components (error scales only)
DECOMP = {
    "lda,vwn": ((1.0, "lda_x"), (1.0, ",lda_c_vwn")),
    "pbe": ((1.0, "gga_x_pbe"), (1.0, ",gga_c_pbe")),
    "b3lyp5": ((0.08, "lda_x"), (0.72, "gga_x_b88"), (0.19, ",lda_c_vwn"), (0.81, ",gga_c_lyp")),
    "b3lyp": ((0.08, "lda_x"), (0.72, "gga_x_b88"), (0.19, ",lda_c_vwn_rpa"), (0.81, ",gga_c_lyp")),
}


@pytest.mark.parametrize("name", NAMES)
def test_functionals_match_libxc(name):
    _check(name, RTOL_LOOSE.get(name, RTOL), DECOMP[name])


@pytest.mark.parametrize("name", NAMES)
def test_closed_shell_consistency(name):
    """rho_a = rho_b = rho/2, sigma_ss = sigma/4: the polarised functional is xc.py's."""
    g = RHO.shape[1]
    rng = np.random.default_rng(3)
    rho = 10.0 ** rng.uniform(-6.0, 2.0, g)
    sigma = (10.0 ** rng.uniform(-3.0, 0.7, g) * 2.0 * (3.0 * np.pi**2 * rho) ** (1.0 / 3.0) * rho) ** 2
    sigma[::10] = 0.0
    e0, vr0, vs0 = _ours(name, rho, sigma, closed_shell=True)
    e, vr, vs = _ours(name, np.stack([rho / 2, rho / 2]), np.stack([sigma / 4] * 3))
    np.testing.assert_allclose(e, e0, rtol=1e-13, atol=0)
    np.testing.assert_allclose(vr[0], vr0, rtol=1e-13, atol=0)
    np.testing.assert_allclose(vr[1], vr0, rtol=1e-13, atol=0)
    # d/dsigma = (v_aa + v_ab + v_bb)/4 (PBE's x and c parts nearly cancel: absolute scale)
    np.testing.assert_allclose(vs.sum(0) / 4, vs0, rtol=1e-13, atol=1e-13 * np.max(np.abs(vs0)))


@pytest.mark.parametrize("name", xc.SUPPORTED)
def test_zero_density_and_full_polarisation_finite(name):
    # zeros, denormal-ish and sub-threshold densities, one empty spin, a slightly
    # negative (quadrature noise) spin density
    ra = np.array([0.0, 0.0, 1e-300, 0.0, 1.0, 0.3, 0.0, 1e-30, 50.0, 1e-16, 0.5])
    rb = np.array([0.0, 0.0, 0.0, 1e-300, 0.0, 0.0, 0.7, 1e-30, 0.0, 0.0, -1e-18])
    saa = np.array([0.0, 1e-3, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 100.0, 0.0, 0.2])
    sbb = np.array([0.0, 1e-3, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1e-40])
    rho, sigma = _padded(np.stack([ra, rb]), np.stack([saa, 0.0 * saa, sbb]))
    e, vr, vs = _ours(name, rho, sigma)
    for arr in (e, vr, vs):
        assert np.all(np.isfinite(arr)), name
    zero = rho.sum(0) == 0.0
    assert np.all(e[zero] == 0.0)
    assert np.all(vr[:, zero] == 0.0) and np.all(vs[:, zero] == 0.0)


def test_one_electron_density_matches_libxc():
    """A fully polarised H-atom-like density (rho_b = 0 everywhere), b3lyp5."""
    r = np.linspace(0.0, 12.0, RHO.shape[1])
    ra = np.exp(-2.0 * r) / np.pi
    ga = np.vstack([-2.0 * ra, 0.0 * r, 0.0 * r])
    rb, gb = 0.0 * ra, 0.0 * ga
    e_ref, vr_ref, vs_ref = _libxc("b3lyp5", ra, rb, ga, gb)
    rho, sigma = np.stack([ra, rb]), np.stack([4.0 * ra**2, 0.0 * r, 0.0 * r])
    e, vr, vs = _ours("b3lyp5", rho, sigma)
    np.testing.assert_allclose(e, e_ref, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(vr, vr_ref, rtol=1e-12, atol=1e-14 * np.max(np.abs(vr_ref)))
    np.testing.assert_allclose(vs, vs_ref, rtol=1e-12, atol=1e-14 * np.max(np.abs(vs_ref)))


def test_sigma_ab_clipped_like_libxc():
    """libxc clips sigma_ab to +-(sigma_aa + sigma_bb)/2, derivative at the clipped point."""
    rho = np.array([[0.3, 0.3], [0.2, 0.2]])
    good = np.array([[0.1, 0.1], [0.15, -0.15], [0.2, 0.2]])
    bad = good.copy()
    bad[1] = [5.0, -5.0]
    for cname in (",gga_c_lyp", ",gga_c_pbe"):
        for got, ref in zip(_ours(cname, *_padded(rho, bad)), _ours(cname, *_padded(rho, good))):
            np.testing.assert_array_equal(got, ref)


def test_hf_and_argument_checks():
    rho = jnp.ones((2, 4))
    assert np.all(np.asarray(xc_spin.spin_xc_energy_density("hf", rho)) == 0.0)
    assert xc_spin.spin_xc_energy_density("lda,vwn", rho).shape == (4,)
    with pytest.raises(ValueError, match="sigma"):
        xc_spin.spin_xc_energy_density("pbe", rho)
    with pytest.raises(ValueError, match=r"\(2, G\)"):
        xc_spin.spin_xc_energy_density("lda,vwn", jnp.ones(4))
    with pytest.raises(ValueError, match="Unsupported"):
        xc_spin.spin_xc_energy_density("m06", rho)


@pytest.mark.parametrize("name", xc.SUPPORTED)
def test_every_term_has_a_polarised_version(name):
    for _, fn in xc._TABLE[name][2]:
        assert callable(xc_spin._polarised_term(fn))
