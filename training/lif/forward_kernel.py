"""Exact event-driven forward pass of a layer of current-based LIF neurons (a numba kernel).

Per trial and neuron the kernel walks once through the sorted input events, carrying
(u, I) from event to event (``u = V - v_leak``); each free-evolution segment is tested for
a threshold crossing, which is solved for in closed form (tau ratio 2 or 1/2) or by
safeguarded Newton. Membrane samples are read off the segment that holds them, without
splitting it, so asking for voltages does not change a spike time. Everything is computed
in float64. See docs/eventprop.md.

Numba counts the references of an array atomically (a locked instruction, a cache line that
threads share) each time the array enters an inlined helper; in the per-segment loop the
helpers that take arrays are therefore entered only when they have work to do.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from .events import trial_events
from .free_evolution import evolve, gap_propagators, neuron_constants, propagators
from .parameters import T_REFRAC, TAU_MEM, TAU_SYN, THETA, U_RESET, V_LEAK, V_RESET, Dynamics
from .threads import chunk_size, claim, finish, run_kernel

_NEWTON_MAX_ITER = 100
TIME, DRIVE, RESTART, DRIVE_AFTER = range(4)  # rows of the spike record (batch, n_out, max_spikes, 4)


class Simulation(NamedTuple):
    """Result of :func:`simulate`, numpy arrays (float64 unless said).

    ``spikes`` (batch, n_out, max_spikes, 4), fields (last axis):
        TIME         spike times, inf where none;
        DRIVE        tau_mem dV/dt just before the spike, I - theta, floored at floor_scale * theta;
        RESTART      end of the refractory hold after the spike, spike + t_refrac;
        DRIVE_AFTER  I - u_reset at that restart (events before it); 0 if it is at or after t_max.
    ``overflow`` (batch, n_out) bool; ``voltages`` (batch, n_out, S) V at the sample times,
    NaN at and after a spike beyond max_spikes; ``order`` (batch, n_in * k) int64 and
    ``counts`` (batch,) int64: the sorted input events (see events.sort_events).
    """

    spikes: np.ndarray
    overflow: np.ndarray
    voltages: np.ndarray
    order: np.ndarray
    counts: np.ndarray


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


@numba.njit(cache=True, inline="always")
def _crossing_bracket(u, i, length, u_end, i_end, th, tau_syn, consts):
    """End hi of a bracket [0, hi] holding the first time at which u, free from (u, i), reaches
    th within a segment of ``length``; -1 if it does not reach it.

    A crossing needs i > u (u rising) and i > th (u stays below i on its rise); it then
    happens iff u_end >= th (the root is then the only one, as u has a single maximum) or
    the maximum lies inside the segment and reaches th (there u = i).
    """
    if not (length > 0.0 and i > u and i > th):
        return -1.0
    if u_end >= th:
        return length
    if i_end < u_end:  # the maximum is inside the segment
        hi = min(_peak_time(u, i, tau_syn, consts[5]), length)
        if i * math.exp(-hi * consts[1]) >= th:
            return hi
    return -1.0


@numba.njit(cache=True, inline="always")
def _solve(u, i, hi, th, tau_mem, tau_syn, consts, form, tol):
    """The crossing time in the bracket [0, hi]: closed form for tau ratio 2 or 1/2, else Newton."""
    if form == 0:
        return _solve_newton(u, i, hi, th, consts[0], consts[1], consts[2], consts[3], consts[4], tol)
    return _solve_quadratic(u, i, hi, th, tau_mem, tau_syn, form)


@numba.njit(cache=True, inline="always")
def _sample_free(samples, q, t_end, u, i, t, consts, form, v_leak, voltages, b, j):
    """Write V at the samples from index q that lie before t_end, on the free evolution from
    (u, i) at time t; return the index of the first sample not written."""
    rate_mem, rate_syn, rate_gap, syn_longer, gain, _ = consts
    while q < samples.shape[0] and samples[q] < t_end:
        voltages[b, j, q] = (
            v_leak + evolve(u, i, samples[q] - t, rate_mem, rate_syn, rate_gap, syn_longer, gain, form)[0]
        )
        q += 1
    return q


@numba.njit(cache=True, inline="always")
def _sample_hold(samples, q, t_end, value, voltages, b, j):
    """Write ``value`` (the reset potential) at the samples from index q that lie before t_end."""
    while q < samples.shape[0] and samples[q] < t_end:
        voltages[b, j, q] = value
        q += 1
    return q


@numba.njit(cache=True, nogil=True)
def _simulate_kernel(counter, size, *args):
    """Simulate chunks of ``size`` trials, claimed from ``counter``, with _simulate_trials."""
    batch = args[0].shape[0]
    while True:
        lo = claim(counter) * size
        if lo >= batch:
            break
        _simulate_trials(lo, min(batch, lo + size), *args)
        finish(counter)


@numba.njit(cache=True)
def _simulate_trials(
    lo,
    hi,
    inputs,
    k,
    weights,
    params,
    form,
    uniform,
    t_max,
    tol,
    floor_scale,
    samples,
    out,
    overflow,
    voltages,
    order,
    counts,
):
    """Simulate trials lo..hi-1 of a layer; write their rows of the outputs of :class:`Simulation`.

    ``inputs`` (batch, n_in * k) input spike times, spike f from presynaptic neuron f // k,
    through ``weights`` (n_in, n_out); ``params`` (7, n_out) as Dynamics.values; ``samples``
    (1 or batch, S) ascending sample times. The rows of the outputs are set here (TIME inf
    and the other fields 0, overflow False, voltages NaN where not written). After a spike u
    is held at u_reset for t_refrac (I keeps decaying) and the walk goes on; a crossing after
    the max_spikes-th spike sets ``overflow`` and ends the neuron's walk.
    """
    n_out = weights.shape[1]
    max_spikes = out.shape[2]
    gaps = np.empty((3, inputs.shape[1] + 1))
    ev_times, ev_source = np.empty(inputs.shape[1]), np.empty(inputs.shape[1], dtype=np.int64)
    shared = neuron_constants(params[TAU_MEM, 0], params[TAU_SYN, 0])  # every neuron's, if uniform
    for b in range(lo, hi):
        n_events = trial_events(inputs[b], k, t_max, order[b], ev_times, ev_source)
        counts[b] = n_events
        filled = 0  # gaps of this trial in the shared table
        trial_samples = samples[b if samples.shape[0] > 1 else 0]
        n_samples = trial_samples.shape[0]
        for j in range(n_out):
            tau_mem, tau_syn, th, u_reset = params[TAU_MEM, j], params[TAU_SYN, j], params[THETA, j], params[U_RESET, j]
            consts = shared if uniform else neuron_constants(tau_mem, tau_syn)
            rate_syn, v_leak = consts[1], params[V_LEAK, j]
            for m in range(max_spikes):
                out[b, j, m, TIME], out[b, j, m, DRIVE], out[b, j, m, RESTART], out[b, j, m, DRIVE_AFTER] = (
                    np.inf,
                    0.0,
                    0.0,
                    0.0,
                )
            for q in range(trial_samples.shape[0]):
                voltages[b, j, q] = np.nan
            overflow[b, j] = False
            u, i, t, t_free, t_next, m, q, held = 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, False
            for e in range(n_events + 1):
                t_gap, t_next = t_next, ev_times[e] if e < n_events else t_max
                while True:
                    if held:  # refractory: u is held at the reset, the current decays
                        if t_next < t_free:
                            if q < n_samples:
                                q = _sample_hold(trial_samples, q, t_next, params[V_RESET, j], voltages, b, j)
                            i *= math.exp(-(t_next - t) * rate_syn)
                            t = t_next
                            break
                        if q < n_samples:
                            q = _sample_hold(trial_samples, q, t_free, params[V_RESET, j], voltages, b, j)
                        if t_free > t:  # (no exponential for t_refrac = 0)
                            i *= math.exp(-(t_free - t) * rate_syn)
                        t, u, held = t_free, u_reset, False
                        out[b, j, m - 1, DRIVE_AFTER] = i - u_reset
                    length = t_next - t
                    if uniform and t == t_gap:
                        if filled <= e:  # helpers that take arrays are entered only with work to do: see above
                            filled = gap_propagators(ev_times, n_events, t_max, shared, form, gaps, filled, e)
                        decay_mem, decay_syn, response = gaps[0, e], gaps[1, e], gaps[2, e]
                    else:
                        decay_mem, decay_syn, response = propagators(
                            length, consts[0], rate_syn, consts[2], consts[3], consts[4], form
                        )
                    u_end, i_end = u * decay_mem + i * response, i * decay_syn
                    hi_s = _crossing_bracket(u, i, length, u_end, i_end, th, tau_syn, consts)
                    if hi_s >= 0.0 and m == max_spikes and t_next < t_max and q == trial_samples.shape[0]:
                        overflow[b, j] = True  # one more crossing inside the trial: its time is not needed
                        break
                    s = -1.0 if hi_s < 0.0 else _solve(u, i, hi_s, th, tau_mem, tau_syn, consts, form, tol)
                    if s >= 0.0 and t + s < t_max:
                        if q < n_samples:
                            q = _sample_free(trial_samples, q, t + s, u, i, t, consts, form, v_leak, voltages, b, j)
                        if m == max_spikes:
                            overflow[b, j] = True
                            break
                        i *= math.exp(-s * rate_syn)
                        t += s
                        out[b, j, m, TIME] = t
                        out[b, j, m, DRIVE] = max(i - th, floor_scale * th)
                        t_free = t + params[T_REFRAC, j]
                        out[b, j, m, RESTART] = t_free
                        u, m, held = u_reset, m + 1, True
                        continue
                    if q < n_samples:
                        q = _sample_free(trial_samples, q, t_next, u, i, t, consts, form, v_leak, voltages, b, j)
                    u, i, t = u_end, i_end, t_next
                    break
                if overflow[b, j]:
                    break
                if e < n_events:
                    i += weights[ev_source[e], j]


def simulate(
    inputs: np.ndarray,
    k: int,
    weights: np.ndarray,
    dyn: Dynamics,
    samples: np.ndarray,
    *,
    t_max: float,
    max_spikes: int,
) -> Simulation:
    """Run the forward kernel over the batch (chunks of trials on threads).

    inputs (batch, n_in * k), weights (n_in, n_out), samples (1 or batch, S): float64.
    """
    batch, n_out = inputs.shape[0], weights.shape[1]
    out = np.empty((batch, n_out, max_spikes, 4))  # the kernel initialises every row it owns
    overflow = np.empty((batch, n_out), dtype=np.bool_)
    voltages = np.empty((batch, n_out, samples.shape[1]))
    counts = np.empty(batch, dtype=np.int64)
    tol = 4 * np.finfo(np.float64).eps * t_max
    order = np.argsort(inputs, axis=1, kind="quicksort")  # numpy's vectorised sort; ties: see trial_events
    args = (dyn.values, dyn.form, dyn.uniform, t_max, tol, dyn.floor_scale, samples, out, overflow, voltages)
    size = chunk_size(batch)
    run_kernel(lambda counter: _simulate_kernel(counter, size, inputs, k, weights, *args, order, counts), batch, size)
    return Simulation(out, overflow, voltages, order, counts)
