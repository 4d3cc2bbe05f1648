"""Spin-polarised (unrestricted) exchange-correlation functionals in pure JAX.

The open-shell counterpart of `qpt_nb.dft.xc`, matching PySCF 2.14 / libxc 7
(``pyscf.dft.libxc.eval_xc(name, rho, spin=1)``) to machine precision.  Every
building block is a pure function of

* ``rho``   -- (2, G) spin densities (rho_a, rho_b), electrons / Bohr^3,
* ``sigma`` -- (3, G) (grad rho_a.grad rho_a, grad rho_a.grad rho_b,
  grad rho_b.grad rho_b), Bohr^-8 (GGA only; libxc's ordering),

returning the XC energy per unit volume ``e(r) = (rho_a + rho_b) * eps(r)`` in
Hartree / Bohr^3, shape (G,).  ``jax.grad`` of the grid sum gives libxc's
``vrho`` (2, G) and ``vsigma`` (3, G).

Exchange uses the exact spin scaling E_x[rho_a, rho_b] = (E_x[2 rho_a] +
E_x[2 rho_b]) / 2 (sigma_aa -> 4 sigma_aa) on the closed-shell functions of
`qpt_nb.dft.xc`.  Correlation follows libxc's Maple sources
(``maple/lda_exc/lda_c_vwn.mpl``, ``lda_c_vwn_rpa.mpl``, ``lda_c_pw.mpl``,
``maple/gga_exc/gga_c_lyp.mpl``, ``gga_c_pbe.mpl``, ``maple/util.mpl``).

libxc's polarised driver (``src/work_lda_inc.c``, ``work_gga_inc.c``), mirrored
here per component with that component's ``dens_threshold`` (see xc.py):

* zero (value and derivatives) where rho_a + rho_b < dens_threshold;
* each rho_s clamped to >= dens_threshold, sigma_aa and sigma_bb floored at
  dens_threshold^(8/3), sigma_ab clipped to +-(sigma_aa + sigma_bb)/2; the
  derivatives are those at the clamped point (straight-through), and PySCF's
  e = zk * (rho_a + rho_b) uses the *unclamped* total density (`_finish`);
* ``zeta_threshold`` = DBL_EPSILON: ``(1 + z)^p`` is replaced by the constant
  zeta_threshold^p (zero derivative) where 1 + z <= zeta_threshold
  (``opz_pow_n``); GGA exchange also clips zeta to +-(1 - zeta_threshold)
  (``z_thr``), LDA_X does not; exchange screens each spin channel (zero where
  rho_s <= dens_threshold).

Near full polarisation the values follow libxc's generated C code to the
rounding: correlation uses 1 +- z computed from z = (rho_a - rho_b) * (1/n)
(whose rounding d(1 - z)^(2/3)/dz amplifies), exchange tests 2 rho_s / n (see
`_Zeta`).  So where rho_b = 0 libxc's vrho_b of B88/PBE exchange is d e_a/dn
for n > 2 dens_threshold/DBL_EPSILON (~9), not 0, and so is ours.

NaN safety uses the double-``where`` pattern of xc.py: values and ``jax.grad``
are finite at rho = 0, rho_b = 0 (zeta = 1) and on padded grid points.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from qpt_nb.dft import xc as _xc

__all__ = [
    "spin_xc_energy_density",
    "slater_exchange",
    "b88_exchange",
    "pbe_exchange",
    "vwn5_correlation",
    "vwn_rpa_correlation",
    "lyp_correlation",
    "pbe_correlation",
]

ZETA_THRESHOLD = 2.220446049250313e-16  # libxc default p->zeta_threshold = DBL_EPSILON
_CBRT2 = 2.0 ** (1.0 / 3.0)
_FZ_DEN = 2.0 * _CBRT2 - 2.0  # 2^(4/3) - 2, the denominator of f_zeta


# ----------------------------------------------------------------------------
# libxc's polarised input sanitation
# ----------------------------------------------------------------------------
def _clamp_below(x: jax.Array, lo) -> jax.Array:
    """``max(lo, x)`` with derivative 1 (libxc reports derivatives at the clamped point)."""
    return jnp.where(x > lo, x, lo + (x - jax.lax.stop_gradient(x)))


class _PolInputs(NamedTuple):
    mask: jax.Array  # (G,) evaluated points: rho_a + rho_b >= dens_threshold
    ra: jax.Array  # (G,) clamped rho_a (1 at masked points)
    rb: jax.Array  # (G,) clamped rho_b
    n: jax.Array  # (G,) ra + rb
    n0: jax.Array  # (G,) unclamped rho_a + rho_b
    saa: jax.Array  # (G,) floored sigma_aa
    sab: jax.Array  # (G,) clipped sigma_ab
    sbb: jax.Array  # (G,) floored sigma_bb


def _pol_inputs(rho, sigma, thr: float) -> _PolInputs:
    """libxc's ``work_{lda,gga}_inc.c`` sanitation of (rho (2, G), sigma (3, G) or None)."""
    rho = _xc._as_f64(rho)
    n0 = rho[0] + rho[1]
    mask = n0 >= thr
    ra = _xc._safe(_clamp_below(rho[0], thr), mask)
    rb = _xc._safe(_clamp_below(rho[1], thr), mask)
    if sigma is None:
        sigma = jnp.zeros((3,) + n0.shape, dtype=jnp.float64)
    sigma = _xc._as_f64(sigma)
    saa = _xc._floor_sigma(sigma[0], mask, thr)
    sbb = _xc._floor_sigma(sigma[2], mask, thr)
    # |sigma_ab| <= (sigma_aa + sigma_bb)/2, value clipped, derivative passed through
    s_ave = jax.lax.stop_gradient(0.5 * (saa + sbb))
    s1 = sigma[1]
    pass_through = s1 - jax.lax.stop_gradient(s1)
    sab = jnp.where(jnp.abs(s1) <= s_ave, s1, jnp.sign(s1) * s_ave + pass_through)
    sab = jnp.where(mask, sab, 0.0)
    return _PolInputs(mask, ra, rb, ra + rb, n0, saa, sab, sbb)


def _finish(e: jax.Array, p: _PolInputs) -> jax.Array:
    """Final ``where`` of the double-where, and PySCF's ``e = zk * (rho_a + rho_b)``.

    libxc evaluates zk = eps at the clamped densities and PySCF multiplies by the
    unclamped total n0; vrho is d(n eps)/drho_s at the clamped point.  The value
    is corrected to n0 * eps without touching the gradient.
    """
    corr = jax.lax.stop_gradient(e / p.n * (p.n - p.n0))
    return jnp.where(p.mask, e - corr, 0.0)


class _Zeta(NamedTuple):
    """Spin polarisation exactly as libxc's generated code (maple2c ``func_*_pol``) has it.

    Correlation uses 1 +- z computed from z (with its cancellation near full
    polarisation) for values and ``opz_pow_n`` tests; the exchange screens
    (``z_thr``, LDA_X's ``opz_pow_n``) are simplified by Maple to 2 rho_s/n.
    """

    z: jax.Array  # (rho_a - rho_b) * (1/n)
    opz: jax.Array  # 1 + z
    omz: jax.Array  # 1 - z
    low_a: jax.Array  # 2 rho_a/n <= zeta_threshold
    low_b: jax.Array  # 2 rho_b/n <= zeta_threshold


def _zeta(p: _PolInputs) -> _Zeta:
    inv_n = 1.0 / p.n
    # 1 +- z must carry libxc's rounding of z (amplified by d(1 +- z)^p/dz near |z| = 1).
    # Under jit, XLA/LLVM fuse 1 + d * inv_n into one fma; adding the runtime zero
    # n - n absorbs any such contraction, so z is round(d * inv_n) on every backend.
    z = (p.ra - p.rb) * inv_n + (p.n - p.n)
    low_a = 2.0 * p.ra * inv_n <= ZETA_THRESHOLD
    low_b = 2.0 * p.rb * inv_n <= ZETA_THRESHOLD
    return _Zeta(z, 1.0 + z, 1.0 - z, low_a, low_b)


def _opz_pow(opz: jax.Array, num: int) -> jax.Array:
    """libxc ``opz_pow_n(z, num/3)`` of ``opz = 1 + z``: opz^(num/3), or the constant
    zeta_threshold^(num/3) (zero derivative) where opz <= zeta_threshold."""
    low = opz <= ZETA_THRESHOLD
    x = jnp.where(low, 1.0, opz)
    c = jnp.cbrt(x)
    q, r = divmod(num, 3)
    val = x**q * (c if r == 1 else c * c if r == 2 else 1.0)
    return jnp.where(low, ZETA_THRESHOLD ** (num / 3.0), val)


def _f_zeta(zt: _Zeta) -> jax.Array:
    """PW92 spin interpolation f(z) = ((1+z)^(4/3) + (1-z)^(4/3) - 2)/(2^(4/3) - 2)."""
    return (_opz_pow(zt.opz, 4) + _opz_pow(zt.omz, 4) - 2.0) / _FZ_DEN


# ----------------------------------------------------------------------------
# exchange: exact spin scaling
# ----------------------------------------------------------------------------
def _exchange(unpol: Callable, rho, sigma, gga: bool) -> jax.Array:
    """sum_s E_x^unpol[2 rho_s', 4 sigma_ss (rho_s'/rho_s)^(8/3)] / 2, libxc's form.

    libxc (maple/util.mpl ``lda_x_spin``, ``gga_exchange``) evaluates channel s
    (z_a = z, z_b = -z) as e_s = -X_FACTOR_C rho_s'^(4/3) F(x_s) with
    rho_s' = ``opz_pow_n``-screened (1 + z_s')/2 * n, z_s' = z_s for LDA_X and
    ``z_thr(z_s)`` (z clipped to +-(1 - zeta_threshold)) for GGA exchange, and
    x_s = |grad rho_s| / rho_s^(4/3) of the clamped rho_s itself.  rho_s' = rho_s
    algebraically, except within zeta_threshold of full polarisation, where
    libxc's constants (zero derivative w.r.t. zeta) are reproduced.  Passing
    sigma_ss (rho_s'/rho_s)^(8/3) keeps x_s.  Channels with rho_s <= 1e-15 are 0.
    """
    p = _pol_inputs(rho, sigma, _xc._THR_X)
    zt = _zeta(p)
    e = jnp.zeros_like(p.n)
    channels = ((zt.z, zt.low_a, zt.low_b, p.ra, p.saa), (-zt.z, zt.low_b, zt.low_a, p.rb, p.sbb))
    for z_s, low_s, low_o, r_s, s_ss in channels:
        if gga:  # 1 + z_thr(z_s), computed from z as libxc does (cancellation included)
            z_s = jnp.where(low_s, ZETA_THRESHOLD - 1.0, jnp.where(low_o, 1.0 - ZETA_THRESHOLD, z_s))
            opz = 1.0 + z_s
            opz = jnp.where(opz <= ZETA_THRESHOLD, ZETA_THRESHOLD, opz)
            eff = 0.5 * opz * p.n
        else:  # LDA_X: Maple simplifies (1 + z_s)/2 * n to rho_s
            eff = jnp.where(low_s, 0.5 * ZETA_THRESHOLD * p.n, r_s)
        on = r_s > _xc._THR_X  # libxc screen_dens: rho_s <= dens_threshold -> 0
        eff = jnp.where(on, eff, 1.0)
        ratio = eff / jnp.where(on, r_s, 1.0)
        scale = (ratio * jnp.cbrt(ratio)) ** 2  # (rho_s'/rho_s)^(8/3)
        e_s = 0.5 * unpol(2.0 * eff, 4.0 * s_ss * scale)
        e = e + jnp.where(on, e_s, 0.0)
    return _finish(e, p)


def slater_exchange(rho: jax.Array) -> jax.Array:
    """Slater LDA exchange, libxc ``LDA_X`` (id 1), spin polarised.

    e_x = -(3/4)(6/pi)^(1/3) (rho_a^(4/3) + rho_b^(4/3))  (= sum_s e_x^unpol(2 rho_s)/2).

    Args:
      rho: (2, G) spin densities, Bohr^-3.
    Returns:
      (G,) Hartree/Bohr^3; a spin channel with rho_s <= 1e-15 contributes 0.
    """
    return _exchange(lambda r, s: _xc.slater_exchange(r), rho, None, gga=False)


def b88_exchange(rho: jax.Array, sigma: jax.Array) -> jax.Array:
    """Becke 88 exchange, libxc ``GGA_X_B88`` (id 106), spin polarised:
    e_x = sum_s e_x^B88,unpol(2 rho_s, 4 sigma_ss) / 2 (see `qpt_nb.dft.xc.b88_exchange`).

    Args:
      rho: (2, G) spin densities, Bohr^-3.
      sigma: (3, G) (sigma_aa, sigma_ab, sigma_bb), Bohr^-8 (sigma_ab unused).
    Returns:
      (G,) Hartree/Bohr^3; a spin channel with rho_s <= 1e-15 contributes 0.
    """
    return _exchange(_xc.b88_exchange, rho, sigma, gga=True)


def pbe_exchange(rho: jax.Array, sigma: jax.Array) -> jax.Array:
    """PBE exchange, libxc ``GGA_X_PBE`` (id 101), spin polarised:
    e_x = sum_s e_x^PBE,unpol(2 rho_s, 4 sigma_ss) / 2.  Arguments as `b88_exchange`.
    """
    return _exchange(_xc.pbe_exchange, rho, sigma, gga=True)


# ----------------------------------------------------------------------------
# LDA correlation
# ----------------------------------------------------------------------------
# libxc maple/vwn.mpl: ferromagnetic and spin-stiffness parameter sets
_VWN5_FERRO = (0.01554535, 7.06042, 18.0578, -0.32500)
_VWN5_STIFF = (-1.0 / (6.0 * math.pi**2), 1.13107, 13.0045, -0.0047584)
_VWN_RPA_FERRO = (0.01554535, 20.1231, 101.578, -0.743294)
_FPP = 4.0 / (9.0 * (_CBRT2 - 1.0))  # f''(0)


def _lda_c_pol(rho: jax.Array, eps_fn: Callable) -> jax.Array:
    p = _pol_inputs(rho, None, _xc._THR_VWN)
    rs = _xc.RS_FACTOR / jnp.cbrt(p.n)
    return _finish(p.n * eps_fn(rs, _zeta(p)), p)


def _eps_vwn5(rs: jax.Array, z: _Zeta) -> jax.Array:
    para = _xc._vwn_f_aux(*_xc._VWN5_PARA, rs)
    fz, z4 = _f_zeta(z), z.z**4
    stiff = _xc._vwn_f_aux(*_VWN5_STIFF, rs)
    dmc = _xc._vwn_f_aux(*_VWN5_FERRO, rs) - para
    return para + stiff * fz * (1.0 - z4) / _FPP + dmc * fz * z4


def _eps_vwn_rpa(rs: jax.Array, z: _Zeta) -> jax.Array:
    fz = _f_zeta(z)
    return _xc._vwn_f_aux(*_xc._VWN_RPA_PARA, rs) * (1.0 - fz) + _xc._vwn_f_aux(*_VWN_RPA_FERRO, rs) * fz


def vwn5_correlation(rho: jax.Array) -> jax.Array:
    """VWN5 correlation, libxc ``LDA_C_VWN`` (id 7), spin polarised
    (maple/lda_exc/lda_c_vwn.mpl):

    eps = e_P(rs) + alpha(rs) f(z) (1 - z^4)/f''(0) + (e_F(rs) - e_P(rs)) f(z) z^4,

    e_P, e_F, alpha: VWN ``f_aux`` with the paramagnetic, ferromagnetic and
    spin-stiffness (A = -1/(6 pi^2)) Ceperley-Alder fits; f(z) the PW92 spin
    interpolation, f''(0) = 4/(9 (2^(1/3) - 1)); z = (rho_a - rho_b)/rho.

    Args:
      rho: (2, G) spin densities, Bohr^-3.
    Returns:
      (G,) e = rho * eps, Hartree/Bohr^3; 0 where rho_a + rho_b < 1e-15.
    """
    return _lda_c_pol(rho, _eps_vwn5)


def vwn_rpa_correlation(rho: jax.Array) -> jax.Array:
    """VWN RPA correlation, libxc ``LDA_C_VWN_RPA`` (id 8), spin polarised
    (maple/lda_exc/lda_c_vwn_rpa.mpl; no spin-stiffness term):

    eps = e_P^RPA(rs) (1 - f(z)) + e_F^RPA(rs) f(z).

    Arguments, units and screening as `vwn5_correlation`.
    """
    return _lda_c_pol(rho, _eps_vwn_rpa)


# PW92 with libxc's PW_MOD parameters (maple/lda_exc/lda_c_pw.mpl); k = para, ferro, -alpha_c
_PW_A = (0.0310907, 0.01554535, 0.0168869)
_PW_ALPHA1 = (0.21370, 0.20548, 0.11125)
_PW_BETA = (
    (7.5957, 3.5876, 1.6382, 0.49294),
    (14.1189, 6.1977, 3.3662, 0.62517),
    (10.357, 3.6231, 0.88026, 0.49671),
)
_PW_FZ20 = 1.709920934161365617563962776245


def _pw92_mod(rs: jax.Array, z: _Zeta) -> jax.Array:
    """PW92 correlation per particle (libxc LDA_C_PW_MOD), Hartree:

    eps = g1 + z^4 f(z) (g2 - g1 + g3/f''(0)) - f(z) g3/f''(0),
    g_k = -2 A_k (1 + a1_k rs) ln(1 + 1/(2 A_k (b1 rs^1/2 + b2 rs + b3 rs^3/2 + b4 rs^2))).
    """
    srs = jnp.sqrt(rs)
    g = []
    for a, al, (b1, b2, b3, b4) in zip(_PW_A, _PW_ALPHA1, _PW_BETA):
        gaux = b1 * srs + b2 * rs + b3 * rs * srs + b4 * rs * rs
        g.append(-2.0 * a * (1.0 + al * rs) * jnp.log1p(1.0 / (2.0 * a * gaux)))
    fz = _f_zeta(z)
    return g[0] + z.z**4 * fz * (g[1] - g[0] + g[2] / _PW_FZ20) - fz * g[2] / _PW_FZ20


# ----------------------------------------------------------------------------
# GGA correlation
# ----------------------------------------------------------------------------
def pbe_correlation(rho: jax.Array, sigma: jax.Array) -> jax.Array:
    """PBE correlation, libxc ``GGA_C_PBE`` (id 130), spin polarised
    (maple/gga_exc/gga_c_pbe.mpl):

    eps = eps_c^PW92(rs, z) + H,  H = gamma phi^3 ln(1 + beta/gamma t^2 (1 + A t^2)/(1 + A t^2 + A^2 t^4)),
    A = beta / (gamma (exp(-eps_c^PW92/(gamma phi^3)) - 1)),
    phi = ((1+z)^(2/3) + (1-z)^(2/3))/2,  t^2 = sigma / (16 * 2^(2/3) phi^2 rs rho^(8/3)),
    sigma = sigma_aa + 2 sigma_ab + sigma_bb.  Evaluated, as in xc.py, as
    eps = gamma phi^3 log1p(-E/((1 + E)(1 + A f1))), E = exp(-eps_c/(gamma phi^3)) - 1,
    f1 = t^2 + A t^4 (algebraically identical, without the cancellation eps_c + H -> 0).

    Args:
      rho: (2, G) spin densities, Bohr^-3.
      sigma: (3, G) (sigma_aa, sigma_ab, sigma_bb), Bohr^-8.
    Returns:
      (G,) e = rho * eps, Hartree/Bohr^3; 0 where rho_a + rho_b < 1e-12.
    """
    p = _pol_inputs(rho, sigma, _xc._THR_PBE_C)
    z = _zeta(p)
    n13 = jnp.cbrt(p.n)
    rs = _xc.RS_FACTOR / n13
    ec = _pw92_mod(rs, z)
    phi = 0.5 * (_opz_pow(z.opz, 2) + _opz_pow(z.omz, 2))
    g3 = _xc.PBE_GAMMA * phi**3
    xt2 = (p.saa + 2.0 * p.sab + p.sbb) / (p.n * n13) ** 2
    t2 = xt2 / (16.0 * _CBRT2**2 * phi**2 * rs)
    em1 = jnp.expm1(-ec / g3)
    a = _xc.PBE_BETA / (_xc.PBE_GAMMA * em1)
    f1 = t2 + a * t2 * t2
    eps = g3 * jnp.log1p(-em1 / ((1.0 + em1) * (1.0 + a * f1)))
    return _finish(p.n * eps, p)


def lyp_correlation(rho: jax.Array, sigma: jax.Array) -> jax.Array:
    """Lee-Yang-Parr correlation, libxc ``GGA_C_LYP`` (id 131), spin polarised
    (maple/gga_exc/gga_c_lyp.mpl).  With r = rho^(-1/3), z = (rho_a - rho_b)/rho,
    x_t^2 = sigma/rho^(8/3) (sigma = sigma_aa + 2 sigma_ab + sigma_bb),
    x_s^2 = sigma_ss/rho_s^(8/3), w = b exp(-c r)/(1 + d r), delta = (c + d/(1 + d r)) r,
    C_F = 3/10 (3 pi^2)^(2/3), (1 +- z)^p written o_+-^p:

      eps = a [ -(1 - z^2)/(1 + d r) + w ( t2 + t3 + t4 + t5 + t6 ) ],
      t2 = -x_t^2 ((1 - z^2)(47 - 7 delta)/72 - 2/3),
      t3 = -C_F/2 (1 - z^2)(o_+^(8/3) + o_-^(8/3)),
      t4 = 2^(-8/3)/4 (1 - z^2)(5/2 - delta/18)(x_a^2 o_+^(8/3) + x_b^2 o_-^(8/3)),
      t5 = 2^(-8/3)/72 (1 - z^2)(delta - 11)(x_a^2 o_+^(11/3) + x_b^2 o_-^(11/3)),
      t6 = -2^(-8/3) (2/3 (x_a^2 o_+^(8/3) + x_b^2 o_-^(8/3))
                      - o_+^2 x_b^2 o_-^(8/3)/4 - o_-^2 x_a^2 o_+^(8/3)/4),

    a, b, c, d = 0.04918, 0.132, 0.2533, 0.349.  e = rho * eps.

    Arguments and units as `pbe_correlation`; 0 where rho_a + rho_b < 1e-14.
    """
    p = _pol_inputs(rho, sigma, _xc._THR_LYP)
    z = _zeta(p)
    n13 = jnp.cbrt(p.n)
    rr = 1.0 / n13
    xt2 = (p.saa + 2.0 * p.sab + p.sbb) / (p.n * n13) ** 2
    xa2 = p.saa / (p.ra * jnp.cbrt(p.ra)) ** 2
    xb2 = p.sbb / (p.rb * jnp.cbrt(p.rb)) ** 2
    opz, omz = z.opz, z.omz
    op8, om8 = _opz_pow(opz, 8), _opz_pow(omz, 8)
    op11, om11 = _opz_pow(opz, 11), _opz_pow(omz, 11)
    op2, om2 = _opz_pow(opz, 6), _opz_pow(omz, 6)
    omz2 = 1.0 - z.z * z.z
    cf = 0.3 * (3.0 * math.pi**2) ** (2.0 / 3.0)
    aux6 = 2.0 ** (-8.0 / 3.0)
    aux4 = aux6 / 4.0
    aux5 = aux4 / 18.0
    dpr = 1.0 + _xc.LYP_D * rr
    omega = _xc.LYP_B * jnp.exp(-_xc.LYP_C * rr) / dpr
    delta = (_xc.LYP_C + _xc.LYP_D / dpr) * rr
    s8 = xa2 * op8 + xb2 * om8
    t1 = -omz2 / dpr
    t2 = -xt2 * (omz2 * (47.0 - 7.0 * delta) / 72.0 - 2.0 / 3.0)
    t3 = -cf / 2.0 * omz2 * (op8 + om8)
    t4 = aux4 * omz2 * (2.5 - delta / 18.0) * s8
    t5 = aux5 * omz2 * (delta - 11.0) * (xa2 * op11 + xb2 * om11)
    t6 = -aux6 * (2.0 / 3.0 * s8 - op2 * xb2 * om8 / 4.0 - om2 * xa2 * op8 / 4.0)
    eps = _xc.LYP_A * (t1 + omega * (t2 + t3 + t4 + t5 + t6))
    return _finish(p.n * eps, p)


# ----------------------------------------------------------------------------
# functionals
# ----------------------------------------------------------------------------
# closed-shell component of xc.py -> (polarised version, takes sigma)
_POLARISED = (
    (_xc.slater_exchange, slater_exchange, False),
    (_xc.b88_exchange, b88_exchange, True),
    (_xc.pbe_exchange, pbe_exchange, True),
    (_xc.vwn5_correlation, vwn5_correlation, False),
    (_xc.vwn_rpa_correlation, vwn_rpa_correlation, False),
    (_xc.lyp_correlation, lyp_correlation, True),
    (_xc.pbe_correlation, pbe_correlation, True),
)


def _polarised_term(fn: Callable) -> Callable:
    """The polarised fn(rho (2, G), sigma (3, G)) of a term of xc.py's ``_TABLE``.

    Terms are the closed-shell functions themselves or xc.py's ``_lda_term``
    wrappers (a closure over the LDA function).
    """
    cands = [fn] + [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())]
    for cand in cands:
        for unpol, pol, gga in _POLARISED:
            if cand is unpol:
                return pol if gga else (lambda rho, sigma, _f=pol: _f(rho))
    raise NotImplementedError(f"no spin-polarised version of XC term {fn!r}")


def spin_xc_energy_density(func, rho: jax.Array, sigma: jax.Array | None = None) -> jax.Array:
    """Semi-local XC energy per volume of an unrestricted (UKS) density.

    Args:
      func: an `XCFunctional` (``qpt_nb.dft.xc.get_xc(name)``) or a name it accepts;
        components and weights are those of xc.py, each replaced by its polarised form.
      rho: (2, G) spin densities (rho_a, rho_b), Bohr^-3.
      sigma: (3, G) (sigma_aa, sigma_ab, sigma_bb), Bohr^-8; required for GGAs,
        ignored (may be None) for LDA / HF.
    Returns:
      (G,) e_xc = (rho_a + rho_b) eps_xc, Hartree/Bohr^3, float64; all zeros for
      'hf' (exact exchange, weight ``func.hyb``, is added elsewhere).  The
      ``jax.grad`` of its weighted sum w.r.t. rho and sigma gives libxc's
      vrho (2, G) and vsigma (3, G).
    """
    func = _xc.get_xc(func)
    rho = _xc._as_f64(rho)
    if rho.ndim < 1 or rho.shape[0] != 2:
        raise ValueError(f"rho must be (2, G) spin densities, got shape {rho.shape}")
    if sigma is None:
        if func.needs_gradient:
            raise ValueError(f"XC functional {func.name!r} is a GGA: sigma (3, G) is required")
    else:
        sigma = _xc._as_f64(sigma)
        if sigma.shape[:1] != (3,) or sigma.shape[1:] != rho.shape[1:]:
            raise ValueError(f"sigma must be (3, G) matching rho {rho.shape}, got {sigma.shape}")
    e = jnp.zeros(rho.shape[1:], dtype=jnp.float64)
    for coef, fn in _xc._TABLE[func.name][2]:
        e = e + coef * _polarised_term(fn)(rho, sigma)
    return e
