"""Training: the exact event-based LIF model with EventProp gradients, Yin-Yang data and
losses, the device-backed network and the hardware-in-the-loop trainer.

Imports ``hil`` and ``calibration`` only (never ``drivers``).
"""

from .config import TrainerConfig
from .data import SpikeEncoding, YinYang
from .hardware import DeviceNetwork, NeuronModel
from .lif import LIFParameters, ReplayedTimes, SpikeTimes, replay_spike_times, spike_times
from .losses import first_spike_cross_entropy, predict, spike_time_mse
from .trainer import Trainer, TrainingInterrupted

__all__ = [
    "TrainerConfig",
    "SpikeEncoding",
    "YinYang",
    "DeviceNetwork",
    "NeuronModel",
    "LIFParameters",
    "ReplayedTimes",
    "SpikeTimes",
    "replay_spike_times",
    "spike_times",
    "first_spike_cross_entropy",
    "predict",
    "spike_time_mse",
    "Trainer",
    "TrainingInterrupted",
]
