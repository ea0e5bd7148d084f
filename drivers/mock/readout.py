"""ADC readout of the mock chip: MADC traces and CADC samples from the simulated states.

MADC: sample ``k`` at ``k * MADC_SAMPLE_PERIOD_S`` from trial start, read from the grid trace
by linear interpolation, with the spike discontinuities (rise to threshold, drop to reset,
refractory hold) put back in exactly; code ``= offset + gain * 4 * x + noise`` (10 bit).
CADC: all 512 neurons once per period (``ceil(period / 8 ns)`` ticks), starting at a random
phase per trial (uniform over one period, not locked to the stimulus); code ``= V + channel
offset + noise`` (8 bit). Neurons that are not simulated sit at their resting potential
(plus a fresh membrane-noise sample per reading when noise is on).
"""

from __future__ import annotations

import math

import numpy as np

from hil import chip
from hil.measurement import CadcSamples, MadcTrace

from .engine import DT_S
from .physics import SYNIN_BASELINE, ReadoutModel


def cadc_ticks(n_trials: int, period_s: float, duration_ticks: int, rng) -> np.ndarray:
    """(n_trials, n_samples) uint64 sample ticks: random phase per trial, then every period."""
    period = math.ceil(period_s / chip.TICK_S - 1e-9)
    phase = rng.integers(0, period, n_trials)
    n = max(1, (duration_ticks - 1) // period + 1)
    ticks = phase[:, None] + period * np.arange(n)[None, :]
    return np.minimum(ticks, duration_ticks - 1).astype(np.uint64)


def madc_trace(
    grid: np.ndarray,
    spikes: tuple,
    v_reset: float,
    refractory: float,
    source: str,
    neuron: int,
    n_samples: int,
    model: ReadoutModel,
    rng,
    noise: bool,
) -> MadcTrace:
    """Grid trace (T, n_steps + 1) in LSB plus the neuron's spikes (trial, time, theta) -> ``MadcTrace``."""
    T = grid.shape[0]
    grid_t = DT_S * np.arange(grid.shape[1])
    sample_t = chip.MADC_SAMPLE_PERIOD_S * np.arange(n_samples)
    values = np.empty((T, n_samples))
    s_trial, s_time, s_theta = spikes
    for trial in range(T):
        t, v = grid_t, grid[trial].astype(np.float64)
        if source == "membrane":
            m = s_trial == trial
            if m.any():
                t, v = _with_spikes(t, v, s_time[m], s_theta[m], v_reset, refractory)
        values[trial] = np.interp(sample_t, t, v)
    if source != "membrane":
        values += SYNIN_BASELINE
    codes = model.madc_offset + model.madc_gain * 4.0 * values
    if noise:
        codes += model.madc_noise * rng.standard_normal(codes.shape)
    samples = np.clip(np.rint(codes), 0, chip.MADC_MAX).astype(np.uint16)
    return MadcTrace(neuron=neuron, source=source, samples=samples)


def _with_spikes(t, v, spike_t, theta, v_reset, refractory):
    """Insert knots (t_s, theta), (t_s, v_reset), (t_s + t_ref, v_reset) and drop grid points inside them."""
    keep = np.ones(t.size, bool)
    for ts, te in zip(spike_t, spike_t + refractory):
        keep &= ~((t > ts) & (t < te))
    extra_t = np.concatenate([spike_t, spike_t, spike_t + refractory])
    extra_v = np.concatenate([theta, np.full(spike_t.size, v_reset), np.full(spike_t.size, v_reset)])
    # order: at the spike time the threshold knot comes before the reset knot
    rank = np.concatenate(
        [np.zeros(t.size)[keep], np.full(spike_t.size, 1), np.full(spike_t.size, 2), np.full(spike_t.size, 3)]
    )
    all_t = np.concatenate([t[keep], extra_t])
    all_v = np.concatenate([v[keep], extra_v])
    order = np.lexsort((rank, all_t))
    return all_t[order], all_v[order]


def cadc_samples(
    values: np.ndarray,
    active: np.ndarray,
    v_rest: np.ndarray,
    ticks: np.ndarray,
    model: ReadoutModel,
    membrane_rms: float,
    rng,
    noise: bool,
) -> CadcSamples:
    """Simulated values (T, S, n_active) LSB of neurons ``active`` -> ``CadcSamples`` of all 512 neurons."""
    T, S = ticks.shape
    full = np.empty((T, S, chip.N_NEURONS), np.float32)
    full[...] = v_rest.astype(np.float32)
    if noise and membrane_rms:
        full += membrane_rms * rng.standard_normal(full.shape, dtype=np.float32)
    full[:, :, active] = values
    full += model.cadc_offset.astype(np.float32)
    if noise:
        full += model.cadc_noise * rng.standard_normal(full.shape, dtype=np.float32)
    return CadcSamples(samples=np.clip(np.rint(full), 0, chip.CADC_MAX).astype(np.uint8), ticks=ticks)
