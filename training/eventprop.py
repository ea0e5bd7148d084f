"""EventProp adjoint of an LIF layer, evaluated in closed form at the input events.

Internal module: the public entry points are :func:`training.lif.spike_times` and
:func:`training.lif.replay_spike_times`. See docs/eventprop.md for the derivation.

For output spike m of neuron j at time T_m (free evolution restarted at r_m, which is 0 for
the first spike and T_{m-1} + t_refrac after), the reverse-time adjoint is

    lambda_V(t) = sum_m c_m exp(-(T_m - t)/tau_mem)                        for r_m < t < T_m,
    lambda_I(t) = (1/tau_syn) sum_m c_m int_{max(t, r_m)}^{T_m} exp(-(t'-t)/tau_syn)
                                               exp(-(T_m-t')/tau_mem) dt'   for t < T_m,

with c_m = G_m / (I(T_m) - theta) (``theta = v_th - v_leak``, so ``I - theta`` is
tau_mem dV/dt just before the spike) and G_m the total derivative of the loss by T_m:

    G_m = dL/dT_m + c_{m+1} (I(r_{m+1}) - u_reset) exp(-(T_{m+1} - r_{m+1})/tau_mem).

Then dL/dw_ij = -tau_syn sum_k lambda_I[j](t_k) over the events t_k of input i and
dL/dt_k = sum_j w_ij (lambda_V[j](t_k) - lambda_I[j](t_k)).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from training.lif_forward import Dynamics, Events, make_events, psp_shape, simulate


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
    w = events.weights.transpose(1, 2).unsqueeze(2)  # (batch, n_out, 1, E)
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


def adjoint_gradients(events: Events, state: SpikeState, grad_times: torch.Tensor, dyn: Dynamics):
    """Gradients by the event weights and event times, (batch, E, n_out) and (batch, E).

    ``grad_times`` (batch, n_out, M) is dL/dT for every output spike.
    """
    n_spikes = grad_times.shape[-1]
    coeff = torch.zeros_like(grad_times)
    carry = torch.zeros_like(grad_times[..., 0])
    for m in reversed(range(n_spikes)):
        total = torch.where(state.valid[..., m], grad_times[..., m] + carry, torch.zeros_like(carry))
        safe = torch.where(state.valid[..., m], state.drive[..., m], torch.ones_like(carry))
        coeff[..., m] = total / safe
        lag = state.times[..., m] - state.restart[..., m]
        carry = coeff[..., m] * state.drive_restart[..., m] * torch.exp(lag * -dyn.rate_mem)
    ev_t = events.times[:, None, None, :]  # (batch, 1, 1, E)
    t_spike = state.times.unsqueeze(-1)  # (batch, n_out, M, 1)
    restart = state.restart.unsqueeze(-1)
    lower = torch.maximum(restart, ev_t)
    length = (t_spike - lower).clamp(min=0)
    view = lambda x: x[:, None, None]  # noqa: E731  (n_out,) -> (n_out, 1, 1)
    dyn4 = dyn._replace(rate_long=view(dyn.rate_long), rate_gap=view(dyn.rate_gap))
    integral = length * psp_shape(length, dyn4) * torch.exp((lower - ev_t) * -view(dyn.rate_syn))
    c = coeff.unsqueeze(-1)
    grad_w = -(c * integral).sum(2)  # -tau_syn lambda_I, (batch, n_out, E)
    in_window = (ev_t > restart) & (ev_t < t_spike)
    lam_v = torch.where(in_window, c * torch.exp((t_spike - ev_t).clamp(min=0) * -view(dyn.rate_mem)), torch.zeros_like(integral)).sum(2)
    lam_i = -grad_w * dyn.rate_syn[:, None]
    grad_t = (events.weights.transpose(1, 2) * (lam_v - lam_i)).sum(1)
    return grad_w.transpose(1, 2), grad_t


def _input_gradients(ctx, events: Events, grad_w_ev: torch.Tensor, grad_t_ev: torch.Tensor):
    """Scatter per-event gradients back to (input_times, weights)."""
    input_shape, n_in = ctx.input_shape, ctx.n_in
    grad_inputs = grad_weights = None
    if ctx.needs_input_grad[0]:
        flat = grad_t_ev.new_zeros(input_shape[0], math.prod(input_shape[1:]))
        grad_inputs = flat.scatter_(1, events.order, grad_t_ev).reshape(input_shape)
    if ctx.needs_input_grad[1]:
        n_out = grad_w_ev.shape[-1]
        grad_weights = grad_w_ev.new_zeros(n_in, n_out).index_add_(0, events.source.reshape(-1), grad_w_ev.reshape(-1, n_out))
    return grad_inputs, grad_weights


def _save(ctx, input_times, weights, events: Events, dyn: Dynamics, *extra):
    ctx.input_shape, ctx.n_in, ctx.dyn = input_times.shape, weights.shape[0], dyn
    ctx.save_for_backward(events.times, events.order, events.source, events.weights, *extra)


def _load(ctx):
    times, order, source, weights, *extra = ctx.saved_tensors
    return Events(times, order, source, weights), extra


class SimulatedSpikes(torch.autograd.Function):
    """Forward: exact event-driven simulation. Backward: EventProp.

    The drive I - theta at a simulated spike is positive by construction; rounding at a
    grazing crossing can make it ~0, so it is floored at sqrt(eps) * theta (exact otherwise).
    """

    @staticmethod
    def forward(ctx, input_times, weights, dyn: Dynamics, t_max: float, max_spikes: int):
        events = make_events(input_times, weights, t_max)
        times, currents, overflow = simulate(events, dyn, t_max=t_max, max_spikes=max_spikes)
        _save(ctx, input_times, weights, events, dyn, times, currents)
        ctx.mark_non_differentiable(overflow)
        return times, overflow

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_times, _grad_overflow):
        events, (times, currents) = _load(ctx)
        state = spike_state(events, times, ctx.dyn, currents)
        floor = math.sqrt(torch.finfo(times.dtype).eps) * ctx.dyn.theta[:, None]
        state = state._replace(drive=torch.maximum(state.drive, floor))
        grads = _input_gradients(ctx, events, *adjoint_gradients(events, state, grad_times, ctx.dyn))
        return (*grads, None, None, None)


class ReplayedSpikes(torch.autograd.Function):
    """Forward: returns the measured spike times. Backward: EventProp on the replayed model."""

    @staticmethod
    def forward(ctx, input_times, weights, measured, dyn: Dynamics, t_max: float, drive_floor: float):
        events = make_events(input_times, weights, t_max)
        sorted_times, perm = torch.sort(measured.detach(), dim=-1)
        sorted_times = torch.where(sorted_times < t_max, sorted_times, torch.full_like(sorted_times, float("inf")))
        state = spike_state(events, sorted_times, dyn)
        floor = drive_floor * dyn.theta[:, None]
        low = state.valid & (state.drive < floor)
        state = state._replace(drive=torch.where(low, floor.expand_as(state.drive), state.drive))
        _save(ctx, input_times, weights, events, dyn, perm, state.valid, state.times, state.restart, state.drive, state.drive_restart)
        n_clamped = low.sum()
        ctx.mark_non_differentiable(n_clamped)
        return measured.detach().clone(), n_clamped

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_times, _grad_clamped):
        events, (perm, *fields) = _load(ctx)
        state = SpikeState(*fields)
        grad_sorted = grad_times.gather(-1, perm)
        grads = _input_gradients(ctx, events, *adjoint_gradients(events, state, grad_sorted, ctx.dyn))
        return (*grads, None, None, None, None)
