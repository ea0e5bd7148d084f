"""EventProp adjoint of an LIF layer as one reverse sweep per trial and neuron (a numba kernel).

Conventions of docs/eventprop.md: ``lambda_V``, ``lambda_I`` are the adjoints of
Wunderlich & Pehle (2021), ``u = V - v_leak``, ``theta = v_th - v_leak``. Going back in time
from t_max with lambda_V = lambda_I = 0, between points

    lambda_V(t - L) = lambda_V(t) exp(-L/tau_mem),
    lambda_I(t - L) = lambda_I(t) exp(-L/tau_syn) + lambda_V(t) (tau_mem/tau_syn) (L/tau_mem) K(L),

and at the points (processed in this order where times tie):

- input event e from neuron i at t_e: dL/dw_ij += -tau_syn lambda_I, dL/dt_e += w_ij (lambda_V - lambda_I);
- membrane sample at t_k in a free segment: lambda_V -= (dL/dV(t_k)) / tau_mem (nothing in a hold);
- end r of the hold after spike m: carry = (I(r) - u_reset) lambda_V(r+), then lambda_V = 0;
- spike m at T_m: lambda_V = (dL/dT_m + carry) / (I(T_m) - theta).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .events import gather_events
from .forward_kernel import DRIVE, DRIVE_AFTER, RESTART, TIME
from .free_evolution import gap_propagators, neuron_constants, propagators
from .parameters import TAU_MEM, TAU_SYN, Dynamics
from .threads import chunk_size, claim, finish, run_kernel

_NO_POINT = -math.inf


@numba.njit(cache=True, inline="always")
def _back(lam_v, lam_i, decay_mem, decay_syn, response, mem_over_syn):
    """(lambda_V, lambda_I) earlier by the time over which the free evolution has these propagators."""
    return lam_v * decay_mem, lam_i * decay_syn + lam_v * mem_over_syn * response


@numba.njit(cache=True, nogil=True)
def _adjoint_kernel(counter, size, partial, *args):
    """Run chunks of ``size`` trials, claimed from ``counter``, through _adjoint_trials; chunk c
    adds its weight gradient to partial[c]."""
    batch = args[0].shape[0]
    while True:
        lo = claim(counter) * size
        if lo >= batch:
            break
        _adjoint_trials(lo, min(batch, lo + size), *args, partial[lo // size])
        finish(counter)


@numba.njit(cache=True)
def _adjoint_trials(
    lo,
    hi,
    inputs,
    k,
    order,
    counts,
    weights,
    params,
    form,
    uniform,
    t_max,
    spikes,
    grad_spikes,
    samples,
    grad_samples,
    grad_inputs,
    grad_weights,
):
    """Add the gradients of trials lo..hi-1 to their rows of ``grad_inputs`` (batch, n_in * k) and
    to ``grad_weights`` (n_in, n_out).

    Events as in the forward kernel (``order``, ``counts`` from it); ``spikes`` the spike
    record (batch, n_out, M, 4) of forward_kernel.Simulation; ``grad_spikes`` (batch, n_out,
    M) dL/dT; ``samples`` (1 or batch, S) ascending, ``grad_samples`` (batch, n_out, S) dL/dV.
    """
    n_out, n_spikes, n_samples = weights.shape[1], spikes.shape[2], samples.shape[1]
    ev_times, ev_source = np.empty(inputs.shape[1]), np.empty(inputs.shape[1], dtype=np.int64)
    gaps = np.empty((3, inputs.shape[1] + 1))
    shared = neuron_constants(params[TAU_MEM, 0], params[TAU_SYN, 0])  # every neuron's, if uniform
    for b in range(lo, hi):
        n_events = counts[b]
        gather_events(inputs[b], order[b], n_events, k, ev_times, ev_source)
        grad_inputs[b] = 0.0
        filled = 0  # gaps of this trial in the shared table
        trial_samples = samples[b if samples.shape[0] > 1 else 0]
        for j in range(n_out):
            tau_mem, tau_syn = params[TAU_MEM, j], params[TAU_SYN, j]
            consts, mem_over_syn = shared if uniform else neuron_constants(tau_mem, tau_syn), tau_mem / tau_syn
            seg = 0  # spikes before t_max; the sweep starts in the free segment after the last one
            while seg < n_spikes and spikes[b, j, seg, TIME] < t_max:
                seg += 1
            lam_v, lam_i, carry, now, in_hold = 0.0, 0.0, 0.0, t_max, False
            e, q = n_events - 1, n_samples - 1
            while q >= 0 and grad_samples[b, j, q] == 0.0:  # samples without gradient launch nothing
                q -= 1
            latest = max(
                spikes[b, j, seg - 1, TIME] if seg > 0 else _NO_POINT, trial_samples[q] if q >= 0 else _NO_POINT
            )
            while e >= 0 and ev_times[e] > latest:  # events after every launch see lambda_V = lambda_I = 0
                e -= 1
            while True:
                t_event = ev_times[e] if e >= 0 else _NO_POINT
                t_sample = trial_samples[q] if q >= 0 else _NO_POINT
                t_restart = spikes[b, j, seg - 1, RESTART] if seg > 0 and not in_hold else _NO_POINT
                t_spike = spikes[b, j, seg - 1, TIME] if seg > 0 else _NO_POINT
                t = max(t_event, t_sample, t_restart, t_spike)
                if t == _NO_POINT:
                    break
                if t < now and (lam_v != 0.0 or lam_i != 0.0):
                    if uniform and t == t_event and now == (ev_times[e + 1] if e + 1 < n_events else t_max):
                        if filled <= e + 1:
                            filled = gap_propagators(ev_times, n_events, t_max, shared, form, gaps, filled, e + 1)
                        decay_mem, decay_syn, response = gaps[0, e + 1], gaps[1, e + 1], gaps[2, e + 1]
                    else:
                        decay_mem, decay_syn, response = propagators(
                            now - t, consts[0], consts[1], consts[2], consts[3], consts[4], form
                        )
                    lam_v, lam_i = _back(lam_v, lam_i, decay_mem, decay_syn, response, mem_over_syn)
                now = min(now, t)
                if t_event == t:
                    grad_weights[ev_source[e], j] -= tau_syn * lam_i
                    grad_inputs[b, order[b, e]] += weights[ev_source[e], j] * (lam_v - lam_i)
                    e -= 1
                elif t_sample == t:
                    if not in_hold:
                        lam_v -= grad_samples[b, j, q] / tau_mem
                    q -= 1
                elif t_restart == t:
                    carry = spikes[b, j, seg - 1, DRIVE_AFTER] * lam_v
                    lam_v, in_hold = 0.0, True
                else:
                    lam_v = (grad_spikes[b, j, seg - 1] + carry) / spikes[b, j, seg - 1, DRIVE]
                    carry, in_hold, seg = 0.0, False, seg - 1


def adjoint(inputs, k, order, counts, weights, dyn: Dynamics, spikes, grad_spikes, samples, grad_samples, *, t_max):
    """(dL/dw (n_in, n_out), dL/dinputs (batch, n_in * k)) in float64.

    Each chunk of trials sums its weight gradient separately; the chunks are added in order,
    so the result does not depend on the thread count.
    """
    batch = inputs.shape[0]
    size = chunk_size(batch, weights.nbytes)
    partial = np.zeros((-(-batch // size), *weights.shape))
    grad_inputs = np.empty(inputs.shape)  # the kernel zeroes every row it owns
    args = (k, order, counts, weights, dyn.values, dyn.form, dyn.uniform, t_max, spikes, grad_spikes, samples)
    run_kernel(
        lambda counter: _adjoint_kernel(counter, size, partial, inputs, *args, grad_samples, grad_inputs), batch, size
    )
    return partial.sum(axis=0), grad_inputs
