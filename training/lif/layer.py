"""The public functions of an LIF layer: exact spike times (``spike_times``) and measured
spike times with the model's gradient (``replay_spike_times``), with their input checks.

Model (per output neuron j; times in seconds, voltages in model units):

    tau_mem dV/dt = -(V - v_leak) + I,   tau_syn dI/dt = -I,   I_j += w_ij at each spike of input i,

starting at V = v_leak, I = 0. A spike is an upward crossing of v_th; V is then held at
v_reset for t_refrac (I keeps evolving). Forward and backward are event-driven and exact;
see docs/eventprop.md.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from hil.errors import ConfigError

from .autograd import ReplayedSpikes, SimulatedSpikes
from .parameters import LIFParameters


class SpikeTimes(NamedTuple):
    """Output of :func:`spike_times`.

    ``times`` (batch, n_out, max_spikes) in seconds, ascending, inf where no spike;
    ``overflow`` (batch, n_out) bool: the neuron would have spiked more than max_spikes times.
    """

    times: torch.Tensor
    overflow: torch.Tensor

    @property
    def n_overflow(self) -> int:
        """Number of (trial, neuron) pairs whose extra spikes were dropped."""
        return int(self.overflow.sum())


class ReplayedTimes(NamedTuple):
    """Output of :func:`replay_spike_times`.

    ``times`` equals the measured times; ``n_clamped`` (0-d int64) counts measured spikes at
    which the model's drive tau_mem dV/dt- was below the floor and was clamped.
    """

    times: torch.Tensor
    n_clamped: torch.Tensor


def _check_inputs(input_times: torch.Tensor, weights: torch.Tensor, t_max: float) -> None:
    if weights.dim() != 2:
        raise ConfigError(f"weights has shape {tuple(weights.shape)}; allowed: (n_in, n_out)")
    if weights.dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"weights has dtype {weights.dtype}; allowed: float32 or float64")
    if input_times.dim() not in (2, 3) or input_times.shape[1] != weights.shape[0]:
        raise ConfigError(
            f"input_times has shape {tuple(input_times.shape)}; "
            f"allowed: (batch, {weights.shape[0]}) or (batch, {weights.shape[0]}, k)"
        )
    if input_times.dtype != weights.dtype:
        raise ConfigError(f"input_times has dtype {input_times.dtype}; allowed: the dtype of weights ({weights.dtype})")
    if not bool(torch.isfinite(weights).all()):
        raise ConfigError("weights contains non-finite values; allowed: finite")
    if bool(torch.isnan(input_times).any()) or bool((input_times < 0).any()):
        raise ConfigError("input_times contains NaN or negative values; allowed: [0, inf] seconds (inf = no spike)")
    if not (isinstance(t_max, (int, float)) and math.isfinite(t_max) and t_max > 0):
        raise ConfigError(f"t_max = {t_max!r}; allowed range: finite and > 0 seconds")


def spike_times(
    input_times: torch.Tensor, weights: torch.Tensor, params: LIFParameters, *, t_max: float, max_spikes: int = 1
) -> SpikeTimes:
    """Exact output spike times of an LIF layer, differentiable by EventProp.

    input_times (batch, n_in) or (batch, n_in, k) in seconds, inf for no spike; weights
    (n_in, n_out). Returns :class:`SpikeTimes` with times (batch, n_out, max_spikes); only
    spikes before t_max count. Gradients flow to input_times and weights.
    """
    _check_inputs(input_times, weights, t_max)
    if not (isinstance(max_spikes, int) and max_spikes >= 1):
        raise ConfigError(f"max_spikes = {max_spikes!r}; allowed: an integer >= 1")
    dyn = params.dynamics(weights.shape[1], weights.dtype)
    times, overflow = SimulatedSpikes.apply(input_times, weights, dyn, float(t_max), max_spikes)
    return SpikeTimes(times, overflow)


DRIVE_FLOOR = 1e-2
"""Floor of tau_mem dV/dt- at a replayed spike, as a fraction of v_th - v_leak."""


def replay_spike_times(
    input_times: torch.Tensor,
    weights: torch.Tensor,
    params: LIFParameters,
    measured_times: torch.Tensor,
    *,
    t_max: float,
    drive_floor: float = DRIVE_FLOOR,
) -> ReplayedTimes:
    """Measured spike times with the EventProp backward of the model replayed at them.

    measured_times (batch, n_out, M) in seconds, inf for no spike (any order); spikes at or
    after t_max are ignored by the backward. Where the model's drive I - (v_th - v_leak) at
    a measured spike is below ``drive_floor * (v_th - v_leak)`` (possible with hardware
    noise) it is raised to that floor and counted in ``n_clamped``.
    """
    _check_inputs(input_times, weights, t_max)
    if measured_times.dim() != 3 or measured_times.shape[:2] != (input_times.shape[0], weights.shape[1]):
        raise ConfigError(
            f"measured_times has shape {tuple(measured_times.shape)}; "
            f"allowed: ({input_times.shape[0]}, {weights.shape[1]}, M)"
        )
    if measured_times.dtype != weights.dtype or bool(torch.isnan(measured_times).any()):
        raise ConfigError(
            f"measured_times must be {weights.dtype} without NaN (inf = no spike); got {measured_times.dtype}"
        )
    if not drive_floor > 0:
        raise ConfigError(f"drive_floor = {drive_floor!r}; allowed range: > 0")
    dyn = params.dynamics(weights.shape[1], weights.dtype)
    times, n_clamped = ReplayedSpikes.apply(input_times, weights, measured_times, dyn, float(t_max), float(drive_floor))
    return ReplayedTimes(times, n_clamped)
