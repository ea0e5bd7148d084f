"""Inputs of a device run: ``Stimulus`` (a batch of trials of input events) and ``Recording``
(what to read back).

Events of all trials are stored flat (CSR layout): ``events`` is a structured array
``(tick: uint64, label: uint16)``; trial ``i`` holds ``events[offsets[i]:offsets[i+1]]``,
sorted by tick, each tick ``< durations[i]``. Ticks are 8 ns FPGA ticks from trial start.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import attrs
import numpy as np

from . import chip
from .errors import ConfigError

EVENT_DTYPE = np.dtype([("tick", "<u8"), ("label", "<u2")])


def _array(value, what: str) -> np.ndarray:
    """``np.asarray(value)``; ``ConfigError`` naming ``what`` for ragged or unconvertible input."""
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot be read as an array ({exc})") from None


def _as_events(value) -> np.ndarray:
    arr = _array(value, "Stimulus.events")
    if arr.dtype != EVENT_DTYPE:
        if arr.dtype.names and set(arr.dtype.names) >= {"tick", "label"}:
            out = np.empty(arr.shape, EVENT_DTYPE)
            out["tick"] = _integers(arr["tick"], "Stimulus.events tick", np.uint64)
            out["label"] = _labels(arr["label"], "Stimulus.events label")
            arr = out
        else:
            raise ConfigError(f"Stimulus.events: dtype {arr.dtype}, expected structured {EVENT_DTYPE}")
    if arr.ndim != 1:
        raise ConfigError(f"Stimulus.events: shape {arr.shape}, expected one dimension")
    return np.ascontiguousarray(arr)


def _integers(value, what: str, dtype) -> np.ndarray:
    """Non-negative integers as ``dtype``; floats only when integral (1.7 is refused, not truncated)."""
    arr = _array(value, what)
    if arr.dtype.kind == "f":
        bad = arr[~np.isfinite(arr) | (arr != np.rint(arr))] if arr.size else arr[:0]
        if bad.size:
            raise ConfigError(f"{what} = {bad.ravel()[:3].tolist()}; allowed: finite integers")
    elif arr.dtype.kind not in "iu":
        raise ConfigError(f"{what}: dtype {arr.dtype}, expected integers")
    if arr.size and arr.min() < 0:
        raise ConfigError(f"{what} = {arr.min()} is negative; allowed: >= 0")
    return np.ascontiguousarray(arr, dtype=dtype)


def _labels(value, what: str) -> np.ndarray:
    """16-bit event labels (integers 0..65535) as uint16."""
    arr = _integers(value, what, np.int64)
    if arr.size and arr.max() > chip.EVENT_LABEL_MAX:
        raise ConfigError(f"{what} = {arr.max()} is out of range; allowed: 0..{chip.EVENT_LABEL_MAX}")
    return arr.astype(np.uint16)


def _as_int_array(name, dtype):
    return lambda value: _integers(value, f"Stimulus.{name}", dtype)


def _trial_events(trial, i: int) -> np.ndarray:
    """One trial of ``from_trials`` as ``EVENT_DTYPE``."""
    arr = _array(trial, f"Stimulus trial {i}")
    if arr.dtype.names is not None:
        return _as_events(arr)
    if arr.size == 0:
        return np.empty(0, EVENT_DTYPE)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ConfigError(f"Stimulus trial {i}: shape {arr.shape}, expected (n, 2) tick/label pairs or EVENT_DTYPE")
    out = np.empty(len(arr), EVENT_DTYPE)
    out["tick"] = _integers(arr[:, 0], f"Stimulus trial {i} ticks", np.uint64)
    out["label"] = _labels(arr[:, 1], f"Stimulus trial {i} labels")
    return out


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
                f"Stimulus.durations = {bad} ticks is out of range; allowed: 1..{chip.TIMER_MAX_TICKS} (the 32-bit "
                f"timer, {chip.TIMER_MAX_TICKS * chip.TICK_S:.1f} s)"
            )
        labels = e["label"]
        if np.any(labels & chip.LABEL_RESERVED_MASK):
            bad = labels[(labels & chip.LABEL_RESERVED_MASK) != 0][0]
            raise ConfigError(
                f"Stimulus.events label = {int(bad):#06x} sets reserved bits 13-11; allowed: channel bits 15-14, "
                "row-select 10-6, synapse label 5-0"
            )
        trial = self.trial_index()
        ticks = e["tick"]
        if ticks.size:
            limit = d[trial]
            if np.any(ticks >= limit):
                i = int(np.argmax(ticks >= limit))
                raise ConfigError(
                    f"Stimulus.events[{i}].tick = {ticks[i]} is past the end of trial {trial[i]} (duration "
                    f"{limit[i]} ticks); allowed: 0..{limit[i] - 1}"
                )
            unsorted = (np.diff(ticks.astype(np.int64)) < 0) & (trial[1:] == trial[:-1])
            if np.any(unsorted):
                i = int(np.argmax(unsorted))
                raise ConfigError(
                    f"Stimulus.events of trial {trial[i]} are not sorted by tick: event {i + 1} (tick "
                    f"{ticks[i + 1]}) comes after tick {ticks[i]}"
                )

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_trials(cls, trials: Sequence, durations) -> Stimulus:
        """From a list of per-trial event arrays (``EVENT_DTYPE`` or ``(n, 2)`` integer tick/label
        pairs) and durations in ticks (one, or one per trial)."""
        if isinstance(trials, (str, bytes)) or not isinstance(trials, Iterable):
            raise ConfigError(f"Stimulus.from_trials: trials = {trials!r}; expected a list of per-trial event arrays")
        parts = [_trial_events(t, i) for i, t in enumerate(trials)]
        offsets = np.concatenate([[0], np.cumsum([p.size for p in parts])])
        d = _array(durations, "Stimulus.durations")
        if d.ndim > 1 or d.size not in (1, len(parts)):
            raise ConfigError(
                f"Stimulus.durations: shape {d.shape}; expected one duration or one per trial ({len(parts)})"
            )
        events = np.concatenate(parts) if parts else np.empty(0, EVENT_DTYPE)
        return cls(events, offsets, np.broadcast_to(d.ravel(), (len(parts),)))

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
                f"Recording.madc_neuron = {list(arr)}: the MADC records one neuron per run; request {arr.size} runs "
                "instead"
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
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise ConfigError(f"Recording.cadc_period_s = {value!r}: expected a number of seconds or None")
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

    @property
    def cadc_period_ticks(self) -> int | None:
        """The CADC sampling period in 8 ns ticks, ``ceil(cadc_period_s / 8 ns)``; None when off."""
        if self.cadc_period_s is None:
            return None
        return min(math.ceil(self.cadc_period_s / chip.TICK_S - 1e-9), chip.TIMER_MAX_TICKS + 1)

    def cadc_samples(self, durations) -> np.ndarray:
        """(n_trials,) uint64 CADC readings a device takes per trial of ``durations`` ticks:
        ``ceil(duration / cadc_period_ticks)`` (zeros when the CADC is off)."""
        d = np.asarray(durations, np.uint64)
        if self.cadc_period_s is None:
            return np.zeros(d.shape, np.uint64)
        return (d - np.uint64(1)) // np.uint64(self.cadc_period_ticks) + np.uint64(1)

    def __attrs_post_init__(self):
        if self.madc_neuron is not None and self.madc_samples == 0:
            raise ConfigError(
                f"Recording.madc_samples = 0 with madc_neuron = {self.madc_neuron}; allowed: "
                f"1..{chip.MADC_MAX_SAMPLES} when the MADC is on"
            )
