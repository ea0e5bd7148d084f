"""Membrane voltages and their gradients against a dense time-grid simulation in plain torch.

The reference steps the same LIF model on a grid of step dt: between grid points it is exact
(input spikes anywhere inside a step, a refractory hold that ends inside a step), and a
threshold crossing inside a step is placed by linear interpolation of u between the step's
ends. That interpolation is its only discretisation error, and torch autograd
differentiates through it (spike time -> reset -> later voltages), so both its voltages
and its gradients converge to the exact ones as dt shrinks. It shares no code with
training.lif.
"""

from __future__ import annotations

import torch

from training.lif import LIFParameters, spike_times

T_MAX = 24e-6
TAU_MEM, TAU_SYN, V_LEAK, V_TH, V_RESET, T_REFRAC = 10e-6, 10e-6 / 1.37, 0.1, 1.0, -0.3, 1.5e-6


def _response(s):
    """u at s >= 0 of a free neuron started at u = 0 with unit current (tau_mem != tau_syn)."""
    gain = TAU_SYN / (TAU_SYN - TAU_MEM)
    return gain * (torch.exp(-s / TAU_SYN) - torch.exp(-s / TAU_MEM))


def _current_at(t, i0, t0, times, weights, step_mask):
    """I(t) from I(t0) = i0 and the inputs of this step that come before t: (batch, n_out)."""
    before = step_mask & (times < t.unsqueeze(-1))  # (batch, n_out, E)
    lag = torch.where(before, t.unsqueeze(-1) - times, torch.zeros_like(times))
    return i0 * torch.exp(-(t - t0) / TAU_SYN) + (before * weights * torch.exp(-lag / TAU_SYN)).sum(-1)


def _free_u(start, u_start, i_start, t1, times, weights, step_mask):
    """u(t1) of a neuron free from time ``start`` (u_start, i_start) on, with this step's inputs after start."""
    later = step_mask & (times >= start.unsqueeze(-1))
    lag = torch.where(later, t1 - times, torch.zeros_like(times))
    length = t1 - start
    return (
        u_start * torch.exp(-length / TAU_MEM)
        + i_start * _response(length)
        + (later * weights * _response(lag)).sum(-1)
    )


def _crossing_offset(length, u0, slope0, u1, theta, cross):
    """Where u crosses theta on [0, length], from the parabola through u0 (with slope slope0) and u1."""
    curvature = torch.where(cross, (u1 - u0 - slope0 * length) / length**2, torch.zeros_like(u0))
    gap = torch.where(cross, theta - u0, torch.zeros_like(u0))
    root = torch.sqrt(torch.where(cross, slope0**2 + 4 * curvature * gap, torch.ones_like(u0)))  # no 0: finite grads
    return 2 * gap / torch.where(cross, slope0 + root, torch.ones_like(u0))


def dense_voltages(input_times, weights, dt, n_samples_every):
    """V (batch, n_out, n_grid // n_samples_every) at t = m * n_samples_every * dt for m >= 1.

    input_times (batch, n_in) in seconds (finite), weights (n_in, n_out); both may need grad.
    """
    batch, n_out = input_times.shape[0], weights.shape[1]
    times = input_times.unsqueeze(1).expand(batch, n_out, -1)  # (batch, n_out, E)
    w = weights.t().unsqueeze(0).expand(batch, -1, -1)  # (batch, n_out, E)
    theta, u_reset = V_TH - V_LEAK, V_RESET - V_LEAK
    u = torch.zeros(batch, n_out, dtype=weights.dtype)
    i = torch.zeros_like(u)
    restart = torch.full_like(u, -1.0)  # end of the current hold (in the past: free)
    samples = []
    for step in range(round(T_MAX / dt)):
        t0, t1 = step * dt, (step + 1) * dt
        mask = (times >= t0) & (times < t1)
        start = torch.where(restart > t0, restart, torch.full_like(u, t0))  # a hold ends inside the step
        held = restart >= t1
        i_start = _current_at(start, i, torch.full_like(u, t0), times, w, mask)
        u_start = torch.where(restart > t0, torch.full_like(u, u_reset), u)
        u_end = torch.where(held, torch.full_like(u, u_reset), _free_u(start, u_start, i_start, t1, times, w, mask))
        cross = ~held & (u_end >= theta) & (u_start < theta)
        spike = start + _crossing_offset(t1 - start, u_start, (i_start - u_start) / TAU_MEM, u_end, theta, cross)
        restart = torch.where(cross, spike + T_REFRAC, restart)
        after = torch.where(cross & (restart < t1), restart, torch.full_like(u, t1))
        i_after = _current_at(after, i, torch.full_like(u, t0), times, w, mask)
        u_after = _free_u(after, torch.full_like(u, u_reset), i_after, t1, times, w, mask)
        u = torch.where(cross, torch.where(restart < t1, u_after, torch.full_like(u, u_reset)), u_end)
        i = _current_at(torch.full_like(u, t1), i, torch.full_like(u, t0), times, w, mask)
        if (step + 1) % n_samples_every == 0:
            samples.append(u + V_LEAK)
    return torch.stack(samples, dim=-1)


def _case():
    g = torch.Generator().manual_seed(7)
    input_times = torch.rand(2, 5, generator=g, dtype=torch.float64) * 12e-6
    weights = torch.randn(5, 3, generator=g, dtype=torch.float64) * 1.0 + 2.2
    return input_times, weights


def test_dense_reference_converges_to_the_exact_voltages_and_gradients():
    input_times, weights = _case()
    coarse = 80e-9
    sample_times = torch.arange(1, round(T_MAX / coarse / 5), dtype=torch.float64) * 5 * coarse  # < T_MAX
    coefficients = torch.randn(
        2, 3, sample_times.numel(), generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    params = LIFParameters(tau_mem=TAU_MEM, tau_syn=TAU_SYN, v_leak=V_LEAK, v_reset=V_RESET, t_refrac=T_REFRAC)
    x, w = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
    exact = spike_times(x, w, params, t_max=T_MAX, max_spikes=10, sample_times=sample_times)
    assert exact.n_overflow == 0 and int(torch.isfinite(exact.times[..., 1]).sum()) >= 2  # repeated spikes
    assert int((exact.voltages == V_RESET).sum()) >= 2  # samples inside refractory holds
    (exact.voltages * coefficients).sum().backward()
    errors = []
    for dt in (coarse, coarse / 4):
        xd, wd = input_times.clone().requires_grad_(), weights.clone().requires_grad_()
        dense = dense_voltages(xd, wd, dt, round(5 * coarse / dt))[..., :-1]
        (dense * coefficients).sum().backward()
        errors.append(
            [
                float((dense.detach() - exact.voltages.detach()).abs().max()),
                float((wd.grad - w.grad).abs().max() / w.grad.abs().max()),
                float((xd.grad - x.grad).abs().max() / x.grad.abs().max()),
            ]
        )
    assert max(errors[1]) < 1e-4  # the reference is close at all (V in model units, gradients relative) ...
    # ... and converges at its order: the parabola places a crossing to O(dt^3), so voltages
    # converge as dt^3 and gradients (through the crossing's slope) as dt^2: 64x and 16x for dt/4.
    for coarse_error, fine_error in zip(errors[0], errors[1], strict=True):
        assert fine_error < coarse_error / 8, errors
