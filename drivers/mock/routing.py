"""Event routing of the mock chip: crossbar -> PADI bus -> synapse driver -> synapses.

An event with 16-bit label ``L`` entering crossbar input ``i`` (0..7 neuron blocks, 8..11 host
channels) passes to output ``o = h * 4 + b`` if node ``(i, o)`` is enabled and
``L & mask == target``. On bus ``b`` of hemisphere ``h`` the driver ``d = 4 * rs + b`` with
``rs = (L >> 6) & 31`` takes it and fires, in rows ``2d`` and ``2d + 1`` unless the row is
disabled, every synapse whose stored label equals ``L & 63``, with its weight (times the
per-synapse mismatch) and the row's sign.

``Routing`` turns a configuration into weight vectors: (input, label) -> excitatory and
inhibitory weight (512,) float32 in weight LSB; the mock keeps one per configuration.
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

    def outputs(self, crossbar_input: int, label: int) -> np.ndarray:
        """(8,) bool: crossbar outputs (PADI buses ``h * 4 + b``) the event passes."""
        enable, mask, target = self._xbar
        return enable[crossbar_input] & ((np.uint16(label) & mask[crossbar_input]) == target[crossbar_input])

    def route(self, crossbar_input: np.ndarray, labels: np.ndarray):
        """Events entering crossbar inputs ``crossbar_input`` (k,) with ``labels`` (k,) ->
        ``(exc, inh, passed, matched)``: (k, 512) float32 weights per neuron in weight LSB (with
        synapse mismatch), and (k,) bool whether any crossbar node passes the event and whether
        any synapse in an enabled row carries its label. Vectorised over the events."""
        enable, mask, target = self._xbar
        inputs = np.asarray(crossbar_input, dtype=np.int64)
        labels = np.asarray(labels, dtype=np.uint16)
        passes = enable[inputs] & ((labels[:, None] & mask[inputs]) == target[inputs])  # (k, 8)
        _, row_select, syn_label = chip.split_label(labels)
        exc = np.zeros((labels.size, chip.N_NEURONS), np.float32)
        inh = np.zeros_like(exc)
        matched = np.zeros(labels.size, bool)
        for out in range(chip.N_HEMISPHERES * chip.PADI_BUSES):
            h, bus = divmod(out, chip.PADI_BUSES)
            ev = np.flatnonzero(passes[:, out])  # events on this bus
            driver = row_select[ev].astype(np.int64) * chip.PADI_BUSES + bus
            columns = slice(h * _H, (h + 1) * _H)
            for row in (2 * driver, 2 * driver + 1):
                mode = self._modes[h, row]
                hit = (self._labels[h, row] == syn_label[ev, None]) & (mode != chip.ROW_MODE_DISABLED)[:, None]
                matched[ev] |= hit.any(axis=1)
                weight = np.where(hit, self._weights[h, row], np.float32(0))
                excitatory = (mode == chip.ROW_MODE_EXCITATORY)[:, None]
                exc[ev, columns] += np.where(excitatory, weight, np.float32(0))
                inh[ev, columns] += np.where(excitatory, np.float32(0), weight)
        return exc, inh, passes.any(axis=1), matched

    def host_weights(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct host event labels (k,) -> exc, inh weights (k, 512); ``ConfigError`` for an
        event that no crossbar node passes or that reaches no synapse carrying its label."""
        labels = np.asarray(labels, dtype=np.uint16)
        channels = labels >> chip.LABEL_CHANNEL_SHIFT
        exc, inh, passed, matched = self.route(chip.CROSSBAR_HOST_INPUT_OFFSET + channels.astype(np.int64), labels)
        if not passed.all():
            first = int(np.argmin(passed))
            label, channel = int(labels[first]), int(channels[first])
            raise ConfigError(
                f"Stimulus event label {label:#06x} (host channel {channel}, crossbar input "
                f"{chip.CROSSBAR_HOST_INPUT_OFFSET + channel}) passes no enabled crossbar node; enable a node whose "
                f"label & crossbar_mask == crossbar_target"
            )
        if not matched.all():
            first = int(np.argmin(matched))
            label, channel = int(labels[first]), int(channels[first])
            _, rs, syn = chip.split_label(label)
            raise ConfigError(
                f"Stimulus event label {label:#06x} reaches PADI bus(es) {np.flatnonzero(self.outputs(chip.CROSSBAR_HOST_INPUT_OFFSET + channel, label)).tolist()} "
                f"but no synapse in an enabled row of driver row-select {int(rs)} carries synapse label {int(syn)}"
            )
        return exc, inh

    def neuron_weights(self, neuron_labels: np.ndarray, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source neurons (k,) with their output labels (512,) -> exc, inh weights (k, 512) onto every neuron."""
        sources = np.asarray(sources, dtype=np.int64)
        exc, inh, _, _ = self.route(sources // chip.NEURON_BLOCK_SIZE, neuron_labels[sources])
        return exc, inh
