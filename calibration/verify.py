"""Drift check: re-measure a calibrated chip cheaply and compare with the calibration.

``verify(device, result)`` applies the result, measures the resting potential, one firing
run (reset, threshold, membrane time constant) and one PSP run (synaptic time constants and
gains) -- 4 device runs -- and reports per parameter how far the chip has moved from the
values recorded in the result. A neuron has moved when its shift exceeds the tolerance plus
twice the combined measurement error (old and new); ``recalibrate`` is true when any
parameter has moved for more than ``max_fraction`` of the calibrated neurons, or on average
by more than half the tolerance.
"""

from __future__ import annotations

import attrs
import numpy as np

import hil
from hil.logging import get_logger

from .result import CalibrationResult
from .routines import CalibrationOptions, _Context, measure_all
from .session import Session

log = get_logger(__name__)

DEFAULT_TOLERANCES = {
    "v_leak": 1.5,
    "v_reset": 1.5,
    "v_threshold": 1.5,  # LSB
    "tau_mem": 0.03,
    "tau_syn_exc": 0.03,
    "tau_syn_inh": 0.03,  # relative
    "weight_gain_exc": 0.04,
    "weight_gain_inh": 0.04,  # relative
}


@attrs.frozen(eq=False)
class DriftReport:
    """Per parameter: ``shift_mean``, ``shift_rms``, ``shift_max`` (LSB for potentials,
    relative for the rest), ``fraction_beyond`` (of calibrated neurons beyond ``tolerance``),
    ``drifted``; overall ``recalibrate``; the new measurements in ``measured``."""

    parameters: dict
    recalibrate: bool
    measured: dict
    device_runs: int
    chip_id: str
    calibration_id: str

    def table(self) -> str:
        lines = [
            f"drift of chip {self.chip_id} since calibration {self.calibration_id} ({self.device_runs} runs)",
            f"{'parameter':<17}{'mean':>10}{'rms':>10}{'max':>10}{'beyond':>9}{'tol':>8}  verdict",
        ]
        for p, d in self.parameters.items():
            rel = not p.startswith("v_")
            fmt = (lambda x: f"{100 * x:9.2f}%") if rel else (lambda x: f"{x:10.2f}")
            tol = f"{100 * d['tolerance']:.1f}%" if rel else f"{d['tolerance']:.1f}"
            lines.append(
                f"{p:<17}{fmt(d['shift_mean'])}{fmt(d['shift_rms'])}{fmt(d['shift_max'])}{100 * d['fraction_beyond']:8.1f}%{tol:>8}  "
                f"{'DRIFTED' if d['drifted'] else 'ok'}"
            )
        lines.append("recalibrate: " + ("yes" if self.recalibrate else "no"))
        return "\n".join(lines)


def verify(
    device: hil.Device,
    result: CalibrationResult,
    *,
    tolerances: dict | None = None,
    max_fraction: float = 0.05,
    base: hil.ChipConfig | None = None,
    options: CalibrationOptions | None = None,
) -> DriftReport:
    """Re-measure ``device`` at ``result``'s calibration and report the drift (see module doc).
    Raises ``hil.CalibrationError`` if ``result`` belongs to another chip."""
    result.check(device)
    tol = dict(DEFAULT_TOLERANCES, **(tolerances or {}))
    opt = options or CalibrationOptions()
    session = Session(device)
    mask = result.success_mask
    ctx = _Context(session, result.target, base or hil.ChipConfig(), mask, opt)
    ctx.aux = dict(result.aux)
    ctx.measured = dict(result.measured)
    cfg = result.apply(base)
    values, errors, _ = measure_all(ctx, cfg, refractory=False, spiking_trials=opt.spiking_trials)
    params = {}
    recal = False
    for p, new in values.items():
        if p not in tol or p not in result.measured:
            continue
        old = result.measured[p]
        e_old = np.nan_to_num(result.errors.get(p, np.zeros_like(old)), nan=0.0)
        e_new = np.nan_to_num(errors.get(p, np.zeros_like(old)), nan=0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            shift = (new - old) if p.startswith("v_") else (new / old - 1)
            noise = np.hypot(e_old, e_new) if p.startswith("v_") else np.hypot(e_old, e_new) / np.abs(old)
        noise = np.nan_to_num(noise, nan=0.0)
        ok = mask & np.isfinite(shift)
        s = shift[ok]
        lost = int(np.count_nonzero(mask & ~np.isfinite(new)))
        if s.size == 0:
            params[p] = {
                "shift_mean": np.nan,
                "shift_rms": np.nan,
                "shift_max": np.nan,
                "fraction_beyond": 1.0,
                "tolerance": tol[p],
                "drifted": True,
                "lost": lost,
            }
            recal = True
            continue
        # a neuron has moved when its shift exceeds the tolerance plus twice the measurement noise
        beyond = (np.count_nonzero(np.abs(s) > tol[p] + 2 * noise[ok]) + lost) / max(int(mask.sum()), 1)
        drifted = bool(beyond > max_fraction or abs(float(s.mean())) > 0.5 * tol[p])
        recal |= drifted
        params[p] = {
            "shift_mean": float(s.mean()),
            "shift_rms": float(np.sqrt(np.mean(s * s))),
            "shift_max": float(np.max(np.abs(s))),
            "fraction_beyond": float(beyond),
            "tolerance": tol[p],
            "drifted": drifted,
            "lost": lost,
        }
    report = DriftReport(params, recal, values, session.runs, result.chip_id, result.id)
    log.info(
        "calibration.verify",
        chip_id=result.chip_id,
        calibration_id=result.id,
        recalibrate=recal,
        runs=session.runs,
        drifted=[p for p, d in params.items() if d["drifted"]],
    )
    return report
