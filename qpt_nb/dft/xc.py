"""Exchange-correlation functionals in pure JAX, matching PySCF 2.14 / libxc 7.

The closed-shell (spin-unpolarised) case; the polarised forms for unrestricted
Kohn-Sham are in `qpt_nb.dft.xc_spin`, built on these.  Every building
block is a small pure function of

* ``rho``   -- (G,) total electron density, electrons / Bohr^3,
* ``sigma`` -- (G,) ``|grad rho|^2``, Bohr^-8 (GGA only),

returning the XC energy per unit volume ``e(r) = rho * eps(r)`` in
Hartree / Bohr^3, shape (G,).  Everything is float64, jittable and
differentiable.  Formulas and constants are those of libxc's Maple sources
(``maple/lda_exc/*.mpl``, ``maple/gga_exc/*.mpl``), so values and first
derivatives agree with ``pyscf.dft.libxc.eval_xc`` to machine precision.

Low-density behaviour mirrors libxc (each component has its own
``dens_threshold``; a mixed functional such as B3LYP evaluates each component
with that component's threshold):

* LDA_X, GGA_X_B88, GGA_X_PBE: zero where ``rho/2 <= 1e-15`` (libxc screens
  each spin channel);
* LDA_C_VWN, LDA_C_VWN_RPA: zero where ``rho < 1e-15``;
* GGA_C_LYP: zero where ``rho < 1e-14``;  GGA_C_PBE: zero where ``rho < 1e-12``.

GGA components also floor ``sigma`` at ``dens_threshold**(8/3)`` (libxc's
``sigma_threshold**2`` with ``sigma_threshold = dens_threshold**(4/3)``).  The
floor is "straight-through" (derivative 1 w.r.t. sigma), like libxc, which
reports the derivative evaluated at the floored point.

NaN safety uses the double-``where`` pattern: screened points are replaced by
a harmless density *before* any power/log/division and the result is
``where``-ed to zero afterwards, so values and ``jax.grad`` are finite (and
exactly zero) at ``rho = 0``, ``sigma = 0`` and on padded grid points.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Tuple

import jax
import jax.numpy as jnp

__all__ = [
    "XCFunctional",
    "get_xc",
    "SUPPORTED",
    "slater_exchange",
    "b88_exchange",
    "pbe_exchange",
    "vwn5_correlation",
    "vwn_rpa_correlation",
    "lyp_correlation",
    "pbe_correlation",
]

# ----------------------------------------------------------------------------
# constants (libxc util.h / util.mpl)
# ----------------------------------------------------------------------------
_PI = math.pi
RS_FACTOR = (3.0 / (4.0 * _PI)) ** (1.0 / 3.0)  # rs = RS_FACTOR / rho^(1/3)
X_FACTOR_C = 3.0 / 8.0 * (3.0 / _PI) ** (1.0 / 3.0) * 4.0 ** (2.0 / 3.0)
X2S = 1.0 / (2.0 * (6.0 * _PI**2) ** (1.0 / 3.0))  # s = X2S * x_sigma
C_SLATER = 0.75 * (3.0 / _PI) ** (1.0 / 3.0)  # e_x^LDA = -C_SLATER rho^(4/3)
_CBRT2 = 2.0 ** (1.0 / 3.0)

# default dens_threshold of each libxc component (libxc 7.0.0, checked
# empirically against pyscf.dft.libxc.eval_xc)
_THR_X = 1e-15  # LDA_X, GGA_X_B88, GGA_X_PBE (screen on rho_sigma = rho/2)
_THR_VWN = 1e-15  # LDA_C_VWN, LDA_C_VWN_RPA
_THR_LYP = 1e-14  # GGA_C_LYP
_THR_PBE_C = 1e-12  # GGA_C_PBE

_SAFE_RHO = 1.0  # stand-in density at screened points (never returned)


def _screen_spin(rho: jax.Array, thr: float) -> jax.Array:
    """Mask of evaluated points for exchange: libxc zeroes where rho/2 <= thr."""
    return 0.5 * rho > thr


def _screen_total(rho: jax.Array, thr: float) -> jax.Array:
    """Mask of evaluated points for correlation: libxc zeroes where rho < thr."""
    return rho >= thr


def _safe(rho: jax.Array, mask: jax.Array) -> jax.Array:
    """First ``where`` of the double-where pattern: harmless rho off the mask."""
    return jnp.where(mask, rho, _SAFE_RHO)


def _floor_sigma(sigma: jax.Array, mask: jax.Array, thr: float) -> jax.Array:
    """libxc's ``max(sigma_threshold^2, sigma)`` with pass-through derivative.

    ``sigma_threshold = thr^(4/3)``.  Below the floor the value is the floor
    but d/dsigma is 1 (libxc reports the derivative at the floored point).
    Screened points get sigma = floor.
    """
    floor = thr ** (8.0 / 3.0)
    zero_with_grad = sigma - jax.lax.stop_gradient(sigma)  # value 0, grad 1
    s = jnp.where(sigma > floor, sigma, floor + zero_with_grad)
    return jnp.where(mask, s, floor)


def _as_f64(x) -> jax.Array:
    return jnp.asarray(x, dtype=jnp.float64)


# ----------------------------------------------------------------------------
# exchange
# ----------------------------------------------------------------------------
def slater_exchange(rho: jax.Array) -> jax.Array:
    """Slater (Dirac) LDA exchange, libxc ``LDA_X`` (id 1).

    e_x(r) = -(3/4) (3/pi)^(1/3) rho^(4/3)

    Args:
      rho: (G,) density, Bohr^-3.
    Returns:
      (G,) exchange energy per volume, Hartree/Bohr^3; 0 where rho/2 <= 1e-15.
    """
    rho = _as_f64(rho)
    mask = _screen_spin(rho, _THR_X)
    r = _safe(rho, mask)
    e = -C_SLATER * r * jnp.cbrt(r)
    return jnp.where(mask, e, 0.0)


def _gga_inputs(rho, sigma, thr: float, screen: Callable):
    """The screened GGA inputs: (mask, safe rho, floored sigma) in float64.

    ``screen`` is `_screen_spin` (exchange: libxc screens rho/2) or `_screen_total`.
    """
    rho, sigma = _as_f64(rho), _as_f64(sigma)
    mask = screen(rho, thr)
    return mask, _safe(rho, mask), _floor_sigma(sigma, mask, thr)


def _x_spin_sq(r: jax.Array, s: jax.Array) -> jax.Array:
    """Squared spin reduced gradient x_s^2 = |grad rho_s|^2 / rho_s^(8/3), closed shell.

    With rho_s = rho/2 and |grad rho_s| = |grad rho|/2:  x_s^2 = 2^(2/3) sigma / rho^(8/3).
    """
    r13 = jnp.cbrt(r)
    return _CBRT2**2 * s / (r * r13) ** 2


def b88_exchange(rho: jax.Array, sigma: jax.Array, beta: float = 0.0042, gamma: float = 6.0) -> jax.Array:
    """Becke 88 GGA exchange, libxc ``GGA_X_B88`` (id 106).

    e_x(r) = e_x^LDA(rho) * F(x_s),
    F(x) = 1 + beta/X_FACTOR_C * x^2 / (1 + gamma*beta*x*asinh(x)),
    x_s = |grad rho_s| / rho_s^(4/3) = 2^(1/3) sqrt(sigma) / rho^(4/3),
    X_FACTOR_C = 3/8 (3/pi)^(1/3) 4^(2/3);  beta = 0.0042, gamma = 6.

    Args:
      rho: (G,) density, Bohr^-3.
      sigma: (G,) |grad rho|^2, Bohr^-8.
    Returns:
      (G,) energy per volume, Hartree/Bohr^3; 0 where rho/2 <= 1e-15.
    """
    mask, r, s = _gga_inputs(rho, sigma, _THR_X, _screen_spin)
    x2 = _x_spin_sq(r, s)
    x = jnp.sqrt(x2)
    fx = 1.0 + beta / X_FACTOR_C * x2 / (1.0 + gamma * beta * x * jnp.arcsinh(x))
    e = -C_SLATER * r * jnp.cbrt(r) * fx
    return jnp.where(mask, e, 0.0)


PBE_KAPPA = 0.8040
PBE_MU = 0.2195149727645171  # libxc MU_PBE = beta*pi^2/3, beta = 0.06672455060314922


def pbe_exchange(rho: jax.Array, sigma: jax.Array) -> jax.Array:
    """PBE GGA exchange, libxc ``GGA_X_PBE`` (id 101).

    e_x(r) = e_x^LDA(rho) * F(s),  F(s) = 1 + kappa - kappa^2 / (kappa + mu s^2),
    s = X2S * x_s = |grad rho| / (2 (3 pi^2)^(1/3) rho^(4/3)),
    kappa = 0.804, mu = 0.2195149727645171.

    Arguments, units and screening as `b88_exchange`.
    """
    mask, r, s = _gga_inputs(rho, sigma, _THR_X, _screen_spin)
    s2 = X2S**2 * _x_spin_sq(r, s)
    fx = 1.0 + PBE_KAPPA * (1.0 - PBE_KAPPA / (PBE_KAPPA + PBE_MU * s2))
    e = -C_SLATER * r * jnp.cbrt(r) * fx
    return jnp.where(mask, e, 0.0)


# ----------------------------------------------------------------------------
# LDA correlation
# ----------------------------------------------------------------------------
def _vwn_f_aux(A: float, b: float, c: float, x0: float, rs: jax.Array) -> jax.Array:
    """VWN interpolation formula (libxc maple/vwn.mpl ``f_aux``), Hartree/particle.

    With x = sqrt(rs), X(x) = x^2 + b x + c, Q = sqrt(4c - b^2):
      eps = A [ ln(x^2/X) + (2b/Q - f2 * 2(2 x0 + b)/Q) atan(Q/(2x + b))
                - f2 ln((x - x0)^2 / X) ],   f2 = b x0 / X(x0).
    """
    q = math.sqrt(4.0 * c - b * b)
    f1 = 2.0 * b / q
    f2 = b * x0 / (x0 * x0 + b * x0 + c)
    f3 = 2.0 * (2.0 * x0 + b) / q
    x = jnp.sqrt(rs)
    fx = rs + b * x + c
    return A * (
        jnp.log(rs / fx) + (f1 - f2 * f3) * jnp.arctan(q / (2.0 * x + b)) - f2 * jnp.log((x - x0) ** 2 / fx)
    )


def _lda_c(rho: jax.Array, params: Tuple[float, float, float, float]) -> jax.Array:
    rho = _as_f64(rho)
    mask = _screen_total(rho, _THR_VWN)
    r = _safe(rho, mask)
    rs = RS_FACTOR / jnp.cbrt(r)
    e = r * _vwn_f_aux(*params, rs)
    return jnp.where(mask, e, 0.0)


# paramagnetic parameters (Rydberg values of the paper halved to Hartree)
_VWN5_PARA = (0.0310907, 3.72744, 12.9352, -0.10498)
_VWN_RPA_PARA = (0.0310907, 13.0720, 42.7198, -0.409286)


def vwn5_correlation(rho: jax.Array) -> jax.Array:
    """VWN5 LDA correlation (Vosko-Wilk-Nusair fit to Ceperley-Alder), libxc
    ``LDA_C_VWN`` (id 7, PySCF 'VWN' / 'VWN5').  Closed shell (zeta = 0):

    e_c(r) = rho * f_aux(A=0.0310907, b=3.72744, c=12.9352, x0=-0.10498; rs),
    rs = (3/(4 pi rho))^(1/3); see ``_vwn_f_aux`` for the formula.

    Args:
      rho: (G,) density, Bohr^-3.
    Returns:
      (G,) energy per volume, Hartree/Bohr^3; 0 where rho < 1e-15.
    """
    return _lda_c(rho, _VWN5_PARA)


def vwn_rpa_correlation(rho: jax.Array) -> jax.Array:
    """VWN RPA LDA correlation, libxc ``LDA_C_VWN_RPA`` (id 8, PySCF 'VWN3' /
    'VWNRPA'; the LDA part of PySCF's 'B3LYP' since PySCF 2.3).  Closed shell:

    e_c(r) = rho * f_aux(A=0.0310907, b=13.0720, c=42.7198, x0=-0.409286; rs).

    Args:
      rho: (G,) density, Bohr^-3.
    Returns:
      (G,) energy per volume, Hartree/Bohr^3; 0 where rho < 1e-15.
    """
    return _lda_c(rho, _VWN_RPA_PARA)


# PW92 with libxc's "modified" (more digits) parameters, paramagnetic channel
_PW_A, _PW_ALPHA1 = 0.0310907, 0.21370
_PW_BETA = (7.5957, 3.5876, 1.6382, 0.49294)


def _pw92_mod_unpolarised(rs: jax.Array) -> jax.Array:
    """Perdew-Wang 92 correlation per particle at zeta = 0 (libxc LDA_C_PW_MOD).

    eps = -2A (1 + a1 rs) ln(1 + 1/(2A (b1 rs^1/2 + b2 rs + b3 rs^3/2 + b4 rs^2))).
    """
    b1, b2, b3, b4 = _PW_BETA
    srs = jnp.sqrt(rs)
    g = b1 * srs + b2 * rs + b3 * rs * srs + b4 * rs * rs
    return -2.0 * _PW_A * (1.0 + _PW_ALPHA1 * rs) * jnp.log1p(1.0 / (2.0 * _PW_A * g))


# ----------------------------------------------------------------------------
# GGA correlation
# ----------------------------------------------------------------------------
PBE_BETA = 0.06672455060314922
PBE_GAMMA = (1.0 - math.log(2.0)) / _PI**2


def pbe_correlation(rho: jax.Array, sigma: jax.Array) -> jax.Array:
    """PBE GGA correlation, libxc ``GGA_C_PBE`` (id 130).  Closed shell (phi = 1):

    e_c(r) = rho * [eps_c^PW92(rs) + H(rs, t)],
    H = gamma ln(1 + beta/gamma * t^2 (1 + A t^2) / (1 + A t^2 + A^2 t^4)),
    A = beta / (gamma (exp(-eps_c^PW92/gamma) - 1)),
    t^2 = sigma / (16 * 2^(2/3) * rs * rho^(8/3))  (= |grad rho|^2/(2 k_s rho)^2),
    beta = 0.06672455060314922, gamma = (1 - ln 2)/pi^2,
    eps_c^PW92 with libxc's PW_MOD parameters.

    Args:
      rho: (G,) density, Bohr^-3.
      sigma: (G,) |grad rho|^2, Bohr^-8.
    Returns:
      (G,) energy per volume, Hartree/Bohr^3; 0 where rho < 1e-12.
    """
    mask, r, s = _gga_inputs(rho, sigma, _THR_PBE_C, _screen_total)
    r13 = jnp.cbrt(r)
    rs = RS_FACTOR / r13
    ec = _pw92_mod_unpolarised(rs)
    t2 = s / (r * r13) ** 2 / (16.0 * _CBRT2**2 * rs)
    em1 = jnp.expm1(-ec / PBE_GAMMA)  # > 0
    a = PBE_BETA / (PBE_GAMMA * em1)
    f1 = t2 + a * t2 * t2
    # eps_c + H rewritten without the catastrophic cancellation eps_c + H -> 0
    # at large t:  eps_c + H = gamma * log1p(-E / ((1 + E) (1 + A f1))),
    # E = exp(-eps_c/gamma) - 1.  (Algebraically identical to libxc's form.)
    eps = PBE_GAMMA * jnp.log1p(-em1 / ((1.0 + em1) * (1.0 + a * f1)))
    return jnp.where(mask, r * eps, 0.0)


LYP_A, LYP_B, LYP_C, LYP_D = 0.04918, 0.132, 0.2533, 0.349


def lyp_correlation(rho: jax.Array, sigma: jax.Array) -> jax.Array:
    """Lee-Yang-Parr GGA correlation, libxc ``GGA_C_LYP`` (id 131), closed shell.

    With r = rho^(-1/3), x^2 = sigma / rho^(8/3), w = b exp(-c r)/(1 + d r),
    delta = (c + d/(1 + d r)) r, C_F = 3/10 (3 pi^2)^(2/3):
      eps = a [ -1/(1 + d r) + w ( -x^2 ((47 - 7 delta)/72 - 2/3) - C_F
                 + 2^(-8/3) x_s^2 ((5/2 - delta/18)/2 + (delta - 11)/36 - 5/6) ) ],
    x_s^2 = 2^(2/3) x^2 (libxc maple/gga_exc/gga_c_lyp.mpl at zeta = 0);
    a, b, c, d = 0.04918, 0.132, 0.2533, 0.349.  e_c(r) = rho * eps.

    Arguments and units as `pbe_correlation`; 0 where rho < 1e-14.
    """
    mask, r, s = _gga_inputs(rho, sigma, _THR_LYP, _screen_total)
    r13 = jnp.cbrt(r)
    rr = 1.0 / r13
    xt2 = s / (r * r13) ** 2
    xs2 = _CBRT2**2 * xt2
    cf = 0.3 * (3.0 * _PI**2) ** (2.0 / 3.0)
    aux6 = 2.0 ** (-8.0 / 3.0)
    aux4 = aux6 / 4.0
    aux5 = aux4 / 18.0
    dpr = 1.0 + LYP_D * rr
    omega = LYP_B * jnp.exp(-LYP_C * rr) / dpr
    delta = (LYP_C + LYP_D / dpr) * rr
    t1 = -1.0 / dpr
    t2 = -xt2 * ((47.0 - 7.0 * delta) / 72.0 - 2.0 / 3.0)
    t3 = -cf
    t4 = aux4 * (2.5 - delta / 18.0) * 2.0 * xs2
    t5 = aux5 * (delta - 11.0) * 2.0 * xs2
    t6 = -aux6 * (4.0 / 3.0 - 0.5) * xs2
    eps = LYP_A * (t1 + omega * (t2 + t3 + t4 + t5 + t6))
    return jnp.where(mask, r * eps, 0.0)


# ----------------------------------------------------------------------------
# functionals
# ----------------------------------------------------------------------------
def _lda_term(fn: Callable) -> Callable:
    return lambda rho, sigma: fn(rho)


# libxc HYB_GGA_XC_B3LYP(5) mixing coefficients, evaluated exactly as libxc
_B3_X_LDA = 1.0 - 0.20 - 0.72  # 0.08000000000000007
_B3_X_B88 = 0.72
_B3_C_LDA = 1.0 - 0.81  # 0.18999999999999995
_B3_C_LYP = 0.81

# canonical name -> (family, hyb, ((coef, fn(rho, sigma)), ...))
_TABLE = {
    "hf": ("hf", 1.0, ()),
    "lda,vwn": ("lda", 0.0, ((1.0, _lda_term(slater_exchange)), (1.0, _lda_term(vwn5_correlation)))),
    "pbe": ("gga", 0.0, ((1.0, pbe_exchange), (1.0, pbe_correlation))),
    # PySCF: '.2*HF + .08*SLATER + .72*B88, .81*LYP + .19*VWN' (VWN = VWN5)
    "b3lyp5": (
        "gga",
        0.2,
        (
            (0.08, _lda_term(slater_exchange)),
            (0.72, b88_exchange),
            (0.81, lyp_correlation),
            (0.19, _lda_term(vwn5_correlation)),
        ),
    ),
    # PySCF >= 2.3: libxc HYB_GGA_XC_B3LYP (id 402), VWN_RPA correlation
    "b3lyp": (
        "gga",
        0.2,
        (
            (_B3_X_LDA, _lda_term(slater_exchange)),
            (_B3_X_B88, b88_exchange),
            (_B3_C_LDA, _lda_term(vwn_rpa_correlation)),
            (_B3_C_LYP, lyp_correlation),
        ),
    ),
}

SUPPORTED: Tuple[str, ...] = tuple(_TABLE)

# Aliases PySCF parses to exactly the same libxc ids and coefficients.
# (Note: PySCF's bare 'lda' is Slater exchange ONLY, so it is not an alias of
# 'lda,vwn'; 'b3lyp-vwn5' parses as B3LYP minus VWN5 and is rejected.)
_ALIASES = {
    "hf,": "hf",
    "svwn": "lda,vwn",
    "lda,vwn5": "lda,vwn",
    "slater,vwn": "lda,vwn",
    "slater,vwn5": "lda,vwn",
    "lda_x,lda_c_vwn": "lda,vwn",
    "pbe,pbe": "pbe",
    "gga_x_pbe,gga_c_pbe": "pbe",
    "b3lypg": "b3lyp",
    "hyb_gga_xc_b3lyp": "b3lyp",
}


@dataclasses.dataclass(frozen=True)
class XCFunctional:
    """A closed-shell XC functional with PySCF's meaning of ``name``.

    Attributes:
      name: canonical lower-case PySCF spelling ('hf', 'lda,vwn', 'pbe',
        'b3lyp5', 'b3lyp').
      family: 'hf' | 'lda' | 'gga'.
      hyb: fraction a_x of exact (HF) exchange to add on top of
        ``energy_density`` (``pyscf.dft.libxc.hybrid_coeff(name)``).
    """

    name: str
    family: str
    hyb: float

    @property
    def needs_gradient(self) -> bool:
        """True when ``energy_density`` depends on sigma (GGA)."""
        return self.family == "gga"

    def energy_density(self, rho: jax.Array, sigma: jax.Array | None = None) -> jax.Array:
        """Semi-local XC energy per volume e_xc(r) = rho * eps_xc, Hartree/Bohr^3.

        Args:
          rho: (G,) total density, Bohr^-3.
          sigma: (G,) |grad rho|^2, Bohr^-8 (ignored unless GGA; may be None
            for LDA/HF).
        Returns:
          (G,) float64.  For 'hf' all zeros (only exact exchange, added
          elsewhere with weight ``hyb``).
        """
        rho = _as_f64(rho)
        terms = _TABLE[self.name][2]
        if sigma is None:
            if self.needs_gradient:
                raise ValueError(f"XC functional {self.name!r} is a GGA: sigma is required")
            sigma = jnp.zeros_like(rho)
        sigma = _as_f64(sigma)
        e = jnp.zeros_like(rho)
        for coef, fn in terms:
            e = e + coef * fn(rho, sigma)
        return e


def _normalise(name: str) -> str:
    return "".join(str(name).split()).lower()


def get_xc(name) -> XCFunctional:
    """Look up a functional by PySCF name (case- and whitespace-insensitive); an
    `XCFunctional` is returned as it is, so every function can take either.

    Raises:
      ValueError: unknown/unsupported name; the message lists SUPPORTED.
    """
    if isinstance(name, XCFunctional):
        return name
    if not isinstance(name, str):
        raise TypeError(f"xc must be a functional name such as 'b3lyp5', got {type(name).__name__}.")
    key = _normalise(name)
    key = _ALIASES.get(key, key)
    if key not in _TABLE:
        raise ValueError(
            f"Unsupported XC functional {name!r}; supported: "
            f"{', '.join(map(repr, SUPPORTED))} "
            f"(aliases: {', '.join(map(repr, sorted(_ALIASES)))})"
        )
    family, hyb, _ = _TABLE[key]
    return XCFunctional(name=key, family=family, hyb=hyb)


def functional_family(xc) -> str:
    """'hf' | 'lda' | 'gga': what a precompute must hold for functional `xc` (a name or an
    `XCFunctional`): no grid for 'hf', AO values only for 'lda', AO values and gradients
    for 'gga'. ``xc=None`` (functional not known yet) is 'gga', which holds everything."""
    return get_xc(xc).family if xc is not None else "gga"
