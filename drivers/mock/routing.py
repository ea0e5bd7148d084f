"""Event routing of the mock chip: crossbar -> PADI bus -> synapse driver -> synapses.

An event with 16-bit label ``L`` entering crossbar input ``i`` (0..7 neuron blocks, 8..11 host
channels) passes to output ``o = h * 4 + b`` if node ``(i, o)`` is enabled and
``L & mask == target``. On bus ``b`` of hemisphere ``h`` the driver ``d = 4 * rs + b`` with
``rs = (L >> 6) & 31`` takes it and fires, in rows ``2d`` and ``2d + 1`` unless the row is
disabled, every synapse whose stored label equals ``L & 63``, with its weight (times the
per-synapse mismatch) and the row's sign.

``Routing`` turns a configuration into weight vectors: (input, label) -> excitatory and
inhibitory weight (512,) float32 in weight LSB, cached per configuration.
"""
from __future__ import annotations

import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.errors import ConfigError

_H = chip.NEURONS_PER_HEMISPHERE


class Routing:
    """Effective connectivity of one configuration; ``synapse_factor`` is the (2, 256, 256) weight mismatch."""

    def __init__(self, cfg: ChipConfig, synapse_factor: np.ndarray):
        self._weights = cfg.synapse_weights.astype(np.float32) * synapse_factor
        self._labels = cfg.synapse_labels
        self._modes = cfg.row_modes
        self._xbar = (cfg.crossbar_enable, cfg.crossbar_mask, cfg.crossbar_target)
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray, bool, bool]] = {}

    def outputs(self, crossbar_input: int, label: int) -> np.ndarray:
        """(8,) bool: crossbar outputs (PADI buses ``h * 4 + b``) the event passes."""
        enable, mask, target = self._xbar
        return enable[crossbar_input] & ((np.uint16(label) & mask[crossbar_input]) == target[crossbar_input])

    def route(self, crossbar_input: int, label: int):
        """``(exc, inh, passed, matched)`` for an event: (512,) float32 weights per neuron in
        weight LSB (with synapse mismatch), whether any crossbar node passes it and whether any
        synapse in an enabled row carries its label."""
        key = (crossbar_input, label)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        exc = np.zeros(chip.N_NEURONS, np.float32)
        inh = np.zeros(chip.N_NEURONS, np.float32)
        outs = np.flatnonzero(self.outputs(crossbar_input, label))
        _, row_select, syn_label = (int(x) for x in chip.split_label(label))
        matched = False
        for o in outs:
            h, bus = divmod(int(o), chip.PADI_BUSES)
            driver = row_select * chip.PADI_BUSES + bus
            for row in (2 * driver, 2 * driver + 1):
                mode = self._modes[h, row]
                if mode == chip.ROW_MODE_DISABLED:
                    continue
                hit_columns = self._labels[h, row] == syn_label
                matched |= bool(hit_columns.any())
                dest = exc if mode == chip.ROW_MODE_EXCITATORY else inh
                dest[h * _H : (h + 1) * _H] += np.where(hit_columns, self._weights[h, row], 0.0)
        result = (exc, inh, outs.size > 0, matched)
        self._cache[key] = result
        return result

    def host_weights(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct host event labels (k,) -> exc, inh weights (k, 512); ``ConfigError`` for an
        event that no crossbar node passes or that reaches no synapse carrying its label."""
        exc = np.empty((labels.size, chip.N_NEURONS), np.float32)
        inh = np.empty_like(exc)
        for j, label in enumerate(labels.tolist()):
            channel = label >> chip.LABEL_CHANNEL_SHIFT
            e, i, passed, matched = self.route(chip.CROSSBAR_HOST_INPUT_OFFSET + channel, label)
            if not passed:
                raise ConfigError(
                    f"Stimulus event label {label:#06x} (host channel {channel}, crossbar input "
                    f"{chip.CROSSBAR_HOST_INPUT_OFFSET + channel}) passes no enabled crossbar node; enable a node whose "
                    f"label & crossbar_mask == crossbar_target"
                )
            if not matched:
                _, rs, syn = chip.split_label(label)
                raise ConfigError(
                    f"Stimulus event label {label:#06x} reaches PADI bus(es) {np.flatnonzero(self.outputs(chip.CROSSBAR_HOST_INPUT_OFFSET + channel, label)).tolist()} "
                    f"but no synapse in an enabled row of driver row-select {int(rs)} carries synapse label {int(syn)}"
                )
            exc[j], inh[j] = e, i
        return exc, inh

    def neuron_weights(self, neuron_labels: np.ndarray, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source neurons (k,) with their output labels (512,) -> exc, inh weights (k, 512) onto every neuron."""
        exc = np.empty((sources.size, chip.N_NEURONS), np.float32)
        inh = np.empty_like(exc)
        for j, n in enumerate(sources.tolist()):
            exc[j], inh[j], _, _ = self.route(n // chip.NEURON_BLOCK_SIZE, int(neuron_labels[n]))
        return exc, inh
