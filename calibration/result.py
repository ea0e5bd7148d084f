"""``CalibrationResult``: what a calibration found and achieved.

Files (``save``/``load``, see :mod:`calibration.result_files`): JSON (metadata, target,
figures, ADC scale, schema version, content id) and ``.npz`` (arrays), written atomically
with mode 0644; no pickle anywhere.
"""

from __future__ import annotations

import hashlib
import pathlib

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.errors import CalibrationError

from . import model_units, result_files
from .measure import AdcScale
from .model_units import ModelParameters
from .target import PARAMETERS, CalibrationTarget

RESULT_SCHEMA_VERSION = result_files.SCHEMA_VERSION

# Configuration fields a calibration writes (per neuron, and the per-quadrant refractory clock).
NEURON_FIELDS = (*chip.NEURON_CAPMEM_PARAMETERS, "refractory_counter")
QUADRANT_FIELDS = ("refractory_clock_scale", *chip.QUADRANT_CAPMEM_PARAMETERS)


def unknown_adc_scale() -> AdcScale:
    """The ADC scale of a result calibrated without the offsets step: channel offsets 0, no MADC scale."""
    return AdcScale(np.zeros(chip.N_NEURONS), np.zeros(chip.N_NEURONS), float("nan"), float("nan"))


@attrs.frozen(eq=False)
class CalibrationResult:
    """Outcome of :func:`calibration.calibrate`.

    codes:      field name -> array: per-neuron CapMem values and refractory counters (512,),
                per-quadrant refractory clock scale and synapse DAC bias (4,)
    measured:   parameter name -> (512,) measured value after calibration (``nan`` where the
                measurement failed), same units as the target; potentials free of CADC offsets
    errors:     parameter name -> (512,) standard error of ``measured`` (fit uncertainty)
    before:     parameter name -> (512,) values measured at the uncalibrated start codes
    success:    parameter name -> (512,) bool; ``success_mask`` combines them
    reasons:    (512,) str, why a neuron failed ("" when it succeeded)
    target:     the ``CalibrationTarget``
    chip_id, software_version, timestamp (ISO, UTC), wall_time_s
    figures:    device runs, trials, chip time, bytes sent/received, estimate for a real chip...
    aux:        name -> array, measurement settings needed to re-measure (drive codes, latency)
    neurons:    indices of the neurons that were calibrated
    adc:        CADC channel offsets and the MADC's offset and gain (``AdcScale``)
    from_cache: True when ``calibrate`` found this result in the cache (no device runs);
                not stored in files, not part of ``id``
    """

    codes: dict
    measured: dict
    errors: dict
    before: dict
    success: dict
    reasons: np.ndarray
    target: CalibrationTarget
    chip_id: str
    software_version: str
    timestamp: str
    wall_time_s: float
    figures: dict
    aux: dict = attrs.field(factory=dict)
    neurons: np.ndarray = attrs.field(factory=lambda: np.arange(chip.N_NEURONS))
    adc: AdcScale = attrs.field(factory=unknown_adc_scale)
    from_cache: bool = attrs.field(default=False, kw_only=True)

    # --- identity ------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """Content hash (SHA-256 hex, first 16) of codes, measured values, ADC scale, target and chip id."""
        h = hashlib.sha256()
        h.update(self.chip_id.encode())
        h.update(self.target.key().encode())
        for group in (self.codes, self.measured):
            for k in sorted(group):
                h.update(k.encode())
                h.update(np.ascontiguousarray(group[k]).astype("<f8").tobytes())
        h.update(np.ascontiguousarray(self.adc.cadc_offset).astype("<f8").tobytes())
        h.update(np.array([self.adc.madc_offset, self.adc.madc_gain], "<f8").tobytes())
        return h.hexdigest()[:16]

    @property
    def success_mask(self) -> np.ndarray:
        """(512,) bool: the neuron is calibrated in every parameter."""
        out = np.zeros(chip.N_NEURONS, bool)
        out[self.neurons] = True
        for v in self.success.values():
            out &= v
        return out

    @property
    def device_runs(self) -> int:
        return int(self.figures.get("device_runs", 0))

    @property
    def bytes_used(self) -> int:
        return int(self.figures.get("bytes_sent", 0)) + int(self.figures.get("bytes_received", 0))

    def source_line(self) -> str:
        """One line for people: calibrated now or taken from the cache, with the chip and calibration ids."""
        if self.from_cache:
            return f"chip {self.chip_id}: calibration {self.id} from the cache (no device runs)"
        return (
            f"chip {self.chip_id}: calibrated now, calibration {self.id} "
            f"({self.device_runs} device runs, {self.wall_time_s:.1f} s)"
        )

    def residuals(self) -> dict:
        """parameter -> (512,) measured minus target."""
        return {p: self.measured[p] - self.target.per_neuron(p) for p in PARAMETERS if p in self.measured}

    def spread(self, which: str = "measured") -> dict:
        """parameter -> dict(mean, std, rel_std) over calibrated neurons (``measured``) or all
        neurons measured at the start codes (``before``)."""
        src = self.measured if which == "measured" else self.before
        mask = self.success_mask if which == "measured" else np.ones(chip.N_NEURONS, bool)
        out = {}
        for p in PARAMETERS:
            if p not in src:
                continue
            x = np.asarray(src[p])[mask]
            x = x[np.isfinite(x)]
            if x.size == 0:
                out[p] = {"mean": float("nan"), "std": float("nan"), "rel_std": float("nan"), "n": 0}
                continue
            m, s = float(x.mean()), float(x.std())
            out[p] = {"mean": m, "std": s, "rel_std": s / abs(m) if m else float("nan"), "n": int(x.size)}
        return out

    # --- use -----------------------------------------------------------------------------------
    def check(self, chip_id_or_device) -> None:
        """Raise ``CalibrationError`` unless this result belongs to the given chip (an id
        string or an open ``hil.Device``)."""
        cid = chip_id_or_device if isinstance(chip_id_or_device, str) else chip_id_or_device.info().chip_id
        if cid != self.chip_id:
            raise CalibrationError(
                f"calibration {self.id} is for chip {self.chip_id!r}, not for chip {cid!r}; "
                "calibrate this chip (tools/calibrate)"
            )

    def apply(self, config: ChipConfig | None = None, *, chip_id: str | None = None) -> ChipConfig:
        """A copy of ``config`` (default ``ChipConfig()``) with the calibrated CapMem values,
        refractory counters and clock scales, and synapse DAC biases. ``i_mem_offset`` is set to
        the calibration's value (0: the model has no offset current). With ``chip_id``, checks
        the chip first."""
        if chip_id is not None:
            self.check(chip_id)
        cfg = (config or ChipConfig()).copy()
        for name in NEURON_FIELDS + QUADRANT_FIELDS:
            if name in self.codes:
                setattr(cfg, name, self.codes[name])
        return cfg

    def model_parameters(self, normalization: str = "neuron") -> ModelParameters:
        """Per-neuron parameters in model units (see :class:`~calibration.model_units.ModelParameters`).

        ``normalization="neuron"``: each neuron's own threshold distance is its unit (so
        ``v_th`` is exactly 1 and differences go into ``weight_scale``); ``"target"``: the
        target's threshold distance is the unit for all (``v_th`` ~ 1 per neuron).
        """
        return model_units.model_parameters(self, normalization)

    def voltage_to_model(self, samples, neurons, adc: str = "cadc", normalization: str = "neuron") -> np.ndarray:
        """Membrane samples (raw ADC codes) in model units: leak 0, threshold 1 (float64,
        the samples' shape).

        ``adc="cadc"``: 8-bit codes, ``neurons`` broadcast against ``samples`` (e.g. samples
        (trials, times, n) with neurons (n,)), each corrected by its channel offset;
        ``adc="madc"``: 10-bit codes of one neuron's trace (``neurons`` an int), scaled by the
        MADC's offset and gain. ``normalization`` as in :meth:`model_parameters`.
        """
        return model_units.voltage_to_model(self, samples, neurons, adc, normalization)

    # --- files ---------------------------------------------------------------------------------
    def save(self, path) -> pathlib.Path:
        """Write ``path`` (JSON, suffix ``.json`` added if missing) and the arrays next to it
        (same stem, ``.npz``), atomically, mode 0644. Returns the JSON path."""
        return result_files.save(self, path)

    @classmethod
    def load(cls, path, *, chip_id: str | None = None) -> CalibrationResult:
        """Read a result written by :meth:`save`. ``chip_id``: raise ``CalibrationError`` if
        the result belongs to another chip. Any problem with the files (missing, truncated,
        corrupt, wrong schema, missing or mistyped entries) raises ``CalibrationError`` naming
        the file and what is wrong."""
        result = result_files.load(cls, path)
        if chip_id is not None:
            result.check(chip_id)
        return result
