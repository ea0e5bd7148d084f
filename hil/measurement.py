"""Results of a device run: ``Measurement`` with spikes, ADC samples, health and provenance.

Spikes are one structured array ``(trial: uint32, tick: uint64, neuron: uint16)`` sorted by
trial then tick; ticks are 8 ns FPGA ticks from the start of the trial.
"""

from __future__ import annotations

import attrs
import numpy as np

from . import chip
from .errors import ConfigError

SPIKE_DTYPE = np.dtype([("trial", "<u4"), ("tick", "<u8"), ("neuron", "<u2")])
NO_SPIKE_TICK = np.iinfo(np.uint64).max  # marks "no spike" in dense tick arrays


@attrs.frozen
class Health:
    """Counters of what went wrong or cost something during a run. Nothing is lost silently.

    events_dropped_input:  input events the link or a bus could not take
    spikes_dropped_output: spikes that did not reach the host
    link_errors:           corrupted or lost frames detected (and recovered) by the driver
    retries:               requests the driver sent again
    bytes_sent, bytes_received: bytes this run's exchange moves on the wire protocol. A driver on a
        link counts what crossed it (request and reply frames with their retries, acknowledgements
        and keep-alive frames); the in-process mock reports the framed sizes of the RUN request
        and its reply (``hil.wire.framed_size``: payload, headers and CRCs of every chunk), so
        in-process and remote runs both report their traffic. Configuration traffic is not included.
    """

    events_dropped_input: int = 0
    spikes_dropped_output: int = 0
    link_errors: int = 0
    retries: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    def __add__(self, other: Health) -> Health:
        return Health(*(a + b for a, b in zip(attrs.astuple(self), attrs.astuple(other), strict=True)))


@attrs.frozen
class Provenance:
    """Where a measurement came from."""

    driver: str
    chip_id: str
    config_hash: str
    software_version: str
    wall_time_s: float
    calibration_id: str | None = None
    noise_seed: int | None = None


@attrs.frozen(eq=False)
class MadcTrace:
    """MADC samples of one neuron: ``samples`` (n_trials, n_samples) uint16 raw codes (0..1023),
    sample ``k`` taken at ``start_s + k * period_s`` after trial start."""

    neuron: int
    source: str
    samples: np.ndarray
    period_s: float = chip.MADC_SAMPLE_PERIOD_S
    start_s: float = 0.0

    def times(self) -> np.ndarray:
        """(n_samples,) sample times in seconds from trial start."""
        return self.start_s + self.period_s * np.arange(self.samples.shape[1])


@attrs.frozen(eq=False)
class CadcSamples:
    """CADC samples of all neurons: ``samples`` (n_trials, n_samples, 512) uint8 codes,
    ``ticks`` (n_trials, n_samples) uint64 sample times from trial start (not locked to the stimulus)."""

    samples: np.ndarray
    ticks: np.ndarray


def _spikes(value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != SPIKE_DTYPE or arr.ndim != 1:
        raise ConfigError(f"Measurement.spikes: dtype {arr.dtype} shape {arr.shape}, expected 1-d {SPIKE_DTYPE}")
    return arr


def _in_trial_tick_order(trial: np.ndarray, tick: np.ndarray) -> bool:
    """Whether (k,) ``trial`` and ``tick`` are sorted by (trial, tick)."""
    step = np.diff(trial)
    return bool(np.all((step > 0) | ((step == 0) & (tick[1:] >= tick[:-1]))))


@attrs.frozen(eq=False)
class Measurement:
    """Everything a run returns.

    spikes:      (n_spikes,) ``SPIKE_DTYPE``, sorted by (trial, tick)
    n_trials:    number of trials in the run
    madc:        ``MadcTrace`` or None
    cadc:        ``CadcSamples`` or None
    spike_counts: (n_trials, 512) uint16 per-neuron counter readings (8 bit + overflow bit)
    health, provenance: see ``Health``, ``Provenance``
    """

    spikes: np.ndarray = attrs.field(converter=_spikes)
    n_trials: int
    health: Health = attrs.field(factory=Health)
    provenance: Provenance | None = None
    madc: MadcTrace | None = None
    cadc: CadcSamples | None = None
    spike_counts: np.ndarray | None = None

    def spikes_of_trial(self, trial: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.spikes["trial"], [trial, trial + 1])
        return self.spikes[lo:hi]

    def spike_times(self, neurons=None, max_spikes: int = 1) -> np.ndarray:
        """Dense spike times in seconds: (n_trials, len(neurons), max_spikes), ``inf`` where none.

        ``neurons`` lists neuron circuits (default: all 512); column ``j`` holds neuron ``neurons[j]``.
        Later spikes beyond ``max_spikes`` are left out; ``count_beyond`` says how many.
        """
        return self.spike_times_and_beyond(neurons, max_spikes)[0]

    def spike_times_and_beyond(self, neurons=None, max_spikes: int = 1) -> tuple[np.ndarray, int]:
        """``(spike_times(neurons, max_spikes), count_beyond(neurons, max_spikes))`` from one pass over the spikes."""
        return self._dense(neurons, max_spikes, seconds=True)

    def first_spike_times(self, neurons=None) -> np.ndarray:
        """(n_trials, len(neurons)) first spike time in seconds, ``inf`` for silent neurons."""
        return self.spike_times(neurons, 1)[..., 0]

    def spike_ticks(self, neurons=None, max_spikes: int = 1) -> np.ndarray:
        """Like ``spike_times`` in ticks (uint64), ``uint64 max`` where none."""
        return self._dense(neurons, max_spikes, seconds=False)[0]

    def count_beyond(self, neurons=None, max_spikes: int = 1) -> int:
        """How many spikes of ``neurons`` ``spike_times(neurons, max_spikes)`` leaves out."""
        rank = self._ranked(neurons)[3]
        return int(np.count_nonzero(rank >= max_spikes))

    def _dense(self, neurons, max_spikes: int, seconds: bool) -> tuple[np.ndarray, int]:
        """(n_trials, len(neurons), max_spikes) spike times in seconds (``inf`` where none) or ticks
        (``NO_SPIKE_TICK`` where none), and the number of spikes left out."""
        trial, column, tick, rank = self._ranked(neurons)
        n_columns = chip.N_NEURONS if neurons is None else len(neurons)
        shape, kept = (self.n_trials, n_columns, max_spikes), rank < max_spikes
        if seconds:
            out = np.full(shape, np.inf)
            out[trial[kept], column[kept], rank[kept]] = tick[kept].astype(np.float64) * chip.TICK_S
        else:
            out = np.full(shape, NO_SPIKE_TICK, np.uint64)
            out[trial[kept], column[kept], rank[kept]] = tick[kept]
        return out, int(kept.size - np.count_nonzero(kept))

    def _ranked(self, neurons):
        """The spikes of the selected neurons: trial, output column, tick and rank within (trial, neuron)
        (0 for the earliest), each (k,). Only the selected spikes are sorted."""
        s = self.spikes
        if neurons is None:
            column = s["neuron"].astype(np.int64)
            trial, tick = s["trial"].astype(np.int64), s["tick"]
        else:
            idx = np.asarray(neurons, dtype=np.int64)
            if idx.ndim != 1 or (idx.size and (idx.min() < 0 or idx.max() >= chip.N_NEURONS)):
                raise ConfigError(f"neurons = {idx}: expected a 1-d list of neuron indices 0..{chip.N_NEURONS - 1}")
            lookup = np.full(chip.N_NEURONS, -1, np.int64)
            lookup[idx] = np.arange(idx.size)
            column = lookup[s["neuron"]]
            selected = np.flatnonzero(column >= 0)
            column, trial, tick = column[selected], s["trial"][selected].astype(np.int64), s["tick"][selected]
        key = trial * chip.N_NEURONS + column
        if _in_trial_tick_order(trial, tick):  # as documented: a stable sort by key keeps ticks in order
            order = np.argsort(key, kind="stable")
        else:
            order = np.lexsort((tick, key))
        sorted_key = key[order]
        first = np.ones(key.size, bool)  # first spike of its (trial, neuron) in sorted order
        first[1:] = sorted_key[1:] != sorted_key[:-1]
        starts = np.flatnonzero(first)
        rank = np.empty(key.size, np.int64)
        rank[order] = np.arange(key.size) - np.repeat(starts, np.diff(np.append(starts, key.size)))
        return trial, column, tick, rank
