"""hil: the contract between host software and a BrainScaleS-2-class chip.

Chip facts (:mod:`hil.chip`), configuration (:class:`ChipConfig`), stimulus and recording
(:class:`Stimulus`, :class:`Recording`), results (:class:`Measurement`), the
:class:`Device` protocol with :func:`open`, errors (:mod:`hil.errors`) and network
placement (:mod:`hil.network`, :mod:`hil.placement`). Imports nothing else of the project.
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from . import chip, errors, logging
from .config import BlockKey, ChipConfig
from .device import PROTOCOL_VERSION, Device, DeviceBase, DeviceInfo, DeviceLimits, installed_drivers, open
from .errors import CalibrationError, ConfigError, DeviceError, DeviceTimeout, HilError, ProtocolError, ResourceError
from .measurement import SPIKE_DTYPE, CadcSamples, Health, MadcTrace, Measurement, Provenance
from .network import InputPopulation, LIFPopulation, Network, Projection
from .placement import Placement, place, quantize
from .stimulus import EVENT_DTYPE, Recording, Stimulus

try:
    __version__ = _version("bss2-hil")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "chip",
    "errors",
    "logging",
    "BlockKey",
    "ChipConfig",
    "Device",
    "DeviceBase",
    "DeviceInfo",
    "DeviceLimits",
    "PROTOCOL_VERSION",
    "installed_drivers",
    "open",
    "CalibrationError",
    "ConfigError",
    "DeviceError",
    "DeviceTimeout",
    "HilError",
    "ProtocolError",
    "ResourceError",
    "SPIKE_DTYPE",
    "CadcSamples",
    "Health",
    "MadcTrace",
    "Measurement",
    "Provenance",
    "InputPopulation",
    "LIFPopulation",
    "Network",
    "Placement",
    "Projection",
    "place",
    "quantize",
    "EVENT_DTYPE",
    "Recording",
    "Stimulus",
    "__version__",
]
