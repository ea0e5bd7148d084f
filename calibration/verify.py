"""Drift check: re-measure a calibrated chip cheaply and compare with the calibration.

``verify(device, result)`` applies the result, measures the resting potential, one firing
run (reset, threshold, membrane time constant) and one PSP run (synaptic time constants and
gains) -- 4 device runs -- and reports per parameter how far the chip has moved from the
values recorded in the result. A neuron has moved when its shift exceeds the tolerance plus
twice the combined measurement error (old and new); ``recalibrate`` is true when any
parameter has moved for more than ``max_fraction`` of the calibrated neurons, or on average
by more than half the tolerance. Tolerances are the calibration's (``CalibrationOptions``).
"""

from __future__ import annotations

import attrs
import numpy as np

import hil
from hil.logging import get_logger

from .measure import MeasurementSettings, measure_parameters
from .options import CalibrationOptions, deviation, error_scale, is_relative
from .result import CalibrationResult
from .session import Session

log = get_logger(__name__)
CHECKED = (
    "v_leak",
    "v_reset",
    "v_threshold",
    "tau_mem",
    "tau_syn_exc",
    "tau_syn_inh",
    "weight_gain_exc",
    "weight_gain_inh",
)


@attrs.frozen(eq=False)
class DriftReport:
    """Per parameter: ``shift_mean``, ``shift_rms``, ``shift_max`` (LSB for potentials,
    relative for the rest), ``fraction_beyond`` (of calibrated neurons beyond ``tolerance``),
    ``drifted``, ``lost`` (calibrated neurons whose re-measurement failed); overall
    ``recalibrate``; the new measurements in ``measured``."""

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
            rel = is_relative(p)
            fmt = (lambda x: f"{100 * x:9.2f}%") if rel else (lambda x: f"{x:10.2f}")
            tol = f"{100 * d['tolerance']:.1f}%" if rel else f"{d['tolerance']:.1f}"
            lines.append(
                f"{p:<17}{fmt(d['shift_mean'])}{fmt(d['shift_rms'])}{fmt(d['shift_max'])}"
                f"{100 * d['fraction_beyond']:8.1f}%{tol:>8}  {'DRIFTED' if d['drifted'] else 'ok'}"
            )
        lines.append("recalibrate: " + ("yes" if self.recalibrate else "no"))
        return "\n".join(lines)


def _drift(p, new, new_err, result, mask, tol, max_fraction) -> dict:
    """Shift statistics of one parameter against the calibration's values."""
    old = result.measured[p]
    e_old = np.nan_to_num(result.errors.get(p, np.zeros_like(old)), nan=0.0)
    e_new = np.nan_to_num(new_err if new_err is not None else np.zeros_like(old), nan=0.0)
    shift = deviation(new, old, p)
    noise = np.nan_to_num(error_scale(np.hypot(e_old, e_new), old, p), nan=0.0)
    ok = mask & np.isfinite(shift)
    s = shift[ok]
    lost = int(np.count_nonzero(mask & ~np.isfinite(new)))
    if s.size == 0:
        nan = float("nan")
        return dict(
            shift_mean=nan, shift_rms=nan, shift_max=nan, fraction_beyond=1.0, tolerance=tol, drifted=True, lost=lost
        )
    beyond = (np.count_nonzero(np.abs(s) > tol + 2 * noise[ok]) + lost) / max(int(mask.sum()), 1)
    return dict(
        shift_mean=float(s.mean()),
        shift_rms=float(np.sqrt(np.mean(s * s))),
        shift_max=float(np.max(np.abs(s))),
        fraction_beyond=float(beyond),
        tolerance=tol,
        drifted=bool(beyond > max_fraction or abs(float(s.mean())) > 0.5 * tol),
        lost=lost,
    )


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
    ``tolerances``: parameter -> tolerance overriding the options'. Raises
    ``hil.CalibrationError`` if ``result`` belongs to another chip."""
    result.check(device)
    opt = options or CalibrationOptions()
    tol = {p: opt.tolerance(p) for p in CHECKED} | dict(tolerances or {})
    session = Session(device)
    mask = result.success_mask
    out = measure_parameters(
        session,
        result.apply(base),
        MeasurementSettings.from_result(result),
        result.target,
        opt,
        tau_mem=result.measured.get("tau_mem"),
        refractory=False,
        spiking_trials=opt.spiking_trials,
        cadc_offset=result.adc.cadc_offset,
    )
    params = {
        p: _drift(p, new, out.errors.get(p), result, mask, tol[p], max_fraction)
        for p, new in out.values.items()
        if p in tol and p in result.measured
    }
    recal = any(d["drifted"] for d in params.values())
    report = DriftReport(params, recal, out.values, session.runs, result.chip_id, result.id)
    log.info(
        "calibration.verify",
        chip_id=result.chip_id,
        calibration_id=result.id,
        recalibrate=recal,
        runs=session.runs,
        drifted=[p for p, d in params.items() if d["drifted"]],
    )
    return report
