"""Which neurons a run of the mock chip simulates, and how they are wired (``Wiring``).

A neuron is simulated if it is recorded (MADC neuron; all 512 when the CADC is on), receives
routed host events, may fire by itself (resting potential within the noise margin of its
threshold), or is reached through the crossbar by a simulated neuron's spikes. Every other
neuron provably stays at rest. The chip keeps the wiring of its last request and reuses it
while the configuration, the host labels and the recorded neurons stay the same.
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip

from .engine import Neurons, Noise


@attrs.frozen(eq=False)
class Wiring:
    """Simulated neurons (``columns``, global indices ascending) and CSR weights in LSB of current:
    ``host`` rows per distinct host label, ``nn`` rows per simulated neuron (indices into ``columns``)."""

    columns: np.ndarray
    host: tuple
    nn: tuple

    @classmethod
    def build(cls, state, labels: np.ndarray, madc_neuron: int | None, cadc: bool) -> Wiring:
        cfg, params = state.config, state.params
        gain_e = params.weight_gain_exc * cfg.enable_synin_exc
        gain_i = params.weight_gain_inh * cfg.enable_synin_inh
        host = state.routing.host_rows(labels)
        use = np.zeros(chip.N_NEURONS, bool)
        use[host[1]] = True
        use |= params.v_rest + state.noise_margin >= params.v_threshold
        use[:] |= cadc
        if madc_neuron is not None:
            use[madc_neuron] = True
        sources, pieces = [], []
        done = np.zeros(chip.N_NEURONS, bool)
        while True:
            frontier = np.flatnonzero(use & ~done & cfg.enable_spike_out)
            if frontier.size == 0:
                break
            ptr, target, w_exc, w_inh = state.routing.neuron_rows(cfg.neuron_label, frontier)
            sources.append(np.repeat(frontier, np.diff(ptr)))
            pieces.append((target, w_exc, w_inh))
            use[target] = True
            done[frontier] = True
        columns = np.flatnonzero(use)
        index = np.full(chip.N_NEURONS, -1, np.int64)
        index[columns] = np.arange(columns.size)
        host_csr = (host[0], index[host[1]], host[2] * gain_e[host[1]], host[3] * gain_i[host[1]])
        return cls(columns, host_csr, _neuron_csr(index, sources, pieces, columns.size, gain_e, gain_i))

    def neurons(self, state, spikes: bool, noise: Noise) -> Neurons:
        """The engine's view of these neurons; ``spikes``: whether spikes are recorded at all."""
        return Neurons(
            columns=self.columns,
            tables=state.tables(self.columns, noise),
            host=self.host,
            nn=self.nn,
            records=state.config.enable_spike_out[self.columns] & bool(spikes),
        )


def _neuron_csr(index, sources, pieces, n, gain_e, gain_i) -> tuple:
    """CSR over the n simulated neurons from the routed (source, target, w_exc, w_inh) pieces."""
    if not sources:
        return np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
    source = index[np.concatenate(sources)]
    target, w_exc, w_inh = (np.concatenate(x) for x in zip(*pieces, strict=True))
    order = np.argsort(source, kind="stable")
    source, target, w_exc, w_inh = source[order], target[order], w_exc[order], w_inh[order]
    ptr = np.searchsorted(source, np.arange(n + 1)).astype(np.int64)
    return ptr, index[target], w_exc * gain_e[target], w_inh * gain_i[target]
