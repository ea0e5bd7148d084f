"""``Session``: a ``hil.Device`` plus the bookkeeping a calibration reports.

Counts device runs, trials, requested chip time and link bytes, and logs one structlog
event per run (debug level) with its figures. Every device access of the calibration goes
through ``Session.run`` so the totals are complete.
"""

from __future__ import annotations

import time

import numpy as np

import hil
from hil.logging import get_logger

log = get_logger(__name__)

# Assumed fixed cost of one run on a real chip beyond the requested trial time: sending the
# changed configuration blocks, CapMem settling after a write, and reading the results back.
REAL_RUN_OVERHEAD_S = 0.05


class Session:
    """Wraps ``device``; ``run(config, stimulus, recording)`` configures (if the config
    changed since the previous run) and runs."""

    def __init__(self, device: hil.Device):
        self.device = device
        self.info = device.info()
        self.runs = 0
        self.trials = 0
        self.chip_time_s = 0.0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.events_dropped = 0
        self.spikes_dropped = 0
        self.wall_s = 0.0
        self._last_hash = None

    @property
    def chip_id(self) -> str:
        return self.info.chip_id

    def run(
        self, config: hil.ChipConfig, stimulus: hil.Stimulus, recording: hil.Recording, *, what: str = ""
    ) -> hil.Measurement:
        start = time.perf_counter()
        h = config.content_hash()
        if h != self._last_hash:
            self.device.configure(config)
            self._last_hash = h
        m = self.device.run(stimulus, recording)
        wall = time.perf_counter() - start
        self.runs += 1
        self.trials += stimulus.n_trials
        self.chip_time_s += stimulus.total_duration_s()
        hl = m.health
        self.bytes_sent += int(hl.bytes_sent)
        self.bytes_received += int(hl.bytes_received)
        self.events_dropped += int(hl.events_dropped_input)
        self.spikes_dropped += int(hl.spikes_dropped_output)
        self.wall_s += wall
        log.debug(
            "calibration.run",
            what=what,
            trials=stimulus.n_trials,
            chip_time_s=round(stimulus.total_duration_s(), 6),
            spikes=int(m.spikes.size),
            wall_s=round(wall, 4),
        )
        if hl.events_dropped_input:
            log.warning("calibration.events_dropped", what=what, dropped=int(hl.events_dropped_input))
        return m

    def real_chip_estimate_s(self) -> float:
        """Estimated time on a real chip: requested trial time plus ``REAL_RUN_OVERHEAD_S`` per run."""
        return self.chip_time_s + self.runs * REAL_RUN_OVERHEAD_S

    def figures(self) -> dict:
        return {
            "device_runs": self.runs,
            "trials": self.trials,
            "chip_time_s": self.chip_time_s,
            "real_chip_estimate_s": self.real_chip_estimate_s(),
            "bytes_sent": self.bytes_sent,
            "bytes_received": self.bytes_received,
            "events_dropped": self.events_dropped,
            "device_wall_s": self.wall_s,
        }


def seed_rng(seed) -> np.random.Generator:
    """A generator from a ``SeedSequence`` (the project's rule for randomness)."""
    return np.random.default_rng(np.random.SeedSequence(seed))
