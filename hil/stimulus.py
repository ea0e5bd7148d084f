"""Inputs of a device run: ``Stimulus`` (a batch of trials of input events) and ``Recording``
(what to read back).

Events of all trials are stored flat (CSR layout): ``events`` is a structured array
``(tick: uint64, label: uint16)``; trial ``i`` holds ``events[offsets[i]:offsets[i+1]]``,
sorted by tick, each tick ``< durations[i]``. Ticks are 8 ns FPGA ticks from trial start.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from . import chip
from .errors import ConfigError

EVENT_DTYPE = np.dtype([("tick", "<u8"), ("label", "<u2")])


def _as_events(value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype != EVENT_DTYPE:
        if arr.dtype.names and set(arr.dtype.names) >= {"tick", "label"}:
            out = np.empty(arr.shape, EVENT_DTYPE)
            out["tick"], out["label"] = arr["tick"], arr["label"]
            arr = out
        else:
            raise ConfigError(f"Stimulus.events: dtype {arr.dtype}, expected structured {EVENT_DTYPE}")
    if arr.ndim != 1:
        raise ConfigError(f"Stimulus.events: shape {arr.shape}, expected one dimension")
    return np.ascontiguousarray(arr)


def _as_int_array(name, dtype):
    def convert(value):
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or np.any(arr != np.rint(arr)):
                raise ConfigError(
                    f"Stimulus.{name}: values must be finite integers, got {arr[~np.isfinite(arr)][:3] if not np.all(np.isfinite(arr)) else arr[arr != np.rint(arr)][:3]}"
                )
        elif arr.dtype.kind not in "iu":
            raise ConfigError(f"Stimulus.{name}: dtype {arr.dtype}, expected integers")
        if arr.size and arr.min() < 0:
            raise ConfigError(f"Stimulus.{name} = {arr.min()} is negative; allowed: >= 0")
        return np.ascontiguousarray(arr, dtype=dtype)

    return convert


@attrs.frozen(eq=False)
class Stimulus:
    """A batch of trials of input events.

    events:    (n_events,) ``EVENT_DTYPE``, trial by trial, sorted by tick within a trial
    offsets:   (n_trials + 1,) int64, start of each trial in ``events``; ``offsets[0] == 0``
    durations: (n_trials,) uint64 ticks; every event tick < its trial's duration,
               duration <= ``chip.TIMER_MAX_TICKS``
    """

    events: np.ndarray = attrs.field(converter=_as_events)
    offsets: np.ndarray = attrs.field(converter=_as_int_array("offsets", np.int64))
    durations: np.ndarray = attrs.field(converter=_as_int_array("durations", np.uint64))

    def __attrs_post_init__(self):
        o, d, e = self.offsets, self.durations, self.events
        if o.ndim != 1 or o.size < 1 or o[0] != 0 or o[-1] != e.size or np.any(np.diff(o) < 0):
            raise ConfigError(
                f"Stimulus.offsets must rise from 0 to len(events) = {e.size}; got {o[:5]}...{o[-2:]} (length {o.size})"
            )
        if d.shape != (o.size - 1,):
            raise ConfigError(f"Stimulus.durations: shape {d.shape}, expected ({o.size - 1},) (one per trial)")
        if d.size == 0:
            raise ConfigError("Stimulus: a stimulus needs at least one trial")
        if np.any(d == 0) or np.any(d > chip.TIMER_MAX_TICKS):
            bad = d[(d == 0) | (d > chip.TIMER_MAX_TICKS)][0]
            raise ConfigError(
                f"Stimulus.durations = {bad} ticks is out of range; allowed: 1..{chip.TIMER_MAX_TICKS} (the 32-bit timer, {chip.TIMER_MAX_TICKS * chip.TICK_S:.1f} s)"
            )
        labels = e["label"]
        if np.any(labels & chip.LABEL_RESERVED_MASK):
            bad = labels[(labels & chip.LABEL_RESERVED_MASK) != 0][0]
            raise ConfigError(
                f"Stimulus.events label = {int(bad):#06x} sets reserved bits 13-11; allowed: channel bits 15-14, row-select 10-6, synapse label 5-0"
            )
        trial = self.trial_index()
        ticks = e["tick"]
        if ticks.size:
            limit = d[trial]
            if np.any(ticks >= limit):
                i = int(np.argmax(ticks >= limit))
                raise ConfigError(
                    f"Stimulus.events[{i}].tick = {ticks[i]} is past the end of trial {trial[i]} (duration {limit[i]} ticks); allowed: 0..{limit[i] - 1}"
                )
            unsorted = (np.diff(ticks.astype(np.int64)) < 0) & (trial[1:] == trial[:-1])
            if np.any(unsorted):
                i = int(np.argmax(unsorted))
                raise ConfigError(
                    f"Stimulus.events of trial {trial[i]} are not sorted by tick: event {i + 1} (tick {ticks[i + 1]}) comes after tick {ticks[i]}"
                )

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_trials(cls, trials: Sequence, durations) -> Stimulus:
        """From a list of per-trial event arrays (``EVENT_DTYPE`` or ``(n, 2)`` tick/label) and durations in ticks."""
        parts = []
        for i, t in enumerate(trials):
            arr = np.asarray(t)
            if arr.dtype.names is None:
                if arr.size == 0:
                    arr = np.empty(0, EVENT_DTYPE)
                elif arr.ndim != 2 or arr.shape[1] != 2:
                    raise ConfigError(
                        f"Stimulus trial {i}: shape {arr.shape}, expected (n, 2) tick/label pairs or EVENT_DTYPE"
                    )
                else:
                    if np.any(arr[:, 1] < 0) or np.any(arr[:, 1] > chip.EVENT_LABEL_MAX):
                        raise ConfigError(
                            f"Stimulus trial {i}: labels must be 0..{chip.EVENT_LABEL_MAX}, got {arr[:, 1].min()}..{arr[:, 1].max()}"
                        )
                    s = np.empty(len(arr), EVENT_DTYPE)
                    s["tick"], s["label"] = _as_int_array("tick", np.uint64)(arr[:, 0]), arr[:, 1]
                    arr = s
            parts.append(_as_events(arr))
        offsets = np.concatenate([[0], np.cumsum([p.size for p in parts])])
        durations = np.broadcast_to(np.asarray(durations), (len(parts),))
        events = np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)
        return cls(events, offsets, durations)

    # --- access ------------------------------------------------------------------------
    @property
    def n_trials(self) -> int:
        return self.offsets.size - 1

    @property
    def n_events(self) -> int:
        return self.events.size

    def trial(self, i: int) -> np.ndarray:
        """Events of trial ``i`` (a view)."""
        return self.events[self.offsets[i] : self.offsets[i + 1]]

    def trial_index(self) -> np.ndarray:
        """(n_events,) trial number of each event."""
        return np.repeat(np.arange(self.n_trials, dtype=np.uint32), np.diff(self.offsets))

    def total_duration_s(self) -> float:
        """Sum of all trial durations in seconds (the chip's busy time)."""
        return float(self.durations.sum()) * chip.TICK_S

    def __eq__(self, other):
        return (
            isinstance(other, Stimulus)
            and np.array_equal(self.events, other.events)
            and np.array_equal(self.offsets, other.offsets)
            and np.array_equal(self.durations, other.durations)
        )


def _madc_neuron(value):
    if value is None:
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value).ravel()
        if arr.size != 1:
            raise ConfigError(
                f"Recording.madc_neuron = {list(arr)}: the MADC records one neuron per run; request {arr.size} runs instead"
            )
        value = arr[0]
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise ConfigError(
            f"Recording.madc_neuron = {value!r}: expected an integer neuron index 0..{chip.N_NEURONS - 1}"
        )
    if not 0 <= value < chip.N_NEURONS:
        raise ConfigError(f"Recording.madc_neuron = {value} is out of range; allowed: 0..{chip.N_NEURONS - 1}")
    return int(value)


def _in(name, options):
    def check(inst, attribute, value):
        if value not in options:
            raise ConfigError(f"Recording.{name} = {value!r}; allowed: {', '.join(map(repr, options))}")

    return check


def _madc_samples(inst, attribute, value):
    if not isinstance(value, (int, np.integer)) or not 0 <= value <= chip.MADC_MAX_SAMPLES:
        raise ConfigError(
            f"Recording.madc_samples = {value!r} is out of range; allowed: 0..{chip.MADC_MAX_SAMPLES} per trial"
        )


def _cadc_period(inst, attribute, value):
    if value is None:
        return
    if not np.isfinite(value) or value < chip.CADC_MIN_PERIOD_S:
        raise ConfigError(
            f"Recording.cadc_period_s = {value!r} is below the CADC's minimum; allowed: >= {chip.CADC_MIN_PERIOD_S:g} s"
        )


@attrs.frozen
class Recording:
    """What a run reads back.

    spikes:        record spike events of neurons with ``enable_spike_out``
    spike_counts:  read the per-neuron spike counters (8 bit + overflow) after each trial
    madc_neuron:   the one neuron the MADC samples (None: MADC off)
    madc_source:   "membrane", "synin_exc" or "synin_inh"
    madc_samples:  samples per trial (<= 65,535), about 34 ns apart from trial start
    cadc_period_s: CADC sampling period of all 512 neurons (None: off; >= 1.7 us)
    """

    spikes: bool = True
    spike_counts: bool = False
    madc_neuron: int | None = attrs.field(default=None, converter=_madc_neuron)
    madc_source: str = attrs.field(default="membrane", validator=_in("madc_source", chip.MADC_SOURCES))
    madc_samples: int = attrs.field(default=0, validator=_madc_samples)
    cadc_period_s: float | None = attrs.field(default=None, validator=_cadc_period)

    def __attrs_post_init__(self):
        if self.madc_neuron is not None and self.madc_samples == 0:
            raise ConfigError(
                f"Recording.madc_samples = 0 with madc_neuron = {self.madc_neuron}; allowed: 1..{chip.MADC_MAX_SAMPLES} when the MADC is on"
            )
