"""The public functions of an LIF layer: exact spike times (``spike_times``) and measured
spike times with the model's gradient (``replay_spike_times``), with their input checks.

Model (per output neuron j; times in seconds, voltages in model units):

    tau_mem dV/dt = -(V - v_leak) + I,   tau_syn dI/dt = -I,   I_j += w_ij at each spike of input i,

starting at V = v_leak, I = 0. A spike is an upward crossing of v_th; V is then held at
v_reset for t_refrac (I keeps evolving). Forward and backward are event-driven and exact;
see docs/eventprop.md.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from hil.errors import ConfigError

from .autograd import ReplayedLayer, SimulatedLayer
from .checks import check_measured, layer_arrays
from .parameters import LIFParameters

DRIVE_FLOOR = 1e-2
"""Floor of tau_mem dV/dt- at a replayed spike, as a fraction of v_th - v_leak."""


class SpikeTimes(NamedTuple):
    """Output of :func:`spike_times`.

    ``times`` (batch, n_out, max_spikes) in seconds, ascending, inf where no spike;
    ``overflow`` (batch, n_out) bool: the neuron would have spiked more than max_spikes times;
    ``voltages`` (batch, n_out, S) the membrane V at the sample times in model units, None
    without sample_times. At and after a spike beyond max_spikes V is NaN (unknown to a
    model that dropped the spike).
    """

    times: torch.Tensor
    overflow: torch.Tensor
    voltages: torch.Tensor | None = None

    @property
    def n_overflow(self) -> int:
        """Number of (trial, neuron) pairs whose extra spikes were dropped."""
        return int(self.overflow.sum())


class ReplayedTimes(NamedTuple):
    """Output of :func:`replay_spike_times`.

    ``times`` equals the measured times; ``n_clamped`` (0-d int64) counts measured spikes at
    which the model's drive tau_mem dV/dt- was below the floor and was clamped; ``voltages``
    equals the measured voltages (None without them).
    """

    times: torch.Tensor
    n_clamped: torch.Tensor
    voltages: torch.Tensor | None = None


def spike_times(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    params: LIFParameters,
    *,
    t_max: float,
    max_spikes: int = 1,
    sample_times=None,
) -> SpikeTimes:
    """Exact output spike times of an LIF layer, differentiable by EventProp.

    input_times (batch, n_in) or (batch, n_in, k) in seconds, inf for no spike; weights
    (n_in, n_out). Returns :class:`SpikeTimes` with times (batch, n_out, max_spikes); only
    spikes before t_max count. With ``sample_times`` (S,) or (batch, S), ascending, in
    [0, t_max) seconds, it also returns the membrane voltage at those times (right-continuous:
    a sample at a spike sees the reset). Gradients flow from times and voltages to
    input_times and weights (not to sample_times).
    """
    arrays = layer_arrays(input_times, weights, t_max, sample_times)
    if not (isinstance(max_spikes, int) and max_spikes >= 1):
        raise ConfigError(f"max_spikes = {max_spikes!r}; allowed: an integer >= 1")
    dyn = params.dynamics(weights.shape[1], weights.dtype)
    times, overflow, voltages = SimulatedLayer.apply(input_times, weights, arrays, dyn, float(t_max), max_spikes)
    return SpikeTimes(times, overflow, None if sample_times is None else voltages)


def replay_spike_times(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    params: LIFParameters,
    measured_times: torch.Tensor,
    *,
    t_max: float,
    drive_floor: float = DRIVE_FLOOR,
    sample_times=None,
    measured_voltages: torch.Tensor | None = None,
) -> ReplayedTimes:
    """Measured spike times (and membrane samples) with the EventProp backward of the model replayed at them.

    measured_times (batch, n_out, M) in seconds, inf for no spike (any order; M may be 0);
    spikes at or after t_max are ignored by the backward. Where the model's drive
    I - (v_th - v_leak) at a measured spike is below ``drive_floor * (v_th - v_leak)``
    (possible with hardware noise) it is raised to that floor and counted in ``n_clamped``.
    ``measured_voltages`` (batch, n_out, S) in model units at ``sample_times`` (as in
    :func:`spike_times`) are returned unchanged; their gradient is the model's adjoint at
    the sample times, with the refractory holds placed by the measured spikes.
    """
    arrays = layer_arrays(input_times, weights, t_max, sample_times)
    n_samples = None if sample_times is None else arrays.samples.shape[1]
    check_measured(measured_times, measured_voltages, weights, input_times.shape[0], n_samples)
    if not drive_floor > 0:
        raise ConfigError(f"drive_floor = {drive_floor!r}; allowed range: > 0")
    dyn = params.dynamics(weights.shape[1], weights.dtype)
    voltages = (
        measured_times.new_zeros(*measured_times.shape[:2], 0) if measured_voltages is None else measured_voltages
    )
    times, n_clamped, voltages = ReplayedLayer.apply(
        input_times, weights, measured_times, voltages, arrays, dyn, float(t_max), float(drive_floor)
    )
    return ReplayedTimes(times, n_clamped, None if measured_voltages is None else voltages)
