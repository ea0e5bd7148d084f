"""Checks of a layer's arguments, raising ``hil.errors.ConfigError`` (a ValueError) that names
the argument, what it holds and what is allowed; and their conversion to the kernels' arrays."""

from __future__ import annotations

import math

import numpy as np
import torch

from hil.errors import ConfigError

from .events import LayerArrays, as_float64, flat_inputs

NO_SAMPLES = np.zeros((1, 0))


def layer_arrays(input_times: torch.Tensor, weights: torch.Tensor, t_max: float, sample_times=None) -> LayerArrays:
    """Check a layer's inputs and return them as float64 arrays."""
    if not (isinstance(t_max, (int, float)) and math.isfinite(t_max) and t_max > 0):
        raise ConfigError(f"t_max = {t_max!r}; allowed range: finite and > 0 seconds")
    if weights.dim() != 2:
        raise ConfigError(f"weights has shape {tuple(weights.shape)}; allowed: (n_in, n_out)")
    if weights.dtype not in (torch.float32, torch.float64):
        raise ConfigError(f"weights has dtype {weights.dtype}; allowed: float32 or float64")
    if input_times.dim() not in (2, 3) or input_times.shape[1] != weights.shape[0]:
        raise ConfigError(
            f"input_times has shape {tuple(input_times.shape)}; "
            f"allowed: (batch, {weights.shape[0]}) or (batch, {weights.shape[0]}, k)"
        )
    if input_times.dtype != weights.dtype:
        raise ConfigError(f"input_times has dtype {input_times.dtype}; allowed: the dtype of weights ({weights.dtype})")
    w = as_float64(weights)
    if not np.isfinite(w).all():
        raise ConfigError("weights contains non-finite values; allowed: finite")
    inputs, k = flat_inputs(input_times)
    if np.isnan(inputs).any() or (inputs < 0).any():
        raise ConfigError("input_times contains NaN or negative values; allowed: [0, inf] seconds (inf = no spike)")
    samples = NO_SAMPLES if sample_times is None else _sample_array(sample_times, inputs.shape[0], t_max)
    return LayerArrays(inputs, k, w, samples)


def _sample_array(sample_times, batch: int, t_max: float) -> np.ndarray:
    """sample_times (S,) or (batch, S) -> float64 (1 or batch, S), checked."""
    samples = np.array(torch.as_tensor(sample_times).detach().numpy(), dtype=np.float64, ndmin=1)
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2 or samples.shape[0] not in (1, batch):
        raise ConfigError(f"sample_times has shape {tuple(np.shape(sample_times))}; allowed: (S,) or ({batch}, S)")
    outside = ~((samples >= 0) & (samples < t_max))
    if outside.any():
        raise ConfigError(
            f"sample_times holds {float(samples[outside][0])!r} s; "
            f"allowed: within the trial, [0, t_max = {t_max!r}) seconds"
        )
    if (np.diff(samples, axis=1) < 0).any():
        raise ConfigError("sample_times are not in ascending order; allowed: ascending along the last axis")
    return samples


def check_measured(measured_times, measured_voltages, weights, batch: int, n_samples: int | None) -> None:
    """Check a replay's measured spike times (batch, n_out, M) and membrane samples (batch, n_out, S)."""
    n_out = weights.shape[1]
    if measured_times.dim() != 3 or measured_times.shape[:2] != (batch, n_out):
        raise ConfigError(f"measured_times has shape {tuple(measured_times.shape)}; allowed: ({batch}, {n_out}, M)")
    if measured_times.dtype != weights.dtype or np.isnan(measured_times.detach().numpy()).any():
        raise ConfigError(
            f"measured_times must be {weights.dtype} without NaN (inf = no spike); got {measured_times.dtype}"
        )
    if (measured_voltages is None) != (n_samples is None):
        raise ConfigError("replay takes sample_times and measured_voltages together; got only one of them")
    if measured_voltages is None:
        return
    if measured_voltages.shape != (batch, n_out, n_samples):
        raise ConfigError(
            f"measured_voltages has shape {tuple(measured_voltages.shape)}; allowed: ({batch}, {n_out}, {n_samples})"
        )
    if measured_voltages.dtype != weights.dtype or not np.isfinite(measured_voltages.detach().numpy()).all():
        raise ConfigError(
            f"measured_voltages must be {weights.dtype} and finite (model units); got {measured_voltages.dtype}"
            + ("" if measured_voltages.dtype != weights.dtype else " with NaN or inf")
        )
