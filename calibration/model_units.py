"""From chip units to the model's: ``ModelParameters`` and membrane samples in model units.

The model's potential unit is the threshold distance: leak 0, threshold 1. Per neuron the
unit is ``v_threshold - v_leak`` in CADC LSB (``normalization="neuron"``, the default: every
neuron's threshold is exactly 1) or the target's distance for all (``"target"``).
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip
from hil.errors import CalibrationError, ConfigError

ADC_RANGES = {"cadc": chip.CADC_MAX, "madc": chip.MADC_MAX}


@attrs.frozen(eq=False)
class ModelParameters:
    """Per-neuron (512,) parameters in the model's units, for the trainer.

    Potentials are normalised so that ``v_leak = 0`` and ``v_th = 1`` in units of the
    threshold distance ``unit_lsb`` (``v_threshold - v_leak`` in CADC LSB, per neuron by
    default). A model weight ``w`` is a current jump of ``w`` threshold distances; the chip
    realises it with ``w * weight_scale_exc`` (or ``_inh``) weight LSB, where
    ``weight_scale = unit_lsb / weight_gain``.
    """

    tau_mem: np.ndarray
    tau_syn_exc: np.ndarray
    tau_syn_inh: np.ndarray
    v_th: np.ndarray
    v_reset: np.ndarray
    t_refrac: np.ndarray
    weight_scale_exc: np.ndarray
    weight_scale_inh: np.ndarray
    unit_lsb: np.ndarray
    success: np.ndarray

    @property
    def tau_syn(self) -> np.ndarray:
        """Synaptic time constant of the (single-tau_syn) model: the mean of exc and inh."""
        return 0.5 * (self.tau_syn_exc + self.tau_syn_inh)

    @property
    def weight_scale(self) -> float:
        """One hardware-LSB-per-model-unit scale for all neurons (median over calibrated
        neurons of exc and inh), for ``hil.quantize``/``Placement.config``."""
        ok = self.success
        vals = np.concatenate([self.weight_scale_exc[ok], self.weight_scale_inh[ok]])
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            raise CalibrationError("model_parameters: no calibrated neuron has a finite weight scale")
        return float(np.median(vals))

    def as_dict(self) -> dict:
        d = dict(attrs.asdict(self, recurse=False))
        d["tau_syn"] = self.tau_syn
        d["weight_scale"] = self.weight_scale
        return d


def threshold_distance(result, normalization: str) -> np.ndarray:
    """(512,) the potential unit in LSB (see the module docstring)."""
    if normalization == "neuron":
        return result.measured["v_threshold"] - result.measured["v_leak"]
    if normalization == "target":
        return result.target.per_neuron("v_threshold") - result.target.per_neuron("v_leak")
    raise ConfigError(f"normalization = {normalization!r}; allowed: 'neuron', 'target'")


def model_parameters(result, normalization: str = "neuron") -> ModelParameters:
    """``ModelParameters`` of a ``CalibrationResult``."""
    m = result.measured
    unit = threshold_distance(result, normalization)
    with np.errstate(invalid="ignore", divide="ignore"):
        return ModelParameters(
            tau_mem=m["tau_mem"].copy(),
            tau_syn_exc=m["tau_syn_exc"].copy(),
            tau_syn_inh=m["tau_syn_inh"].copy(),
            v_th=(m["v_threshold"] - m["v_leak"]) / unit,
            v_reset=(m["v_reset"] - m["v_leak"]) / unit,
            t_refrac=m["refractory"].copy(),
            weight_scale_exc=unit / m["weight_gain_exc"],
            weight_scale_inh=unit / m["weight_gain_inh"],
            unit_lsb=np.asarray(unit, np.float64).copy(),
            success=result.success_mask,
        )


def _checked_inputs(samples, neurons, adc: str):
    """Validated float64 samples and int64 neuron indices broadcast to the samples' shape."""
    if adc not in ADC_RANGES:
        raise ConfigError(f"voltage_to_model: adc = {adc!r}; allowed: 'cadc', 'madc'")
    try:
        x = np.asarray(samples, np.float64)
        idx = np.asarray(neurons)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"voltage_to_model: samples and neurons must be numeric arrays ({exc})") from None
    if idx.dtype.kind not in "iu" or (idx.size and (idx.min() < 0 or idx.max() >= chip.N_NEURONS)):
        raise ConfigError(
            f"voltage_to_model: neurons = {idx.ravel()[:5]}...: expected integer neuron indices 0..{chip.N_NEURONS - 1}"
        )
    top = ADC_RANGES[adc]
    bad = ~np.isfinite(x) | (x < 0) | (x > top)
    if bad.any():
        raise ConfigError(
            f"voltage_to_model: samples[{np.argwhere(bad)[0].tolist()}] = {x[bad][0]!r} is not a {adc.upper()} "
            f"code; allowed: 0..{top}"
        )
    try:
        idx = np.broadcast_to(idx.astype(np.int64), x.shape)
    except ValueError:
        raise ConfigError(
            f"voltage_to_model: neurons of shape {idx.shape} do not broadcast to samples of shape {x.shape} "
            "(CADC: (..., n) samples with (n,) neurons; MADC: a trace of one neuron)"
        ) from None
    return x, idx


def voltage_to_model(result, samples, neurons, adc: str = "cadc", normalization: str = "neuron") -> np.ndarray:
    """Membrane samples (ADC codes) of ``neurons`` -> model units (float64, the samples' shape).

    CADC: ``V = code - cadc_offset[n]``; MADC: ``V = (code - madc_offset) / madc_gain``; then
    ``(V - v_leak[n]) / unit[n]``. Raises ``ConfigError`` for codes outside the ADC's range,
    bad neuron indices or shapes, and ``CalibrationError`` for neurons without a calibrated
    leak and threshold, or MADC samples when the calibration has no MADC scale.
    """
    x, idx = _checked_inputs(samples, neurons, adc)
    v_leak = result.measured["v_leak"]
    unit = threshold_distance(result, normalization)
    known = np.isfinite(v_leak) & np.isfinite(unit) & (unit > 0)
    if adc == "cadc":
        known &= np.isfinite(result.adc.cadc_offset)
    missing = np.unique(idx[~known[idx]])
    if missing.size:
        raise CalibrationError(
            f"calibration {result.id}: neurons {missing[:8].tolist()} have no calibrated leak, threshold"
            f"{' or CADC offset' if adc == 'cadc' else ''}; map only calibrated neurons (result.success_mask)"
        )
    if adc == "cadc":
        v = x - result.adc.cadc_offset[idx]
    else:
        if not (np.isfinite(result.adc.madc_gain) and result.adc.madc_gain > 0):
            raise CalibrationError(
                f"calibration {result.id} has no MADC scale (calibrated with cadc_offsets=False); recalibrate with it"
            )
        v = (x - result.adc.madc_offset) / result.adc.madc_gain
    return (v - v_leak[idx]) / unit[idx]
