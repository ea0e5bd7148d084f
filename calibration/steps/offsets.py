"""Step ``offsets``: the CADC channel offsets and the MADC's offset and gain
(:mod:`calibration.measure.offsets`), with every neuron resting at its calibrated leak.

One run per selected neuron reads it with both ADCs; four more runs read one neuron per
quadrant at a resting level about 60 LSB higher, which scales the MADC to the CADC. From
here on the potential searches aim at ``target + offset`` as the CADC reads it, and every
potential is reported offset-free.
"""

from __future__ import annotations

import numpy as np

from hil import chip

from ..loop import Step, log
from ..measure import AdcScale, estimate_offsets, madc_gain, measure_paired, rest_config
from ..state import N

QUADRANT = chip.quadrant_of(np.arange(N))
GAIN_LEVEL_LSB = 60.0  # the second resting level of the gain neurons, above the calibrated leak


class OffsetsStep(Step):
    name = "offsets"

    def iterations(self, state):
        return 1 if state.options.cadc_offsets else 0

    def measure(self, state, config, iteration):
        opt = state.options
        cfg = rest_config(state.config)

        def read(c, n):
            return measure_paired(state.session, c, n, n_trials=opt.offset_trials, duration_s=opt.offset_duration_s)

        levels = {n: read(cfg, n) for n in np.flatnonzero(state.selected)}
        refs = [
            int(np.flatnonzero(state.selected & (QUADRANT == q))[0])
            for q in range(4)
            if (state.selected & (QUADRANT == q)).any()
        ]
        high = cfg.copy()
        room = np.minimum(GAIN_LEVEL_LSB, chip.CADC_MAX - 40.0 - state.rest_at_zero_offset)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.nan_to_num(np.rint(room / state.leak_slope))
        high.v_leak[refs] = np.clip(high.v_leak[refs] + step[refs], 0, chip.CAPMEM_MAX)
        return list(levels.values()), [levels[n] for n in refs], [read(high, n) for n in refs]

    def search(self, state, searches, codes, observation, iteration):
        pass  # nothing to search: the offsets are estimated once from all runs

    def postlude(self, state, searches, observation):
        if observation is None:
            state.adc = AdcScale(np.zeros(N), np.zeros(N), np.nan, np.nan)
            return
        levels, low, high = observation
        state.adc = estimate_offsets(levels, madc_gain(low, high))
        unknown = state.selected & ~np.isfinite(state.adc.cadc_offset)
        for p in ("v_leak", "v_reset", "v_threshold"):
            state.fail(p, unknown, "CADC offset unknown (no paired CADC and MADC readings at rest)")
        off = state.adc.cadc_offset[state.selected]
        log.info(
            "calibration.offsets",
            channels=int(np.isfinite(off).sum()),
            offset_rms=round(float(np.sqrt(np.nanmean(off**2))), 3),
            error_median=round(float(np.nanmedian(state.adc.cadc_offset_err)), 3),
            madc_gain=round(state.adc.madc_gain, 4),
            madc_offset=round(state.adc.madc_offset, 2),
        )
