"""ADC readout of the mock chip: sample times and the ``hil`` types of the codes.

MADC: one neuron, sample ``k`` at ``k * MADC_SAMPLE_PERIOD_S`` from trial start; code
``= offset + gain * 4 * x + noise`` (10 bit), ``x`` the membrane in LSB or
``SYNIN_BASELINE + I`` for a synaptic input. CADC: all 512 neurons once per period
(``ceil(period / 8 ns)`` ticks), starting at a random phase per trial (uniform over one
period, not locked to the stimulus); code ``= V + channel offset + noise`` (8 bit). The
kernel (``drivers.mock.kernel``) computes the codes from the exact membrane at each sample.
"""

from __future__ import annotations

import math

import numpy as np

from hil import chip


def cadc_ticks(n_trials: int, period_s: float, duration_ticks: np.ndarray, rng) -> np.ndarray:
    """(n_trials, n_samples) uint64 sample ticks: a random phase per trial, then one every period
    while inside the longest trial; a trial's samples past its own end repeat its last tick."""
    period = math.ceil(period_s / chip.TICK_S - 1e-9)
    phase = rng.integers(0, period, n_trials)
    ticks = phase[:, None] + period * np.arange(cadc_count(period_s, duration_ticks.max()))[None, :]
    return np.minimum(ticks, duration_ticks.astype(np.int64)[:, None] - 1).astype(np.uint64)


def cadc_count(period_s: float, duration_ticks: int) -> int:
    """CADC samples per trial of a run whose longest trial lasts ``duration_ticks``."""
    period = math.ceil(period_s / chip.TICK_S - 1e-9)
    return max(1, (int(duration_ticks) - 1) // period + 1)
