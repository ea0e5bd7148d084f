"""Forward pass: exact event-driven spike times against a fine-grid integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.lif import LIFParameters, spike_times

from .conftest import random_layer

DT = 4e-9
T_MAX = 40e-6


def grid_spike_times(input_times, weights, p: LIFParameters, t_max, dt):
    """Exact exponential stepping on a grid (inputs on grid points), linear crossing interpolation.

    The end of a refractory period inside a step is handled by a partial exact step.
    """
    inp = input_times.reshape(input_times.shape[0], -1).numpy()
    k = inp.shape[1] // weights.shape[0]
    w = weights.numpy()[np.arange(weights.shape[0]).repeat(k)]  # (n_events, n_out)

    def propagator(length):  # u(length) = u0 * a + i0 * c for a free evolution
        a = np.exp(-length / p.tau_mem)
        if p.tau_mem == p.tau_syn:
            return a, length / p.tau_mem * a
        return a, p.tau_syn / (p.tau_syn - p.tau_mem) * (np.exp(-length / p.tau_syn) - a)

    a, c = propagator(dt)
    step_of = np.where(np.isfinite(inp), np.round(np.nan_to_num(inp, posinf=0) / dt), -1).astype(int)
    u = np.zeros((inp.shape[0], w.shape[1]))
    i = np.zeros_like(u)
    restart = np.zeros_like(u)
    theta, u_reset = p.v_th - p.v_leak, p.v_reset - p.v_leak
    spikes = [[[] for _ in range(w.shape[1])] for _ in range(inp.shape[0])]
    for s in range(int(round(t_max / dt))):
        t0, t1 = s * dt, (s + 1) * dt
        i = i + (step_of == s).astype(float) @ w
        lag = np.clip(restart - t0, 0, dt)  # part of the step still refractory
        a_p, c_p = propagator(dt - lag)
        partial = np.where(lag > 0, u_reset * a_p + i * np.exp(-lag / p.tau_syn) * c_p, u * a + i * c)
        u_new = np.where(restart >= t1, u_reset, partial)
        cross = (u_new >= theta) & (u < theta)
        for bi, j in zip(*np.nonzero(cross), strict=True):
            tc = t0 + dt * (theta - u[bi, j]) / (u_new[bi, j] - u[bi, j])
            spikes[bi][j].append(tc)
            restart[bi, j] = tc + p.t_refrac
            if restart[bi, j] < t1:  # free again within this step
                a_r, c_r = propagator(t1 - restart[bi, j])
                u_new[bi, j] = u_reset * a_r + i[bi, j] * np.exp(-(restart[bi, j] - t0) / p.tau_syn) * c_r
            else:
                u_new[bi, j] = u_reset
        u = u_new
        i = i * np.exp(-dt / p.tau_syn)
    return spikes


@pytest.mark.parametrize("ratio", [2.0, 1.37, 1.0, 0.5])
def test_matches_fine_grid(ratio):
    params = LIFParameters(tau_mem=10e-6, tau_syn=10e-6 / ratio, v_leak=0.1, v_reset=-0.3, t_refrac=1.5e-6)
    input_times, weights = random_layer(7, n_in=5, n_out=3, k=2, batch=2)
    input_times = torch.round(input_times / DT) * DT  # inputs on grid points: the grid is exact there
    out = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=30)
    assert out.n_overflow == 0
    reference = grid_spike_times(input_times, weights, params, T_MAX, DT)
    n_spikes = 0
    for bi in range(2):
        for j in range(3):
            exact = [t for t in out.times[bi, j].tolist() if math.isfinite(t)]
            assert len(exact) == len(reference[bi][j])
            assert np.allclose(exact, reference[bi][j], rtol=0, atol=3 * DT)
            n_spikes += len(exact)
    assert n_spikes >= 6


def test_sorted_inf_padded_and_before_t_max():
    params = LIFParameters(tau_mem=10e-6, tau_syn=6e-6, v_reset=-0.2)
    input_times, weights = random_layer(3, batch=4)
    input_times[0, 0, 0] = math.inf
    times = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=5).times
    finite = torch.isfinite(times)
    assert finite.any() and (~finite).any()
    assert (times[finite] < T_MAX).all() and (times[finite] > 0).all()
    assert (torch.diff(times, dim=-1)[torch.isfinite(torch.diff(times, dim=-1))] > 0).all()
    assert not (finite[..., 1:] & ~finite[..., :-1]).any()  # inf only at the end


def test_overflow_is_counted():
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6)
    input_times = torch.tensor([[1e-6, 2e-6]], dtype=torch.float64)
    weights = torch.tensor([[20.0, 0.1], [20.0, 0.1]], dtype=torch.float64)
    out = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=1)
    assert out.overflow.tolist() == [[True, False]]
    assert out.n_overflow == 1
    many = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=50)
    assert many.n_overflow == 0
    assert int(torch.isfinite(many.times).sum()) > 1
    assert many.times[0, 0, 0] == out.times[0, 0, 0]


def test_closed_form_matches_root_solve():
    input_times, weights = random_layer(11, batch=5)
    exact = spike_times(
        input_times, weights, LIFParameters(tau_mem=12e-6, tau_syn=6e-6, v_reset=-0.5), t_max=T_MAX, max_spikes=6
    ).times
    nearby = spike_times(
        input_times,
        weights,
        LIFParameters(tau_mem=12e-6 * (1 + 1e-13), tau_syn=6e-6, v_reset=-0.5),
        t_max=T_MAX,
        max_spikes=6,
    ).times
    assert torch.isfinite(exact).sum() > 5
    assert torch.equal(torch.isfinite(exact), torch.isfinite(nearby))
    assert torch.allclose(exact[torch.isfinite(exact)], nearby[torch.isfinite(exact)], rtol=1e-9, atol=0)
    inverse = spike_times(
        input_times, weights, LIFParameters(tau_mem=3e-6, tau_syn=6e-6), t_max=T_MAX, max_spikes=6
    ).times
    inverse_near = spike_times(
        input_times, weights, LIFParameters(tau_mem=3e-6 * (1 + 1e-13), tau_syn=6e-6), t_max=T_MAX, max_spikes=6
    ).times
    assert torch.isfinite(inverse).sum() > 5
    assert torch.allclose(inverse[torch.isfinite(inverse)], inverse_near[torch.isfinite(inverse)], rtol=1e-9, atol=0)


def test_float32_close_to_float64():
    params = LIFParameters(tau_mem=12e-6, tau_syn=8.76e-6, v_reset=-0.2, t_refrac=1e-6)
    input_times, weights = random_layer(5, batch=8)
    t64 = spike_times(input_times, weights, params, t_max=T_MAX, max_spikes=4).times
    t32 = spike_times(input_times.float(), weights.float(), params, t_max=T_MAX, max_spikes=4).times
    assert t32.dtype == torch.float32
    both = torch.isfinite(t64) & torch.isfinite(t32)
    assert both.sum() > 10
    assert torch.allclose(t32[both].double(), t64[both], rtol=0, atol=1e-10)


def test_per_neuron_parameters():
    input_times, weights = random_layer(2, n_out=3, batch=2)
    tau = torch.tensor([8e-6, 10e-6, 12e-6], dtype=torch.float64)
    joint = spike_times(input_times, weights, LIFParameters(tau_mem=tau, tau_syn=5e-6), t_max=T_MAX, max_spikes=3).times
    for j in range(3):
        alone = spike_times(
            input_times,
            weights[:, j : j + 1],
            LIFParameters(tau_mem=float(tau[j]), tau_syn=5e-6),
            t_max=T_MAX,
            max_spikes=3,
        ).times
        assert torch.allclose(joint[:, j : j + 1], alone, rtol=1e-12, atol=0, equal_nan=False) or torch.equal(
            joint[:, j : j + 1], alone
        )


def test_no_input_no_spike():
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6)
    input_times = torch.full((2, 3), math.inf, dtype=torch.float64)
    out = spike_times(input_times, torch.ones(3, 2, dtype=torch.float64), params, t_max=T_MAX)
    assert torch.isinf(out.times).all() and out.n_overflow == 0
