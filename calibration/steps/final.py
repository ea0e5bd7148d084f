"""Step ``final``: refine the leak at the final configuration (offset current off, synapses
as set: 1-2 rest runs, a proportional correction along the leak's transfer line), then measure
every parameter once more: these are the reported values."""

from __future__ import annotations

import numpy as np

from ..measure import measure_parameters
from ..search import ProportionalCorrection
from .leak import RestStep


class FinalStep(RestStep):
    name = "final"

    def iterations(self, state):
        return 2

    def prelude(self, state):
        state.set_codes("i_mem_offset", 0)
        leak = ProportionalCorrection(state.reading_target("v_leak"), state.config.v_leak, state.leak_slope, 0.5)
        return {"v_leak": leak}

    def postlude(self, state, searches, observation):
        state.set_codes("v_leak", searches["v_leak"].codes)
        check = state.refractory_check
        out = measure_parameters(
            state.session,
            state.config,
            state.settings(),
            state.target,
            state.options,
            refractory=check is None,
            psp_trials=state.options.final_psp_trials,
            cadc_offset=None if state.adc is None else state.adc.cadc_offset,
        )
        if check is not None:
            out.add("refractory", check.refractory, check.refractory_err, check.reasons)
        state.measured.update(out.values)
        state.errors.update(out.errors)
        for k, r in out.reasons.items():
            state.note_reasons(k, np.where(state.selected, r, ""))
