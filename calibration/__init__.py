"""calibration: make every neuron of a BrainScaleS-2-class chip behave like the model.

``calibrate(device, CalibrationTarget(...))`` finds per-neuron CapMem values through any
``hil.Device`` (spike times, spike counters, MADC and CADC samples only) and returns a
``CalibrationResult`` (codes, measured values, success flags, provenance) that can be
saved, loaded, applied to a ``ChipConfig`` and turned into model parameters for training.
``verify(device, result)`` checks for drift. See docs/calibration.md.

Modules: ``target`` (what to reach), ``options`` (knobs, tolerances), ``measure`` (the
measurements), ``search``/``model_search`` (search algorithms), ``loop`` + ``steps`` (the
routine's steps), ``routine`` (``calibrate``), ``result``, ``cache``, ``verify``.
"""

from . import fit, measure, search
from .cache import cache_dir
from .model_search import ModelSearch
from .model_units import ModelParameters
from .options import CalibrationOptions
from .result import RESULT_SCHEMA_VERSION, CalibrationResult
from .routine import calibrate
from .search import SearchResult, binary_search, noisy_binary_search, predict_codes
from .target import CalibrationTarget
from .verify import DriftReport, verify

__all__ = [
    "CalibrationTarget",
    "CalibrationResult",
    "CalibrationOptions",
    "ModelParameters",
    "calibrate",
    "verify",
    "DriftReport",
    "binary_search",
    "noisy_binary_search",
    "ModelSearch",
    "SearchResult",
    "predict_codes",
    "cache_dir",
    "RESULT_SCHEMA_VERSION",
    "fit",
    "measure",
    "search",
]
