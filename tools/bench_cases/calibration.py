"""Calibration benchmarks: the whole chip, all parameters, on the in-process mock chip."""

from __future__ import annotations

import time

from bench import case


@case("calibration.fullchip")
def fullchip(bench):
    """Full-chip calibration of ``mock://?seed=11`` (no cache): wall time, device runs,
    chip time and the estimate for a real chip, bytes on the link, calibrated neurons."""
    import hil
    from calibration import calibrate

    out = {}

    def run():
        with hil.open("mock://?seed=11") as device:
            start = time.perf_counter()
            result = calibrate(device, progress=False, cache=False)
            out["wall_s"] = time.perf_counter() - start
            out["result"] = result

    if bench.quick:
        bench.repeats = 1
        median = bench.time(run, warmup=0)
    else:
        bench.repeats = min(bench.repeats, 3)
        median = bench.time(run, warmup=0)
    r = out["result"]
    spread = r.spread("measured")
    return {
        "wall_s_median": median,
        "device_runs": r.device_runs,
        "trials": r.figures["trials"],
        "chip_time_s": r.figures["chip_time_s"],
        "real_chip_estimate_s": r.figures["real_chip_estimate_s"],
        "bytes": r.bytes_used,
        "neurons_calibrated": int(r.success_mask.sum()),
        "tau_mem_rel_spread": spread["tau_mem"]["rel_std"],
        "weight_gain_exc_rel_spread": spread["weight_gain_exc"]["rel_std"],
    }
