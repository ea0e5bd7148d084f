"""Training: the exact event-based LIF model with EventProp gradients, data, losses, the two
backends (a chip through ``hil``, or the ideal model in software) and the trainer.

Imports ``hil`` and ``calibration`` only (never ``drivers``).
"""

from .config import TrainerConfig
from .data import SpikeEncoding, YinYang
from .datasets import SpikeData
from .hardware import DeviceNetwork
from .inference import evaluate_run
from .lif import LIFParameters, ReplayedTimes, SpikeTimes, replay_spike_times, spike_times
from .losses import (
    FirstSpikeCrossEntropy,
    Outputs,
    SpikeCountCrossEntropy,
    SpikeTimeMSE,
    first_spike_cross_entropy,
    predict,
    spike_time_mse,
)
from .network import IdealNetwork, Layer
from .run_files import FinishedRun, load_run
from .trainer import Trainer, TrainingInterrupted

__all__ = [
    "TrainerConfig",
    "SpikeEncoding",
    "YinYang",
    "SpikeData",
    "DeviceNetwork",
    "IdealNetwork",
    "Layer",
    "LIFParameters",
    "ReplayedTimes",
    "SpikeTimes",
    "replay_spike_times",
    "spike_times",
    "Outputs",
    "FirstSpikeCrossEntropy",
    "SpikeTimeMSE",
    "SpikeCountCrossEntropy",
    "first_spike_cross_entropy",
    "predict",
    "spike_time_mse",
    "Trainer",
    "TrainingInterrupted",
    "FinishedRun",
    "load_run",
    "evaluate_run",
]
