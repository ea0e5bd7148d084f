"""Input events of a layer: the input spikes of each trial in time order, as the kernels see them.

Input times (batch, n_in) or (batch, n_in, k) are flattened to (batch, n_in * k); input
spike ``f`` of a trial comes from presynaptic neuron ``f // k``. The layer
sorts each trial's spikes with numpy's vectorised quicksort, and :func:`trial_events` puts
equal times in input order (as a stable sort would); the kernels use the events before
t_max, as (time, presynaptic neuron) pairs in scratch rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np
import torch

NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


class LayerArrays(NamedTuple):
    """A layer's inputs as float64 arrays: ``inputs`` (batch, n_in * k) with ``k`` spikes per
    input neuron, ``weights`` (n_in, n_out), ``samples`` (1 or batch, S) ascending sample times."""

    inputs: np.ndarray
    k: int
    weights: np.ndarray
    samples: np.ndarray


def flat_inputs(input_times: torch.Tensor) -> tuple[np.ndarray, int]:
    """(times (batch, n_in * k) float64, k) from input_times (batch, n_in) or (batch, n_in, k)."""
    k = input_times.shape[2] if input_times.dim() == 3 else 1
    flat = input_times.detach().reshape(input_times.shape[0], input_times.shape[1] * k)
    return as_float64(flat), k


def as_float64(x: torch.Tensor) -> np.ndarray:
    """A C-contiguous float64 numpy copy of a CPU tensor, made by numpy rather than torch: torch
    would run large copies on its OpenMP threads, which stall when another process holds a
    core. A copy, so that later in-place changes of the tensor do not reach the backward."""
    return np.array(x.detach().numpy(), dtype=np.float64, order="C")


def to_tensor(x: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A tensor of the given dtype from a float64 array, converted by numpy (see as_float64);
    shares memory with ``x`` when no conversion is needed."""
    return torch.from_numpy(np.ascontiguousarray(x, dtype=NUMPY_DTYPES[dtype]))


@numba.njit(cache=True, inline="always")
def gather_events(inputs, order, n_events, k, times, source):
    """Write the times and presynaptic neurons of the first n_events events in ``order`` into
    ``times`` and ``source`` (scratch rows of length >= n_events)."""
    for e in range(n_events):
        times[e] = inputs[order[e]]
        source[e] = order[e] // k


@numba.njit(cache=True, inline="always")
def trial_events(inputs, k, t_max, order, times, source):
    """Events of one trial: ``order`` sorts ``inputs`` (n_in * k,); put equal times in input
    order (so the result is that of a stable sort), write the times and presynaptic neurons
    of the events before t_max into ``times`` and ``source``, and return their number."""
    n_events = 0
    while n_events < inputs.shape[0] and inputs[order[n_events]] < t_max:
        n_events += 1
    start = 0
    while start < n_events:
        stop = start + 1
        while stop < n_events and inputs[order[stop]] == inputs[order[start]]:
            stop += 1
        for e in range(start + 1, stop):  # insertion sort of a run of equal times by index
            f, p = order[e], e - 1
            while p >= start and order[p] > f:
                order[p + 1] = order[p]
                p -= 1
            order[p + 1] = f
        start = stop
    gather_events(inputs, order, n_events, k, times, source)
    return n_events
