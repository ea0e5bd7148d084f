"""Step ``refractory``: clock scale per quadrant and counter per neuron; one firing run checks
them and corrects the counters of neurons whose refractory time is off by more than the tolerance."""

from __future__ import annotations

import numpy as np

from hil import chip

from ..loop import Step, log, residual_summary
from ..measure import measure_refractory
from ..search import ProportionalCorrection
from ..state import N

QUADRANT = chip.quadrant_of(np.arange(N))


def refractory_settings(target_s: np.ndarray):
    """Clock scale per quadrant (the finest whose counter range holds the quadrant's
    longest target with 10% headroom), the nominal counter per neuron and its period (s)."""
    scale = np.zeros(chip.N_QUADRANTS, np.int64)
    for q in range(chip.N_QUADRANTS):
        longest = float(np.max(target_s[QUADRANT == q]))
        for s in range(chip.REFRACTORY_CLOCK_SCALE_MAX + 1):
            scale[q] = s
            if longest * 1.1 <= chip.REFRACTORY_COUNTER_MAX * 2**s / chip.REFRACTORY_CLOCK_BASE_HZ:
                break
    period = 2.0 ** scale[QUADRANT] / chip.REFRACTORY_CLOCK_BASE_HZ
    counter = np.clip(np.rint(target_s / period), 1, chip.REFRACTORY_COUNTER_MAX).astype(np.int64)
    return scale, counter, period


class RefractoryStep(Step):
    name = "refractory"

    def iterations(self, state):
        return 1

    def prelude(self, state):
        target = state.target_of("refractory")
        scale, counter, period = refractory_settings(target)
        state.config.refractory_clock_scale = scale
        correction = ProportionalCorrection(
            target,
            counter,
            period,
            state.options.tol_refractory,
            relative=True,
            low=1,
            high=chip.REFRACTORY_COUNTER_MAX,
        )
        return {"refractory_counter": correction}

    def measure(self, state, config, iteration):
        sp = measure_refractory(state.session, config, state.drive(), state.target, state.options, "refractory")
        state.before["refractory"] = sp.refractory.copy()
        return sp

    def values(self, observation):
        return {"refractory_counter": observation.refractory}

    def postlude(self, state, searches, sp):
        correction = searches["refractory_counter"]
        state.set_codes("refractory_counter", correction.codes)
        moved = ~correction.converged
        state.measured["refractory"] = sp.refractory
        state.errors["refractory"] = sp.refractory_err
        state.refractory_check = None if moved.any() else sp  # reused by the final step when nothing changed
        state.note_reasons("refractory", np.where(state.selected, sp.reasons, ""))
        log.info(
            "calibration.refractory",
            clock_scale=state.config.refractory_clock_scale.tolist(),
            corrected=int(moved.sum()),
            **residual_summary(sp.refractory, state.target_of("refractory"), relative=True),
        )
