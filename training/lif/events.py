"""Input events of a layer: the input spikes of each trial sorted by time, and their
conversion to the arrays the kernels take."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch


class Events(NamedTuple):
    """Input events of a batch, sorted by time per trial, restricted to t < t_max.

    ``times`` (batch, E) clamped to t_max; ``order`` (batch, E) index into the flattened
    (n_in * k) input spikes; ``source`` (batch, E) presynaptic neuron; ``weights``
    (n_in, n_out) the layer's weights (detached): event e of trial b adds
    ``weights[source[b, e]]`` to the synaptic currents.
    """

    times: torch.Tensor
    order: torch.Tensor
    source: torch.Tensor
    weights: torch.Tensor


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
    return Events(times, order, source, weights.detach())


def as_float64(x: torch.Tensor) -> np.ndarray:
    """A contiguous float64 numpy copy (or view) of a tensor, for the kernels."""
    return np.ascontiguousarray(x.detach().to(torch.float64).numpy())


def event_arrays(events: Events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times (batch, E) float64, source (batch, E) int64, weights (n_in, n_out) float64) for the kernels."""
    return as_float64(events.times), np.ascontiguousarray(events.source.numpy()), as_float64(events.weights)
