"""Closed-form membrane trajectories of the mock's LIF neurons and their first threshold crossing.

Between two events a neuron with drive ``v_inf``, excitatory current ``E`` and inhibitory
current ``I`` (time constants ``tau_mem``, ``tau_exc``, ``tau_inh``; rates ``a, b, c`` their
inverses) follows, with ``s`` the time since a reference point::

    V(s) = v_inf + A e^{-a s} + B e^{-b s} + C e^{-c s},   E(s) = Ê e^{-b s},   I(s) = Î e^{-c s}
    B = Ê tau_exc / (tau_exc - tau_mem),   C = -Î tau_inh / (tau_inh - tau_mem)

(``drivers.mock.physics`` keeps every synaptic time constant at least 1e-4 away from
``tau_mem``, so these coefficients stay well conditioned.) ``first_crossing`` finds the first
``s`` in an interval with ``V(s) >= theta`` exactly: ``V'`` is a sum of three exponentials, so
``e^{a s} V'(s)`` has one turning point in closed form; that splits the interval into pieces
with at most one zero of ``V'`` each, which splits it into pieces on which ``V`` is monotonic.
The first piece that ends at or above threshold holds the crossing, found by bracketed Newton.
"""

from __future__ import annotations

import math

import numba
import numpy as np

ROOT_TOL_S = 1e-15  # bracket width at which a crossing time counts as found


def psp_kernel(lag, tau_mem, tau_syn):
    """Membrane response at ``lag`` (s) to a unit current jump at 0, from rest (numerically stable
    for any pair of time constants): ``tau_syn / (tau_syn - tau_mem) * (e^{-lag/tau_syn} - e^{-lag/tau_mem})``."""
    lag, tau_mem, tau_syn = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (lag, tau_mem, tau_syn)))
    d = 1.0 / tau_syn - 1.0 / tau_mem
    em = np.exp(-lag / tau_mem)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(d == 0, lag, -np.expm1(-lag * d) / np.where(d == 0, 1.0, d))
    return em * ratio / tau_mem


def psp_peak_lag(tau_mem, tau_syn):
    """Lag (s) at which ``psp_kernel`` peaks: ``ln(tau_mem / tau_syn) / (1/tau_syn - 1/tau_mem)``."""
    tau_mem, tau_syn = np.broadcast_arrays(np.asarray(tau_mem, np.float64), np.asarray(tau_syn, np.float64))
    d = 1.0 / tau_syn - 1.0 / tau_mem
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(d == 0, tau_mem, np.log(tau_mem / tau_syn) / np.where(d == 0, 1.0, d))


def psp_max(tau_mem, tau_syn, window=np.inf):
    """Largest ``psp_kernel`` value over lags ``[0, window]`` (a hair above, as a safe bound)."""
    lag = np.minimum(psp_peak_lag(tau_mem, tau_syn), window)
    return psp_kernel(lag, tau_mem, tau_syn) * (1 + 1e-9)


@numba.njit(cache=True, inline="always", _nrt=False)
def _eval(c0, A, B, C, a, b, c, s):
    """f(s) = c0 + A e^{-as} + B e^{-bs} + C e^{-cs} and its first two derivatives."""
    ta = A * math.exp(-a * s)
    tb = B * math.exp(-b * s)
    tc = C * math.exp(-c * s) if C != 0.0 else 0.0
    return c0 + ta + tb + tc, -(a * ta + b * tb + c * tc), a * a * ta + b * b * tb + c * c * tc


@numba.njit(cache=True, _nrt=False)
def _zero_of_slope(c0, A, B, C, a, b, c, lo, hi, d_lo):
    """The zero of f' in (lo, hi), where f' changes sign once (``d_lo`` = f'(lo)); bracketed Newton."""
    x = 0.5 * (lo + hi)
    for _ in range(200):
        _, d1, d2 = _eval(c0, A, B, C, a, b, c, x)
        if (d1 > 0.0) == (d_lo > 0.0):
            lo = x
        else:
            hi = x
        if hi - lo <= ROOT_TOL_S:
            break
        step = x - d1 / d2 if d2 != 0.0 else 0.5 * (lo + hi)
        if abs(step - x) <= ROOT_TOL_S:
            return min(max(step, lo), hi)
        x = step if lo < step < hi else 0.5 * (lo + hi)
    return x


@numba.njit(cache=True, _nrt=False)
def _root(c0, A, B, C, a, b, c, lo, hi, f_lo, f_hi):
    """First s in [lo, hi] with f(s) >= 0 where f rises monotonically from ``f_lo`` < 0 to ``f_hi`` >= 0."""
    x = lo + (hi - lo) * (-f_lo) / (f_hi - f_lo)
    for _ in range(200):
        f, d1, _ = _eval(c0, A, B, C, a, b, c, x)
        if f >= 0.0:
            hi = x
        else:
            lo = x
        if hi - lo <= ROOT_TOL_S:
            break
        step = x - f / d1 if d1 > 0.0 else 0.5 * (lo + hi)
        if abs(step - x) <= ROOT_TOL_S:
            return min(max(step, lo), hi)
        x = step if lo < step < hi else 0.5 * (lo + hi)
    return hi


@numba.njit(cache=True, _nrt=False)
def first_crossing(c0, A, B, C, a, b, c, u, w):
    """First s in [u, w] with ``c0 + A e^{-as} + B e^{-bs} + C e^{-cs} >= 0``, or -1.0 if there is none.

    ``a`` differs from ``b`` and ``c``; ``b`` may equal ``c``."""
    f_u, d_u, _ = _eval(c0, A, B, C, a, b, c, u)
    if f_u >= 0.0:
        return u
    # turning point of e^{as} f'(s) = -(aA + bB e^{(a-b)s} + cC e^{(a-c)s}): at most one
    turn = w
    if B != 0.0 and C != 0.0 and b != c:
        r = -(c * C * (a - c)) / (b * B * (a - b))
        if r > 0.0:
            s = math.log(r) / (c - b)
            if u < s < w:
                turn = s
    # f' changes sign at most once in [u, turn] and once in [turn, w]: zeros z1 <= z2 split
    # [u, w] into at most three pieces on which f is monotonic
    d_turn = _eval(c0, A, B, C, a, b, c, turn)[1] if turn < w else 0.0
    d_w = _eval(c0, A, B, C, a, b, c, w)[1]
    z1, z2 = w, w
    if turn < w:
        if (d_u > 0.0) != (d_turn > 0.0) and d_u != 0.0 and d_turn != 0.0:
            z1 = _zero_of_slope(c0, A, B, C, a, b, c, u, turn, d_u)
        if (d_turn > 0.0) != (d_w > 0.0) and d_turn != 0.0 and d_w != 0.0:
            z2 = _zero_of_slope(c0, A, B, C, a, b, c, turn, w, d_turn)
    elif (d_u > 0.0) != (d_w > 0.0) and d_u != 0.0 and d_w != 0.0:
        z1 = _zero_of_slope(c0, A, B, C, a, b, c, u, w, d_u)
    lo, f_lo = u, f_u
    for hi in (min(z1, z2), max(z1, z2), w):
        if hi <= lo:
            continue
        f_hi = _eval(c0, A, B, C, a, b, c, hi)[0]
        if f_hi >= 0.0:
            return _root(c0, A, B, C, a, b, c, lo, hi, f_lo, f_hi)
        lo, f_lo = hi, f_hi
    return -1.0
