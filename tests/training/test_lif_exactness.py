"""The kernels' shortcuts change nothing: spike times against a slow exact reference, work
shared across neurons and threads against work done alone."""

from __future__ import annotations

import math

import pytest
import torch

from training.lif import LIFParameters, spike_times

from .conftest import random_layer

T_MAX = 40e-6


def _u(u0, i0, s, tau_mem, tau_syn):
    """u after a free evolution of length s from (u0, i0), written out for this test."""
    if tau_mem == tau_syn:
        return (u0 + i0 * s / tau_mem) * math.exp(-s / tau_mem)
    return u0 * math.exp(-s / tau_mem) + i0 * tau_syn / (tau_syn - tau_mem) * (
        math.exp(-s / tau_syn) - math.exp(-s / tau_mem)
    )


def _first_crossing(u0, i0, length, theta, tau_mem, tau_syn):
    """Earliest s in (0, length] with u(s) >= theta, by a scan on 256 points and bisection; None if none."""
    grid = [length * n / 256 for n in range(257)]
    for lo, hi in zip(grid[:-1], grid[1:], strict=True):
        if _u(u0, i0, hi, tau_mem, tau_syn) >= theta:
            for _ in range(200):
                mid = 0.5 * (lo + hi)
                if mid in (lo, hi):
                    break
                lo, hi = (lo, mid) if _u(u0, i0, mid, tau_mem, tau_syn) >= theta else (mid, hi)
            return hi
    return None


def reference_spikes(events, p: dict, t_max: float) -> list[float]:
    """Spike times of one neuron for (time, weight) input events, by the slow path."""
    theta, u_reset = p["v_th"] - p["v_leak"], p["v_reset"] - p["v_leak"]
    u, i, t, free_from, spikes = 0.0, 0.0, 0.0, 0.0, []
    for t_next, weight in sorted(e for e in events if e[0] < t_max) + [(t_max, 0.0)]:
        while t < t_next:
            if t < free_from:  # refractory hold: only the current evolves
                end = min(t_next, free_from)
                i, t = i * math.exp(-(end - t) / p["tau_syn"]), end
                continue
            s = _first_crossing(u, i, t_next - t, theta, p["tau_mem"], p["tau_syn"])
            if s is None:
                u = _u(u, i, t_next - t, p["tau_mem"], p["tau_syn"])
                i, t = i * math.exp(-(t_next - t) / p["tau_syn"]), t_next
            else:
                i, t = i * math.exp(-s / p["tau_syn"]), t + s
                spikes.append(t)
                u, free_from = u_reset, t + p["t_refrac"]
        i += weight
    return [s for s in spikes if s < t_max]


@pytest.mark.parametrize("ratio", [2.0, 0.5, 1.37, 1.0, 1.0005])
def test_spike_times_match_a_slow_exact_reference(ratio):
    p = {"tau_mem": 10e-6, "tau_syn": 10e-6 / ratio, "v_th": 1.0, "v_leak": 0.1, "v_reset": -0.3, "t_refrac": 1e-6}
    input_times, weights = random_layer(21, n_in=5, n_out=4, k=3, batch=3, t_in=30e-6)
    input_times[:, 1] = input_times[:, 0]  # coincident inputs
    out = spike_times(input_times, weights, LIFParameters(**p), t_max=T_MAX, max_spikes=40)
    assert out.n_overflow == 0
    n_spikes = 0
    for b in range(3):
        for j in range(4):
            events = [(float(t), float(weights[n, j])) for n in range(5) for t in input_times[b, n]]
            expected = reference_spikes(events, p, T_MAX)
            got = [t for t in out.times[b, j].tolist() if math.isfinite(t)]
            assert len(got) == len(expected)
            for a, e in zip(got, expected, strict=True):
                assert abs(a - e) <= 1e-11 * T_MAX, (
                    a,
                    e,
                )  # rounding (observed <= 3e-13: the reference cancels at ratio ~1)
            n_spikes += len(got)
    assert n_spikes >= 20


def test_shared_time_constants_give_the_per_neuron_result():
    """Neurons with equal time constants share the propagators between events; a layer where one
    neuron differs computes them per neuron. Both must give the same bits."""
    input_times, weights = random_layer(5, n_in=6, n_out=5, k=2, batch=70)
    shared = LIFParameters(tau_mem=12e-6, tau_syn=8e-6, v_reset=-0.2, t_refrac=0.5e-6)
    tau_mem = torch.tensor([12e-6, 12e-6, 12e-6, 12e-6, 11e-6], dtype=torch.float64)
    own = LIFParameters(tau_mem=tau_mem, tau_syn=8e-6, v_reset=-0.2, t_refrac=0.5e-6)
    coefficients = torch.linspace(-1, 1, 70 * 5 * 4, dtype=torch.float64).view(70, 5, 4) * 1e5
    results = []
    for params in (shared, own):
        x, w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
        times = spike_times(x, w[:, :5], params, t_max=T_MAX, max_spikes=4).times
        torch.where(torch.isfinite(times[:, :4]), times[:, :4] * coefficients[:, :4], 0.0).sum().backward()
        results.append((times[:, :4], x.grad, w.grad[:, :4]))
    assert torch.isfinite(results[0][0]).sum() > 100
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_results_do_not_depend_on_the_thread_count():
    params = LIFParameters(tau_mem=10e-6, tau_syn=10e-6 / 1.37, v_reset=-0.3, t_refrac=2e-6)
    input_times, weights = random_layer(4, batch=300)
    coefficients = torch.linspace(0.5, 1.5, 300 * 4 * 3, dtype=torch.float64).view(300, 4, 3)
    threads, results = torch.get_num_threads(), []
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            x, w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
            times = spike_times(x, w, params, t_max=T_MAX, max_spikes=3).times
            torch.where(torch.isfinite(times), times * coefficients, 0.0).sum().backward()
            results.append((times, x.grad, w.grad))
    finally:
        torch.set_num_threads(threads)
    assert torch.isfinite(results[0][0]).sum() > 300 and results[0][2].abs().max() > 0
    for other in results[1:]:
        for a, b in zip(results[0], other, strict=True):
            assert torch.equal(a, b)  # weight gradients too: summed per chunk of trials, in chunk order
