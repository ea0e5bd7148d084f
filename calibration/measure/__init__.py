"""Measurements of per-neuron parameters through any ``hil.Device``, all neurons at once
where the chip allows it.

Each measurement has a *configure* part (:mod:`.setups`: the ``ChipConfig`` and stimulus it
needs) and a *measure* part (runs the device through a :class:`~calibration.session.Session`
and evaluates). Results are attrs objects of (512,) arrays with a ``valid`` mask and a
``reasons`` array naming why a neuron's value is missing (``nan``, never a silently wrong one).

- :mod:`.rest`: resting potential and drive level (mean CADC reading, no input);
- :mod:`.spiking`: reset, threshold, ``tau_mem`` and refractory time from regular firing;
- :mod:`.psp`: ``tau_syn`` and weight gains from PSPs, the input latency from MADC traces;
- :mod:`.offsets`: CADC channel offsets and the MADC's offset and gain (both ADCs on one neuron);
- :mod:`.parameters`: every parameter of a calibrated configuration (routine and drift check).

See docs/calibration.md.
"""

from .offsets import AdcScale, PairedLevel, estimate_offsets, madc_gain, measure_paired
from .parameters import (
    Drive,
    MeasurementSettings,
    ParameterValues,
    measure_membrane,
    measure_parameters,
    measure_refractory,
    measure_synapses,
)
from .psp import PspResult, measure_latency, measure_psp
from .rest import CADC_PERIOD_S, RestResult, measure_drive, measure_rest
from .setups import (
    SynapseSetup,
    burst_stimulus,
    idle_stimulus,
    psp_config,
    refractory_seconds,
    rest_config,
    spiking_config,
    spiking_measurement_config,
)
from .spiking import SpikingResult, measure_spiking

__all__ = [
    "AdcScale",
    "Drive",
    "PairedLevel",
    "estimate_offsets",
    "madc_gain",
    "measure_paired",
    "CADC_PERIOD_S",
    "MeasurementSettings",
    "ParameterValues",
    "PspResult",
    "RestResult",
    "SpikingResult",
    "SynapseSetup",
    "burst_stimulus",
    "idle_stimulus",
    "measure_drive",
    "measure_latency",
    "measure_membrane",
    "measure_parameters",
    "measure_psp",
    "measure_refractory",
    "measure_rest",
    "measure_spiking",
    "measure_synapses",
    "psp_config",
    "refractory_seconds",
    "rest_config",
    "spiking_config",
    "spiking_measurement_config",
]
