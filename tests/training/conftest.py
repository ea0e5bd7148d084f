"""Shared helpers for the training tests."""

from __future__ import annotations

import torch

from training.lif import replay_spike_times, spike_times


def random_layer(seed: int, *, n_in=6, n_out=4, k=2, batch=3, t_in=20e-6, w_mean=1.5, w_std=2.0, dtype=torch.float64):
    """Random input times (batch, n_in, k) and weights (n_in, n_out) from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    times = torch.rand(batch, n_in, k, generator=g, dtype=dtype) * t_in
    weights = torch.randn(n_in, n_out, generator=g, dtype=dtype) * w_std + w_mean
    return times, weights


def well_posed(input_times, weights, params, t_max, max_spikes, margin=0.05) -> bool:
    """No grazing crossing and no spike within 1% of t_max: finite differences are valid.

    (Dropped extra spikes, counted as overflow, do not affect the returned times.)
    """
    out = spike_times(input_times, weights, params, t_max=t_max, max_spikes=max_spikes)
    late = ((out.times > 0.99 * t_max) & torch.isfinite(out.times)).any()
    replay = replay_spike_times(input_times, weights, params, out.times, t_max=t_max, drive_floor=margin)
    return not bool(late) and int(replay.n_clamped) == 0  # every drive I - theta >= margin * theta
