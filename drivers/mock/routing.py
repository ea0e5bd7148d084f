"""Event routing of the mock chip: crossbar -> PADI bus -> synapse driver -> synapses.

An event with 16-bit label ``L`` entering crossbar input ``i`` (0..7 neuron blocks, 8..11 host
channels) passes to output ``o = h * 4 + b`` if node ``(i, o)`` is enabled and
``L & mask == target``. On bus ``b`` of hemisphere ``h`` the driver ``d = 4 * rs + b`` with
``rs = (L >> 6) & 31`` takes it and fires, in rows ``2d`` and ``2d + 1`` unless the row is
disabled, every synapse whose stored label equals ``L & 63``, with its weight (times the
per-synapse mismatch) and the row's sign.

``Routing`` turns a configuration into sparse weight rows: per event, the neurons it reaches
with their excitatory and inhibitory weight in weight LSB (CSR). A per-row index of the
synapses by label makes an event cost only the synapses it fires; the index is reused while
the synapse labels stay the same.
"""

from __future__ import annotations

import numba
import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.errors import ConfigError

_H = chip.NEURONS_PER_HEMISPHERE
_LABELS = chip.SYNAPSE_LABEL_MAX + 1


@numba.njit(cache=True)
def _label_index(labels):
    """Per (hemisphere, row): columns ordered by synapse label and where each label starts (counting sort)."""
    n_h, n_r, n_c = labels.shape
    order = np.empty((n_h, n_r, n_c), np.uint8)
    start = np.zeros((n_h, n_r, _LABELS + 1), np.int32)
    for h in range(n_h):
        for r in range(n_r):
            for c in range(n_c):
                start[h, r, labels[h, r, c] + 1] += 1
            for lab in range(_LABELS):
                start[h, r, lab + 1] += start[h, r, lab]
            fill = start[h, r, :_LABELS].copy()
            for c in range(n_c):
                lab = labels[h, r, c]
                order[h, r, fill[lab]] = c
                fill[lab] += 1
    return order, start


@numba.njit(cache=True)
def _route(inputs, labels, enable, mask, target, modes, order, start, weights, factor):
    """CSR (ptr, neuron, w_exc, w_inh) of the events (crossbar input, label), and per event whether a
    node passed it and whether a synapse in an enabled row carries its label."""
    k = labels.size
    ptr = np.zeros(k + 1, np.int64)
    cap = 1024
    neuron, w_exc, w_inh = np.empty(cap, np.int64), np.empty(cap), np.empty(cap)
    passed, matched = np.zeros(k, np.bool_), np.zeros(k, np.bool_)
    acc_e, acc_i = np.zeros(2 * _H), np.zeros(2 * _H)
    seen = np.zeros(2 * _H, np.bool_)
    touched = np.empty(2 * _H, np.int64)
    n = 0
    for e in range(k):
        lab, inp = labels[e], inputs[e]
        rs, syn = (lab >> 6) & 31, lab & 63
        m = 0
        for o in range(enable.shape[1]):
            if not enable[inp, o] or (lab & mask[inp, o]) != target[inp, o]:
                continue
            passed[e] = True
            h, d = o // 4, 4 * rs + o % 4
            for row in (2 * d, 2 * d + 1):
                mode = modes[h, row]
                if mode == chip.ROW_MODE_DISABLED:
                    continue
                for p in range(start[h, row, syn], start[h, row, syn + 1]):
                    col = order[h, row, p]
                    matched[e] = True
                    if weights[h, row, col] == 0:  # adds nothing (unused columns of a row carry label 0 too)
                        continue
                    j = h * _H + col
                    if not seen[j]:
                        seen[j] = True
                        touched[m] = j
                        m += 1
                    w = weights[h, row, col] * np.float64(factor[h, row, col])
                    if mode == chip.ROW_MODE_EXCITATORY:
                        acc_e[j] += w
                    else:
                        acc_i[j] += w
        touched[:m].sort()
        if n + m > neuron.size:
            size = max(2 * neuron.size, n + m)
            neuron, w_exc, w_inh = _resized(neuron, size), _resized(w_exc, size), _resized(w_inh, size)
        for q in range(m):
            j = touched[q]
            if acc_e[j] != 0.0 or acc_i[j] != 0.0:
                neuron[n], w_exc[n], w_inh[n] = j, acc_e[j], acc_i[j]
                n += 1
            acc_e[j], acc_i[j], seen[j] = 0.0, 0.0, False
        ptr[e + 1] = n
    return ptr, neuron[:n], w_exc[:n], w_inh[:n], passed, matched


@numba.njit(cache=True)
def _resized(a, size):
    out = np.empty(size, a.dtype)
    out[: a.size] = a
    return out


class Routing:
    """Effective connectivity of one configuration; ``synapse_factor`` is the (2, 256, 256) weight mismatch.
    ``previous``: the routing of the configuration before, whose label index is reused when the
    synapse labels did not change."""

    def __init__(self, cfg: ChipConfig, synapse_factor: np.ndarray, previous: Routing | None = None):
        self._weights = cfg.synapse_weights
        self._factor = synapse_factor
        self._labels = cfg.synapse_labels
        self._modes = cfg.row_modes
        self._xbar = (cfg.crossbar_enable, cfg.crossbar_mask, cfg.crossbar_target)
        if previous is not None and np.array_equal(previous._labels, self._labels):
            self._index = previous._index
        else:
            self._index = _label_index(self._labels)

    def route(self, crossbar_input: np.ndarray, labels: np.ndarray):
        """Events entering crossbar inputs (k,) with labels (k,) -> (CSR, passed, matched): CSR
        ``(ptr (k+1,), neuron (n,), w_exc (n,), w_inh (n,))`` of the neurons each event reaches with
        their weights in weight LSB (synapse mismatch included), and per event whether a crossbar
        node passes it and whether a synapse in an enabled row carries its label."""
        inputs = np.ascontiguousarray(crossbar_input, dtype=np.int64)
        labels = np.ascontiguousarray(labels, dtype=np.int64)
        *csr, passed, matched = _route(
            inputs, labels, *self._xbar, self._modes, *self._index, self._weights, self._factor
        )
        return tuple(csr), passed, matched

    def host_rows(self, labels: np.ndarray) -> tuple:
        """Distinct host event labels (k,) -> CSR of their weights; ``ConfigError`` for an event that
        no crossbar node passes or that reaches no synapse carrying its label."""
        labels = np.asarray(labels, dtype=np.uint16)
        channels = (labels >> chip.LABEL_CHANNEL_SHIFT).astype(np.int64)
        csr, passed, matched = self.route(chip.CROSSBAR_HOST_INPUT_OFFSET + channels, labels)
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
            buses = np.flatnonzero(self._passes(chip.CROSSBAR_HOST_INPUT_OFFSET + channel, label)).tolist()
            raise ConfigError(
                f"Stimulus event label {label:#06x} reaches PADI bus(es) {buses} "
                f"but no synapse in an enabled row of driver row-select {int(rs)} carries synapse label {int(syn)}"
            )
        return csr

    def neuron_rows(self, neuron_labels: np.ndarray, sources: np.ndarray) -> tuple:
        """Source neurons (k,) with the output labels of all neurons (512,) -> CSR of their weights
        onto every neuron."""
        sources = np.asarray(sources, dtype=np.int64)
        csr, _, _ = self.route(sources // chip.NEURON_BLOCK_SIZE, neuron_labels[sources])
        return csr

    def _passes(self, crossbar_input: int, label: int) -> np.ndarray:
        """(8,) bool: crossbar outputs (PADI buses ``h * 4 + b``) the event passes."""
        enable, mask, target = self._xbar
        return enable[crossbar_input] & ((np.uint16(label) & mask[crossbar_input]) == target[crossbar_input])
