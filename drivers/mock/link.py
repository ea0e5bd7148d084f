"""Capacity of the mock chip's host link; what does not fit is dropped and counted.

Input: all host events of a trial share one link that carries ``DeviceLimits.link_events_per_s``
(31.25 M events/s = one event per 4 ticks) with a burst buffer of ``INPUT_BURST`` events: a
token bucket holding up to ``INPUT_BURST`` tokens, refilled at the link rate, each event takes
one token; an event finding the bucket empty is dropped (not delayed).

Output: a trial returns at most ``duration * link_events_per_s + OUTPUT_BURST`` spikes to the
host, and a run at most ``DeviceLimits.max_spikes``; later spikes are dropped from the
record (they still act on chip and in the spike counters).
"""

from __future__ import annotations

import numpy as np

from hil import chip

INPUT_BURST = 64
OUTPUT_BURST = 4096


def input_drops(ticks: np.ndarray, offsets: np.ndarray, events_per_s: float) -> np.ndarray:
    """(n_events,) bool, True for events the input link drops. ``ticks`` sorted within each trial."""
    ticks_per_event = chip.FPGA_CLOCK_HZ / events_per_s
    n = ticks.size
    dropped = np.zeros(n, bool)
    if n <= INPUT_BURST:
        return dropped
    trial = np.repeat(np.arange(offsets.size - 1), np.diff(offsets))
    # No drop in a trial iff for all i <= j: (j - i + 1) <= INPUT_BURST + (t_j - t_i) / ticks_per_event.
    g = np.arange(n) - ticks / ticks_per_event
    shifted = g - trial * 2.0**33  # later trials lower: the running minimum restarts per trial
    excess = g - (np.minimum.accumulate(shifted) + trial * 2.0**33)
    for t in np.unique(trial[excess >= INPUT_BURST]):
        lo, hi = offsets[t], offsets[t + 1]
        dropped[lo:hi] = _bucket(ticks[lo:hi], ticks_per_event)
    return dropped


def _bucket(ticks: np.ndarray, ticks_per_event: float) -> np.ndarray:
    """Exact token bucket over one overloaded trial."""
    out = np.zeros(ticks.size, bool)
    tokens, last = float(INPUT_BURST), float(ticks[0])
    for k, t in enumerate(ticks.tolist()):
        tokens = min(INPUT_BURST, tokens + (t - last) / ticks_per_event)
        last = t
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            out[k] = True
    return out


def output_budget(durations: np.ndarray, events_per_s: float) -> np.ndarray:
    """(n_trials,) int64: spikes each trial may return to the host."""
    return np.floor(durations.astype(np.float64) * chip.TICK_S * events_per_s).astype(np.int64) + OUTPUT_BURST
