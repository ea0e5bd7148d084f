"""The self-inhibition that makes a CubaLIF neuron stop after its first spike, and its exactness bound.

A neuron with ``max_spikes = 1`` gets an inhibitory feedback loop: its own spike makes its
synaptic current jump by ``-W``. With u = V - v_leak, theta = v_th - v_leak, u_R = v_reset -
v_leak, and Ibar = the largest synaptic current the inputs can ever build (the sum of the
positive weights times the spikes per input), the membrane s seconds after the spike is at most

    g(s) - W kappa(s) + theta,   g(s) = u_R exp(-s/tau_mem) + Ibar (1 - exp(-s/tau_mem)) - theta,

with kappa the membrane response to a unit current jump. The neuron stays below threshold for
the rest of a trial of length t_max whatever its inputs do iff W kappa(s) > g(s) on (0, t_max],
so ``W >= max g/kappa`` makes the graph reproduce the model exactly (docs/nir.md).
"""

from __future__ import annotations

import numpy as np

CELLS = 2048
"""Cells of the grid on which max g/kappa is bounded from above."""

MAX_WEIGHT = 1e30
"""Largest self-inhibition weight written (float32 consumers must hold it and its effect)."""


def psp(s: np.ndarray, tau_mem, tau_syn) -> np.ndarray:
    """Membrane response (model units) s >= 0 seconds after a unit current jump from rest.

    Solves tau_mem du/ds = -u + exp(-s/tau_syn), u(0) = 0, in the form
    (s/tau_mem) exp(-s/tau_long) expm1(-s g)/(-s g), g = |1/tau_mem - 1/tau_syn|, exact for
    every ratio including tau_mem = tau_syn. Broadcasts its arguments.
    """
    s = np.asarray(s, dtype=np.float64)
    g = np.abs(1 / np.asarray(tau_mem) - 1 / np.asarray(tau_syn))
    x = s * g
    safe = np.where(x > 0, x, 1.0)
    ratio = np.where(x > 0, -np.expm1(-safe) / safe, 1.0)
    return (s / tau_mem) * np.exp(-s / np.maximum(tau_mem, tau_syn)) * ratio


def silencing_weights(weights: np.ndarray, neurons: dict, *, t_max: float, pre_spikes: int) -> np.ndarray:
    """Smallest self-inhibition jump W (n_out,) (model units) that provably silences each
    neuron of a layer for a trial of ``t_max`` seconds after its first spike.

    weights (n_in, n_out) model units; neurons: (n_out,) arrays tau_mem, tau_syn, v_th, v_leak,
    v_reset (``Layer.neuron_arrays``); pre_spikes: spikes each input sends per trial at most.
    0 where the neuron cannot cross again after a reset. The maximum of g/kappa is bounded on
    CELLS cells of [s0, t_max] (s0: where g turns positive) by g(right end) / min(kappa(ends)),
    which is an upper bound because g increases and kappa has a single maximum.
    """
    theta = neurons["v_th"] - neurons["v_leak"]
    u_reset = neurons["v_reset"] - neurons["v_leak"]
    tau_mem, tau_syn = neurons["tau_mem"], neurons["tau_syn"]
    i_bar = pre_spikes * np.clip(weights, 0, None).sum(axis=0)
    bound = np.zeros(weights.shape[1])
    live = i_bar > theta
    if not live.any():
        return bound
    i_bar, theta, u_reset, tau_mem, tau_syn = (a[live] for a in (i_bar, theta, u_reset, tau_mem, tau_syn))
    s0 = tau_mem * np.log((i_bar - u_reset) / (i_bar - theta))
    s = s0[:, None] + np.clip(t_max - s0, 0, None)[:, None] * np.linspace(0.0, 1.0, CELLS + 1)[None, :]
    g = i_bar[:, None] - theta[:, None] - (i_bar - u_reset)[:, None] * np.exp(-s / tau_mem[:, None])
    kappa = psp(s, tau_mem[:, None], tau_syn[:, None])
    ratio = np.clip(g[:, 1:], 0, None) / np.minimum(kappa[:, :-1], kappa[:, 1:])
    bound[live] = np.where(s0 < t_max, ratio.max(axis=1), 0.0)
    return bound
