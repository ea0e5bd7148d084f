"""Exact event-driven forward pass of a layer of current-based LIF neurons.

Internal module: the public entry point is :func:`training.lif.spike_times`.

Units: times in seconds, voltages in model units; ``u = V - v_leak`` is the membrane
voltage relative to the leak. Between two input events the state follows

    u(s) = u0 exp(-s/tau_mem) + i0 (s/tau_mem) K(s),    i(s) = i0 exp(-s/tau_syn),
    K(s) = (exp(-s/tau_syn) - exp(-s/tau_mem)) / (s (1/tau_mem - 1/tau_syn)),

with ``K`` evaluated through ``expm1`` so that it is exact for every ratio, including
``tau_mem == tau_syn`` (``K = exp(-s/tau)``).
"""
from __future__ import annotations

from typing import NamedTuple

import torch

_NEWTON_MAX_ITER = 100


class Dynamics(NamedTuple):
    """Per-neuron constants, each a tensor of shape (n_out,) in the working dtype."""

    tau_mem: torch.Tensor
    tau_syn: torch.Tensor
    theta: torch.Tensor  # v_th - v_leak
    u_reset: torch.Tensor  # v_reset - v_leak
    t_refrac: torch.Tensor
    rate_mem: torch.Tensor  # 1/tau_mem
    rate_syn: torch.Tensor  # 1/tau_syn
    rate_long: torch.Tensor  # 1/max(tau_mem, tau_syn)
    rate_gap: torch.Tensor  # |1/tau_mem - 1/tau_syn|
    peak_eps: torch.Tensor  # tau_syn/tau_mem - 1
    closed_form: str  # "mem2" (tau_mem = 2 tau_syn), "syn2" (tau_syn = 2 tau_mem) or ""


class Events(NamedTuple):
    """Input events of a batch, sorted by time per trial, restricted to t < t_max.

    ``times`` (batch, E) clamped to t_max; ``order`` (batch, E) index into the flattened
    (n_in * k) input spikes; ``source`` (batch, E) presynaptic neuron; ``weights``
    (batch, E, n_out) the weight each event adds to the synaptic current.
    """

    times: torch.Tensor
    order: torch.Tensor
    source: torch.Tensor
    weights: torch.Tensor


def phi(z: torch.Tensor) -> torch.Tensor:
    """expm1(z) / z for z <= 0; z is clamped to <= -1e-30, which changes phi by < 1e-30."""
    z = z.clamp(max=-1e-30)
    return torch.expm1(z) / z


def psp_shape(s: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
    """K(s) of the module docstring; s >= 0 broadcast against (n_out,)."""
    return torch.exp(s * -dyn.rate_long) * phi(s * -dyn.rate_gap)


def membrane(u0: torch.Tensor, i0: torch.Tensor, s: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
    """u(s) after a free evolution of length s from (u0, i0)."""
    return u0 * torch.exp(s * -dyn.rate_mem) + i0 * (s * dyn.rate_mem) * psp_shape(s, dyn)


def make_events(input_times: torch.Tensor, weights: torch.Tensor, t_max: float) -> Events:
    """Sort the input spikes of each trial and drop columns that are late in every trial."""
    batch = input_times.shape[0]
    n_in = weights.shape[0]
    k = input_times.shape[2] if input_times.dim() == 3 else 1
    flat = input_times.detach().reshape(batch, n_in * k)
    times, order = torch.sort(flat, dim=1)
    n_events = int((times < t_max).sum(dim=1).max()) if times.numel() else 0
    times, order = times[:, :n_events].clamp(max=t_max), order[:, :n_events]
    source = torch.div(order, k, rounding_mode="floor")
    return Events(times, order, source, weights.detach()[source])


def currents_after_events(events: Events, dyn: Dynamics) -> torch.Tensor:
    """Synaptic current just after each event, (batch, E, n_out)."""
    out = torch.empty_like(events.weights)
    if events.times.shape[1] == 0:
        return out
    out[:, 0] = events.weights[:, 0]
    gaps = torch.exp((events.times[:, 1:] - events.times[:, :-1]).unsqueeze(-1) * -dyn.rate_syn)
    for e in range(1, out.shape[1]):
        out[:, e] = out[:, e - 1] * gaps[:, e - 1] + events.weights[:, e]
    return out


def _peak_time(u0: torch.Tensor, i0: torch.Tensor, dyn: Dynamics) -> torch.Tensor:
    """Time of the maximum of u after (u0, i0) for i0 > max(u0, 0); inf if u rises forever.

    Solves i(s) = u(s): s* = tau_syn log1p(eps q) / eps with eps = tau_syn/tau_mem - 1 and
    q = 1 - u0/i0, written as tau_syn q log1p(z)/z, z = eps q, stable for eps -> 0.
    """
    q = 1 - u0 / i0
    z = dyn.peak_eps * q
    rises_forever = z <= -1
    z = torch.where((z == 0) | rises_forever, torch.full_like(z, 1e-30), z)
    s_peak = dyn.tau_syn * q * (torch.log1p(z) / z)
    return torch.where(rises_forever, torch.full_like(z, float("inf")), s_peak)


def _segments(events: Events, i_plus: torch.Tensor, t_r: torch.Tensor, u_r: torch.Tensor, dyn: Dynamics, t_max: float):
    """Start state of every free-evolution segment after the restart time t_r.

    Segment e runs from max(t_e, t_r) to min(t_{e+1}, t_max). Returns (start, length, u0, i0,
    u_end), each (batch, E, n_out); u_end is u at the end of the segment.
    """
    times = events.times.unsqueeze(-1)  # (batch, E, 1)
    ends = torch.cat([times[:, 1:], torch.full_like(times[:, :1], t_max)], dim=1)
    restart = t_r.unsqueeze(1) >= times
    start = torch.maximum(times, t_r.unsqueeze(1))
    length = (ends - start).clamp(min=0)
    i0 = i_plus * torch.exp((start - times) * -dyn.rate_syn)
    decay = torch.exp(length * -dyn.rate_mem)
    drive = i0 * (length * dyn.rate_mem) * psp_shape(length, dyn)
    u0 = torch.empty_like(i0)
    carry = u_r * torch.exp((times[:, 0] - t_r).clamp(min=0) * -dyn.rate_mem)
    for e in range(i0.shape[1]):
        u0[:, e] = torch.where(restart[:, e], u_r, carry)
        carry = u0[:, e] * decay[:, e] + drive[:, e]
    return start, length, u0, i0, u0 * decay + drive


def _first_crossing_segment(start, length, u0, i0, u_end, dyn: Dynamics):
    """Find, per neuron, the first segment in which u reaches theta.

    u has at most one extremum per segment; a crossing needs i0 > u0 (rising) and i0 > 0,
    and then exists iff u(min(s*, length)) >= theta, where u is increasing on [0, min(s*, length)].
    At the peak u(s*) = i(s*), so no membrane evaluation is needed for the test.
    Returns (found (batch, n_out) bool, and the gathered start, u0, i0, bracket end).
    """
    rising = (i0 > u0) & (i0 > 0)
    s_peak = _peak_time(u0, torch.where(rising, i0, torch.ones_like(i0)), dyn)
    peak_inside = s_peak < length
    u_top = torch.where(peak_inside, i0 * torch.exp(torch.minimum(s_peak, length) * -dyn.rate_syn), u_end)
    crossing = rising & (u_top >= dyn.theta) & (length > 0)
    n_seg = crossing.shape[1]
    position = torch.arange(n_seg, dtype=torch.float32).view(1, -1, 1)  # float: fast reduction
    first = torch.where(crossing, position, float(n_seg)).amin(dim=1, keepdim=True)
    found = first.squeeze(1) < n_seg
    index = first.clamp(max=n_seg - 1).long()
    pick = lambda x: x.gather(1, index).squeeze(1)  # noqa: E731
    return found, pick(start), pick(u0), pick(i0), torch.minimum(pick(s_peak), pick(length))


def _solve_quadratic(u0, i0, hi, dyn: Dynamics) -> torch.Tensor:
    """Closed-form crossing time for tau_mem = 2 tau_syn or tau_syn = 2 tau_mem.

    With y = exp(-s/tau_y) (tau_y the longer constant) u = a y^2 + b y; the crossing is the
    root of a y^2 + b y - theta in [exp(-hi/tau_y), 1].
    """
    if dyn.closed_form == "mem2":
        a, b, tau_y = -i0, u0 + i0, dyn.tau_mem
    else:
        a, b, tau_y = u0 - 2 * i0, 2 * i0, dyn.tau_syn
    root_d = torch.sqrt((b * b + 4 * a * dyn.theta).clamp(min=0))
    q = -0.5 * (b + torch.where(b >= 0, root_d, -root_d))
    r1 = -dyn.theta / torch.where(q == 0, torch.ones_like(q), q)
    r2 = q / torch.where(a == 0, torch.ones_like(a), a)
    y_lo = torch.exp(-hi / tau_y)
    slack = 1e-6 * (1 - y_lo)
    first_ok = (r1 >= y_lo - slack) & (r1 <= 1 + slack) & (q != 0)
    y = torch.where(first_ok, r1, r2)
    y = torch.minimum(torch.maximum(y, y_lo), torch.ones_like(y))
    return -tau_y * torch.log(y)


def _solve_newton(u0, i0, hi, dyn: Dynamics, tol: float) -> torch.Tensor:
    """Newton's method on u(s) = theta, safeguarded by bisection on the bracket [0, hi].

    Stops when every Newton step is below tol (the last step is still applied: quadratic
    convergence makes the result exact to rounding) or the bracket is narrower than tol.
    """
    lo = torch.zeros_like(hi)
    u_hi = membrane(u0, i0, hi, dyn)
    gap = (u_hi - u0).clamp(min=torch.finfo(u0.dtype).tiny)
    x = hi * ((dyn.theta - u0) / gap).clamp(0, 1)
    for _ in range(_NEWTON_MAX_ITER):
        u = membrane(u0, i0, x, dyn)
        f = u - dyn.theta
        slope = (i0 * torch.exp(x * -dyn.rate_syn) - u) * dyn.rate_mem
        lo = torch.where(f < 0, x, lo)
        hi = torch.where(f >= 0, x, hi)
        step = f / slope
        ok = (slope > 0) & (x - step >= lo) & (x - step <= hi)
        x = torch.where(ok, x - step, 0.5 * (lo + hi))
        if bool(((ok & (step.abs() <= tol)) | (hi - lo <= tol)).all()):
            break
    return x


def crossing_time(u0, i0, hi, dyn: Dynamics, tol: float) -> torch.Tensor:
    """Time s in [0, hi] at which u first reaches theta (u increasing there)."""
    if dyn.closed_form:
        return _solve_quadratic(u0, i0, hi, dyn)
    return _solve_newton(u0, i0, hi, dyn, tol)


def simulate(events: Events, dyn: Dynamics, *, t_max: float, max_spikes: int):
    """Spike times (batch, n_out, max_spikes), inf for no spike; the synaptic current at each
    spike (0 where none); and the overflow mask (batch, n_out).

    Loops over the spikes of a neuron (vectorised over batch and neurons); each round scans
    the input events from the restart time (end of refractoriness) for the next crossing.
    The extra last round only detects whether a neuron would spike again (overflow).
    """
    batch, _, n_out = events.weights.shape
    dtype = events.weights.dtype
    times = torch.full((batch, n_out, max_spikes), float("inf"), dtype=dtype)
    currents = torch.zeros_like(times)
    overflow = torch.zeros(batch, n_out, dtype=torch.bool)
    if events.times.shape[1] == 0:
        return times, currents, overflow
    tol = 4 * torch.finfo(dtype).eps * t_max
    i_plus = currents_after_events(events, dyn)
    t_r = torch.zeros(batch, n_out, dtype=dtype)
    u_r = torch.zeros(batch, n_out, dtype=dtype)
    for m in range(max_spikes + 1):
        found, start, u0, i0, hi = _first_crossing_segment(*_segments(events, i_plus, t_r, u_r, dyn, t_max), dyn)
        if m == max_spikes or not bool(found.any()):
            overflow = found if m == max_spikes else overflow
            break
        idle = torch.zeros_like(u0)  # neurons without a crossing: a trivial root at s = 0
        u0, i0, hi = (torch.where(found, x, idle) for x in (u0, i0, hi))
        s = crossing_time(u0, i0, hi, dyn, tol)
        t_s = start + s
        found = found & (t_s < t_max)
        times[:, :, m] = torch.where(found, t_s, times[:, :, m])
        currents[:, :, m] = torch.where(found, i0 * torch.exp(s * -dyn.rate_syn), currents[:, :, m])
        t_r = torch.where(found, t_s + dyn.t_refrac, torch.full_like(t_s, float("inf")))
        u_r = dyn.u_reset.expand_as(t_r)
    return times, currents, overflow
