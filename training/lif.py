"""Exact event-based current-based LIF layers with EventProp gradients.

Model (per output neuron j, DESIGN section 5; times in seconds):

    tau_mem dV/dt = -(V - v_leak) + I,   tau_syn dI/dt = -I,   I_j += w_ij at each spike of input i,

starting at V = v_leak, I = 0. A spike is an upward crossing of v_th; V is then held at
v_reset for t_refrac (I keeps evolving). Forward and backward are event-driven and exact;
see docs/eventprop.md.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import attrs
import torch

from training.eventprop import ReplayedSpikes, SimulatedSpikes
from training.lif_forward import Dynamics

Scalar = float | torch.Tensor


def _values(name: str, value) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float64).detach()
    if tensor.dim() > 1:
        raise ValueError(
            f"LIFParameters.{name} has shape {tuple(tensor.shape)}; allowed: a scalar or a per-neuron vector (n_out,)"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"LIFParameters.{name} = {value!r} is not finite; allowed: finite values")
    return tensor


def _positive(instance, attribute, value):
    if not bool((_values(attribute.name, value) > 0).all()):
        raise ValueError(f"LIFParameters.{attribute.name} = {value!r}; allowed range: > 0 seconds")


def _non_negative(instance, attribute, value):
    if not bool((_values(attribute.name, value) >= 0).all()):
        raise ValueError(f"LIFParameters.{attribute.name} = {value!r}; allowed range: >= 0 seconds")


def _finite(instance, attribute, value):
    _values(attribute.name, value)


@attrs.frozen
class LIFParameters:
    """Parameters of a layer; each a float or a per-neuron tensor of shape (n_out,).

    Time constants and t_refrac in seconds, voltages in model units. Requires
    v_reset < v_th and v_leak < v_th (a neuron at rest does not fire).
    """

    tau_mem: Scalar = attrs.field(validator=_positive)
    tau_syn: Scalar = attrs.field(validator=_positive)
    v_th: Scalar = attrs.field(default=1.0, validator=_finite)
    v_leak: Scalar = attrs.field(default=0.0, validator=_finite)
    v_reset: Scalar = attrs.field(default=0.0, validator=_finite)
    t_refrac: Scalar = attrs.field(default=0.0, validator=_non_negative)

    def __attrs_post_init__(self):
        lengths = {
            f.name: _values(f.name, getattr(self, f.name)).numel()
            for f in attrs.fields(type(self))
            if _values(f.name, getattr(self, f.name)).dim() == 1
        }
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"LIFParameters per-neuron fields have different lengths {lengths}; allowed: one common n_out"
            )
        v_th = _values("v_th", self.v_th)
        for name in ("v_reset", "v_leak"):
            value = _values(name, getattr(self, name))
            if not bool((value < v_th).all()):
                raise ValueError(
                    f"LIFParameters.{name} = {getattr(self, name)!r}; allowed range: < v_th = {self.v_th!r}"
                )

    def dynamics(self, n_out: int, dtype: torch.dtype) -> Dynamics:
        """Per-neuron constants for a layer of n_out neurons in the given dtype."""
        values = {}
        for field in attrs.fields(type(self)):
            value = _values(field.name, getattr(self, field.name))
            if value.dim() == 1 and value.numel() != n_out:
                raise ValueError(
                    f"LIFParameters.{field.name} has {value.numel()} entries; allowed: a scalar or n_out = {n_out} entries"
                )
            values[field.name] = value.expand(n_out)
        tau_mem, tau_syn = values["tau_mem"], values["tau_syn"]
        closed_form = ""
        if bool(((tau_mem - 2 * tau_syn).abs() <= 1e-12 * tau_mem).all()):
            closed_form = "mem2"
        elif bool(((tau_syn - 2 * tau_mem).abs() <= 1e-12 * tau_syn).all()):
            closed_form = "syn2"
        cast = lambda x: x.to(dtype).contiguous()  # noqa: E731
        return Dynamics(
            tau_mem=cast(tau_mem),
            tau_syn=cast(tau_syn),
            theta=cast(values["v_th"] - values["v_leak"]),
            u_reset=cast(values["v_reset"] - values["v_leak"]),
            t_refrac=cast(values["t_refrac"]),
            rate_syn=cast(1 / tau_syn),
            closed_form=closed_form,
        )


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
        raise ValueError(f"weights has shape {tuple(weights.shape)}; allowed: (n_in, n_out)")
    if weights.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"weights has dtype {weights.dtype}; allowed: float32 or float64")
    if input_times.dim() not in (2, 3) or input_times.shape[1] != weights.shape[0]:
        raise ValueError(
            f"input_times has shape {tuple(input_times.shape)}; allowed: (batch, {weights.shape[0]}) or (batch, {weights.shape[0]}, k)"
        )
    if input_times.dtype != weights.dtype:
        raise ValueError(f"input_times has dtype {input_times.dtype}; allowed: the dtype of weights ({weights.dtype})")
    if not bool(torch.isfinite(weights).all()):
        raise ValueError("weights contains non-finite values; allowed: finite")
    if bool(torch.isnan(input_times).any()) or bool((input_times < 0).any()):
        raise ValueError("input_times contains NaN or negative values; allowed: [0, inf] seconds (inf = no spike)")
    if not (isinstance(t_max, (int, float)) and math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"t_max = {t_max!r}; allowed range: finite and > 0 seconds")


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
        raise ValueError(f"max_spikes = {max_spikes!r}; allowed: an integer >= 1")
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
        raise ValueError(
            f"measured_times has shape {tuple(measured_times.shape)}; allowed: ({input_times.shape[0]}, {weights.shape[1]}, M)"
        )
    if measured_times.dtype != weights.dtype or bool(torch.isnan(measured_times).any()):
        raise ValueError(
            f"measured_times must be {weights.dtype} without NaN (inf = no spike); got {measured_times.dtype}"
        )
    if not drive_floor > 0:
        raise ValueError(f"drive_floor = {drive_floor!r}; allowed range: > 0")
    dyn = params.dynamics(weights.shape[1], weights.dtype)
    times, n_clamped = ReplayedSpikes.apply(input_times, weights, measured_times, dyn, float(t_max), float(drive_floor))
    return ReplayedTimes(times, n_clamped)
