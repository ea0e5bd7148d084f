"""Step ``final``: refine the leak at the final configuration (offset current off, synapses
as set: 1-2 rest runs, a proportional correction along the leak's transfer line), then measure
every parameter once more: these are the reported values."""

from __future__ import annotations

import numpy as np

from ..loop import Step
from ..measure import measure_parameters, measure_rest, rest_config
from ..search import ProportionalCorrection


class FinalStep(Step):
    name = "final"

    def iterations(self, state):
        return 2

    def prelude(self, state):
        state.set_codes("i_mem_offset", 0)
        leak = ProportionalCorrection(state.reading_target("v_leak"), state.config.v_leak, state.leak_slope, 0.5)
        return {"v_leak": leak}

    def configure(self, state, codes):
        _, applied = super().configure(state, codes)
        return rest_config(state.config), applied

    def measure(self, state, config, iteration):
        opt = state.options
        return measure_rest(
            state.session, config, n_trials=opt.rest_trials, duration_s=opt.rest_duration_s, what="final.leak"
        )

    def values(self, observation):
        return {"v_leak": observation.mean}

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
