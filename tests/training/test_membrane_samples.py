"""Membrane samples from the device: requests and their errors, codes -> model units by hand,
and replay of the measured samples on a noise-off mock against the exact model."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import hil
from hil import SPIKE_DTYPE, CadcSamples, MadcTrace, Measurement, chip
from hil.errors import ConfigError, ProtocolError
from training.config import TrainerConfig
from training.lif import spike_times
from training.membrane import SampleRequest, device_samples, request_for, trials_per_run
from training.network import layers
from training.trainer import Trainer

from ..calibration.conftest import make_synthetic_result

SIZES = {"hidden0": 3, "output": 2}
PLACED = SimpleNamespace(neurons={"hidden0": np.array([0, 7, 300]), "output": np.array([10, 11])})
DURATION = 50e-6


def measurement(cadc=None, madc=None, n_trials=2):
    return Measurement(np.zeros(0, SPIKE_DTYPE), n_trials, cadc=cadc, madc=madc)


def by_hand(result, code, neuron, adc="cadc"):
    leak, thr = result.measured["v_leak"][neuron], result.measured["v_threshold"][neuron]
    lsb = code - result.adc.cadc_offset[neuron] if adc == "cadc" else (code + 3.0) / 4.1
    return (lsb - leak) / (thr - leak)


def test_cadc_codes_become_model_units_at_the_reported_times():
    result = make_synthetic_result()
    rng = np.random.default_rng(3)
    codes = rng.integers(60, 200, (2, 4, chip.N_NEURONS)).astype(np.uint8)
    ticks = np.array([[5, 255, 505, 755], [100, 350, 600, 850]], np.uint64)
    request = SampleRequest(["hidden0", "output"], "cadc", 2e-6)
    samples = device_samples(measurement(CadcSamples(codes, ticks)), request, result, PLACED, DURATION, torch.float64)
    np.testing.assert_array_equal(samples.times.numpy(), ticks * 8e-9)
    for layer, neurons in PLACED.neurons.items():
        v = samples.of(layer).numpy()
        assert v.shape == (2, len(neurons), 4)
        for trial, j, k in [(0, 0, 0), (1, len(neurons) - 1, 3), (1, 1, 2)]:
            expected = by_hand(result, float(codes[trial, k, neurons[j]]), neurons[j])
            assert v[trial, j, k] == pytest.approx(expected, abs=1e-12)


def test_madc_trace_of_one_neuron_maps_through_the_madc_scale():
    result = make_synthetic_result()
    codes = np.array([[300, 310, 600], [320, 330, 340]], np.uint16)
    request = SampleRequest(["output"], "madc", neuron=1, n_samples=3)
    assert request.recording(PLACED).madc_neuron == 11
    trace = MadcTrace(neuron=11, source="membrane", samples=codes)
    samples = device_samples(measurement(madc=trace), request, result, PLACED, DURATION, torch.float64)
    np.testing.assert_allclose(samples.times[0].numpy(), np.arange(3) * chip.MADC_SAMPLE_PERIOD_S)
    v = samples.voltages["output"].numpy()
    np.testing.assert_allclose(v[:, 1], by_hand(result, codes.astype(float), 11, adc="madc"), atol=1e-12)
    assert (v[:, 0] == 0).all() and samples.recorded["output"].tolist() == [False, True]
    with pytest.raises(ConfigError, match="every neuron of layer 'output'"):
        samples.of("output")


@pytest.mark.parametrize(
    "request_, message",
    [
        (
            SampleRequest(["output"], "cadc", 1.0e-6),
            r"period_s = 1e-06 is below the CADC's minimum; allowed: >= 1.7e-06",
        ),
        (SampleRequest(["hidden3"]), r"layers = \['hidden3'\]; allowed: one or more of \['hidden0', 'output'\]"),
        (SampleRequest(["output"], "madc", neuron=2, n_samples=10), r"neuron = 2; allowed: 0..1"),
        (
            SampleRequest(["output"], "madc", neuron=0, n_samples=2000),
            r"n_samples = 2000: the last sample at .* outside",
        ),
        (SampleRequest(["hidden0", "output"], "madc", neuron=0, n_samples=3), "the MADC records one neuron"),
        (SampleRequest(["output"], "xadc"), "adc = 'xadc'; allowed"),
    ],
)
def test_bad_requests_are_config_errors_naming_field_value_and_allowed(request_, message):
    with pytest.raises(ConfigError, match=message):
        request_.check(SIZES, DURATION)


def test_bad_config_values_are_refused_before_a_device():
    with pytest.raises(ConfigError, match="sample_period_s = 1e-06; allowed: >= 1.7e-06"):
        TrainerConfig(sample_period_s=1e-6)
    with pytest.raises(ConfigError, match="loss = 'spike_time_mse' with readout = 'max_membrane'"):
        TrainerConfig(readout="max_membrane", loss="spike_time_mse")
    with pytest.raises(ConfigError, match=r"v_threshold = 220 with readout = 'max_membrane'; allowed: <= 165"):
        TrainerConfig(readout="max_membrane")  # the default operating point: peaks would leave the CADC's range
    chain = layers((4,), 3, (1, 1))
    assert request_for(TrainerConfig(), chain) is None
    assert request_for(TrainerConfig(readout="max_membrane", v_threshold=150.0), chain).layers == ("output",)
    assert request_for(TrainerConfig(silent_loss=1.0), chain).layers == ("hidden0", "output")


def test_a_reply_with_samples_outside_the_trial_or_without_them_is_a_protocol_error():
    result = make_synthetic_result()
    request = SampleRequest(["output"], "cadc", 2e-6)
    late = CadcSamples(np.full((2, 1, chip.N_NEURONS), 80, np.uint8), np.array([[0], [6250]], np.uint64))
    with pytest.raises(ProtocolError, match="outside the trial"):
        device_samples(measurement(late), request, result, PLACED, DURATION, torch.float64)
    with pytest.raises(ProtocolError, match="no CADC samples"):
        device_samples(measurement(), request, result, PLACED, DURATION, torch.float64)


def device_and_model(config, n=20):
    """(device Forward, ideal-model Forward at the device's sample times, network) on the config's chip."""
    trainer = Trainer(config, "/tmp/unused-membrane-test", progress=False)
    backend = trainer.open_backend(torch.Generator().manual_seed(0))
    with backend as b:
        net = b.network
        x = trainer.train_data.inputs[:n].to(net.dtype)
        measured = net(x)
        return measured, net.ideal(x, measured.samples.times), net


@pytest.mark.slow
def test_replayed_hidden_samples_carry_the_models_gradient_on_a_noise_off_mock():
    config = TrainerConfig(device="mock://?seed=5&noise=off", n_hidden=40, train_size=40, test_size=20, silent_loss=1.0)
    measured, model, net = device_and_model(config)
    meas = measured.diagnostics.measurement
    times = measured.samples.times
    np.testing.assert_allclose(times.numpy(), meas.cadc.ticks * chip.TICK_S, rtol=1e-6)
    assert len(set(times[:, 0].tolist())) > 1  # the device's own phase per trial, not a fixed grid
    for name, v in measured.samples.voltages.items():
        gap = (v - model.samples.voltages[name]).abs().median()
        assert gap < 0.02, (name, gap)  # calibrated chip and model agree closely without noise
    v, w = measured.samples.voltages["hidden0"], net.weights["hidden0"]
    c = torch.randn(v.shape, generator=torch.Generator().manual_seed(1), dtype=v.dtype)
    (chip_grad,) = torch.autograd.grad((v * c).sum(), [w])
    (model_grad,) = torch.autograd.grad((model.samples.voltages["hidden0"] * c).sum(), [w])
    cos = torch.nn.functional.cosine_similarity(chip_grad.flatten(), model_grad.flatten(), dim=0)
    assert cos > 0.95, float(cos)  # the chip's spikes (which place the resets) differ a little from the model's
    assert float(chip_grad.norm() / model_grad.norm()) == pytest.approx(1, abs=0.1)


@pytest.mark.slow
def test_readout_samples_replayed_have_exactly_the_adjoint_of_the_model_at_the_reported_times():
    """Non-spiking outputs: the replay's gradient to the output weights and to the measured hidden
    spikes equals the exact model's (spike_times with the same inputs, sampled at the chip's times)."""
    config = TrainerConfig(
        device="mock://?seed=5&noise=off",
        n_hidden=40,
        train_size=40,
        test_size=20,
        readout="max_membrane",
        dtype="float64",
        v_threshold=150.0,
        weight_gain=1.0,
    )
    measured, _, net = device_and_model(config)
    assert not torch.isfinite(measured.times["output"]).any()
    hidden = measured.times["hidden0"]
    leaf = hidden.detach().requires_grad_()
    eff = net.effective_weights()["output"][0]
    model = spike_times(
        leaf, eff, net.params["output"], t_max=net.duration_s, sample_times=measured.samples.times
    ).voltages
    v = measured.samples.voltages["output"]
    c = torch.randn(v.shape, generator=torch.Generator().manual_seed(2), dtype=v.dtype)
    chip_grads = torch.autograd.grad((v * c).sum(), [net.weights["output"], hidden])
    model_grads = torch.autograd.grad((model * c).sum(), [net.weights["output"], leaf])
    for a, b in zip(chip_grads, model_grads, strict=True):
        assert float(b.abs().max()) > 0
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12 * float(b.abs().max()))
    assert (v - model).abs().median() < 0.02  # and the measured values are the model's, up to the ADC


def test_trials_per_run_respects_the_adc_limits():
    limits = hil.DeviceLimits(max_trials=1000, max_cadc_samples=100, max_madc_samples=1000)
    assert trials_per_run(SampleRequest(["output"], "cadc", 2e-6), limits, DURATION) == 4  # 25 readings per trial
    assert trials_per_run(SampleRequest(["output"], "cadc", 1.7e-6), limits, DURATION) == 3  # 30 readings
    assert trials_per_run(SampleRequest(["output"], "madc", neuron=0, n_samples=300), limits, DURATION) == 3


@pytest.mark.slow
def test_a_batch_beyond_one_runs_cadc_budget_goes_in_several_runs():
    config = TrainerConfig(
        device="mock://?seed=5&noise=off", n_hidden=40, train_size=400, test_size=20, silent_loss=1.0
    )
    measured, model, _ = device_and_model(config, n=400)  # 400 x 25 readings > 8192: two runs
    assert measured.diagnostics.measurement is None
    assert measured.samples.times.shape == (400, 25) and measured.samples.voltages["hidden0"].shape == (400, 40, 25)
    assert measured.diagnostics.health.bytes_received > 400 * 25 * 512
    agree = (measured.times["output"].isfinite() == model.times["output"].isfinite()).double().mean()
    assert agree > 0.95  # the second run's trials are the right ones (in order)
