"""Exact event-driven forward pass of a layer of current-based LIF neurons (a numba kernel).

The kernel walks, per trial and neuron, once through the sorted input events, testing each
free-evolution segment for a threshold crossing and solving for it (closed form for tau
ratio 2 or 1/2, safeguarded Newton otherwise). It computes in float64 whatever the working
dtype and casts the results back. See docs/eventprop.md.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from .events import Events, as_float64, event_arrays
from .free_evolution import CLOSED_FORMS, evolve, neuron_constants
from .parameters import Dynamics
from .threads import over_batch

_NEWTON_MAX_ITER = 100


@numba.njit(cache=True, inline="always")
def _peak_time(u0, i0, tau_syn, peak_eps):
    """Time of the maximum of u after (u0, i0) for i0 > max(u0, 0); inf if u rises forever.

    Solves i(s) = u(s): s* = tau_syn log1p(eps q) / eps with eps = tau_syn/tau_mem - 1 and
    q = 1 - u0/i0, written as tau_syn q log1p(z)/z, z = eps q, stable for eps -> 0.
    """
    q = 1.0 - u0 / i0
    z = peak_eps * q
    if z <= -1.0:
        return math.inf
    if z == 0.0:
        return tau_syn * q
    return tau_syn * q * (math.log1p(z) / z)


@numba.njit(cache=True, inline="always")
def _solve_quadratic(u0, i0, hi, theta, tau_mem, tau_syn, form):
    """Closed-form crossing time for tau_mem = 2 tau_syn (form 1) or tau_syn = 2 tau_mem (2).

    With y = exp(-s/tau_y) (tau_y the longer constant) u = a y^2 + b y; the crossing is the
    root of a y^2 + b y - theta in [exp(-hi/tau_y), 1], taken from the cancellation-free pair
    of root formulas.
    """
    if form == 1:
        a, b, tau_y = -i0, u0 + i0, tau_mem
    else:
        a, b, tau_y = u0 - 2.0 * i0, 2.0 * i0, tau_syn
    root_d = math.sqrt(max(b * b + 4.0 * a * theta, 0.0))
    q = -0.5 * (b + root_d) if b >= 0.0 else -0.5 * (b - root_d)
    y_lo = math.exp(-hi / tau_y)
    slack = 1e-6 * (1.0 - y_lo)
    y = q / a if a != 0.0 else 1.0
    if q != 0.0 and y_lo - slack <= -theta / q <= 1.0 + slack:
        y = -theta / q
    return -tau_y * math.log(min(max(y, y_lo), 1.0))


@numba.njit(cache=True, inline="always")
def _solve_newton(u0, i0, hi, theta, rate_mem, rate_syn, rate_gap, syn_longer, gain, tol):
    """Newton's method on u(s) = theta, safeguarded by bisection on the bracket [0, hi].

    Returns after a Newton step below tol (that step applied: quadratic convergence makes
    the result exact to rounding) or when the bracket is narrower than tol.
    """
    lo = 0.0
    u_hi, _ = evolve(u0, i0, hi, rate_mem, rate_syn, rate_gap, syn_longer, gain, 0)
    x = hi * min(max((theta - u0) / max(u_hi - u0, 1e-300), 0.0), 1.0)
    for _ in range(_NEWTON_MAX_ITER):
        u, i = evolve(u0, i0, x, rate_mem, rate_syn, rate_gap, syn_longer, gain, 0)
        f = u - theta
        slope = (i - u) * rate_mem
        if f < 0.0:
            lo = x
        else:
            hi = x
        step = f / slope if slope > 0.0 else math.inf
        if lo <= x - step <= hi:
            x -= step
            if abs(step) <= tol:
                return x
        else:
            x = 0.5 * (lo + hi)
        if hi - lo <= tol:
            return x
    return x


@numba.njit(cache=True, nogil=True)
def _simulate_kernel(
    times,
    source,
    weights,
    tau_mem,
    tau_syn,
    theta,
    u_reset,
    t_refrac,
    form,
    t_max,
    tol,
    out_times,
    out_currents,
    overflow,
):
    """Fill out_times / out_currents (batch, n_out, max_spikes) and overflow (batch, n_out).

    ``times`` (batch, E) sorted event times clamped to t_max from presynaptic ``source``
    (batch, E) through ``weights`` (n_in, n_out); per-neuron parameters (n_out,); ``form``
    0 (Newton), 1 or 2 (see _solve_quadratic). On entry out_times is inf, out_currents 0
    and overflow False.

    Per neuron the state (u, i) is carried from event to event; each segment [t, t_next] is
    tested for a crossing: it needs i > u (u rising) and i > theta (u stays below i on its
    rise), and then happens iff u(t_next) >= theta (the root is then the only one in the
    segment, as u has a single maximum) or the maximum lies inside and reaches theta (there
    u = i). After a spike u is held at u_reset for t_refrac and the scan goes on.
    """
    batch, n_events = times.shape
    n_out = weights.shape[1]
    max_spikes = out_times.shape[2]
    for b in range(batch):
        for j in range(n_out):
            rate_mem, rate_syn, rate_gap, syn_longer, gain, peak_eps = neuron_constants(tau_mem[j], tau_syn[j])
            th = theta[j]
            u, i, t, t_free, m = 0.0, 0.0, 0.0, 0.0, 0
            for e in range(n_events + 1):
                t_next = times[b, e] if e < n_events else t_max
                while not overflow[b, j]:
                    if t < t_free:  # refractory: u is held at the reset, the current decays
                        if t_next <= t_free:
                            i *= math.exp(-(t_next - t) * rate_syn)
                            t = t_next
                            break
                        i *= math.exp(-(t_free - t) * rate_syn)
                        t, u = t_free, u_reset[j]
                    length = t_next - t
                    u_end, i_end = evolve(u, i, length, rate_mem, rate_syn, rate_gap, syn_longer, gain, form)
                    if length > 0.0 and i > u and i > th:
                        hi = length
                        crossing = u_end >= th
                        if not crossing and i_end < u_end:  # the maximum is inside the segment
                            hi = min(_peak_time(u, i, tau_syn[j], peak_eps), length)
                            crossing = i * math.exp(-hi * rate_syn) >= th
                        if crossing:
                            if form == 0:
                                s = _solve_newton(u, i, hi, th, rate_mem, rate_syn, rate_gap, syn_longer, gain, tol)
                            else:
                                s = _solve_quadratic(u, i, hi, th, tau_mem[j], tau_syn[j], form)
                            if t + s < t_max:
                                if m == max_spikes:
                                    overflow[b, j] = True
                                    break
                                i *= math.exp(-s * rate_syn)
                                t += s
                                out_times[b, j, m] = t
                                out_currents[b, j, m] = i
                                m += 1
                                u, t_free = u_reset[j], t + t_refrac[j]
                                continue
                    u, i, t = u_end, i_end, t_next
                    break
                if overflow[b, j]:
                    break
                if e < n_events:
                    i += weights[source[b, e], j]


def simulate(events: Events, dyn: Dynamics, *, t_max: float, max_spikes: int):
    """Spike times (batch, n_out, max_spikes), inf for no spike; the synaptic current at each
    spike (0 where none); and the overflow mask (batch, n_out): the neuron would have
    spiked again after its max_spikes-th spike. All in the dtype of the event weights.
    """
    batch, n_out = events.times.shape[0], events.weights.shape[1]
    times = np.full((batch, n_out, max_spikes), np.inf)
    currents = np.zeros_like(times)
    overflow = np.zeros((batch, n_out), dtype=np.bool_)
    if events.times.shape[1] > 0:
        params = [as_float64(x) for x in (dyn.tau_mem, dyn.tau_syn, dyn.theta, dyn.u_reset, dyn.t_refrac)]
        form, tol = CLOSED_FORMS[dyn.closed_form], 4 * np.finfo(np.float64).eps * t_max
        ev_times, source, weights = event_arrays(events)
        over_batch(
            lambda lo, hi: _simulate_kernel(
                ev_times[lo:hi],
                source[lo:hi],
                weights,
                *params,
                form,
                float(t_max),
                tol,
                times[lo:hi],
                currents[lo:hi],
                overflow[lo:hi],
            ),
            batch,
        )
    dtype = events.weights.dtype
    return torch.from_numpy(times).to(dtype), torch.from_numpy(currents).to(dtype), torch.from_numpy(overflow)
