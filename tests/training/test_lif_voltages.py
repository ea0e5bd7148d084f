"""Membrane samples: values, EventProp gradients against central finite differences (float64),
replay on measured samples, float32, and the errors for bad requests."""

from __future__ import annotations

import math

import pytest
import torch

from hil.errors import ConfigError
from training.lif import LIFParameters, replay_spike_times, spike_times

from .conftest import random_layer, well_posed

T_MAX = 50e-6
SAMPLES = torch.linspace(0.25e-6, 49.75e-6, 199, dtype=torch.float64)  # every 250 ns
CASES = [  # (tau_mem / tau_syn, v_reset, t_refrac): closed form, Newton, equal time constants
    (2.0, -0.3, 2e-6),
    (1.37, -0.5, 1e-6),
    (1.0, 0.2, 3e-6),
]


def params_for(ratio, v_reset, t_refrac):
    return LIFParameters(tau_mem=10e-6, tau_syn=10e-6 / ratio, v_leak=0.1, v_reset=v_reset, t_refrac=t_refrac)


def mixed_loss(out, voltage_coefficients, time_coefficients=None) -> torch.Tensor:
    """sum c V(t_k) (+ sum c' T for the finite spike times)."""
    loss = (out.voltages * voltage_coefficients).sum()
    if time_coefficients is not None:
        loss = loss + torch.where(torch.isfinite(out.times), out.times * time_coefficients, 0.0).sum()
    return loss


def central_differences(fn, x: torch.Tensor, h: float, indices) -> torch.Tensor:
    grad = torch.zeros(len(indices), dtype=x.dtype)
    for n, index in enumerate(indices):
        step = torch.zeros_like(x).view(-1)
        step[index] = h
        grad[n] = (fn(x + step.view_as(x)) - fn(x - step.view_as(x))) / (2 * h)
    return grad


def assert_matches_differences(analytic, numeric):
    scale = numeric.abs().max()
    assert scale > 0
    assert float((analytic - numeric).abs().max() / scale) <= 1e-6


def samples_clear_of_events(times, params, margin=2e-9) -> bool:
    """No sample within ``margin`` of a spike or the end of a hold (finite differences would jump)."""
    finite = times[torch.isfinite(times)]
    edges = torch.cat([finite, finite + float(torch.as_tensor(params.t_refrac))])
    return bool(edges.numel() == 0 or (SAMPLES[:, None] - edges[None]).abs().min() > margin)


def find_layer(params, max_spikes=8):
    for seed in range(50):
        input_times, weights = random_layer(seed, batch=2)
        out = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=max_spikes)
        if (
            out.n_overflow == 0
            and well_posed(input_times, weights, params, T_MAX, max_spikes)
            and samples_clear_of_events(out.times, params)
        ):
            return seed, input_times, weights
    raise AssertionError("no well-posed random case found")


@pytest.mark.parametrize("ratio, v_reset, t_refrac", CASES)
@pytest.mark.parametrize("with_times", [False, True], ids=["voltages", "voltages+times"])
def test_single_layer_gradients_match_finite_differences(ratio, v_reset, t_refrac, with_times):
    params = params_for(ratio, v_reset, t_refrac)
    seed, input_times, weights = find_layer(params)
    g = torch.Generator().manual_seed(seed)
    c_v = torch.randn(2, weights.shape[1], SAMPLES.numel(), generator=g, dtype=torch.float64)
    c_t = torch.randn(2, weights.shape[1], 8, generator=g, dtype=torch.float64) * 1e5 if with_times else None
    x, w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
    out = spike_times(x, w, params, t_max=T_MAX, max_spikes=8, sample_times=SAMPLES)
    assert int(torch.isfinite(out.times[..., 1]).sum()) >= 3  # neurons that spike several times
    assert int((out.voltages == params.v_reset).sum()) >= 5  # samples inside refractory holds
    mixed_loss(out, c_v, c_t).backward()

    def loss(t, ww):
        return mixed_loss(spike_times(t, ww, params, t_max=T_MAX, max_spikes=8, sample_times=SAMPLES), c_v, c_t)

    with torch.no_grad():
        w_indices = list(range(weights.numel()))
        fd_w = central_differences(lambda ww: loss(input_times, ww), weights, 1e-6, w_indices)
        assert_matches_differences(w.grad.view(-1)[w_indices], fd_w)
        t_indices = torch.randperm(input_times.numel(), generator=g)[:12].tolist()
        fd_t = central_differences(lambda t: loss(t, weights), input_times, 1e-11, t_indices)
        assert_matches_differences(x.grad.view(-1)[t_indices], fd_t)


def test_two_layers_voltage_gradients_reach_the_input_times():
    params = params_for(1.37, -0.2, 1e-6)
    g = torch.Generator().manual_seed(3)
    for _ in range(50):
        input_times = torch.rand(2, 4, generator=g, dtype=torch.float64) * 10e-6
        w1 = torch.randn(4, 6, generator=g, dtype=torch.float64) * 1.5 + 2.0
        w2 = torch.randn(6, 3, generator=g, dtype=torch.float64) * 0.5 + 0.6
        hidden = spike_times(input_times, w1, params, t_max=T_MAX, max_spikes=4)
        out = spike_times(hidden.times, w2, params, t_max=T_MAX, max_spikes=4)
        if (
            hidden.n_overflow == out.n_overflow == 0
            and int(torch.isfinite(hidden.times).sum()) >= 8
            and well_posed(input_times, w1, params, T_MAX, 4)
            and well_posed(hidden.times, w2, params, T_MAX, 4)
            and samples_clear_of_events(out.times, params)
        ):
            break
    else:
        raise AssertionError("no well-posed random network found")
    c_v = torch.randn(2, 3, SAMPLES.numel(), generator=g, dtype=torch.float64)

    def network(t, a, b):
        h = spike_times(t, a, params, t_max=T_MAX, max_spikes=4).times
        return mixed_loss(spike_times(h, b, params, t_max=T_MAX, max_spikes=4, sample_times=SAMPLES), c_v)

    x, a = input_times.clone().requires_grad_(), w1.clone().requires_grad_()
    network(x, a, w2).backward()
    with torch.no_grad():
        fd_x = central_differences(lambda t: network(t, w1, w2), input_times, 1e-11, list(range(input_times.numel())))
        fd_w1 = central_differences(lambda ww: network(input_times, ww, w2), w1, 1e-6, list(range(0, w1.numel(), 2)))
    assert_matches_differences(x.grad.view(-1), fd_x)
    assert_matches_differences(a.grad.view(-1)[::2], fd_w1)


def test_samples_follow_the_trajectory_and_the_holds():
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6, v_leak=0.2, v_th=1.2, v_reset=-0.4, t_refrac=2e-6)
    input_times = torch.tensor([[1e-6, 30e-6]], dtype=torch.float64)
    weights = torch.tensor([[8.0], [0.5]], dtype=torch.float64)
    out = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=4, sample_times=SAMPLES)
    spike = float(out.times[0, 0, 0])
    assert torch.isfinite(out.times[0, 0, 0]) and not torch.isfinite(out.times[0, 0, 1])
    v = out.voltages[0, 0]
    assert (v[SAMPLES < 1e-6] == 0.2).all()  # at rest before any input
    in_hold = (SAMPLES >= spike) & (SAMPLES < spike + 2e-6)
    assert int(in_hold.sum()) == 8 and (v[in_hold] == -0.4).all()
    s = (
        SAMPLES[(SAMPLES > 1e-6) & (SAMPLES < spike)] - 1e-6
    )  # one input: V = v_leak + w (tau_syn/(tau_syn - tau_mem))...
    rise = 0.2 + 8.0 * 5 / (5 - 10) * (torch.exp(-s / 5e-6) - torch.exp(-s / 10e-6))
    torch.testing.assert_close(v[(SAMPLES > 1e-6) & (SAMPLES < spike)], rise, rtol=1e-12, atol=1e-12)
    assert (v[(SAMPLES > 1e-6) & (SAMPLES < spike)] < 1.2).all()


def test_sample_at_a_spike_sees_the_reset_and_batch_rows_have_their_own_times():
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6, v_reset=-0.5, t_refrac=1e-6)
    input_times = torch.tensor([[1e-6], [2e-6]], dtype=torch.float64)
    weights = torch.tensor([[6.0]], dtype=torch.float64)
    spikes = spike_times(input_times, weights, params, t_max=T_MAX).times[:, 0, 0]
    per_trial = torch.stack([spikes - 1e-9, spikes, spikes + 0.5e-6, spikes + 1.5e-6], dim=1)  # (batch, S)
    v = spike_times(input_times, weights, params, t_max=T_MAX, sample_times=per_trial).voltages[:, 0]
    assert (v[:, 0] > 0.99).all() and (v[:, 0] < 1).all()
    assert (v[:, 1] == -0.5).all() and (v[:, 2] == -0.5).all()  # right-continuous: the reset, then the hold
    assert (v[:, 3] > -0.5).all()  # free again after the hold
    assert not torch.equal(per_trial[0], per_trial[1])


def test_samples_after_a_dropped_spike_are_nan_and_carry_no_gradient():
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6)
    input_times = torch.tensor([[1e-6, 2e-6]], dtype=torch.float64)
    weights = torch.tensor([[20.0, 0.5], [20.0, 0.5]], dtype=torch.float64, requires_grad=True)
    out = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=1, sample_times=SAMPLES)
    assert out.overflow.tolist() == [[True, False]]
    many = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=50)
    dropped = float(many.times[0, 0, 1].detach())
    v = out.voltages[0, 0]
    assert torch.isnan(v[SAMPLES >= dropped]).all() and torch.isfinite(v[SAMPLES < dropped]).all()
    assert torch.isfinite(out.voltages[0, 1]).all()
    torch.where(torch.isnan(out.voltages), 0.0, out.voltages).sum().backward()
    assert torch.isfinite(weights.grad).all() and weights.grad.abs().max() > 0


def test_asking_for_samples_does_not_change_spike_times():
    params = params_for(1.37, -0.3, 2e-6)
    input_times, weights = random_layer(9, batch=5)
    plain = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=6)
    sampled = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=6, sample_times=SAMPLES)
    assert torch.equal(plain.times, sampled.times) and torch.equal(plain.overflow, sampled.overflow)
    assert plain.voltages is None and sampled.voltages.shape == (5, 4, SAMPLES.numel())


@pytest.mark.parametrize("ratio, v_reset, t_refrac", CASES)
def test_replay_of_the_model_gives_the_model_gradients(ratio, v_reset, t_refrac):
    params = params_for(ratio, v_reset, t_refrac)
    _, input_times, weights = find_layer(params)
    g = torch.Generator().manual_seed(4)
    c_v = torch.randn(2, 4, SAMPLES.numel(), generator=g, dtype=torch.float64)
    c_t = torch.randn(2, 4, 8, generator=g, dtype=torch.float64) * 1e5
    sim_x, sim_w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
    out = spike_times(sim_x, sim_w, params, t_max=T_MAX, max_spikes=8, sample_times=SAMPLES)
    mixed_loss(out, c_v, c_t).backward()
    grads = []
    for noise in (0.0, 0.3):  # the gradient is the model's adjoint, whatever values were measured
        x, w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
        measured_v = out.voltages.detach() + noise * torch.randn(out.voltages.shape, generator=g, dtype=torch.float64)
        replay = replay_spike_times(
            x, w, params, out.times.detach(), t_max=T_MAX, sample_times=SAMPLES, measured_voltages=measured_v
        )
        assert torch.equal(replay.voltages, measured_v) and int(replay.n_clamped) == 0
        mixed_loss(replay, c_v, c_t).backward()
        grads.append((x.grad, w.grad))
    for x_grad, w_grad in grads:
        torch.testing.assert_close(w_grad, sim_w.grad, rtol=1e-10, atol=1e-12 * float(sim_w.grad.abs().max()))
        torch.testing.assert_close(x_grad, sim_x.grad, rtol=1e-10, atol=1e-12 * float(sim_x.grad.abs().max()))


def test_replay_of_voltages_alone_for_a_non_spiking_readout():
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6, v_th=1e3)  # threshold out of reach
    input_times, weights = random_layer(2, batch=3)
    x, w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
    model = spike_times(x, w, params, t_max=T_MAX, sample_times=SAMPLES)
    assert not torch.isfinite(model.times).any()
    model.voltages.amax(dim=-1).sum().backward()
    xr, wr = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
    no_spikes = torch.empty(3, 4, 0, dtype=torch.float64)
    replay = replay_spike_times(
        xr, wr, params, no_spikes, t_max=T_MAX, sample_times=SAMPLES, measured_voltages=model.voltages.detach()
    )
    replay.voltages.amax(dim=-1).sum().backward()
    assert w.grad.abs().max() > 0
    torch.testing.assert_close(wr.grad, w.grad, rtol=1e-12, atol=0)
    torch.testing.assert_close(xr.grad, x.grad, rtol=1e-12, atol=1e-12 * float(x.grad.abs().max()))


def test_float32_voltages_and_gradients_agree_with_float64():
    params = params_for(2.0, -0.3, 2e-6)
    _, input_times, weights = find_layer(params)
    c_v = torch.randn(2, 4, SAMPLES.numel(), generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    results = {}
    for dtype in (torch.float32, torch.float64):
        x, w = input_times.to(dtype).requires_grad_(), weights.to(dtype).requires_grad_()
        out = spike_times(x, w, params, t_max=T_MAX, max_spikes=8, sample_times=SAMPLES.to(dtype))
        mixed_loss(out, c_v.to(dtype)).backward()
        assert out.voltages.dtype == w.grad.dtype == dtype
        results[dtype] = (out.voltages.detach().double(), w.grad.double(), x.grad.double())
    for single, double in zip(results[torch.float32], results[torch.float64], strict=True):
        scale = double.abs().max()
        assert float((single - double).abs().max() / scale) < 100 * torch.finfo(torch.float32).eps  # observed ~3 eps


@pytest.mark.parametrize(
    "sample_times, match",
    [
        (torch.tensor([1e-6, T_MAX], dtype=torch.float64), "within the trial"),
        (torch.tensor([-1e-9, 1e-6], dtype=torch.float64), "within the trial"),
        (torch.tensor([math.nan]), "within the trial"),
        (torch.tensor([2e-6, 1e-6]), "ascending"),
        (torch.zeros(3, 2), r"\(S,\) or \(2, S\)"),
        (torch.zeros(2, 2, 2), r"\(S,\) or \(2, S\)"),
    ],
)
def test_bad_sample_times_are_config_errors(sample_times, match):
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6)
    input_times, weights = random_layer(0, batch=2)
    with pytest.raises(ConfigError, match=match):
        spike_times(input_times, weights, params, t_max=T_MAX, sample_times=sample_times)
    measured = torch.full((2, 4, 1), math.inf, dtype=torch.float64)
    with pytest.raises(ConfigError, match=match):
        replay_spike_times(
            input_times,
            weights,
            params,
            measured,
            t_max=T_MAX,
            sample_times=sample_times,
            measured_voltages=torch.zeros(2, 4, 2, dtype=torch.float64),
        )


@pytest.mark.parametrize(
    "sample_times, voltages, match",
    [
        (SAMPLES[:3], torch.zeros(2, 4, 2, dtype=torch.float64), "measured_voltages has shape"),
        (SAMPLES[:3], torch.tensor([0.0, math.nan, 0.0]).double().expand(2, 4, 3), "finite"),
        (SAMPLES[:3], torch.zeros(2, 4, 3), "float64"),
        (SAMPLES[:3], None, "together"),
        (None, torch.zeros(2, 4, 3, dtype=torch.float64), "together"),
    ],
)
def test_bad_measured_voltages_are_config_errors(sample_times, voltages, match):
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6)
    input_times, weights = random_layer(0, batch=2)
    measured = torch.full((2, 4, 1), math.inf, dtype=torch.float64)
    with pytest.raises(ConfigError, match=match):
        replay_spike_times(
            input_times, weights, params, measured, t_max=T_MAX, sample_times=sample_times, measured_voltages=voltages
        )
