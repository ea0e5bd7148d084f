"""EventProp adjoint of an LIF layer, evaluated in closed form at the input events (a numba kernel).

For output spike m of neuron j at time T_m (free evolution restarted at r_m, which is 0 for
the first spike and T_{m-1} + t_refrac after), the reverse-time adjoint is

    lambda_V(t) = sum_m c_m exp(-(T_m - t)/tau_mem)                        for r_m < t < T_m,
    lambda_I(t) = (1/tau_syn) sum_m c_m int_{max(t, r_m)}^{T_m} exp(-(t'-t)/tau_syn)
                                               exp(-(T_m-t')/tau_mem) dt'   for t < T_m,

with c_m = G_m / (I(T_m) - theta) (``theta = v_th - v_leak``, so ``I - theta`` is
tau_mem dV/dt just before the spike) and G_m the total derivative of the loss by T_m:

    G_m = dL/dT_m + c_{m+1} (I(r_{m+1}) - u_reset) exp(-(T_{m+1} - r_{m+1})/tau_mem).

Then dL/dw_ij = -tau_syn sum_k lambda_I[j](t_k) over the events t_k of input i and
dL/dt_k = sum_j w_ij (lambda_V[j](t_k) - lambda_I[j](t_k)). See docs/eventprop.md.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
import torch

from .events import Events, as_float64, event_arrays
from .free_evolution import CLOSED_FORMS, current_response, decays, neuron_constants
from .parameters import Dynamics
from .threads import over_batch


class SpikeState(NamedTuple):
    """Replayed model quantities at output spikes, each (batch, n_out, M).

    ``valid`` marks finite spikes; ``times`` has 0 where invalid; ``drive`` is
    tau_mem dV/dt just before the spike (I - theta); ``restart`` the end of the previous
    refractory period (0 for the first spike); ``drive_restart`` is I(restart) - u_reset.
    """

    valid: torch.Tensor
    times: torch.Tensor
    restart: torch.Tensor
    drive: torch.Tensor
    drive_restart: torch.Tensor


def _current_at(t: torch.Tensor, events: Events, dyn: Dynamics) -> torch.Tensor:
    """Synaptic current I(t-) for t (batch, n_out, M) from events before t."""
    ev_t = events.times[:, None, None, :]  # (batch, 1, 1, E)
    w = events.weights[events.source].transpose(1, 2).unsqueeze(2)  # (batch, n_out, 1, E)
    lag = t.unsqueeze(-1) - ev_t
    kernel = torch.exp(lag.clamp(min=0) * -dyn.rate_syn[:, None, None])
    return torch.where(lag > 0, w * kernel, torch.zeros_like(kernel)).sum(-1)


def spike_state(events: Events, times: torch.Tensor, dyn: Dynamics, currents: torch.Tensor | None = None) -> SpikeState:
    """Replay the model at given (sorted, inf-padded) output spike times (batch, n_out, M).

    ``currents`` (the synaptic current at each spike) is recomputed from the events unless given.
    """
    valid = torch.isfinite(times)
    t = torch.where(valid, times, torch.zeros_like(times))
    if currents is None:
        currents = _current_at(t, events, dyn)
    restart = torch.zeros_like(t)
    drive_restart = torch.zeros_like(t)
    if t.shape[-1] > 1:
        restart[..., 1:] = torch.minimum(t[..., :-1] + dyn.t_refrac[:, None], t[..., 1:])
        drive_restart[..., 1:] = _current_at(restart[..., 1:], events, dyn) - dyn.u_reset[:, None]
    return SpikeState(valid, t, restart, currents - dyn.theta[:, None], drive_restart)


@numba.njit(cache=True, nogil=True)
def _adjoint_kernel(
    ev_times,
    source,
    weights,
    valid,
    times,
    restart,
    drive,
    drive_restart,
    grad_times,
    tau_mem,
    tau_syn,
    form,
    grad_weights,
    grad_t,
):
    """Add dL/dw to grad_weights (n_in, n_out) and dL/dt_k to grad_t (batch, E).

    Events ``ev_times`` and ``source`` (batch, E) through ``weights`` (n_in, n_out); spike
    state and ``grad_times`` (batch, n_out, M) as in :class:`SpikeState`; parameters (n_out,);
    ``form`` as in :func:`training.lif.free_evolution.decays`.
    """
    batch, n_events = ev_times.shape
    n_out, n_spikes = times.shape[1], times.shape[2]
    coeff = np.zeros(n_spikes)
    for b in range(batch):
        for j in range(n_out):
            rate_mem, rate_syn, rate_gap, syn_longer, gain, _ = neuron_constants(tau_mem[j], tau_syn[j])
            carry = 0.0
            for m in range(n_spikes - 1, -1, -1):  # c_m from G_m, latest spike first
                coeff[m] = (grad_times[b, j, m] + carry) / drive[b, j, m] if valid[b, j, m] else 0.0
                carry = coeff[m] * drive_restart[b, j, m] * math.exp(-(times[b, j, m] - restart[b, j, m]) * rate_mem)
            for k in range(n_events):
                t_k = ev_times[b, k]
                g_w, lam_v = 0.0, 0.0
                for m in range(n_spikes):
                    if coeff[m] == 0.0 or t_k >= times[b, j, m]:
                        continue
                    lower = max(restart[b, j, m], t_k)
                    length = times[b, j, m] - lower
                    decay_mem, decay_syn = decays(length, rate_mem, rate_syn, form)
                    integral = tau_mem[j] * current_response(
                        length, decay_mem, decay_syn, rate_mem, rate_gap, syn_longer, gain
                    )
                    if lower > t_k:  # event before the restart: lambda_I launched at r_m, decayed back to t_k
                        integral *= math.exp(-(lower - t_k) * rate_syn)
                    else:
                        lam_v += coeff[m] * decay_mem
                    g_w -= coeff[m] * integral
                if g_w != 0.0 or lam_v != 0.0:
                    grad_weights[source[b, k], j] += g_w  # -tau_syn lambda_I
                    grad_t[b, k] += weights[source[b, k], j] * (lam_v + g_w * rate_syn)  # w (lambda_V - lambda_I)


def adjoint_gradients(events: Events, state: SpikeState, grad_times: torch.Tensor, dyn: Dynamics):
    """Gradients by the weights and by the event times, (n_in, n_out) and (batch, E).

    ``grad_times`` (batch, n_out, M) is dL/dT for every output spike. A numba kernel in
    float64 over (trial, neuron) pairs runs a reverse loop over the spikes for c_m, then one
    pass over the events. Each batch slice sums its weight gradient separately; the slices
    are added in order. Results are cast to the dtype of the weights.
    """
    batch, n_events = events.times.shape
    n_in, n_out = events.weights.shape
    ev_times, source, weights = event_arrays(events)
    valid = np.ascontiguousarray(state.valid.numpy())
    spikes = [as_float64(x) for x in (state.times, state.restart, state.drive, state.drive_restart, grad_times)]
    params = [as_float64(x) for x in (dyn.tau_mem, dyn.tau_syn)] + [CLOSED_FORMS[dyn.closed_form]]
    grad_t = np.zeros((batch, n_events))

    def run(lo, hi):
        grad_weights = np.zeros((n_in, n_out))
        _adjoint_kernel(
            ev_times[lo:hi],
            source[lo:hi],
            weights,
            valid[lo:hi],
            *(x[lo:hi] for x in spikes),
            *params,
            grad_weights,
            grad_t[lo:hi],
        )
        return grad_weights

    grad_weights = sum(over_batch(run, batch))
    dtype = events.weights.dtype
    return torch.from_numpy(grad_weights).to(dtype), torch.from_numpy(grad_t).to(dtype)
