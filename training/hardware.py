"""The chip backend: a layered spiking network whose forward pass runs on a ``hil.Device``.

``DeviceNetwork`` holds float weights in model units per layer. Forward: quantise them to
signed 6-bit hardware weights with ``hil.quantize`` (straight-through gradient), write only
the synapse rows into the configuration (the driver sends what changed), run the batch
through the placement, decode the measured spike times, and put them into the autograd
graph with EventProp replay using each neuron's calibrated parameters. The backward pass
therefore needs spike times only. With a ``sample_request`` (``training.membrane``) the run also
reads membrane samples (CADC or MADC); they are mapped through the calibration into model
units and replayed at the times the device reports, so a loss on them gets the model's adjoint.

The calibration maps straight to the model: ``calibrated_lif`` gives each layer's
``LIFParameters`` (per neuron, model units: leak 0, threshold 1) and ``weight_scales`` the
hardware LSB per model weight unit of each neuron (excitatory, inhibitory).
"""

from __future__ import annotations

import numpy as np
import torch

import hil
from hil import Placement, Recording
from hil.errors import ConfigError

from .lif import DRIVE_FLOOR, LIFParameters, replay_spike_times
from .membrane import MembraneSamples, device_samples, nonspiking_lif, trials_per_run
from .network import Diagnostics, Forward, Layer, SpikingNetwork


def calibrated_lif(params, neurons: np.ndarray, dtype: torch.dtype) -> LIFParameters:
    """``LIFParameters`` of the given neuron circuits from ``CalibrationResult.model_parameters()``:
    measured tau_mem, tau_syn (mean of exc and inh), reset and refractory time, per neuron."""

    def t(a):
        return torch.as_tensor(np.asarray(a, np.float64)[neurons], dtype=dtype)

    return LIFParameters(
        tau_mem=t(params.tau_mem),
        tau_syn=t(params.tau_syn),
        v_th=1.0,
        v_leak=0.0,
        v_reset=t(params.v_reset),
        t_refrac=t(params.t_refrac),
    )


def weight_scales(params, neurons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(excitatory, inhibitory) hardware weight LSB per model weight unit of each neuron, (n,) float64 each."""
    return tuple(np.asarray(a, np.float64)[neurons] for a in (params.weight_scale_exc, params.weight_scale_inh))


def input_latency_s(result) -> float:
    """The calibration's measured delay from an input event's timestamp to its synaptic effect (0 if unmeasured)."""
    latency = result.aux.get("input_latency_s")
    return float(np.asarray(latency).ravel()[0]) if latency is not None else 0.0


class QuantisedWeights(torch.autograd.Function):
    """(model weights, their hardware int weights) -> per-neuron effective model weights with a straight-through
    gradient.

    ``hw = hil.quantize(w, scale)`` comes in; the effective weight neuron ``j`` sees is ``hw / scale_j``
    (excitatory or inhibitory scale by sign). Backward: the rounding is treated as identity, so
    ``d w_eff / d w = scale / scale_j``.
    """

    @staticmethod
    def forward(ctx, w, hw, scale: float, scale_exc, scale_inh):
        hw = hw.to(w.dtype)
        per_neuron = torch.where(torch.where(hw != 0, hw, w) > 0, scale_exc, scale_inh)
        ctx.save_for_backward(scale / per_neuron)
        return hw / per_neuron

    @staticmethod
    def backward(ctx, grad_eff):
        (factor,) = ctx.saved_tensors
        return grad_eff * factor, None, None, None, None


class DeviceNetwork(SpikingNetwork):
    """Feed-forward network on a device.

    device:      an open ``hil.Device``
    placement:   ``hil.place(network)`` of the chain's ``hil.Network`` (``training.network.hil_network``)
    calibration: the chip's ``calibration.CalibrationResult``; its configuration is the base the
                 synapses are written into, its model parameters give every layer's neurons
    nonspiking:  layers whose threshold is put out of reach (CapMem maximum on the chip,
                 ``membrane.NONSPIKING_V_TH`` in the model): leaky integrators read by membrane samples
    Other arguments as in ``SpikingNetwork``.
    """

    def __init__(
        self,
        device,
        placement: Placement,
        calibration,
        chain: list[Layer],
        *,
        duration_s: float,
        init: dict,
        generator: torch.Generator | None = None,
        dtype=torch.float32,
        drive_floor: float = DRIVE_FLOOR,
        nonspiking: tuple = (),
    ):
        net = placement.network
        if [p.target for p in net.projections] != [layer.name for layer in chain] or len(net.inputs) != 1:
            raise ConfigError(
                f"DeviceNetwork: placement projections {[p.key for p in net.projections]} do not form the chain "
                f"input -> {' -> '.join(layer.name for layer in chain)}"
            )
        params = calibration.model_parameters()
        lif = {layer.name: calibrated_lif(params, placement.neurons[layer.name], dtype) for layer in chain}
        source = net.inputs[0]
        super().__init__(
            chain,
            source.size,
            source.duplication,
            lif,
            duration_s=duration_s,
            init=init,
            generator=generator,
            dtype=dtype,
            input_latency_s=input_latency_s(calibration),
        )
        self.device, self.placement, self.drive_floor = device, placement, float(drive_floor)
        self.calibration = calibration
        zeros = {p.key: np.zeros(net.weight_shape(p)) for p in net.projections}
        # the configuration every forward pass sends: its synapse weights are overwritten in place each time
        # (drivers copy what they keep), everything else stays as built here
        self._config = placement.config(zeros, 1.0, base=calibration.apply(hil.ChipConfig()))
        for name in nonspiking:
            self.params[name] = nonspiking_lif(self.params[name])
            self._config.v_threshold[placement.neurons[name]] = hil.chip.CAPMEM_MAX
        self._scales = {}
        for layer in chain:
            exc, inh = weight_scales(params, placement.neurons[layer.name])
            scale = float(np.median(exc))  # one LSB-per-unit scale per layer for the rounding
            self._scales[layer.name] = (scale, torch.as_tensor(exc, dtype=dtype), torch.as_tensor(inh, dtype=dtype))

    def effective_weights(self) -> dict[str, tuple[torch.Tensor, np.ndarray]]:
        """Layer -> (effective model weights with straight-through grad, hardware int8 weights)."""
        out = {}
        for name, w in self.weights.items():
            scale, s_exc, s_inh = self._scales[name]
            hw = hil.quantize(w.detach().numpy(), scale)
            out[name] = (QuantisedWeights.apply(w, torch.from_numpy(hw), scale, s_exc, s_inh), hw)
        return out

    def weight_limits(self) -> dict[str, float]:
        """Layer -> largest model weight the chip realises (``WEIGHT_MAX`` LSB at the layer's scale)."""
        return {name: hil.chip.WEIGHT_MAX / self._scales[name][0] for name in self.weights}

    def forward(self, x: torch.Tensor, recording: Recording | None = None) -> Forward:
        """x: (batch, n_in[, k]) input spike times in seconds (inf = none) -> ``Forward``: every layer's
        measured (batch, n, max_spikes) times, differentiable by EventProp replay, the run's ``Diagnostics``
        and, with a ``sample_request``, the measured membrane samples (differentiable the same way).
        ``recording``: an explicit ``hil.Recording`` (only without a ``sample_request``). With samples, the
        batch goes in as many runs as the device's ADC limits need (``Diagnostics.measurement`` is then None)."""
        request = self.sample_request
        if request is not None and recording is not None:
            raise ConfigError(
                "DeviceNetwork.forward: recording given while sample_request is set; allowed: one of them"
            )
        eff = self.effective_weights()
        self.placement.write_weights(
            self._config, {p.key: eff[p.target][1] for p in self.placement.network.projections}
        )
        self.device.configure(self._config)
        if request is None:
            return self._run(x, eff, recording or Recording())
        per_run = trials_per_run(request, self.device.info().limits, self.duration_s)
        parts = [self._run(chunk, eff, request.recording(self.placement)) for chunk in x.split(per_run)]
        return parts[0] if len(parts) == 1 else joined(parts)

    def _run(self, x: torch.Tensor, eff: dict, recording: Recording) -> Forward:
        """One device run of the batch ``x`` with the configured weights, replayed layer by layer."""
        net, request = self.placement.network, self.sample_request
        stim = self.placement.encode({net.inputs[0].name: x.detach().cpu().numpy()}, self.duration_s)
        meas = self.device.run(stim, recording)
        samples = None
        if request is not None:
            samples = device_samples(meas, request, self.calibration, self.placement, self.duration_s, self.dtype)
        out, clamped, beyond, inputs = {}, {}, {}, self.model_inputs(x)
        for layer in self.chain:
            neurons = self.placement.neurons[layer.name]
            times, beyond[layer.name] = meas.spike_times_and_beyond(neurons, layer.max_spikes)
            measured = torch.as_tensor(times, dtype=self.dtype)
            sampled = samples is not None and layer.name in samples.voltages
            replayed = replay_spike_times(
                inputs,
                eff[layer.name][0],
                self.params[layer.name],
                measured,
                t_max=self.duration_s,
                drive_floor=self.drive_floor,
                sample_times=samples.times if sampled else None,
                measured_voltages=samples.voltages[layer.name] if sampled else None,
            )
            out[layer.name], clamped[layer.name] = replayed.times, int(replayed.n_clamped)
            if sampled:
                samples.voltages[layer.name] = replayed.voltages
            inputs = out[layer.name]
        diagnostics = Diagnostics(health=meas.health, clamped=clamped, beyond=beyond, measurement=meas)
        return Forward(out, diagnostics, samples)


def joined(parts: list[Forward]) -> Forward:
    """Forward results of consecutive chunks of a batch as one (trials in order; measurement None)."""
    times = {name: torch.cat([p.times[name] for p in parts]) for name in parts[0].times}
    diags = [p.diagnostics for p in parts]
    health = sum((d.health for d in diags[1:]), diags[0].health)
    total = {key: {name: sum(getattr(d, key)[name] for d in diags) for name in times} for key in ("clamped", "beyond")}
    first = parts[0].samples
    samples = MembraneSamples(
        torch.cat([p.samples.times for p in parts]),
        {name: torch.cat([p.samples.voltages[name] for p in parts]) for name in first.voltages},
        first.recorded,
    )
    return Forward(times, Diagnostics(health=health, **total), samples)
