"""``MeteredDevice``: a ``hil.Device`` that adds up what its work costs.

The one place that counts device time and traffic for its users (training, calibration,
benchmarks): wall seconds spent in ``configure`` and ``run``, runs, trials, requested chip
time and the ``Health`` counters of every measurement.
"""

from __future__ import annotations

import time

import attrs

from .config import ChipConfig
from .measurement import Health, Measurement
from .stimulus import Recording, Stimulus


@attrs.define
class DeviceTotals:
    """Running totals of a ``MeteredDevice``. Times in seconds (wall: host clock, chip: requested trial time)."""

    configures: int = 0
    runs: int = 0
    trials: int = 0
    chip_time_s: float = 0.0
    wall_s: float = 0.0
    health: Health = attrs.field(factory=Health)

    def as_dict(self) -> dict:
        return {
            "configures": self.configures,
            "runs": self.runs,
            "trials": self.trials,
            "chip_time_s": self.chip_time_s,
            "device_wall_s": self.wall_s,
            **attrs.asdict(self.health),
        }


class MeteredDevice:
    """Wraps an open device; every ``configure``/``run`` goes through and is counted in ``totals``.

    Other attributes (``info``, ``reset``, driver extras) pass through unchanged. Closing the
    wrapper closes the device.
    """

    def __init__(self, device):
        self.device = device
        self.totals = DeviceTotals()

    def configure(self, config: ChipConfig) -> None:
        start = time.perf_counter()
        try:
            self.device.configure(config)
        finally:
            self.totals.wall_s += time.perf_counter() - start
            self.totals.configures += 1

    def run(self, stimulus: Stimulus, recording: Recording = Recording()) -> Measurement:
        start = time.perf_counter()
        try:
            measurement = self.device.run(stimulus, recording)
        finally:
            self.totals.wall_s += time.perf_counter() - start
        self.totals.runs += 1
        self.totals.trials += stimulus.n_trials
        self.totals.chip_time_s += stimulus.total_duration_s()
        self.totals.health = self.totals.health + measurement.health
        return measurement

    def close(self) -> None:
        self.device.close()

    def __getattr__(self, name):
        return getattr(self.device, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
