"""Losses on output spike times (seconds), mean over the batch.

Silent neurons (time inf, or any time >= t_max) are clamped to t_max inside the loss, so
they contribute a finite value and zero gradient to their spike time.
"""

from __future__ import annotations

import torch


def _first_spike(times: torch.Tensor, t_max: float) -> torch.Tensor:
    """(batch, n) or (batch, n, M) -> first spike (batch, n), clamped to t_max."""
    first = times[..., 0] if times.dim() == 3 else times
    return torch.where(first < t_max, first, torch.full_like(first, t_max))


def first_spike_cross_entropy(
    times: torch.Tensor,
    labels: torch.Tensor,
    *,
    tau_0: float,
    t_max: float,
    alpha: float = 0.0,
    tau_1: float | None = None,
) -> torch.Tensor:
    """Time-to-first-spike cross-entropy (Wunderlich & Pehle 2021).

    mean_b [ -log softmax(-t_b / tau_0)[label_b] + alpha (exp(t_b,label / tau_1) - 1) ]
    with t the first spike per output neuron; times (batch, n_out[, M]), labels (batch,) int64.
    """
    if alpha and tau_1 is None:
        raise ValueError(f"alpha = {alpha!r} needs tau_1 (seconds); got tau_1 = None")
    if not tau_0 > 0 or (tau_1 is not None and not tau_1 > 0):
        raise ValueError(f"tau_0 = {tau_0!r}, tau_1 = {tau_1!r}; allowed range: > 0 seconds")
    first = _first_spike(times, t_max)
    loss = torch.nn.functional.cross_entropy(-first / tau_0, labels)
    if alpha:
        t_label = first.gather(1, labels.view(-1, 1)).squeeze(1)
        loss = loss + alpha * torch.expm1(t_label / tau_1).mean()
    return loss


def spike_time_mse(times: torch.Tensor, targets: torch.Tensor, *, t_max: float) -> torch.Tensor:
    """Spike-time MSE (Goltz et al. 2021): mean_b sum_n (t_bn - target_bn)^2 / 2.

    times (batch, n_out[, M]) (first spike used), targets (batch, n_out) in seconds.
    """
    first = _first_spike(times, t_max)
    if targets.shape != first.shape:
        raise ValueError(f"targets has shape {tuple(targets.shape)}; allowed: {tuple(first.shape)}")
    return 0.5 * ((first - targets) ** 2).sum(dim=1).mean()


def predict(times: torch.Tensor, t_max: float) -> torch.Tensor:
    """Class prediction (batch,) int64: the output neuron with the earliest first spike."""
    return _first_spike(times, t_max).argmin(dim=1)
