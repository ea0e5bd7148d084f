"""The autograd Functions of an LIF layer: simulated spikes (forward kernel, EventProp
backward) and replayed spikes (measured forward, EventProp backward of the model)."""

from __future__ import annotations

import math

import torch

from .adjoint_kernel import SpikeState, adjoint_gradients, spike_state
from .events import Events, make_events
from .forward_kernel import simulate
from .parameters import Dynamics


def _input_gradients(ctx, events: Events, grad_weights: torch.Tensor, grad_t_ev: torch.Tensor):
    """Scatter per-event time gradients back to the input_times layout."""
    grad_inputs = None
    if ctx.needs_input_grad[0]:
        input_shape = ctx.input_shape
        flat = grad_t_ev.new_zeros(input_shape[0], math.prod(input_shape[1:]))
        grad_inputs = flat.scatter_(1, events.order, grad_t_ev).reshape(input_shape)
    return grad_inputs, grad_weights if ctx.needs_input_grad[1] else None


def _save(ctx, input_times, weights, events: Events, dyn: Dynamics, *extra):
    ctx.input_shape, ctx.dyn = input_times.shape, dyn
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
        _save(
            ctx,
            input_times,
            weights,
            events,
            dyn,
            perm,
            state.valid,
            state.times,
            state.restart,
            state.drive,
            state.drive_restart,
        )
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
