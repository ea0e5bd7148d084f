"""Calibration benchmarks: the whole chip, all parameters, on the in-process mock chip."""

from __future__ import annotations

import time

from bench import case

WIDE = dict(v_leak=65, v_reset=65, v_threshold=205, weight_gain_exc=2, weight_gain_inh=2)


def _calibrate_figures(bench, target_values: dict) -> dict:
    """Full-chip calibration of ``mock://?seed=11`` (no cache) to a target: wall time (median),
    device runs (per step), chip time and the estimate for a real chip, bytes on the link,
    calibrated neurons and the calibrated spreads as the calibration measured them."""
    import hil
    from calibration import CalibrationTarget, calibrate

    out = {}

    def run():
        with hil.open("mock://?seed=11") as device:
            start = time.perf_counter()
            out["result"] = calibrate(device, CalibrationTarget(**target_values), progress=False, cache=False)
            out["wall_s"] = time.perf_counter() - start

    bench.repeats = 1 if bench.quick else min(bench.repeats, 3)
    median = bench.time(run, warmup=0)
    r = out["result"]
    spread = r.spread("measured")
    return {
        "wall_s_median": median,
        "device_runs": r.device_runs,
        "runs_per_step": {k: v["runs"] for k, v in r.figures["steps"].items()},
        "wall_s_per_step": {k: v["wall_s"] for k, v in r.figures["steps"].items()},
        "trials": r.figures["trials"],
        "chip_time_s": r.figures["chip_time_s"],
        "real_chip_estimate_s": r.figures["real_chip_estimate_s"],
        "bytes": r.bytes_used,
        "neurons_calibrated": int(r.success_mask.sum()),
        "v_threshold_spread_lsb": spread["v_threshold"]["std"],
        "tau_mem_rel_spread": spread["tau_mem"]["rel_std"],
        "weight_gain_exc_rel_spread": spread["weight_gain_exc"]["rel_std"],
        "synapse_dac": r.codes["syn_i_bias_dac"].tolist(),
        "madc_gain": r.adc.madc_gain,
    }


@case("calibration.fullchip")
def fullchip(bench):
    """The default target (leak 80, threshold 150 LSB, gain 1); and, in the same process, the
    same calibration without the CADC offsets step (512 MADC runs), for their share of the time."""
    import hil
    from calibration import CalibrationOptions, calibrate

    figures = _calibrate_figures(bench, {})

    def without_offsets():
        with hil.open("mock://?seed=11") as device:
            calibrate(device, progress=False, cache=False, options=CalibrationOptions(cadc_offsets=False))

    base = bench.time(without_offsets, label="without_offsets", warmup=0)
    figures["wall_s_without_offsets_median"] = base
    figures["with_over_without_offsets"] = figures["wall_s_median"] / base
    return figures


@case("calibration.wide")
def wide(bench):
    """The wider target of issue 18: leak 65, threshold 205 LSB (140 LSB apart), gain 2."""
    return _calibrate_figures(bench, WIDE)
