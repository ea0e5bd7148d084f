"""The model's state at measured spike times (a numba kernel), for EventProp on measured spikes.

For each measured spike T_m of a neuron the kernel replays the synaptic current from the
input events and records what the adjoint needs: the drive tau_mem dV/dt = I(T_m) - theta
just before the spike (raised to a floor where the model could not have spiked), the end
of the refractory hold r = min(T_m + t_refrac, T_{m+1}) and I(r) - u_reset there.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .events import trial_events
from .forward_kernel import DRIVE, DRIVE_AFTER, RESTART, TIME
from .parameters import T_REFRAC, TAU_SYN, THETA, U_RESET, Dynamics
from .threads import chunk_size, claim, finish, run_kernel


@numba.njit(cache=True, inline="always")
def _advance(target, i, t, e, times, source, n_events, weights, j, rate_syn):
    """Advance (I, its time t, next event e) over the events before ``target``."""
    while e < n_events and times[e] < target:
        i = i * math.exp(-(times[e] - t) * rate_syn) + weights[source[e], j]
        t, e = times[e], e + 1
    return i, t, e


@numba.njit(cache=True, nogil=True)
def _replay_kernel(counter, size, *args):
    """Replay chunks of ``size`` trials, claimed from ``counter``, with _replay_trials."""
    batch = args[0].shape[0]
    while True:
        lo = claim(counter) * size
        if lo >= batch:
            break
        _replay_trials(lo, min(batch, lo + size), *args)
        finish(counter)


@numba.njit(cache=True)
def _replay_trials(lo, hi, inputs, k, weights, params, t_max, floor, spikes, out, clamped, order, counts):
    """Write the rows of trials lo..hi-1 of ``out`` (batch, n_out, M, 4), the spike record of
    forward_kernel.Simulation at the measured ``spikes`` (batch, n_out, M; ascending per
    neuron, inf-padded, all < t_max), and count the drives raised to ``floor * theta`` in
    ``clamped`` (batch,). Events as in the forward kernel; I(t) counts the events strictly
    before t.
    """
    n_out, n_spikes = weights.shape[1], out.shape[2]
    ev_times, ev_source = np.empty(inputs.shape[1]), np.empty(inputs.shape[1], dtype=np.int64)
    for b in range(lo, hi):
        n_events = trial_events(inputs[b], k, t_max, order[b], ev_times, ev_source)
        counts[b] = n_events
        clamped[b] = 0
        for j in range(n_out):
            rate_syn, th, u_reset = 1.0 / params[TAU_SYN, j], params[THETA, j], params[U_RESET, j]
            out[b, j] = 0.0
            out[b, j, :, TIME] = spikes[b, j]
            i, t, e = 0.0, 0.0, 0
            for m in range(n_spikes):
                spike = out[b, j, m, TIME]
                if not spike < t_max:
                    break
                following = out[b, j, m + 1, TIME] if m + 1 < n_spikes else math.inf
                restart = min(spike + params[T_REFRAC, j], following)
                # (_advance takes arrays, which numba reference-counts atomically: entered only with work to do)
                if e < n_events and ev_times[e] < spike:
                    i, t, e = _advance(spike, i, t, e, ev_times, ev_source, n_events, weights, j, rate_syn)
                at_spike = i * math.exp(-(spike - t) * rate_syn)
                if e < n_events and ev_times[e] < restart:
                    i, t, e = _advance(restart, i, t, e, ev_times, ev_source, n_events, weights, j, rate_syn)
                at_restart = i * math.exp(-(restart - t) * rate_syn)
                drive = at_spike - th
                if drive < floor * th:
                    drive = floor * th
                    clamped[b] += 1
                out[b, j, m, DRIVE] = drive
                out[b, j, m, RESTART] = restart
                out[b, j, m, DRIVE_AFTER] = at_restart - u_reset


def replay_state(
    inputs: np.ndarray, k: int, weights: np.ndarray, dyn: Dynamics, spikes: np.ndarray, *, t_max: float, floor: float
):
    """(spike record (batch, n_out, M, 4) as in forward_kernel.Simulation, clamped count, order, counts)
    at the measured ``spikes`` (batch, n_out, M): float64, ascending, inf-padded, < t_max."""
    batch = inputs.shape[0]
    out = np.empty((*spikes.shape, 4))  # the kernel initialises every row it owns
    clamped = np.empty(batch, dtype=np.int64)
    counts = np.empty(batch, dtype=np.int64)
    order = np.argsort(inputs, axis=1, kind="quicksort")  # ties: see trial_events
    size = chunk_size(batch)
    run_kernel(
        lambda counter: _replay_kernel(
            counter, size, inputs, k, weights, dyn.values, t_max, floor, spikes, out, clamped, order, counts
        ),
        batch,
        size,
    )
    return out, int(clamped.sum()), order, counts
