"""``WorkingState``: what the calibration steps share while calibrating one chip.

Every field is declared here (a slotted attrs class: nothing is added later). Steps read the
target and options, write codes into ``config`` and record what they measured.
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig

from .measure import AdcScale, Drive, MeasurementSettings, SpikingResult
from .options import CalibrationOptions
from .session import Session
from .target import CalibrationTarget

N = chip.N_NEURONS


def _nan():
    return np.full(N, np.nan)


@attrs.define(eq=False)
class WorkingState:
    """The working state of one calibration.

    config:      the configuration under calibration (codes found so far; unselected neurons keep the base values)
    selected:    (512,) bool, the neurons being calibrated
    measured, errors, before: parameter -> (512,) values (target units), standard errors,
                 values at the uniform start codes
    reasons:     parameter -> (512,) str, why a neuron failed that parameter ("" if it did not)
    leak_slope, leak_intercept: (512,) the ``v_leak`` transfer line, LSB per code and LSB
    rest_at_zero_offset: (512,) resting potential after the leak step, LSB
    drive_codes: (512,) ``i_mem_offset`` codes of firing measurements
    leak_step:   (512,) ``v_leak`` codes by which drive levels above a neuron's highest threshold are measured lower
    psp_weight:  synapse weight of the PSP rows; input_latency_s: measured input latency
    refractory_check: the refractory step's firing run, if no counter changed after it
    adc:         CADC channel offsets and MADC scale (None until the offsets step)
    """

    session: Session
    target: CalibrationTarget
    options: CalibrationOptions
    selected: np.ndarray
    config: ChipConfig
    measured: dict = attrs.field(factory=dict)
    errors: dict = attrs.field(factory=dict)
    before: dict = attrs.field(factory=dict)
    reasons: dict = attrs.field(factory=dict)
    leak_slope: np.ndarray = attrs.field(factory=_nan)
    leak_intercept: np.ndarray = attrs.field(factory=_nan)
    rest_at_zero_offset: np.ndarray | None = None
    drive_codes: np.ndarray | None = None
    leak_step: np.ndarray | None = None
    psp_weight: int | None = None
    input_latency_s: float | None = None
    refractory_check: SpikingResult | None = None
    adc: AdcScale | None = None

    def target_of(self, name: str) -> np.ndarray:
        """(512,) target values of parameter ``name``."""
        return self.target.per_neuron(name)

    def cadc_offset(self) -> np.ndarray:
        """(512,) CADC channel offsets in LSB (0 where unknown or not measured yet)."""
        return np.zeros(N) if self.adc is None else np.nan_to_num(self.adc.cadc_offset)

    def reading_target(self, name: str) -> np.ndarray:
        """(512,) target of potential ``name`` as the neuron's CADC channel reads it."""
        return self.target_of(name) + self.cadc_offset()

    def true_potential(self, readings) -> np.ndarray:
        """CADC readings (512,) -> offset-free potentials (``nan`` where the offset is unknown)."""
        if self.adc is None:
            return np.asarray(readings, np.float64)
        return np.asarray(readings, np.float64) - self.adc.cadc_offset

    def set_codes(self, field: str, codes) -> np.ndarray:
        """Write ``codes`` into ``config.<field>`` for the selected neurons; returns the field."""
        setattr(self.config, field, np.where(self.selected, codes, getattr(self.config, field)))
        return getattr(self.config, field)

    def fail(self, param: str, mask, reason: str) -> None:
        """Record ``reason`` for the neurons in ``mask`` that have no reason for ``param`` yet."""
        r = self.reasons.setdefault(param, np.full(N, "", dtype=object))
        for i in np.flatnonzero(mask):
            if not r[i]:
                r[i] = reason

    def note_reasons(self, param: str, reasons) -> None:
        """Record the non-empty ``reasons`` (512,) for ``param`` (later ones win)."""
        r = self.reasons.setdefault(param, np.full(N, "", dtype=object))
        for i in np.flatnonzero(reasons != ""):
            r[i] = reasons[i]

    def drive(self) -> Drive:
        """How the firing runs of the calibration are driven (after the drive step)."""
        return Drive(self.drive_codes, self.rest_at_zero_offset, self.leak_step)

    def settings(self) -> MeasurementSettings:
        """What a re-measurement of the calibrated configuration needs."""
        return MeasurementSettings(
            self.drive_codes, float(self.input_latency_s), int(self.psp_weight), leak_step=self.leak_step
        )

    def aux(self) -> dict:
        """Measurement settings for the result (``CalibrationResult.aux``)."""
        out = {
            "rest_at_zero_offset": self.rest_at_zero_offset,
            "drive_codes": self.drive_codes,
            "drive_leak_step": self.leak_step,
            "psp_weight": self.psp_weight,
            "input_latency_s": self.input_latency_s,
        }
        return {k: np.asarray(v) for k, v in out.items() if v is not None}
