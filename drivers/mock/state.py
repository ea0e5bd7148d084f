"""``ChipState``: everything one run of the mock chip reads, as one explicit value.

The chip builds a new state on every ``configure`` (recomputing only what the changed blocks
affect) and hands it to ``experiment.execute``; nothing else of the chip is read by a run.
A state keeps the wiring of its last run (``wiring``) and the kernel's tables of its last
simulated neurons (``tables``); the tables pass on to the next state while the effective
neuron parameters stay, so a weight-only ``configure`` (every training step) keeps them.
"""

from __future__ import annotations

import attrs
import numpy as np

from hil.config import ChipConfig
from hil.device import DeviceLimits

from .engine import Noise, Tables
from .physics import Mismatch, NeuronParameters
from .routing import Routing
from .wiring import Wiring

_ROUTING_FIELDS = {
    "crossbar_enable",
    "crossbar_mask",
    "crossbar_target",
    "row_modes",
    "synapse_weights",
    "synapse_labels",
}
_NOT_ANALOG = {"enable_spike_out", "neuron_label", "enable_readout"}  # fields the neuron parameters ignore


@attrs.frozen(eq=False)
class ChipState:
    """The configuration of a chip instance and what follows from it.

    config:   the configuration (owned by this state; never changed)
    params:   effective per-neuron parameters (the hidden truth)
    routing:  effective connectivity
    mismatch: the chip instance's fixed pattern (noise model, readout model, synapse factors)
    limits:   what a run may ask
    noise:    temporal noise on
    """

    config: ChipConfig
    params: NeuronParameters
    routing: Routing
    mismatch: Mismatch
    limits: DeviceLimits
    noise: bool
    _wiring: dict = attrs.field(factory=dict, repr=False)
    _tables: dict = attrs.field(factory=dict, repr=False)  # shared with the next state while params stay

    @classmethod
    def power_on(cls, mismatch: Mismatch, limits: DeviceLimits, noise: bool) -> ChipState:
        config = ChipConfig()
        neurons, routing = NeuronParameters.of(mismatch, config), Routing(config, mismatch.synapse)
        return cls(config, neurons, routing, mismatch, limits, noise)

    def with_config(self, config: ChipConfig, changed: list[str]) -> ChipState:
        """The state after writing ``config`` (owned by the new state), which differs in the fields ``changed``."""
        changed = set(changed)
        analog = changed - _ROUTING_FIELDS - _NOT_ANALOG
        params = NeuronParameters.of(self.mismatch, config) if analog else self.params
        routing = Routing(config, self.mismatch.synapse, self.routing) if changed & _ROUTING_FIELDS else self.routing
        tables = self._tables if params is self.params else {}
        return ChipState(config, params, routing, self.mismatch, self.limits, self.noise, tables=tables)

    @property
    def noise_margin(self) -> float:
        """How far below threshold a resting neuron must sit to be sure not to fire by itself (LSB)."""
        nm = self.mismatch.noise
        return 6 * (nm.membrane_rms + nm.threshold_rms) if self.noise else 0.0

    def wiring(self, labels: np.ndarray, madc_neuron: int | None, cadc: bool) -> Wiring:
        """The wiring of a run with these distinct host labels and recorded neurons (the last one is kept)."""
        key = (labels.tobytes(), madc_neuron, cadc)
        if key not in self._wiring:
            self._wiring.clear()
            self._wiring[key] = Wiring.build(self, labels, madc_neuron, cadc)
        return self._wiring[key]

    def tables(self, columns: np.ndarray, noise: Noise) -> Tables:
        """The kernel's tables of the neurons ``columns`` under ``noise`` (the last ones are kept)."""
        key = (columns.tobytes(), noise.membrane_rms, noise.input_latency_s)
        found = self._tables.get(key)
        if found is None:
            self._tables.clear()
            found = self._tables[key] = Tables.of(self.params, columns, noise)
        return found
