"""Place a ``Network`` (:mod:`hil.network`) on the chip.

``place()`` maps it onto the chip's resources and returns a ``Placement`` that builds the ``ChipConfig`` from float
weights, encodes input spike times into a ``Stimulus`` and decodes a ``Measurement``.

Resource model (see docs/architecture.md):
- each LIF population takes consecutive neuron circuits; its columns are the synapse
  columns of those circuits in their hemisphere;
- every *source* (one copy of an input, or one LIF neuron) owns one synapse driver ``d``
  (rows ``2d`` excitatory and ``2d+1`` inhibitory, so weights are signed) and one 6-bit
  synapse label on it; sources that feed a common population need distinct drivers,
  sources sharing a driver need distinct labels;
- a source's 16-bit event label is ``make_label(row_select=d // 4, synapse_label, channel=d % 4)``;
  the crossbar passes host channel ``c`` and neuron blocks' channel-``c`` events to PADI bus
  ``c`` of every hemisphere that holds targets, and driver ``d`` listens on bus ``d % 4``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import attrs
import numpy as np

from . import chip
from .config import ChipConfig
from .errors import ConfigError, ResourceError
from .measurement import Measurement
from .network import InputPopulation, Network
from .stimulus import EVENT_DTYPE, Stimulus


def _real(what: str, value) -> float:
    """A real number (not bool, not a string) as float; ``ConfigError`` naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{what} = {value!r}: expected a real number")
    return float(value)


def _numeric(what: str, value) -> np.ndarray:
    """An integer or float array (torch tensors and nested lists included); ``ConfigError`` otherwise."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what}: cannot be read as an array ({exc})") from None
    if arr.dtype.kind not in "iuf":
        raise ConfigError(f"{what}: dtype {arr.dtype}; expected integer or float numbers")
    return arr


def quantize(weights, scale: float) -> np.ndarray:
    """The chip's one weight-quantisation rule: float model weights -> signed hardware weights (int8).

    ``hw = clip(round(w * scale), -WEIGHT_MAX, WEIGHT_MAX)``, rounding half to even, with the
    product taken in the weights' own precision (float32 stays float32, anything else becomes
    float64), so a float32 trainer and a float32 file quantise identically. ``scale`` is hardware
    LSB per model unit; a signed result puts ``max(hw, 0)`` on the excitatory row and
    ``max(-hw, 0)`` on the inhibitory row.
    """
    w = np.asarray(weights)
    if w.dtype != np.float32:
        w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ConfigError("weights contain NaN or infinite values; allowed: finite floats")
    if not np.isfinite(scale) or scale <= 0:
        raise ConfigError(f"weight scale = {scale!r}; allowed: a finite positive number (hardware LSB per model unit)")
    return np.clip(np.rint(w * w.dtype.type(scale)), -chip.WEIGHT_MAX, chip.WEIGHT_MAX).astype(np.int8)


@attrs.frozen(eq=False)
class Placement:
    """Where a ``Network`` lives on the chip; see the module docstring for the resource model.

    neurons:       population -> (size,) neuron circuit indices
    source_driver: population -> (n_sources,) synapse driver 0..127 of each source
    source_label:  population -> (n_sources,) 16-bit event label each source sends
    """

    network: Network
    neurons: dict
    source_driver: dict
    source_label: dict

    # --- configuration ---------------------------------------------------------------------
    def config(self, weights: Mapping[str, np.ndarray], scale, base: ChipConfig | None = None) -> ChipConfig:
        """A ``ChipConfig`` realising ``weights`` (projection key ``"a->b"`` -> float array of
        ``network.weight_shape``) at ``scale`` hardware LSB per model unit (a float or a mapping
        per projection key), on top of ``base`` (analog parameters, default ``ChipConfig()``)."""
        if base is not None and not isinstance(base, ChipConfig):
            raise ConfigError(f"Placement.config: base = {type(base).__name__}; expected a hil.ChipConfig or None")
        hw = self.hardware_weights(weights, scale)
        cfg = (base or ChipConfig()).copy()
        cfg.enable_spike_out = False
        cfg.synapses_off()
        for pop in self.network.populations:
            n = self.neurons[pop.name]
            cfg.enable_spike_out[n] = True
            cfg.neuron_label[n] = self.source_label[pop.name]
        self._route(cfg)
        self.write_weights(cfg, hw)
        return cfg

    def hardware_weights(self, weights: Mapping[str, np.ndarray], scale) -> dict[str, np.ndarray]:
        """Projection key -> signed int8 hardware weights, after checking keys and shapes."""
        expected = {p.key: p for p in self.network.projections}
        if not isinstance(weights, Mapping):
            raise ConfigError(f"weights = {type(weights).__name__}; expected a mapping projection key -> array")
        if set(weights) != set(expected):
            raise ConfigError(f"weights: got projections {sorted(map(str, weights))}, expected {sorted(expected)}")
        if isinstance(scale, Mapping) and not set(expected) <= set(scale):
            raise ConfigError(f"scale: got projections {sorted(map(str, scale))}, expected {sorted(expected)}")
        out = {}
        for key, proj in expected.items():
            w = _numeric(f"weights[{key!r}]", weights[key])
            shape = self.network.weight_shape(proj)
            if w.shape != shape:
                raise ConfigError(f"weights[{key!r}]: shape {w.shape}, expected {shape} (sources x targets)")
            s = _real(f"scale[{key!r}]", scale[key]) if isinstance(scale, Mapping) else _real("scale", scale)
            out[key] = quantize(w, s)
        return out

    def write_weights(self, cfg: ChipConfig, hardware: Mapping[str, np.ndarray]) -> None:
        """Write signed hardware weights (projection key -> int array) and their labels into ``cfg``'s
        synapse arrays."""
        for proj in self.network.projections:
            w = np.asarray(hardware[proj.key], dtype=np.int16)
            drv = self.source_driver[proj.source]
            label = self.source_label[proj.source] & chip.LABEL_SYNAPSE_MASK
            tgt = self.neurons[proj.target]
            hemi, col = chip.hemisphere_of(tgt), chip.column_of(tgt)
            for row_offset, part in ((0, np.maximum(w, 0)), (1, np.maximum(-w, 0))):
                rows = 2 * drv + row_offset
                cfg.synapse_weights[hemi[None, :], rows[:, None], col[None, :]] = part
                cfg.synapse_labels[hemi[None, :], rows[:, None], col[None, :]] = label[:, None]
            for h in np.unique(hemi):
                cfg.row_modes[h, 2 * drv] = chip.ROW_MODE_EXCITATORY
                cfg.row_modes[h, 2 * drv + 1] = chip.ROW_MODE_INHIBITORY

    def _route(self, cfg: ChipConfig) -> None:
        """Crossbar: host channel c and channel-c neuron events -> bus c of each target hemisphere."""
        for proj in self.network.projections:
            target_hemis = np.unique(chip.hemisphere_of(self.neurons[proj.target]))
            channels = np.unique(self.source_driver[proj.source] % chip.PADI_BUSES)
            if proj.source in self.neurons:
                inputs = np.unique(self.neurons[proj.source] // chip.NEURON_BLOCK_SIZE)
            else:
                inputs = chip.CROSSBAR_HOST_INPUT_OFFSET + channels
            for i in inputs:
                for h in target_hemis:
                    for c in channels:
                        out = h * chip.PADI_BUSES + c
                        cfg.crossbar_enable[i, out] = True
                        cfg.crossbar_mask[i, out] = chip.LABEL_CHANNEL_MASK
                        cfg.crossbar_target[i, out] = c << chip.LABEL_CHANNEL_SHIFT

    # --- stimulus and results -----------------------------------------------------------------
    def encode(self, input_times: Mapping[str, np.ndarray] | np.ndarray, duration_s: float) -> Stimulus:
        """Input spike times -> ``Stimulus``.

        ``input_times``: input population name -> (batch, size) or (batch, size, k) seconds
        from trial start, ``inf`` for no spike (a bare array when there is one input
        population). Each spike is sent once per duplicate, rounded to the 8 ns tick.
        ``duration_s``: trial duration in seconds; every spike must fall before it.
        """
        if not isinstance(input_times, Mapping):
            if len(self.network.inputs) != 1:
                raise ConfigError(
                    f"encode: the network has inputs {[p.name for p in self.network.inputs]}; pass a mapping name -> "
                    "times"
                )
            input_times = {self.network.inputs[0].name: input_times}
        expected = {p.name: p for p in self.network.inputs}
        if set(input_times) != set(expected):
            raise ConfigError(f"encode: got inputs {sorted(map(str, input_times))}, expected {sorted(expected)}")
        duration = _duration_ticks(duration_s)
        trials, ticks, labels, batch = [], [], [], None
        for name, pop in expected.items():
            t = _input_times(name, pop, input_times[name], duration)
            if batch is not None and t.shape[0] != batch:
                raise ConfigError(f"encode: input_times[{name!r}] has batch {t.shape[0]}, other inputs have {batch}")
            batch = t.shape[0]
            finite = np.isfinite(t)
            b, i, _ = np.nonzero(finite)
            tick = np.rint(t[finite] / chip.TICK_S).astype(np.uint64)
            dup = pop.duplication
            copies = i[:, None] * dup + np.arange(dup)[None, :]  # source index of each copy
            trials.append(np.repeat(b, dup))
            ticks.append(np.repeat(tick, dup))
            labels.append(self.source_label[name][copies.ravel()])
        trial = np.concatenate(trials)
        tick = np.concatenate(ticks)
        label = np.concatenate(labels)
        order = np.lexsort((label, tick, trial))
        events = np.empty(order.size, EVENT_DTYPE)
        events["tick"], events["label"] = tick[order], label[order]
        offsets = np.concatenate([[0], np.cumsum(np.bincount(trial, minlength=batch))])
        return Stimulus(events, offsets, np.full(batch, duration, np.uint64))

    def decode(self, measurement: Measurement, max_spikes: int = 1) -> dict[str, np.ndarray]:
        """LIF population name -> (n_trials, size, max_spikes) spike times in seconds, ``inf`` where none."""
        return {name: measurement.spike_times(n, max_spikes) for name, n in self.neurons.items()}

    def used_neurons(self) -> np.ndarray:
        """All neuron circuits of all LIF populations, in population order."""
        return np.concatenate([self.neurons[p.name] for p in self.network.populations])

    def summary(self) -> dict:
        """Resources used: neurons, drivers, labels."""
        drivers = np.concatenate(list(self.source_driver.values()))
        return {
            "neurons": int(sum(p.size for p in self.network.populations)),
            "drivers": int(np.unique(drivers).size),
            "sources": int(drivers.size),
            "max_labels_per_driver": int(np.bincount(drivers).max()),
        }


def _duration_ticks(duration_s) -> int:
    """A trial duration in seconds -> ticks, checked against the 32-bit timer."""
    duration_s = _real("encode: duration_s", duration_s)
    if not np.isfinite(duration_s) or not 0 < duration_s <= chip.TIMER_MAX_TICKS * chip.TICK_S:
        raise ConfigError(
            f"encode: duration_s = {duration_s!r}; allowed: 0 < duration <= {chip.TIMER_MAX_TICKS * chip.TICK_S:.2f} s"
        )
    return int(round(duration_s / chip.TICK_S))


def _input_times(name: str, pop: InputPopulation, value, duration: int) -> np.ndarray:
    """(batch, size, k) float64 spike times of input ``name``, each 0 <= t < the trial end or inf."""
    t = _numeric(f"encode: input_times[{name!r}]", value).astype(np.float64)
    if t.ndim == 2:
        t = t[..., None]
    if t.ndim != 3 or t.shape[1] != pop.size:
        raise ConfigError(
            f"encode: input_times[{name!r}] has shape {t.shape}, expected (batch, {pop.size}) or (batch, {pop.size}, k)"
        )
    end_s = duration * chip.TICK_S
    if np.any(np.isnan(t)) or np.any(t < 0):
        raise ConfigError(
            f"encode: input_times[{name!r}] contains NaN or negative times; allowed: 0 <= t < {end_s:g} s or inf "
            "(no spike)"
        )
    finite = t[np.isfinite(t)]
    if np.any(finite * (1 / chip.TICK_S) >= duration - 0.5):
        raise ConfigError(
            f"encode: input_times[{name!r}] = {finite.max():g} s is past the trial end; allowed: 0 <= t < "
            f"duration_s = {end_s:g} s"
        )
    return t


def _assign_neurons(network: Network, exclude) -> dict[str, np.ndarray]:
    """Population -> its neuron circuits, the lowest free ones in order; ``ResourceError`` if they run out."""
    excluded = np.unique(np.asarray(exclude, dtype=np.int64))
    if excluded.size and (excluded[0] < 0 or excluded[-1] >= chip.N_NEURONS):
        bad = excluded[(excluded < 0) | (excluded >= chip.N_NEURONS)][:3].tolist()
        raise ConfigError(f"place: exclude = {bad}; allowed: neuron circuits 0..{chip.N_NEURONS - 1}")
    free = np.setdiff1d(np.arange(chip.N_NEURONS), excluded)
    need = sum(p.size for p in network.populations)
    if need > free.size:
        usable = f"{free.size} usable ({excluded.size} excluded)" if excluded.size else str(free.size)
        sizes = np.cumsum([p.size for p in network.populations])
        first = network.populations[int(np.searchsorted(sizes, free.size, side="right"))]
        raise ResourceError(
            f"population {first.name!r} ({first.size} neurons) does not fit in the neuron circuits: network needs "
            f"{need} neuron circuits, the chip has {usable} (short by {need - free.size})"
        )
    neurons, start = {}, 0
    for pop in network.populations:
        neurons[pop.name] = free[start : start + pop.size]
        start += pop.size
    return neurons


def place(network: Network, exclude=()) -> Placement:
    """Map ``network`` onto one chip; ``ResourceError`` says which resource ran out and by how much.

    Populations take the lowest free neuron circuits in order; ``exclude`` lists circuits
    not to use (for example those that failed calibration).
    """
    neurons = _assign_neurons(network, exclude)
    targets = {p.name: set() for p in network.inputs + network.populations}
    fan_in = {p.name: 0 for p in network.populations}
    for proj in network.projections:
        targets[proj.source].add(proj.target)
        fan_in[proj.target] += network.population(proj.source).n_sources
    for name, n in fan_in.items():
        if n > chip.SYNAPSE_DRIVERS:
            raise ResourceError(
                f"population {name!r} has a fan-in of {n} sources; each source needs its own synapse driver "
                f"and the chip has {chip.SYNAPSE_DRIVERS} per hemisphere (short by {n - chip.SYNAPSE_DRIVERS})"
            )

    # Greedy driver colouring: a source takes the lowest driver none of whose sources
    # feeds one of its targets and that still has a free synapse label.
    driver_targets = [set() for _ in range(chip.SYNAPSE_DRIVERS)]
    driver_labels = np.zeros(chip.SYNAPSE_DRIVERS, np.int64)
    source_driver, source_label = {}, {}
    for pop in network.inputs + network.populations:
        tg = targets[pop.name]
        drivers = np.empty(pop.n_sources, np.int64)
        labels = np.empty(pop.n_sources, np.int64)
        for k in range(pop.n_sources):
            for d in range(chip.SYNAPSE_DRIVERS):
                if driver_labels[d] <= chip.SYNAPSE_LABEL_MAX and not (driver_targets[d] & tg):
                    break
            else:
                raise ResourceError(
                    f"no synapse driver left for source {k} of {pop.name!r}: all {chip.SYNAPSE_DRIVERS} drivers "
                    f"either feed one of its targets {sorted(tg)} already or have used all "
                    f"{chip.SYNAPSE_LABEL_MAX + 1} labels"
                )
            drivers[k], labels[k] = d, driver_labels[d]
            driver_labels[d] += 1
            driver_targets[d] |= tg
        source_driver[pop.name] = drivers
        source_label[pop.name] = chip.make_label(drivers // chip.PADI_BUSES, labels, channel=drivers % chip.PADI_BUSES)
    return Placement(network, neurons, source_driver, source_label)
