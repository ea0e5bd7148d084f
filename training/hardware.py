"""A layered spiking network whose forward pass runs on a ``hil.Device``.

``DeviceNetwork`` holds float weights in model units (synaptic current jump over threshold
distance) per projection. Forward: quantise to signed 6-bit hardware weights
(straight-through), write only the synapse rows into the configuration (the driver sends
what changed), run the batch through the placement, decode measured spike times, and put
them into the autograd graph with EventProp replay using each neuron's calibrated
parameters. The backward pass therefore needs spike times only.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

import hil
from hil import Placement, Recording
from hil.errors import ConfigError

from .bumping import bump_silent
from .lif import DRIVE_FLOOR, LIFParameters, replay_spike_times, spike_times


@attrs.frozen(eq=False)
class NeuronModel:
    """Per-neuron model parameters of all 512 circuits, in model units (see ``from_calibration``).

    tau_mem, tau_syn, t_refrac: (512,) seconds; v_reset: (512,) relative to the threshold
    distance (leak 0, threshold 1); weight_scale_exc/inh: (512,) hardware weight LSB per
    model weight unit; input_latency_s: delay from an event's timestamp to its synaptic effect.
    """

    tau_mem: np.ndarray
    tau_syn: np.ndarray
    v_reset: np.ndarray
    t_refrac: np.ndarray
    weight_scale_exc: np.ndarray
    weight_scale_inh: np.ndarray
    input_latency_s: float = 0.0

    @classmethod
    def from_calibration(cls, result) -> NeuronModel:
        """From a ``calibration.CalibrationResult`` (its ``model_parameters()`` and measured input latency)."""
        p = result.model_parameters()
        latency = result.aux.get("input_latency_s")
        return cls(
            tau_mem=np.asarray(p.tau_mem, np.float64),
            tau_syn=np.asarray(p.tau_syn, np.float64),
            v_reset=np.asarray(p.v_reset, np.float64),
            t_refrac=np.asarray(p.t_refrac, np.float64),
            weight_scale_exc=np.asarray(p.weight_scale_exc, np.float64),
            weight_scale_inh=np.asarray(p.weight_scale_inh, np.float64),
            input_latency_s=float(np.asarray(latency).ravel()[0]) if latency is not None else 0.0,
        )

    def lif(self, neurons: np.ndarray, dtype: torch.dtype) -> LIFParameters:
        """``LIFParameters`` of the given neuron circuits (per-neuron tensors)."""

        def t(a):
            return torch.as_tensor(a[neurons], dtype=dtype)

        return LIFParameters(
            tau_mem=t(self.tau_mem),
            tau_syn=t(self.tau_syn),
            v_th=1.0,
            v_leak=0.0,
            v_reset=t(self.v_reset),
            t_refrac=t(self.t_refrac),
        )


class QuantisedWeights(torch.autograd.Function):
    """Model weights -> (hardware int weights, per-neuron effective model weights) with a straight-through gradient.

    Forward: ``hw = clip(round(w * scale), -63, 63)``; the effective weight neuron ``j`` sees
    is ``hw / scale_j`` (excitatory or inhibitory scale by sign). Backward: the rounding is
    treated as identity, so ``d w_eff / d w = scale / scale_j``.
    """

    @staticmethod
    def forward(ctx, w, scale: float, scale_exc, scale_inh):
        hw = torch.clamp(torch.round(w * scale), -hil.chip.WEIGHT_MAX, hil.chip.WEIGHT_MAX)
        per_neuron = torch.where(torch.where(hw != 0, hw, w) > 0, scale_exc, scale_inh)
        ctx.save_for_backward(scale / per_neuron)
        return hw / per_neuron, hw

    @staticmethod
    def backward(ctx, grad_eff, grad_hw):
        (factor,) = ctx.saved_tensors
        return grad_eff * factor, None, None, None


class DeviceNetwork(torch.nn.Module):
    """Feed-forward network on a device.

    device:    an open ``hil.Device`` (already holding nothing in particular)
    placement: ``hil.place(network)`` of a network whose projections form a chain from one input population
    model:     ``NeuronModel`` of the calibrated chip
    base:      calibrated ``ChipConfig`` (analog parameters) the synapses are written into
    """

    def __init__(
        self,
        device,
        placement: Placement,
        model: NeuronModel,
        base: hil.ChipConfig,
        *,
        duration_s: float,
        max_spikes: int = 1,
        init: dict | None = None,
        generator: torch.Generator | None = None,
        dtype=torch.float32,
        drive_floor: float = DRIVE_FLOOR,
    ):
        super().__init__()
        net = placement.network
        if len(net.inputs) != 1:
            raise ConfigError(f"DeviceNetwork: expected one input population, got {[p.name for p in net.inputs]}")
        chain = [net.inputs[0].name] + [p.target for p in net.projections]
        if [p.source for p in net.projections] != chain[:-1]:
            raise ConfigError(
                f"DeviceNetwork: projections must form a chain from the input; got {[p.key for p in net.projections]}"
            )
        self.device, self.placement, self.model = device, placement, model
        self.duration_s, self.max_spikes, self.dtype, self.drive_floor = (
            float(duration_s),
            int(max_spikes),
            dtype,
            float(drive_floor),
        )
        self._base = placement.config({p.key: np.zeros(net.weight_shape(p)) for p in net.projections}, 1.0, base=base)
        self.weights = torch.nn.ParameterDict()
        self._scales = {}
        for proj in net.projections:
            post = placement.neurons[proj.target]
            mean, std = (init or {}).get(proj.target, (0.0, 0.1))
            w = torch.randn(net.weight_shape(proj), generator=generator, dtype=torch.float64) * std + mean
            self.weights[proj.target] = torch.nn.Parameter(w.to(dtype))
            scale = float(np.median(model.weight_scale_exc[post]))
            self._scales[proj.target] = (
                scale,
                torch.as_tensor(model.weight_scale_exc[post], dtype=dtype),
                torch.as_tensor(model.weight_scale_inh[post], dtype=dtype),
            )
        self.params = {p.target: model.lif(placement.neurons[p.target], dtype) for p in net.projections}
        self.last_measurement: hil.Measurement | None = None
        self.last_clamped: dict[
            str, int
        ] = {}  # population -> measured spikes whose model drive was raised to the floor

    def effective_weights(self) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
        """Population -> (effective model weights with straight-through grad, hardware int weights)."""
        out = {}
        for name, w in self.weights.items():
            scale, s_exc, s_inh = self._scales[name]
            eff, hw = QuantisedWeights.apply(w, scale, s_exc, s_inh)
            out[name] = (eff, hw.detach().to(torch.int8).numpy())
        return out

    @torch.no_grad()
    def clip_weights(self, limits: dict[str, float] | None = None) -> None:
        """Clamp every weight to +-``limits[name]`` (default ``weight_limits()``: what this chip realises)."""
        limits = limits or self.weight_limits()
        for name, w in self.weights.items():
            w.clamp_(-limits[name], limits[name])

    def weight_limits(self) -> dict[str, float]:
        """Population -> largest model weight the chip realises (63 LSB at the projection's scale)."""
        return {name: hil.chip.WEIGHT_MAX / self._scales[name][0] for name in self.weights}

    def bump_silent(self, out: dict[str, torch.Tensor], labels: torch.Tensor, bump: float) -> None:
        """Weight bumping of silent neurons (``training.bumping.bump_silent``) on this network's layers."""
        bump_silent([(w, out[name]) for name, w in self.weights.items()], labels, bump)

    def model_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Input spike times (batch, n_in) -> times the first layer's synapses see (batch, n_in * duplication)."""
        dup = self.placement.network.inputs[0].duplication
        return x.to(self.dtype).repeat_interleave(dup, dim=1) + self.model.input_latency_s

    def forward(self, x: torch.Tensor, recording: Recording = Recording()) -> dict[str, torch.Tensor]:
        """x: (batch, n_in) input spike times in seconds (inf = none) -> population -> (batch, n, max_spikes) times."""
        net = self.placement.network
        eff = self.effective_weights()
        cfg = self._base.copy()
        self.placement.write_weights(cfg, {p.key: eff[p.target][1] for p in net.projections})
        self.device.configure(cfg)
        stim = self.placement.encode({net.inputs[0].name: x.detach().cpu().numpy()}, self.duration_s)
        meas = self.device.run(stim, recording)
        self.last_measurement = meas
        measured = self.placement.decode(meas, self.max_spikes)
        out, inputs = {}, self.model_inputs(x)
        for proj in net.projections:
            m = torch.as_tensor(measured[proj.target], dtype=self.dtype)
            replayed = replay_spike_times(
                inputs,
                eff[proj.target][0],
                self.params[proj.target],
                m,
                t_max=self.duration_s,
                drive_floor=self.drive_floor,
            )
            out[proj.target], self.last_clamped[proj.target] = replayed.times, int(replayed.n_clamped)
            inputs = out[proj.target]
        return out

    def simulate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The ideal model with the same quantised weights and per-neuron parameters (no device)."""
        eff = self.effective_weights()
        out, inputs = {}, self.model_inputs(x)
        for proj in self.placement.network.projections:
            out[proj.target] = spike_times(
                inputs, eff[proj.target][0], self.params[proj.target], t_max=self.duration_s, max_spikes=self.max_spikes
            ).times
            inputs = out[proj.target]
        return out
