"""``ChipConfig``: the whole chip configuration as named numpy arrays.

The configuration is a fixed set of *fields* (see ``FIELDS``): each a numpy array of a fixed
shape, dtype and value range taken from :mod:`hil.chip`. Drivers exchange it in *blocks*
(:class:`BlockKey`): one per-neuron parameter array, one quadrant array, one synapse row
(weights and labels of one row of one hemisphere), the row modes, the crossbar.
``diff`` lists the blocks that differ, which is what a driver must send.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from . import chip
from .errors import ConfigError


class FieldSpec(NamedTuple):
    """Shape, dtype and inclusive value range of one configuration field."""

    shape: tuple
    dtype: np.dtype
    low: int
    high: int
    doc: str


def _neuron(doc, high=chip.CAPMEM_MAX, dtype=np.uint16):
    return FieldSpec((chip.N_NEURONS,), np.dtype(dtype), 0, high, doc)


def _switch(doc):
    return FieldSpec((chip.N_NEURONS,), np.dtype(bool), 0, 1, doc)


_XBAR = (chip.CROSSBAR_INPUTS, chip.CROSSBAR_OUTPUTS)
_ARRAY = (chip.N_HEMISPHERES, chip.SYNAPSE_ROWS, chip.SYNAPSE_COLUMNS)

FIELDS: dict[str, FieldSpec] = {
    **{
        name: _neuron(f"CapMem cell {name} per neuron (0..{chip.CAPMEM_MAX})") for name in chip.NEURON_CAPMEM_PARAMETERS
    },
    "syn_i_bias_dac": FieldSpec(
        (chip.N_QUADRANTS,),
        np.dtype(np.uint16),
        0,
        chip.CAPMEM_MAX,
        "synapse DAC bias per quadrant: scales all weights",
    ),
    "enable_spike_out": _switch("neuron sends its spikes to the crossbar and the host"),
    "enable_synin_exc": _switch("excitatory synaptic input connected"),
    "enable_synin_inh": _switch("inhibitory synaptic input connected"),
    "enable_readout": _switch("neuron connected to the MADC readout multiplexer"),
    "refractory_counter": _neuron("refractory counter reload value", chip.REFRACTORY_COUNTER_MAX, np.uint8),
    "refractory_clock_scale": FieldSpec(
        (chip.N_QUADRANTS,),
        np.dtype(np.uint8),
        0,
        chip.REFRACTORY_CLOCK_SCALE_MAX,
        "refractory clock divider 2**scale per quadrant",
    ),
    "neuron_label": _neuron(
        "16-bit event label a neuron sends (channel, row-select, synapse label)", chip.EVENT_LABEL_MAX
    ),
    "synapse_weights": FieldSpec(
        _ARRAY, np.dtype(np.uint8), 0, chip.WEIGHT_MAX, "6-bit weight per synapse [hemisphere, row, column]"
    ),
    "synapse_labels": FieldSpec(
        _ARRAY, np.dtype(np.uint8), 0, chip.SYNAPSE_LABEL_MAX, "6-bit label per synapse [hemisphere, row, column]"
    ),
    "row_modes": FieldSpec(
        (chip.N_HEMISPHERES, chip.SYNAPSE_ROWS),
        np.dtype(np.uint8),
        0,
        2,
        "row sign: 0 disabled, 1 excitatory, 2 inhibitory",
    ),
    "crossbar_enable": FieldSpec(_XBAR, np.dtype(bool), 0, 1, "crossbar node enabled [input, output]"),
    "crossbar_mask": FieldSpec(
        _XBAR, np.dtype(np.uint16), 0, chip.EVENT_LABEL_MAX, "node passes an event if label & mask == target"
    ),
    "crossbar_target": FieldSpec(_XBAR, np.dtype(np.uint16), 0, chip.EVENT_LABEL_MAX, "see crossbar_mask"),
}

# Defaults: a mid-range, untuned neuron; every synapse off; no routing.
_DEFAULTS = {
    "v_leak": 400,
    "v_reset": 300,
    "v_threshold": 600,
    "i_bias_leak": 300,
    "i_bias_synin_exc_tau": 400,
    "i_bias_synin_inh_tau": 400,
    "i_bias_synin_exc_gm": 300,
    "i_bias_synin_inh_gm": 300,
    "i_mem_offset": 0,
    "syn_i_bias_dac": 600,
    "enable_spike_out": True,
    "enable_synin_exc": True,
    "enable_synin_inh": True,
    "refractory_counter": 20,
    "refractory_clock_scale": 2,
}

_PER_NEURON_BLOCK_FIELDS = tuple(n for n, s in FIELDS.items() if s.shape == (chip.N_NEURONS,))
_QUADRANT_FIELDS = tuple(n for n, s in FIELDS.items() if s.shape == (chip.N_QUADRANTS,))


class BlockKey(NamedTuple):
    """One unit of configuration transfer.

    ``kind`` is ``"field"`` (a whole per-neuron or per-quadrant array, ``name`` the field),
    ``"synapse_row"`` (weights and labels of row ``row`` of ``hemisphere``), ``"row_modes"``
    or ``"crossbar"``.
    """

    kind: str
    name: str = ""
    hemisphere: int = -1
    row: int = -1


class ChipConfig:
    """Whole-chip configuration: a named numpy array per field of ``FIELDS``.

    Fields are attributes (``cfg.v_leak``, ``cfg.synapse_weights``...). Arrays may be edited
    in place; call ``validate()`` before sending (drivers do). Construct with keyword
    arrays to override defaults: ``ChipConfig(v_leak=np.full(512, 300))``.
    """

    __slots__ = ("_arrays",)

    def __init__(self, **arrays):
        unknown = set(arrays) - set(FIELDS)
        if unknown:
            raise ConfigError(f"ChipConfig: unknown field(s) {sorted(unknown)}; known fields: {sorted(FIELDS)}")
        data = {}
        for name, spec in FIELDS.items():
            if name in arrays:
                data[name] = _coerce(name, spec, arrays[name])
            else:
                data[name] = np.full(spec.shape, _DEFAULTS.get(name, 0), dtype=spec.dtype)
        object.__setattr__(self, "_arrays", data)

    # --- attribute access -------------------------------------------------------------
    def __getattr__(self, name):
        try:
            return object.__getattribute__(self, "_arrays")[name]
        except KeyError:
            raise AttributeError(f"ChipConfig has no field {name!r}") from None

    def __setattr__(self, name, value):
        if name not in FIELDS:
            raise AttributeError(f"ChipConfig has no field {name!r}; known fields: {sorted(FIELDS)}")
        self._arrays[name] = _coerce(name, FIELDS[name], value)

    def __eq__(self, other):
        return isinstance(other, ChipConfig) and all(np.array_equal(self._arrays[n], other._arrays[n]) for n in FIELDS)

    __hash__ = None  # mutable; use content_hash()

    def __repr__(self):
        return f"ChipConfig(hash={self.content_hash()[:12]})"

    def copy(self) -> ChipConfig:
        """An independent copy (the arrays copied as they are; ``validate()`` checks them)."""
        return _wrap({n: a.copy() for n, a in self._arrays.items()})

    def updated(self, source: ChipConfig, names) -> ChipConfig:
        """A new configuration with copies of ``source``'s fields ``names`` and the other fields'
        arrays of ``self`` shared, not copied: for an owner that never edits either (a driver's shadow)."""
        return _wrap(self._arrays | {n: source._arrays[n].copy() for n in names})

    def arrays(self) -> dict[str, np.ndarray]:
        """The field arrays by name (live references)."""
        return dict(self._arrays)

    def synapses_off(self) -> ChipConfig:
        """Disconnect all synaptic input in place: every weight and label 0, every row disabled,
        no crossbar node (neither host nor neuron events reach a synapse). Returns ``self``."""
        a = self._arrays
        for name in ("synapse_weights", "synapse_labels", "crossbar_mask", "crossbar_target"):
            a[name][...] = 0
        a["row_modes"][...] = chip.ROW_MODE_DISABLED
        a["crossbar_enable"][...] = False
        return self

    # --- validation and identity -----------------------------------------------------------
    def validate(self, fields=None) -> ChipConfig:
        """Check every field's shape and dtype, and the value range of ``fields`` (names; default: all);
        raise ``ConfigError`` naming the first bad entry. A driver that keeps a validated shadow checks
        only the fields that differ from it (``changed_fields``)."""
        for name, spec in FIELDS.items():
            _check(name, spec, self._arrays[name], values=fields is None or name in fields)
        return self

    def content_hash(self) -> str:
        """Stable SHA-256 hex digest of all fields (little-endian bytes in ``FIELDS`` order)."""
        h = hashlib.sha256()
        for name, spec in FIELDS.items():
            h.update(name.encode())
            h.update(np.ascontiguousarray(self._arrays[name], dtype=spec.dtype.newbyteorder("<")).tobytes())
        return h.hexdigest()

    # --- blocks --------------------------------------------------------------------------
    @staticmethod
    def block_keys() -> Iterator[BlockKey]:
        """All blocks of a configuration, in transfer order."""
        for name in _PER_NEURON_BLOCK_FIELDS + _QUADRANT_FIELDS:
            yield BlockKey("field", name)
        yield BlockKey("row_modes")
        yield BlockKey("crossbar")
        for h in range(chip.N_HEMISPHERES):
            for r in range(chip.SYNAPSE_ROWS):
                yield BlockKey("synapse_row", hemisphere=h, row=r)

    def get_block(self, key: BlockKey) -> dict[str, np.ndarray]:
        """The arrays of one block, by field name (views into this configuration)."""
        a = self._arrays
        if key.kind == "field":
            return {key.name: a[key.name]}
        if key.kind == "row_modes":
            return {"row_modes": a["row_modes"]}
        if key.kind == "crossbar":
            return {n: a[n] for n in ("crossbar_enable", "crossbar_mask", "crossbar_target")}
        if key.kind == "synapse_row":
            return {n: a[n][key.hemisphere, key.row] for n in ("synapse_weights", "synapse_labels")}
        raise ConfigError(f"BlockKey.kind = {key.kind!r} is unknown; allowed: field, row_modes, crossbar, synapse_row")

    def set_block(self, key: BlockKey, arrays: dict[str, np.ndarray]) -> None:
        """Overwrite one block from arrays shaped like ``get_block(key)``; validates them."""
        target = self.get_block(key)
        if set(arrays) != set(target):
            raise ConfigError(f"block {key}: got arrays {sorted(arrays)}, expected {sorted(target)}")
        for name, value in arrays.items():
            spec = FIELDS[name]
            value = np.asarray(value)
            if value.shape != target[name].shape:
                raise ConfigError(f"block {key}: {name} has shape {value.shape}, expected {target[name].shape}")
            _check_values(name, spec, value)
            target[name][...] = value

    def changed_fields(self, other: ChipConfig) -> list[str]:
        """Names of the fields in which ``other`` differs from ``self`` (in ``FIELDS`` order)."""
        a, b = self._arrays, other._arrays
        return [name for name in FIELDS if not np.array_equal(a[name], b[name])]

    def diff(self, other: ChipConfig) -> list[BlockKey]:
        """Blocks in which ``other`` differs from ``self`` (what to send to turn ``self`` into ``other``)."""
        changed = []
        a, b = self._arrays, other._arrays
        for name in _PER_NEURON_BLOCK_FIELDS + _QUADRANT_FIELDS:
            if not np.array_equal(a[name], b[name]):
                changed.append(BlockKey("field", name))
        if not np.array_equal(a["row_modes"], b["row_modes"]):
            changed.append(BlockKey("row_modes"))
        if any(not np.array_equal(a[n], b[n]) for n in ("crossbar_enable", "crossbar_mask", "crossbar_target")):
            changed.append(BlockKey("crossbar"))
        rows = np.any(a["synapse_weights"] != b["synapse_weights"], axis=2) | np.any(
            a["synapse_labels"] != b["synapse_labels"], axis=2
        )
        for h, r in zip(*np.nonzero(rows), strict=True):
            changed.append(BlockKey("synapse_row", hemisphere=int(h), row=int(r)))
        return changed

    # --- files ---------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write as ``.npz`` (one array per field plus a schema version)."""
        np.savez_compressed(path, __schema__=np.array(CONFIG_SCHEMA_VERSION), **self._arrays)

    @classmethod
    def load(cls, path) -> ChipConfig:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["__schema__"]) if "__schema__" in data else None
            if version != CONFIG_SCHEMA_VERSION:
                raise ConfigError(
                    f"{path}: config schema version {version!r}; this software reads {CONFIG_SCHEMA_VERSION}"
                )
            return cls(**{n: data[n] for n in FIELDS if n in data}).validate()


CONFIG_SCHEMA_VERSION = 1


def _coerce(name, spec, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        arr = np.broadcast_to(arr, spec.shape)
    if arr.shape != spec.shape:
        raise ConfigError(f"ChipConfig.{name}: shape {arr.shape}, expected {spec.shape}")
    _check_values(name, spec, arr)
    return np.array(arr, dtype=spec.dtype)


def _check_values(name, spec, arr) -> None:
    if arr.dtype == bool or spec.dtype == bool:
        if arr.dtype != bool and not np.all((arr == 0) | (arr == 1)):
            raise ConfigError(f"ChipConfig.{name}: values must be boolean, got {np.unique(arr)[:5]}")
        return
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.rint(arr)):
            bad = arr[~np.isfinite(arr) | (arr != np.rint(arr))].ravel()[0]
            raise ConfigError(f"ChipConfig.{name} = {bad!r}: values must be integers in {spec.low}..{spec.high}")
    elif arr.dtype.kind not in "iu":
        raise ConfigError(
            f"ChipConfig.{name}: dtype {arr.dtype} is not numeric; expected integers in {spec.low}..{spec.high}"
        )
    if arr.size and (arr.min() < spec.low or arr.max() > spec.high):
        flat = arr.ravel()
        i = int(np.argmax((flat < spec.low) | (flat > spec.high)))
        index = np.unravel_index(i, arr.shape)
        raise ConfigError(
            f"ChipConfig.{name}[{', '.join(map(str, index))}] = {flat[i]} is out of range; "
            f"allowed: {spec.low}..{spec.high}"
        )


def _check(name, spec, arr, values: bool = True) -> None:
    if arr.shape != spec.shape:
        raise ConfigError(f"ChipConfig.{name}: shape {arr.shape}, expected {spec.shape}")
    if arr.dtype != spec.dtype:
        raise ConfigError(f"ChipConfig.{name}: dtype {arr.dtype}, expected {spec.dtype}")
    if values:
        _check_values(name, spec, arr)


def _wrap(arrays: dict) -> ChipConfig:
    """A ``ChipConfig`` holding ``arrays`` (every field, already of its shape and dtype) as they are."""
    config = object.__new__(ChipConfig)
    object.__setattr__(config, "_arrays", arrays)
    return config
