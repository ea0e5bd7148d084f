"""EventProp gradients against central finite differences (float64), and replay."""

from __future__ import annotations

import math

import pytest
import torch

from training.lif import LIFParameters, replay_spike_times, spike_times

from .conftest import random_layer, well_posed

T_MAX = 50e-6
CASES = [  # (tau_mem / tau_syn, v_reset, t_refrac, max_spikes)
    (2.0, 0.0, 0.0, 1),
    (2.0, -0.3, 2e-6, 8),
    (1.37, -0.3, 2e-6, 8),
    (1.0, 0.2, 0.0, 8),
    (0.5, -0.5, 1e-6, 8),
    (0.73, 0.0, 3e-6, 8),
]


def weighted_sum(times: torch.Tensor, coefficients: torch.Tensor) -> torch.Tensor:
    """A loss depending on every finite spike time."""
    return torch.where(torch.isfinite(times), times * coefficients, torch.zeros_like(times)).sum()


def finite_differences(fn, x: torch.Tensor, h: float, indices=None) -> torch.Tensor:
    """Central differences of fn at x along the flat ``indices`` (default all); 0 elsewhere."""
    grad = torch.zeros_like(x)
    for index in range(x.numel()) if indices is None else indices:
        step = torch.zeros_like(x).view(-1)
        step[index] = h
        step = step.view_as(x)
        grad.view(-1)[index] = (fn(x + step) - fn(x - step)) / (2 * h)
    return grad


def assert_close_to_fd(analytic, numeric):
    scale = numeric.abs().max()
    assert scale > 0
    assert float((analytic - numeric).abs().max() / scale) <= 1e-6


def find_case(params, max_spikes, **kwargs):
    for seed in range(50):
        input_times, weights = random_layer(seed, **{"batch": 2, **kwargs})
        if well_posed(input_times, weights, params, T_MAX, max_spikes):
            return seed, input_times, weights
    raise AssertionError("no well-posed random case found")


@pytest.mark.parametrize("ratio, v_reset, t_refrac, max_spikes", CASES)
def test_single_layer_matches_finite_differences(ratio, v_reset, t_refrac, max_spikes):
    params = LIFParameters(tau_mem=10e-6, tau_syn=10e-6 / ratio, v_leak=0.1, v_reset=v_reset, t_refrac=t_refrac)
    seed, input_times, weights = find_case(params, max_spikes)
    out = spike_times(
        input_times.requires_grad_(), weights.requires_grad_(), params, t_max=T_MAX, max_spikes=max_spikes
    )
    n_spikes = int(torch.isfinite(out.times).sum())
    assert n_spikes >= (10 if max_spikes > 1 else 4)
    if max_spikes > 1:
        assert int(torch.isfinite(out.times[..., 1]).sum()) >= 3  # several neurons spike repeatedly
    coefficients = (
        torch.randn(out.times.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 1e6
    )
    weighted_sum(out.times, coefficients).backward()

    def loss_w(w):
        return weighted_sum(
            spike_times(input_times.detach(), w, params, t_max=T_MAX, max_spikes=max_spikes).times, coefficients
        )

    def loss_t(t):
        return weighted_sum(
            spike_times(t, weights.detach(), params, t_max=T_MAX, max_spikes=max_spikes).times, coefficients
        )

    with torch.no_grad():
        assert_close_to_fd(weights.grad, finite_differences(loss_w, weights.detach(), 1e-6))
        indices = torch.randperm(input_times.numel(), generator=torch.Generator().manual_seed(seed))[:12].tolist()
        fd_t = finite_differences(loss_t, input_times.detach(), 1e-11, indices)
        assert_close_to_fd(input_times.grad.view(-1)[indices], fd_t.view(-1)[indices])


@pytest.mark.parametrize("ratio, max_spikes", [(2.0, 1), (1.37, 4)])
def test_two_layers_chain_through_autograd(ratio, max_spikes):
    params = LIFParameters(tau_mem=10e-6, tau_syn=10e-6 / ratio, v_reset=-0.2, t_refrac=1e-6)
    g = torch.Generator().manual_seed(3)
    for _ in range(50):
        input_times = torch.rand(3, 4, generator=g, dtype=torch.float64) * 10e-6
        w1 = torch.randn(4, 6, generator=g, dtype=torch.float64) * 1.5 + 2.0
        w2 = torch.randn(6, 3, generator=g, dtype=torch.float64) * 0.5 + 1.0
        hidden = spike_times(input_times, w1, params, t_max=T_MAX, max_spikes=max_spikes).times
        n_out_spikes = int(
            torch.isfinite(spike_times(hidden, w2, params, t_max=T_MAX, max_spikes=max_spikes).times).sum()
        )
        if (
            n_out_spikes >= 4
            and well_posed(input_times, w1, params, T_MAX, max_spikes)
            and well_posed(hidden, w2, params, T_MAX, max_spikes)
        ):
            break
    else:
        raise AssertionError("no well-posed random network found")

    def network(t, a, b):
        h = spike_times(t, a, params, t_max=T_MAX, max_spikes=max_spikes).times
        return spike_times(h, b, params, t_max=T_MAX, max_spikes=max_spikes).times

    out = network(input_times, w1.requires_grad_(), w2.requires_grad_())
    assert int(torch.isfinite(out).sum()) >= 4
    coefficients = torch.randn(out.shape, generator=g, dtype=torch.float64) * 1e6
    weighted_sum(out, coefficients).backward()
    with torch.no_grad():
        indices = torch.randperm(w1.numel(), generator=g)[:12].tolist()
        fd_w1 = finite_differences(
            lambda a: weighted_sum(network(input_times, a, w2), coefficients), w1.detach(), 1e-6, indices
        )
        fd_w2 = finite_differences(lambda b: weighted_sum(network(input_times, w1, b), coefficients), w2.detach(), 1e-6)
    assert_close_to_fd(w1.grad.view(-1)[indices], fd_w1.view(-1)[indices])
    assert_close_to_fd(w2.grad, fd_w2)


@pytest.mark.parametrize("ratio, v_reset, t_refrac, max_spikes", CASES)
def test_replay_of_simulated_times_gives_same_gradients(ratio, v_reset, t_refrac, max_spikes):
    params = LIFParameters(tau_mem=10e-6, tau_syn=10e-6 / ratio, v_reset=v_reset, t_refrac=t_refrac)
    _, input_times, weights = find_case(params, max_spikes, batch=4)
    sim_t, sim_w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
    out = spike_times(sim_t, sim_w, params, t_max=T_MAX, max_spikes=max_spikes)
    coefficients = torch.randn(out.times.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    weighted_sum(out.times, coefficients).backward()
    rep_t, rep_w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
    measured = out.times.detach().flip(-1)  # any order is accepted
    replay = replay_spike_times(rep_t, rep_w, params, measured, t_max=T_MAX)
    assert torch.equal(replay.times, measured)
    assert int(replay.n_clamped) == 0
    weighted_sum(replay.times, coefficients.flip(-1)).backward()
    assert sim_w.grad.abs().max() > 0
    assert torch.allclose(rep_w.grad, sim_w.grad, rtol=1e-10, atol=1e-12 * float(sim_w.grad.abs().max()))
    assert torch.allclose(rep_t.grad, sim_t.grad, rtol=1e-10, atol=1e-12 * float(sim_t.grad.abs().max()))


def test_replay_clamps_and_counts_unreachable_spikes():
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6)
    input_times = torch.tensor([[2e-6, 3e-6]], dtype=torch.float64, requires_grad=True)
    weights = torch.tensor([[3.0, 3.0], [3.0, 3.0]], dtype=torch.float64, requires_grad=True)
    measured = torch.tensor([[[1e-6, math.inf], [6e-6, math.inf]]], dtype=torch.float64)  # 1 us: before any input
    replay = replay_spike_times(input_times, weights, params, measured, t_max=T_MAX)
    assert int(replay.n_clamped) == 1
    replay.times[torch.isfinite(replay.times)].sum().backward()
    assert torch.isfinite(weights.grad).all() and torch.isfinite(input_times.grad).all()
    assert weights.grad.abs().max() > 0


def test_float32_gradients_close_to_float64():
    params = LIFParameters(tau_mem=12e-6, tau_syn=6e-6)
    _, input_times, weights = find_case(params, 1, batch=6)
    grads = {}
    for dtype in (torch.float32, torch.float64):
        t, w = input_times.to(dtype).requires_grad_(), weights.to(dtype).requires_grad_()
        times = spike_times(t, w, params, t_max=T_MAX).times
        weighted_sum(times, torch.ones_like(times) * 1e5).backward()
        grads[dtype] = w.grad.double()
    scale = grads[torch.float64].abs().max()
    assert scale > 0
    assert float((grads[torch.float32] - grads[torch.float64]).abs().max() / scale) < 1e-3


def test_thread_slices_give_the_single_thread_result():
    """The kernels split the batch over torch's threads: slicing must not change the result."""
    params = LIFParameters(tau_mem=10e-6, tau_syn=10e-6 / 1.37, v_reset=-0.3, t_refrac=2e-6)
    input_times, weights = random_layer(4, batch=200)  # 3 slices of >= 64 trials at 3 threads
    coefficients = torch.linspace(0.5, 1.5, 200 * 4 * 3, dtype=torch.float64).view(200, 4, 3)
    results = []
    threads = torch.get_num_threads()
    try:
        for n in (1, 3):
            torch.set_num_threads(n)
            x, w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
            out = spike_times(x, w, params, t_max=T_MAX, max_spikes=3)
            weighted_sum(out.times, coefficients).backward()
            results.append((out.times, x.grad, w.grad))
    finally:
        torch.set_num_threads(threads)
    (t1, gx1, gw1), (t3, gx3, gw3) = results
    assert torch.isfinite(t1).sum() > 100 and torch.equal(t1, t3) and torch.equal(gx1, gx3)
    assert torch.equal(gw1, gw3)  # per-chunk partial sums, added in chunk order at any thread count
    assert gw1.abs().max() > 0
