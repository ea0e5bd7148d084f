"""``CalibrationOptions`` (the routine's tuning knobs) and the success tolerances, written once
for the routine's verdict and for the drift check."""

from __future__ import annotations

import attrs
import numpy as np

POTENTIALS = ("v_leak", "v_reset", "v_threshold")  # judged in LSB; everything else relative


@attrs.frozen
class CalibrationOptions:
    """Tuning knobs of the routine (defaults are what docs/calibration.md reports)."""

    max_iterations: int = 6
    rest_trials: int = 4
    rest_duration_s: float = 40e-6
    spiking_trials: int = 6
    spiking_duration_s: float = 100e-6
    final_spiking_trials: int = 8
    measurement_refractory_s: float = 4e-6
    drive_margin: float = 50.0  # drive level above the threshold target, LSB
    psp_trials: int = 3
    final_psp_trials: int = 12
    psp_bursts: int = 4
    psp_interval_s: float = 60e-6
    psp_drivers: int = 8
    psp_current: float = 128.0  # target current jump per burst, LSB
    latency_neurons: tuple = (0, 128, 256, 384)
    cadc_offsets: bool = True  # learn the CADC channel offsets (one MADC run per neuron)
    offset_trials: int = 4
    offset_duration_s: float = 20e-6
    dac_iterations: int = 3  # PSP runs for the quadrant synapse DACs (0: keep the base configuration's)
    gm_reference: int = 600  # gm code at which each quadrant's median neuron should meet its gain target
    # success tolerances on the final measurement
    tol_potential: float = 1.5  # LSB
    tol_tau: float = 0.03  # relative
    tol_gain: float = 0.04  # relative
    tol_refractory: float = 0.03  # relative

    def tolerance(self, parameter: str) -> float:
        """Allowed deviation of ``parameter`` from its target: LSB for potentials, relative otherwise."""
        if parameter in POTENTIALS:
            return self.tol_potential
        if parameter == "refractory":
            return self.tol_refractory
        return self.tol_gain if parameter.startswith("weight_gain") else self.tol_tau


def is_relative(parameter: str) -> bool:
    """True if ``parameter`` is compared relatively (all but the potentials)."""
    return parameter not in POTENTIALS


def deviation(value, reference, parameter: str) -> np.ndarray:
    """``value - reference`` (potentials, LSB) or ``value / reference - 1`` (the rest)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return value / reference - 1 if is_relative(parameter) else value - reference


def error_scale(error, reference, parameter: str) -> np.ndarray:
    """A standard error in the units of :func:`deviation` (divided by ``|reference|`` if relative)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return error / np.abs(reference) if is_relative(parameter) else error
