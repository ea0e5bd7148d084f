"""The autograd Functions of an LIF layer: simulated spikes (forward kernel) and measured spikes
(replay kernel), both with the EventProp backward of the model (adjoint kernel).

Tensors cross into numpy without torch operations on them (see events.as_float64); the
arrays are checked and converted by training.lif.checks before they get here.
"""

from __future__ import annotations

import numpy as np
import torch

from .adjoint_kernel import adjoint
from .events import LayerArrays, as_float64, to_tensor
from .forward_kernel import TIME, simulate
from .parameters import Dynamics
from .replay_kernel import replay_state


def _gradient_array(grad: torch.Tensor | None, shape) -> np.ndarray:
    return np.zeros(shape) if grad is None else as_float64(grad)


def _backward(ctx, grad_spikes: np.ndarray, grad_samples: np.ndarray):
    """(dL/d input_times, dL/d weights) in the inputs' layout and dtype."""
    a = ctx.arrays
    grad_weights, grad_inputs = adjoint(
        a.inputs,
        a.k,
        ctx.order,
        ctx.counts,
        a.weights,
        ctx.dyn,
        ctx.record,
        grad_spikes,
        a.samples,
        grad_samples,
        t_max=ctx.t_max,
    )
    return (
        to_tensor(grad_inputs.reshape(ctx.input_shape), ctx.dtype) if ctx.needs_input_grad[0] else None,
        to_tensor(grad_weights, ctx.dtype) if ctx.needs_input_grad[1] else None,
    )


def _keep(ctx, input_times, weights, arrays, dyn, t_max, record, order, counts):
    ctx.set_materialize_grads(False)  # unused outputs get no zero tensors
    ctx.input_shape, ctx.dtype, ctx.arrays, ctx.dyn, ctx.t_max = input_times.shape, weights.dtype, arrays, dyn, t_max
    ctx.record, ctx.order, ctx.counts = record, order, counts


class SimulatedLayer(torch.autograd.Function):
    """Forward: the exact event-driven simulation. Backward: EventProp.

    Outputs: times (batch, n_out, max_spikes), overflow (batch, n_out) and voltages
    (batch, n_out, S), NaN where the model does not know them (after a dropped spike); their
    gradients are ignored there.
    """

    @staticmethod
    def forward(ctx, input_times, weights, arrays: LayerArrays, dyn: Dynamics, t_max: float, max_spikes: int):
        sim = simulate(arrays.inputs, arrays.k, arrays.weights, dyn, arrays.samples, t_max=t_max, max_spikes=max_spikes)
        _keep(ctx, input_times, weights, arrays, dyn, t_max, sim.spikes, sim.order, sim.counts)
        ctx.unknown = np.isnan(sim.voltages)
        overflow = torch.from_numpy(sim.overflow)
        ctx.mark_non_differentiable(overflow)
        return to_tensor(sim.spikes[..., TIME], weights.dtype), overflow, to_tensor(sim.voltages, weights.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_times, _grad_overflow, grad_voltages):
        grad_samples = _gradient_array(grad_voltages, ctx.unknown.shape)
        grad_samples[ctx.unknown] = 0.0
        grads = _backward(ctx, _gradient_array(grad_times, ctx.record.shape[:3]), grad_samples)
        return (*grads, None, None, None, None)


class ReplayedLayer(torch.autograd.Function):
    """Forward: the measured spike times and voltages, unchanged. Backward: EventProp on the
    model replayed at the measured spikes.

    ``measured`` (batch, n_out, M) any order (times at or after t_max are ignored), and
    ``voltages`` (batch, n_out, S) at arrays.samples, are the outputs; ``floor`` is the least
    drive at a measured spike in units of theta. Also returns the number of raised drives.
    """

    @staticmethod
    def forward(ctx, input_times, weights, measured, voltages, arrays: LayerArrays, dyn: Dynamics, t_max, floor):
        times = as_float64(measured)  # a copy: changed below
        times[~(times < t_max)] = np.inf
        ctx.perm = np.argsort(times, axis=-1, kind="stable")
        record, n_clamped, order, counts = replay_state(
            arrays.inputs,
            arrays.k,
            arrays.weights,
            dyn,
            np.take_along_axis(times, ctx.perm, -1),
            t_max=t_max,
            floor=floor,
        )
        _keep(ctx, input_times, weights, arrays, dyn, t_max, record, order, counts)
        n_clamped = torch.tensor(n_clamped)
        ctx.mark_non_differentiable(n_clamped)
        return (
            torch.from_numpy(measured.detach().numpy().copy()),
            n_clamped,
            torch.from_numpy(voltages.detach().numpy().copy()),
        )

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_times, _grad_clamped, grad_voltages):
        grad_spikes = np.take_along_axis(_gradient_array(grad_times, ctx.perm.shape), ctx.perm, -1)
        grads = _backward(
            ctx, grad_spikes, _gradient_array(grad_voltages, (*ctx.perm.shape[:2], ctx.arrays.samples.shape[1]))
        )
        return (*grads, None, None, None, None, None, None)
