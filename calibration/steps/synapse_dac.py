"""The per-quadrant synapse DAC bias (``syn_i_bias_dac``), calibrated inside the synapse step.

The DAC scales every synaptic current of its quadrant; each neuron's ``gm`` cells then make
the neurons alike. With every ``gm`` cell at ``options.gm_reference``, the DAC of each
quadrant is searched so that the quadrant's median neuron meets its gain target (for the
sign that needs more current; one DAC serves both). This removes the quadrants' differences
and leaves every neuron's ``gm`` search room on both sides (and a resolution of well under
a percent per code) instead of pushing targets beyond the ``gm`` range.
"""

from __future__ import annotations

import numpy as np

from hil import chip

from ..loop import log, nanmedian
from ..model_search import ModelSearch
from ..state import N

QUADRANT = chip.quadrant_of(np.arange(N))


class DacSearch:
    """``ModelSearch`` over the 4 quadrants of the ratio "median gain at the reference ``gm``
    / target" (1 is the goal, 3 % counts as reached)."""

    def __init__(self, state):
        self.active = np.array([state.selected[QUADRANT == q].any() for q in range(chip.N_QUADRANTS)])
        initial = state.config.syn_i_bias_dac.astype(np.int64)
        self.search = ModelSearch(np.ones(chip.N_QUADRANTS), initial, through_origin=True, settle=0.03, max_step=600)
        self.measurements = 0

    @property
    def codes(self) -> np.ndarray:
        return self.search.codes

    @property
    def converged(self) -> bool:
        return bool(np.all(self.search.converged[self.active]))

    def ratio(self, state, psp) -> np.ndarray:
        """(4,) per quadrant: the smaller over both signs of the median gain / target."""
        out = np.full(chip.N_QUADRANTS, np.nan)
        for q in np.flatnonzero(self.active):
            mine = state.selected & (QUADRANT == q)
            out[q] = min(
                nanmedian((psp[sign].gain / state.target_of(f"weight_gain_{sign}"))[mine]) for sign in ("exc", "inh")
            )
        return out

    def update(self, codes, state, psp) -> None:
        """Record the measurement at DAC ``codes`` (4,) and propose the next codes."""
        ratio = self.ratio(state, psp)
        self.search.update(codes, ratio, active=self.active)
        self.measurements += 1
        log.info("calibration.synapse.dac", codes=np.asarray(codes).tolist(), ratio=np.round(ratio, 4).tolist())
