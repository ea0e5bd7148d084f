"""Step ``drive``: the ``i_mem_offset`` codes (used only while measuring) that make every
membrane charge towards ``v_threshold target + drive_margin`` (capped below the CADC's top)."""

from __future__ import annotations

import numpy as np

from hil import chip

from ..loop import Step, log
from ..measure import measure_drive
from ..model_search import ModelSearch, halve
from ..state import N


class DriveStep(Step):
    name = "drive"

    def iterations(self, state):
        return 4

    def prelude(self, state):
        # drive levels above a neuron's highest threshold are measured with the leak lowered by
        # up to 60 LSB (staying 30 LSB clear of the CADC's bottom)
        drop = np.clip(state.rest_at_zero_offset - 30.0, 0.0, 60.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.rint(drop / state.leak_slope)
        state.leak_step = np.where(np.isfinite(step) & (step > 0), step, 0).astype(np.int64)
        goal = np.minimum(state.reading_target("v_threshold") + state.options.drive_margin, chip.CADC_MAX - 12.0)
        search = ModelSearch(
            goal - state.rest_at_zero_offset,
            np.full(N, 200),
            through_origin=True,
            settle=3.0,
            max_step=600,
            retreat=halve,
        )
        return {"i_mem_offset": search}

    def configure(self, state, codes):
        cfg = state.config.copy()  # the working configuration keeps its offset current
        cfg.i_mem_offset = codes["i_mem_offset"]
        return cfg, codes

    def measure(self, state, config, iteration):
        return measure_drive(
            state.session,
            config,
            n_trials=2,
            duration_s=state.options.rest_duration_s,
            what="drive",
            rest=state.rest_at_zero_offset,
            leak_step=state.leak_step,
        )

    def search(self, state, searches, codes, observation, iteration):
        s = searches["i_mem_offset"]
        s.update(codes["i_mem_offset"], observation.mean - state.rest_at_zero_offset)
        s.retreat(~observation.valid, codes["i_mem_offset"])  # saturated (too strong): halve

    def done(self, state, searches):
        return bool(np.all(searches["i_mem_offset"].converged | ~np.isfinite(state.rest_at_zero_offset)))

    def postlude(self, state, searches, observation):
        res = searches["i_mem_offset"].result(6.0)
        state.drive_codes = res.codes.astype(np.int64)
        log.info("calibration.drive", iterations=res.steps, reached=int(res.success.sum()))
