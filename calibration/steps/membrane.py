"""Step ``membrane``: joint search of ``v_reset``, ``v_threshold`` and ``i_bias_leak`` from
firing runs. Each run measures all three for every neuron; every cell gets its own model
update. With ``tau_mem`` far off (few, fast charging samples) reset and threshold are
measured poorly: their searches start once the median ``tau_mem`` is within 30 % of the target.
"""

from __future__ import annotations

import numpy as np

from hil.errors import CalibrationError

from ..loop import Step, inv_sqrt, log, nanmedian, residual_summary
from ..measure import measure_membrane
from ..model_search import ModelSearch, step_down
from ..state import N
from .leak import codes_from_leak_line

FIELDS = {"v_reset": "v_reset", "v_threshold": "v_threshold", "i_bias_leak": "tau_mem"}  # field -> parameter


class MembraneStep(Step):
    name = "membrane"
    min_iterations = 2

    def prelude(self, state):
        t_reset, t_thr = state.reading_target("v_reset"), state.reading_target("v_threshold")
        t_tau = state.target_of("tau_mem")
        slope = state.leak_slope
        potential = dict(slope_guess=slope, settle=0.3, max_step=300, prior_band=(0.5, 2.0))
        return {
            "v_reset": ModelSearch(t_reset, codes_from_leak_line(state, t_reset), **potential),
            # neurons that do not fire have their threshold above the drive level: lower it
            "v_threshold": ModelSearch(t_thr, codes_from_leak_line(state, t_thr), retreat=step_down(60), **potential),
            "i_bias_leak": ModelSearch(
                t_tau,
                np.full(N, int(state.config.i_bias_leak[0])),
                transform=inv_sqrt,
                through_origin=True,
                settle=0.004 * t_tau,
                max_step=400,
                uniform_until=0.3,
            ),
        }

    def measure(self, state, config, iteration):
        opt = state.options
        sp = measure_membrane(state.session, config, state.drive(), opt, n_trials=opt.spiking_trials, what="membrane")
        if iteration == 0:
            state.before["tau_mem"] = sp.tau_mem.copy()
        return sp

    def search(self, state, searches, codes, sp, iteration):
        sel = state.selected
        t_tau = state.target_of("tau_mem")
        tau_far = not (nanmedian(np.abs(sp.tau_mem / t_tau - 1)[sel]) <= 0.3)
        if not tau_far:
            if "v_reset" not in state.before:
                state.before["v_reset"], state.before["v_threshold"] = sp.v_reset.copy(), sp.v_threshold.copy()
            searches["v_reset"].update(codes["v_reset"], sp.v_reset, active=sel, errors=sp.v_reset_err)
            searches["v_threshold"].update(codes["v_threshold"], sp.v_threshold, active=sel)
        searches["i_bias_leak"].update(codes["i_bias_leak"], sp.tau_mem, active=sel, errors=sp.tau_mem_err)
        searches["v_threshold"].retreat(sel & (sp.n_spikes == 0), codes["v_threshold"])
        if (
            iteration >= 1
            and not np.any(sp.valid[sel])
            and not np.any(np.isfinite(searches["i_bias_leak"].best_values[sel]))
        ):
            common = max(set(sp.reasons[sel]), key=list(sp.reasons[sel]).count)
            raise CalibrationError(
                f"membrane: no neuron gave a usable firing measurement in {iteration + 1} runs; "
                f"most common reason: {common}"
            )
        log.info(
            "calibration.membrane.iteration",
            iteration=iteration,
            valid=int(sp.valid[sel].sum()),
            v_reset=residual_summary(sp.v_reset, state.reading_target("v_reset")),
            v_threshold=residual_summary(sp.v_threshold, state.reading_target("v_threshold")),
            tau_mem=residual_summary(sp.tau_mem, t_tau, relative=True),
        )

    def postlude(self, state, searches, sp):
        for field, param in FIELDS.items():
            r = searches[field].result(np.inf)
            state.set_codes(field, r.codes)
            state.note_reasons(param, np.where(state.selected & ~np.isfinite(r.values), sp.reasons, ""))
            state.measured[param] = r.values if param == "tau_mem" else state.true_potential(r.values)
