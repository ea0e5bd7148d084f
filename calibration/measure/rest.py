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
DRIFT_LSB = 3.0  # a level whose second half-trial mean differs more from the first is not at rest


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
    """Per neuron (512,): mean reading, its std and standard error (LSB), ``valid``, ``reasons``;
    ``saturated``: a reading hit 0 or 255; ``restless``: the neuron fired (its level is above
    its threshold) or its level drifted by more than ``DRIFT_LSB`` within the trials (it was
    still charging towards a level above its threshold)."""

    mean: np.ndarray
    std: np.ndarray
    sem: np.ndarray
    valid: np.ndarray
    reasons: np.ndarray
    saturated: np.ndarray
    restless: np.ndarray


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
    half = m.cadc.samples.shape[1] // 2
    early = m.cadc.samples[:, :half].reshape(-1, N).mean(0)
    late = m.cadc.samples[:, half:].reshape(-1, N).mean(0)
    drifting = valid & (np.abs(late - early) > DRIFT_LSB)
    reasons[drifting] = f"not at rest: the level drifted by more than {DRIFT_LSB:g} LSB within the trials"
    valid &= ~drifting
    mean = np.where(valid, mean, np.nan)
    return RestResult(mean, std, sem, valid, reasons, sat, spiking | drifting)


def measure_drive(
    session,
    config: ChipConfig,
    *,
    n_trials: int = 4,
    duration_s: float = 40e-6,
    what="drive",
    rest=None,
    leak_step=None,
) -> RestResult:
    """The level a driven neuron charges towards (leak plus offset current): the resting
    potential of ``config`` with the threshold out of reach.

    A neuron whose level lies above even its highest threshold fires (or is still charging)
    instead of resting.
    Given ``rest`` (512,) its resting potential without offset current (LSB) and
    ``leak_step`` (512,) CapMem codes, its level is measured by superposition in two more
    runs: the offset current lifts the membrane by the same amount above a leak lowered by
    ``leak_step``, so level = ``rest`` + (driven - undriven resting potential at the lowered leak).
    """
    cfg = rest_config(config, i_mem_offset=config.i_mem_offset)
    r = measure_rest(session, cfg, n_trials=n_trials, duration_s=duration_s, what=what)
    if rest is None or leak_step is None or not r.restless.any():
        return r
    low = cfg.copy()
    low.v_leak = np.where(r.restless, np.maximum(low.v_leak.astype(np.int64) - leak_step, 0), low.v_leak)
    driven = measure_rest(session, low, n_trials=n_trials, duration_s=duration_s, what=what + ".lowered")
    undriven = measure_rest(
        session, rest_config(low), n_trials=n_trials, duration_s=duration_s, what=what + ".lowered0"
    )
    lifted = r.restless & driven.valid & undriven.valid
    level = np.asarray(rest, np.float64) + driven.mean - undriven.mean
    reasons = np.where(r.restless & ~lifted, driven.reasons, r.reasons)
    return RestResult(
        mean=np.where(lifted, level, r.mean),
        std=np.where(lifted, driven.std, r.std),
        sem=np.where(lifted, np.hypot(driven.sem, undriven.sem), r.sem),
        valid=r.valid | lifted,
        reasons=np.where(lifted, "", reasons),
        saturated=r.saturated | (r.restless & driven.saturated),
        restless=r.restless & ~lifted,
    )
