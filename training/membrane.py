"""Membrane samples in training: what a forward pass asks the device for, and the codes in model units.

``SampleRequest`` names the layers whose membranes a loss needs and the ADC that reads them:
the CADC (every neuron, one sample per ``period_s`` >= ``hil.chip.CADC_MIN_PERIOD_S`` from a
phase the device picks per trial) or the MADC (one neuron, ``n_samples`` samples
``hil.chip.MADC_SAMPLE_PERIOD_S`` (about 34 ns) apart from trial start). ``check`` raises
``ConfigError`` before anything runs; ``recording`` is the ``hil.Recording`` to send;
``grid`` the sample times the software backend uses. ``device_samples`` turns a
``hil.Measurement`` into ``MembraneSamples``: the times the device reports, per trial, and
the codes mapped through the calibration (leak 0, threshold 1, per-channel CADC offsets).
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

from hil import Recording, chip
from hil.errors import ConfigError, ProtocolError

from .lif import LIFParameters

ADCS = ("cadc", "madc")
NONSPIKING_V_TH = 1e3
"""Model threshold (model units) of a non-spiking layer: out of reach of any realistic drive."""


def nonspiking_lif(params: LIFParameters) -> LIFParameters:
    """``params`` with the threshold out of reach (``NONSPIKING_V_TH``): a leaky integrator."""
    return attrs.evolve(params, v_th=NONSPIKING_V_TH)


def request_for(config, chain) -> SampleRequest | None:
    """The ``SampleRequest`` a ``TrainerConfig`` needs (None: spikes only), checked: the output layer
    for ``readout = 'max_membrane'`` and ``silent_label_time = 'membrane'``, every layer for ``silent_loss > 0``,
    CADC every ``sample_period_s``."""
    names = [layer.name for layer in chain] if config.silent_loss > 0 else []
    wants_output = config.readout == "max_membrane" or config.silent_label_time == "membrane"
    if wants_output and "output" not in names:
        names.append("output")
    if not names:
        return None
    request = SampleRequest(names, "cadc", config.sample_period_s)
    request.check({layer.name: layer.size for layer in chain}, config.duration_s)
    return request


@attrs.frozen
class SampleRequest:
    """Membrane samples one forward pass reads.

    layers:    names of the layers whose samples the loss uses (with the MADC: exactly one)
    adc:       "cadc" (all neurons, every ``period_s``) or "madc" (neuron ``neuron`` of the layer)
    period_s:  CADC sampling period in seconds (>= ``chip.CADC_MIN_PERIOD_S``)
    neuron:    MADC: index of the neuron within its layer
    n_samples: MADC: samples per trial, ``chip.MADC_SAMPLE_PERIOD_S`` apart from trial start
    """

    layers: tuple = attrs.field(converter=tuple)
    adc: str = "cadc"
    period_s: float = chip.CADC_MIN_PERIOD_S
    neuron: int | None = None
    n_samples: int = 0

    def check(self, sizes: dict, duration_s: float) -> None:
        """``ConfigError`` naming the field, value and what is allowed, for a network with layer
        ``sizes`` (name -> neurons) and trials of ``duration_s``."""
        if self.adc not in ADCS:
            raise ConfigError(f"SampleRequest.adc = {self.adc!r}; allowed: 'cadc' or 'madc'")
        unknown = [name for name in self.layers if name not in sizes]
        if unknown or not self.layers:
            raise ConfigError(f"SampleRequest.layers = {list(self.layers)}; allowed: one or more of {list(sizes)}")
        if self.adc == "cadc":
            if not (np.isfinite(self.period_s) and self.period_s >= chip.CADC_MIN_PERIOD_S):
                raise ConfigError(
                    f"SampleRequest.period_s = {self.period_s!r} is below the CADC's minimum; "
                    f"allowed: >= {chip.CADC_MIN_PERIOD_S:g} s"
                )
            return
        self._check_madc(sizes, duration_s)

    def _check_madc(self, sizes: dict, duration_s: float) -> None:
        if len(self.layers) != 1:
            raise ConfigError(
                f"SampleRequest.layers = {list(self.layers)} with adc = 'madc': the MADC records one neuron; "
                "allowed: one layer (use the CADC for several)"
            )
        size = sizes[self.layers[0]]
        if not (isinstance(self.neuron, (int, np.integer)) and 0 <= self.neuron < size):
            raise ConfigError(
                f"SampleRequest.neuron = {self.neuron!r}; allowed: 0..{size - 1} (a neuron of layer {self.layers[0]})"
            )
        last = (self.n_samples - 1) * chip.MADC_SAMPLE_PERIOD_S
        if not (isinstance(self.n_samples, (int, np.integer)) and 1 <= self.n_samples <= chip.MADC_MAX_SAMPLES):
            raise ConfigError(f"SampleRequest.n_samples = {self.n_samples!r}; allowed: 1..{chip.MADC_MAX_SAMPLES}")
        if last >= duration_s:
            raise ConfigError(
                f"SampleRequest.n_samples = {self.n_samples}: the last sample at {last:.4g} s is outside the trial; "
                f"allowed: at most {int(np.ceil(duration_s / chip.MADC_SAMPLE_PERIOD_S))} samples within "
                f"duration_s = {duration_s:g} s"
            )

    def recording(self, placement) -> Recording:
        """The ``hil.Recording`` of this request on ``placement`` (spikes are always recorded)."""
        if self.adc == "cadc":
            return Recording(cadc_period_s=self.period_s)
        circuit = int(placement.neurons[self.layers[0]][self.neuron])
        return Recording(madc_neuron=circuit, madc_samples=int(self.n_samples))

    def grid(self, duration_s: float) -> np.ndarray:
        """(S,) sample times in seconds the software backend uses: the CADC's at phase 0, or the MADC's."""
        period = self.period_s if self.adc == "cadc" else chip.MADC_SAMPLE_PERIOD_S
        n = int(np.ceil(duration_s / period - 1e-9)) if self.adc == "cadc" else self.n_samples
        times = period * np.arange(n)
        return times[times < duration_s]

    def recorded(self, layer: str, size: int) -> np.ndarray:
        """(size,) bool: which neurons of ``layer`` the request samples."""
        mask = np.zeros(size, bool)
        if layer in self.layers:
            mask[:] = self.adc == "cadc"
            if self.adc == "madc":
                mask[self.neuron] = True
        return mask


def trials_per_run(request: SampleRequest, limits, duration_s: float) -> int:
    """Most trials of ``duration_s`` one run may hold under the device's ``hil.DeviceLimits`` with
    this request's ADC readings (the CADC reads all 512 channels per reading)."""
    if request.adc == "cadc":
        ticks = np.array([round(duration_s / chip.TICK_S)], np.uint64)
        readings, limit = int(Recording(cadc_period_s=request.period_s).cadc_samples(ticks)[0]), limits.max_cadc_samples
    else:
        readings, limit = request.n_samples, limits.max_madc_samples
    return max(1, min(limits.max_trials, limit // readings))


@attrs.frozen(eq=False)
class MembraneSamples:
    """Membrane samples of a forward pass.

    times:    (batch, S) sample times in seconds from trial start (per trial on a chip)
    voltages: layer name -> (batch, n, S) membrane in model units (leak 0, threshold 1), with
              the model's adjoint as gradient; 0 for neurons ``recorded`` marks False
    recorded: layer name -> (n,) bool, the neurons sampled
    """

    times: torch.Tensor
    voltages: dict
    recorded: dict

    def of(self, layer: str, what: str = "loss") -> torch.Tensor:
        """The (batch, n, S) samples of ``layer``; ``ConfigError`` if it has unrecorded neurons."""
        if layer not in self.voltages or not self.recorded[layer].all():
            raise ConfigError(
                f"{what} needs the membrane samples of every neuron of layer {layer!r}; recorded: "
                f"{ {k: int(v.sum()) for k, v in self.recorded.items()} } (use the CADC, SampleRequest.adc = 'cadc')"
            )
        return self.voltages[layer]


def measured_times(meas, request: SampleRequest, duration_s: float) -> np.ndarray:
    """(n_trials, S) float64 sample times in seconds the device reports; ``ProtocolError`` if a
    reply lacks the samples asked for or reports times outside [0, duration_s)."""
    if request.adc == "cadc":
        if meas.cadc is None:
            raise ProtocolError("the device returned no CADC samples although the recording asked for them")
        times = np.asarray(meas.cadc.ticks, np.float64) * chip.TICK_S
    else:
        if meas.madc is None or meas.madc.samples.shape[1] != request.n_samples:
            raise ProtocolError(f"the device returned no MADC trace of {request.n_samples} samples as asked")
        times = np.broadcast_to(meas.madc.times(), (meas.n_trials, request.n_samples))
    if times.size and not ((times >= 0) & (times < duration_s)).all():
        raise ProtocolError(f"the device reported membrane samples outside the trial [0, {duration_s:g}) s")
    return np.ascontiguousarray(times)


def layer_codes(meas, request: SampleRequest, neurons: np.ndarray, layer: str):
    """(mapped model-unit samples (n_trials, n, S) float64, recorded (n,) bool) of one layer's neuron circuits."""
    if request.adc == "cadc":
        codes = np.moveaxis(meas.cadc.samples[..., neurons], 1, 2)  # (trials, S, n) -> (trials, n, S)
        return codes, request.recorded(layer, len(neurons))
    codes = np.zeros((meas.n_trials, len(neurons), request.n_samples))
    codes[:, request.neuron] = meas.madc.samples
    return codes, request.recorded(layer, len(neurons))


def device_samples(meas, request: SampleRequest, calibration, placement, duration_s: float, dtype) -> MembraneSamples:
    """``MembraneSamples`` of a measurement: reported times and codes in model units
    (``calibration.voltage_to_model``: CADC channel offsets, or the MADC's offset and gain)."""
    times = measured_times(meas, request, duration_s)
    voltages, recorded = {}, {}
    for layer in request.layers:
        neurons = np.asarray(placement.neurons[layer])
        codes, mask = layer_codes(meas, request, neurons, layer)
        if request.adc == "cadc":
            model = calibration.voltage_to_model(codes, neurons[:, None], adc="cadc")
        else:
            model = np.zeros_like(codes)
            model[:, mask] = calibration.voltage_to_model(codes[:, mask], int(neurons[mask][0]), adc="madc")
        voltages[layer] = torch.as_tensor(model, dtype=dtype)
        recorded[layer] = mask
    return MembraneSamples(torch.as_tensor(times, dtype=dtype), voltages, recorded)
