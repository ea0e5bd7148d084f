"""Resting potential and drive level: the mean CADC reading per neuron with no input.

CADC channel offsets (~1 LSB per channel) add to every reading of a channel; the readings
here are "as the CADC reads them" (:mod:`calibration.measure.offsets` learns the offsets).
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.errors import CalibrationError
from hil.measurement import Measurement
from hil.stimulus import Recording

from .setups import N, idle_stimulus, rest_config

CADC_PERIOD_S = chip.CADC_MIN_PERIOD_S
CADC_RECORDING = Recording(spikes=True, cadc_period_s=CADC_PERIOD_S)


def reasons_array(n: int = N) -> np.ndarray:
    """(n,) object array of empty reasons ("" = no problem)."""
    return np.full(n, "", dtype=object)


def require_cadc(m: Measurement, what: str) -> None:
    """Raise ``CalibrationError`` if a run that asked for CADC samples returned none."""
    if m.cadc is None or m.cadc.samples.size == 0:
        raise CalibrationError(
            f"{what}: the device returned no CADC samples (Recording.cadc_period_s = {CADC_PERIOD_S:g} s was requested)"
        )


@attrs.frozen(eq=False)
class RestResult:
    """Per neuron (512,): mean reading, its std and standard error (LSB), ``valid``, ``reasons``."""

    mean: np.ndarray
    std: np.ndarray
    sem: np.ndarray
    valid: np.ndarray
    reasons: np.ndarray


def measure_rest(
    session, config: ChipConfig, *, n_trials: int = 4, duration_s: float = 60e-6, what="rest"
) -> RestResult:
    """Mean CADC reading per neuron with no input (``config`` should keep neurons silent)."""
    m = session.run(config, idle_stimulus(n_trials, duration_s), CADC_RECORDING, what=what)
    require_cadc(m, what)
    x = m.cadc.samples.reshape(-1, N).astype(np.float64)
    mean = x.mean(0)
    std = x.std(0)
    sem = std / np.sqrt(max(x.shape[0], 1)) + 0.29 / np.sqrt(max(x.shape[0], 1))
    reasons = reasons_array()
    valid = np.ones(N, bool)
    sat = (x.max(0) >= chip.CADC_MAX) | (x.min(0) <= 0)
    reasons[sat] = "CADC saturated (reading 0 or 255)"
    valid &= ~sat
    spiking = np.zeros(N, bool)
    if m.spikes.size:
        spiking[np.unique(m.spikes["neuron"])] = True
    reasons[spiking & valid] = "neuron fired while it should rest (threshold below resting potential)"
    valid &= ~spiking
    mean = np.where(valid, mean, np.nan)
    return RestResult(mean, std, sem, valid, reasons)


def measure_drive(
    session, config: ChipConfig, *, n_trials: int = 4, duration_s: float = 40e-6, what="drive"
) -> RestResult:
    """The level a driven neuron charges towards (leak plus offset current): the resting
    potential of ``config`` with the threshold out of reach."""
    return measure_rest(
        session,
        rest_config(config, i_mem_offset=config.i_mem_offset),
        n_trials=n_trials,
        duration_s=duration_s,
        what=what,
    )
