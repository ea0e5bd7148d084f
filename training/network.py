"""Layered feed-forward spiking networks: the layer list, and the part both backends share.

A network is an input population (``n_inputs`` spike sources, each sent ``duplication``
times to its own weights) followed by LIF layers ``hidden0, hidden1, ..., output``, each
dense from the one before. ``SpikingNetwork`` holds the float weights in model units
(synaptic current jump over threshold distance) and per-layer ``LIFParameters``; its
``forward`` returns ``Forward`` (every layer's spike times and the run's ``Diagnostics``).
``IdealNetwork`` is the software backend: the exact model, unquantised weights.
``training.hardware.DeviceNetwork`` is the chip backend.
"""

from __future__ import annotations

import math

import attrs
import torch

import hil

from .bumping import bump_silent
from .lif import spike_times
from .membrane import MembraneSamples, SampleRequest


@attrs.frozen
class Layer:
    """One LIF layer: population ``name`` (``hidden0``.. or ``output``), ``size`` neurons, and the
    ``max_spikes`` per neuron and trial that count (later spikes are dropped)."""

    name: str
    size: int
    max_spikes: int

    @property
    def title(self) -> str:
        """Human name for plots and messages: 'hidden layer 1', 'output layer'."""
        return "output layer" if self.name == "output" else f"hidden layer {int(self.name[len('hidden') :]) + 1}"


def layers(hidden_sizes, n_outputs: int, max_spikes) -> list[Layer]:
    """``Layer`` list from hidden sizes, the output size and max_spikes per layer (hidden..., output)."""
    names = [f"hidden{i}" for i in range(len(hidden_sizes))] + ["output"]
    return [Layer(n, s, m) for n, s, m in zip(names, [*hidden_sizes, n_outputs], max_spikes, strict=True)]


def hil_network(n_inputs: int, duplication: int, chain: list[Layer]) -> hil.Network:
    """The ``hil.Network`` of the chain (population names as the layers')."""
    return hil.Network.feedforward(
        n_inputs, [layer.size for layer in chain[:-1]], chain[-1].size, duplication=duplication
    )


@attrs.frozen(eq=False)
class Diagnostics:
    """What one forward pass cost and where it was inexact.

    health:      the measurement's ``hil.Health`` (bytes moved, drops, retries); zeros in software
    clamped:     layer -> measured spikes whose model drive was raised to the floor in the replay
    beyond:      layer -> spikes that came after a neuron's ``max_spikes`` and were left out
    measurement: the device's ``hil.Measurement`` (None in software)
    """

    health: hil.Health = attrs.field(factory=hil.Health)
    clamped: dict = attrs.field(factory=dict)
    beyond: dict = attrs.field(factory=dict)
    measurement: hil.Measurement | None = None

    @property
    def bytes(self) -> int:
        return self.health.bytes_sent + self.health.bytes_received


class Forward(tuple):
    """``(times, diagnostics)``: layer name -> (batch, n, max_spikes) seconds, and ``Diagnostics``;
    ``samples``: the membrane samples (``training.membrane.MembraneSamples``) or None."""

    def __new__(cls, times: dict, diagnostics: Diagnostics, samples=None):
        self = super().__new__(cls, (times, diagnostics))
        self.samples = samples
        return self

    @property
    def times(self) -> dict:
        return self[0]

    @property
    def diagnostics(self) -> Diagnostics:
        return self[1]


class SpikingNetwork(torch.nn.Module):
    """Weights and per-layer neuron parameters of a chain; backends implement ``forward``.

    chain:     the ``Layer`` list, output last
    lif:       layer name -> ``LIFParameters`` (per-neuron tensors or scalars)
    init:      layer name -> (mean, std) of the normal initial weights, drawn from ``generator``
               layer by layer in float64 and cast to ``dtype``
    input_latency_s: delay from an input spike's time to its synaptic effect

    ``sample_request`` (``training.membrane.SampleRequest`` or None) says which layers'
    membranes a forward pass samples; ``bump_output`` whether ``bump_silent`` bumps the output layer.
    """

    def __init__(
        self,
        chain: list[Layer],
        n_inputs: int,
        duplication: int,
        lif: dict,
        *,
        duration_s: float,
        init: dict,
        generator: torch.Generator | None = None,
        dtype=torch.float32,
        input_latency_s: float = 0.0,
    ):
        super().__init__()
        self.chain, self.n_inputs, self.duplication = list(chain), int(n_inputs), int(duplication)
        self.duration_s, self.dtype, self.input_latency_s = float(duration_s), dtype, float(input_latency_s)
        self.params = dict(lif)
        self.weights = torch.nn.ParameterDict()
        fan_in = self.n_inputs * self.duplication
        for layer in self.chain:
            mean, std = init[layer.name]
            w = torch.randn((fan_in, layer.size), generator=generator, dtype=torch.float64) * std + mean
            self.weights[layer.name] = torch.nn.Parameter(w.to(dtype))
            fan_in = layer.size
        self.sample_request: SampleRequest | None = None
        self.bump_output = True

    def model_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Input spike times (batch, n_in[, k]) -> what the first layer's synapses see (batch, n_in * dup[, k])."""
        return x.to(self.dtype).repeat_interleave(self.duplication, dim=1) + self.input_latency_s

    def effective_weights(self) -> dict[str, tuple[torch.Tensor, object]]:
        """Layer -> (the weights the neurons see, with gradient; hardware integer weights or None)."""
        return {name: (w, None) for name, w in self.weights.items()}

    def simulate(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's spike times in the ideal model (``ideal``)."""
        return self.ideal(x).times

    def ideal(self, x: torch.Tensor, sample_times: torch.Tensor | None = None) -> Forward:
        """The ideal model with ``effective_weights`` and the per-layer parameters (no device).
        ``sample_times`` (S,) or (batch, S) seconds: sample the membranes ``sample_request`` names
        there (default: its grid); no samples without a request."""
        out, beyond, inputs = {}, {}, self.model_inputs(x)
        request, eff = self.sample_request, self.effective_weights()
        if request is not None and sample_times is None:
            sample_times = torch.as_tensor(request.grid(self.duration_s), dtype=self.dtype)
        voltages, recorded = {}, {}
        for layer in self.chain:
            sampled = request is not None and layer.name in request.layers
            result = spike_times(
                inputs,
                eff[layer.name][0],
                self.params[layer.name],
                t_max=self.duration_s,
                max_spikes=layer.max_spikes,
                sample_times=sample_times if sampled else None,
            )
            out[layer.name], beyond[layer.name] = result.times, result.n_overflow
            if sampled:
                voltages[layer.name], recorded[layer.name] = result.voltages, request.recorded(layer.name, layer.size)
            inputs = out[layer.name]
        samples = None
        if request is not None:
            samples = MembraneSamples(sample_times.expand(len(x), -1), voltages, recorded)
        return Forward(out, Diagnostics(beyond=beyond), samples)

    def weight_limits(self) -> dict[str, float]:
        """Layer -> largest weight magnitude the backend realises (inf: no limit)."""
        return {name: math.inf for name in self.weights}

    @torch.no_grad()
    def clip_weights(self, limits: dict[str, float] | None = None) -> None:
        """Clamp every weight to +-``limits[name]`` (default ``weight_limits()``)."""
        limits = limits or self.weight_limits()
        for name, w in self.weights.items():
            if math.isfinite(limits[name]):
                w.clamp_(-limits[name], limits[name])

    def bump_silent(self, times: dict[str, torch.Tensor], labels: torch.Tensor, bump: float, copies: int = 1) -> None:
        """Weight bumping of silent neurons (``training.bumping.bump_silent``, ``copies`` output neurons
        per class) on every layer (the output layer only with ``bump_output``)."""
        layers = [(w, times[name]) for name, w in self.weights.items()]
        if not self.bump_output:  # the output's bump goes to a scratch copy of its weights
            layers[-1] = (layers[-1][0].detach().clone(), layers[-1][1])
        bump_silent(layers, labels, bump, copies)


class IdealNetwork(SpikingNetwork):
    """The software backend: ``forward`` is the exact model (``simulate``), EventProp gradients."""

    def forward(self, x: torch.Tensor) -> Forward:
        return self.ideal(x)
