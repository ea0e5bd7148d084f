"""Step ``leak``: search ``v_leak`` so the resting potential (no input, threshold out of
reach) hits the target; records the ``v_leak`` transfer line for the later potential steps."""

from __future__ import annotations

import numpy as np

from hil import chip
from hil.errors import CalibrationError

from ..loop import Step, log, nanmedian, residual_summary
from ..measure import measure_rest, rest_config
from ..model_search import ModelSearch
from ..state import N


class RestStep(Step):
    """A step that searches ``v_leak`` from resting potentials (no input, threshold out of reach)."""

    def configure(self, state, codes):
        _, applied = super().configure(state, codes)
        return rest_config(state.config), applied

    def measure(self, state, config, iteration):
        opt = state.options
        return measure_rest(
            state.session, config, n_trials=opt.rest_trials, duration_s=opt.rest_duration_s, what=self.name
        )

    def values(self, observation):
        return {"v_leak": observation.mean}


class LeakStep(RestStep):
    name = "leak"
    min_iterations = 1

    def iterations(self, state):
        return state.options.max_iterations + 1

    def prelude(self, state):
        search = ModelSearch(
            state.target_of("v_leak"), np.full(N, 250), probes=[np.full(N, 550)], settle=0.25, max_step=400
        )
        return {"v_leak": search}

    def measure(self, state, config, iteration):
        r = super().measure(state, config, iteration)
        if iteration == 0:
            state.before["v_leak"] = r.mean.copy()
        return r

    def postlude(self, state, searches, observation):
        search = searches["v_leak"]
        res = search.result(state.options.tol_potential)
        state.set_codes("v_leak", res.codes)
        if not np.any(np.isfinite(search.slope)):
            readings = np.nanmin(res.values) if np.any(np.isfinite(res.values)) else "none"
            raise CalibrationError(
                "leak: the resting potential did not change with the v_leak CapMem value for any neuron "
                f"(readings {readings}); is the device configured and read out?"
            )
        state.leak_slope = np.where(np.isfinite(search.slope), search.slope, nanmedian(search.slope))
        state.leak_intercept = res.values - state.leak_slope * res.codes
        state.rest_at_zero_offset = res.values
        state.note_reasons("v_leak", np.where(state.selected, res.reasons, ""))
        log.info("calibration.leak", iterations=res.steps, **residual_summary(res.values, state.target_of("v_leak")))


def codes_from_leak_line(state, potential) -> np.ndarray:
    """Uniform start codes for another potential cell, assuming it maps like ``v_leak``
    (the median line; code 500 if the leak line is unknown)."""
    med_slope = nanmedian(state.leak_slope)
    med_icpt = nanmedian(state.leak_intercept)
    if not np.isfinite(med_slope) or med_slope <= 0:
        return np.full(N, 500)
    code = int(np.clip(np.rint((np.median(potential) - med_icpt) / med_slope), 0, chip.CAPMEM_MAX))
    return np.full(N, code)
