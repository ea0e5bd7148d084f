"""``CalibrationTarget``: what every neuron should look like after calibration.

Potentials in CADC LSB, times in seconds, synaptic gains in CADC LSB of synaptic current
jump per weight LSB (the jump ``I += w * gain`` of ``tau_mem dV/dt = -(V - v_leak) + I``).
Each field is a scalar (all neurons alike) or a (512,) array (one value per neuron).
"""

from __future__ import annotations

import hashlib
import json

import attrs
import numpy as np

from hil import chip
from hil.errors import ConfigError

# Feasible range of each parameter; potentials and times come from hil.chip. Weight gains
# have no chip constant: the range is what a synaptic input can deliver without leaving
# the CADC range with a handful of full-weight inputs.
WEIGHT_GAIN_RANGE = (0.05, 8.0)  # CADC LSB per weight LSB

RANGES: dict[str, tuple[float, float]] = {
    "v_leak": chip.V_LEAK_RANGE,
    "v_reset": chip.V_RESET_RANGE,
    "v_threshold": chip.V_THRESHOLD_RANGE,
    "tau_mem": chip.TAU_MEM_RANGE,
    "tau_syn_exc": chip.TAU_SYN_RANGE,
    "tau_syn_inh": chip.TAU_SYN_RANGE,
    "refractory": chip.REFRACTORY_RANGE,
    "weight_gain_exc": WEIGHT_GAIN_RANGE,
    "weight_gain_inh": WEIGHT_GAIN_RANGE,
}

UNITS = {
    "v_leak": "LSB",
    "v_reset": "LSB",
    "v_threshold": "LSB",
    "tau_mem": "s",
    "tau_syn_exc": "s",
    "tau_syn_inh": "s",
    "refractory": "s",
    "weight_gain_exc": "LSB/w",
    "weight_gain_inh": "LSB/w",
}

PARAMETERS = tuple(RANGES)


def _value(name):
    low, high = RANGES[name]

    def convert(value):
        try:
            arr = np.asarray(value, dtype=np.float64) if not isinstance(value, np.ndarray) else value.astype(np.float64)
        except (TypeError, ValueError):
            raise ConfigError(
                f"CalibrationTarget.{name} = {value!r} is not a number; allowed: {low:g}..{high:g} {UNITS[name]}"
            ) from None
        if arr.ndim == 0:
            v = float(arr)
            if not np.isfinite(v) or not low <= v <= high:
                raise ConfigError(
                    f"CalibrationTarget.{name} = {v!r} is out of range; allowed: {low:g}..{high:g} {UNITS[name]}"
                )
            return v
        if arr.shape != (chip.N_NEURONS,):
            raise ConfigError(
                f"CalibrationTarget.{name}: shape {arr.shape}; "
                f"expected a scalar or ({chip.N_NEURONS},) per-neuron array"
            )
        bad = ~np.isfinite(arr) | (arr < low) | (arr > high)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ConfigError(
                f"CalibrationTarget.{name}[{i}] = {arr[i]!r} is out of range; allowed: {low:g}..{high:g} {UNITS[name]}"
            )
        arr = arr.copy()
        arr.setflags(write=False)
        return arr

    return convert


def _field(name, default):
    return attrs.field(default=default, converter=_value(name))


@attrs.frozen(eq=False)
class CalibrationTarget:
    """Target of a calibration. Defaults (chosen for the Yin-Yang EventProp task):

    - ``v_leak`` 80, ``v_reset`` 80, ``v_threshold`` 150 CADC LSB: a threshold distance of
      70 LSB, well inside the CADC range, with room below the leak for inhibition;
    - ``tau_mem`` 12 us, ``tau_syn_exc`` = ``tau_syn_inh`` 6 us;
    - ``refractory`` 30 us: as in the BSS-2 EventProp experiments, a neuron fires about once
      per trial (trials last a few tau_mem);
    - ``weight_gain_exc`` = ``weight_gain_inh`` 1.0 LSB per weight LSB: one full-weight (63)
      input gives a current jump of 63 LSB and a PSP peak of about 16 LSB (tau_mem = 2 tau_syn),
      so 5 coincident strong inputs cross the 70 LSB threshold distance and 25 weak ones can too.
    """

    v_leak: object = _field("v_leak", 80.0)
    v_reset: object = _field("v_reset", 80.0)
    v_threshold: object = _field("v_threshold", 150.0)
    tau_mem: object = _field("tau_mem", 12e-6)
    tau_syn_exc: object = _field("tau_syn_exc", 6e-6)
    tau_syn_inh: object = _field("tau_syn_inh", 6e-6)
    refractory: object = _field("refractory", 30e-6)
    weight_gain_exc: object = _field("weight_gain_exc", 1.0)
    weight_gain_inh: object = _field("weight_gain_inh", 1.0)

    def __attrs_post_init__(self):
        dist = np.asarray(self.v_threshold) - np.asarray(self.v_leak)
        if np.any(dist < 5.0):
            raise ConfigError(
                f"CalibrationTarget: v_threshold - v_leak = {np.min(dist):g} LSB; allowed: >= 5 LSB "
                "(the neuron must rest below its threshold)"
            )
        dist = np.asarray(self.v_threshold) - np.asarray(self.v_reset)
        if np.any(dist < 5.0):
            raise ConfigError(
                f"CalibrationTarget: v_threshold - v_reset = {np.min(dist):g} LSB; allowed: >= 5 LSB "
                "(reset below threshold)"
            )

    def per_neuron(self, name: str) -> np.ndarray:
        """(512,) float64 values of parameter ``name``."""
        if name not in RANGES:
            raise ConfigError(f"CalibrationTarget has no parameter {name!r}; known: {', '.join(PARAMETERS)}")
        return np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64), (chip.N_NEURONS,)).copy()

    def to_dict(self) -> dict:
        """JSON-ready dict (scalars stay scalars, arrays become lists)."""
        out = {}
        for name in PARAMETERS:
            v = getattr(self, name)
            out[name] = v if isinstance(v, float) else [float(x) for x in v]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> CalibrationTarget:
        unknown = set(data) - set(PARAMETERS)
        if unknown:
            raise ConfigError(
                f"CalibrationTarget: unknown parameter(s) {sorted(unknown)}; known: {', '.join(PARAMETERS)}"
            )
        return cls(**{k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v) for k, v in data.items()})

    def key(self) -> str:
        """Stable SHA-256 of the values (the cache key's target part)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def __eq__(self, other):
        return isinstance(other, CalibrationTarget) and self.key() == other.key()

    __hash__ = None

    def __repr__(self):
        parts = []
        for name in PARAMETERS:
            v = getattr(self, name)
            parts.append(f"{name}={v:g}" if isinstance(v, float) else f"{name}=<array mean {np.mean(v):g}>")
        return f"CalibrationTarget({', '.join(parts)})"
