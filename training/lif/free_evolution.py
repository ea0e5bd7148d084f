"""Closed-form free evolution of one LIF neuron, as numba scalar functions (float64).

Used by the forward and the adjoint kernels. ``u = V - v_leak``; after a time s >= 0 without
input events, from (u0, i0):

    u(s) = u0 exp(-s/tau_mem) + i0 (s/tau_mem) K(s),    i(s) = i0 exp(-s/tau_syn),
    K(s) = (exp(-s/tau_syn) - exp(-s/tau_mem)) / (s (1/tau_mem - 1/tau_syn)),

with ``(s/tau_mem) K`` evaluated as a difference of exponentials when the time constants
differ by more than 0.1 % and through ``expm1`` otherwise, so that it is accurate for every
ratio, including ``tau_mem == tau_syn`` (``K = exp(-s/tau)``). See docs/eventprop.md.
"""

from __future__ import annotations

import math

import numba


@numba.njit(cache=True, inline="always")
def neuron_constants(tau_mem, tau_syn):
    """(rate_mem, rate_syn, rate_gap, syn_longer, gain, peak_eps) of one neuron.

    ``gain`` = tau_syn / (tau_syn - tau_mem) when the time constants differ by more than
    0.1 %, else 0 (see :func:`current_response`); ``peak_eps`` = tau_syn/tau_mem - 1.
    """
    rate_mem, rate_syn = 1.0 / tau_mem, 1.0 / tau_syn
    gap = tau_syn - tau_mem
    gain = tau_syn / gap if abs(gap) > 1e-3 * max(tau_syn, tau_mem) else 0.0
    return rate_mem, rate_syn, abs(rate_mem - rate_syn), tau_syn >= tau_mem, gain, tau_syn / tau_mem - 1.0


@numba.njit(cache=True, inline="always")
def current_response(s, decay_mem, decay_syn, rate_mem, rate_gap, syn_longer, gain):
    """(s/tau_mem) K(s): u at time s >= 0 of a neuron started at u = 0 with unit current.

    decay_mem = exp(-s/tau_mem), decay_syn = exp(-s/tau_syn). With ``gain`` != 0 the
    difference form gain (decay_syn - decay_mem) (absolute error <= |gain| eps <= 1000 eps);
    otherwise exp(-s/tau_long) expm1(-s g)/(-s g), exact for every ratio including 1.
    """
    if gain != 0.0:
        return gain * (decay_syn - decay_mem)
    z = min(-s * rate_gap, -1e-30)
    return (s * rate_mem) * (decay_syn if syn_longer else decay_mem) * (math.expm1(z) / z)


@numba.njit(cache=True, inline="always")
def decays(s, rate_mem, rate_syn, form):
    """(exp(-s/tau_mem), exp(-s/tau_syn)): one exponential and a square for tau ratio 2
    (form 1: tau_mem = 2 tau_syn) or 1/2 (form 2), two otherwise (form 0)."""
    if form == 1:
        decay_mem = math.exp(-s * rate_mem)
        return decay_mem, decay_mem * decay_mem
    if form == 2:
        decay_syn = math.exp(-s * rate_syn)
        return decay_syn * decay_syn, decay_syn
    return math.exp(-s * rate_mem), math.exp(-s * rate_syn)


@numba.njit(cache=True, inline="always")
def propagators(s, rate_mem, rate_syn, rate_gap, syn_longer, gain, form):
    """(exp(-s/tau_mem), exp(-s/tau_syn), (s/tau_mem) K(s)): the free evolution over a time s >= 0."""
    decay_mem, decay_syn = decays(s, rate_mem, rate_syn, form)
    return decay_mem, decay_syn, current_response(s, decay_mem, decay_syn, rate_mem, rate_gap, syn_longer, gain)


@numba.njit(cache=True, inline="always")
def evolve(u0, i0, s, rate_mem, rate_syn, rate_gap, syn_longer, gain, form):
    """(u, i) after a free evolution of length s >= 0 from (u0, i0)."""
    decay_mem, decay_syn, response = propagators(s, rate_mem, rate_syn, rate_gap, syn_longer, gain, form)
    return u0 * decay_mem + i0 * response, i0 * decay_syn


@numba.njit(cache=True, inline="always")
def gap_propagators(times, n_events, t_max, consts, form, table, filled, gap):
    """Make sure table[:, gap] holds the propagators over gap ``gap`` and return the new count of
    filled gaps (``filled`` on entry: gaps 0..filled-1 are there). Gap g runs from event g - 1
    (time 0 for g = 0) to event g (t_max for g = n_events) of the sorted event ``times``; the
    table (3, >= n_events + 1) is filled in order, as far as some neuron needs it. With the same
    time constants in every neuron of a layer, the kernels share it across neurons."""
    rate_mem, rate_syn, rate_gap, syn_longer, gain, _ = consts
    for g in range(filled, gap + 1):
        start = times[g - 1] if g > 0 else 0.0
        end = times[g] if g < n_events else t_max
        table[0, g], table[1, g], table[2, g] = propagators(
            end - start, rate_mem, rate_syn, rate_gap, syn_longer, gain, form
        )
    return max(filled, gap + 1)
