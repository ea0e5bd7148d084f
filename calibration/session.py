"""``Session``: a ``hil.Device`` plus the bookkeeping a calibration reports.

Counting (runs, trials, requested chip time, wall time, ``Health`` totals such as link bytes)
is ``hil.metered.MeteredDevice``'s; the session adds what calibration needs on top: it
configures only when the configuration changed since the previous run, and logs one event
per run (debug level). Every device access of the calibration goes through ``Session.run``
so the totals are complete.
"""

from __future__ import annotations

import hil
from hil.logging import get_logger
from hil.metered import MeteredDevice

log = get_logger(__name__)

# Assumed fixed cost of one run on a real chip beyond the requested trial time: sending the
# changed configuration blocks, CapMem settling after a write, and reading the results back.
REAL_RUN_OVERHEAD_S = 0.05


class Session:
    """Wraps ``device``; ``run(config, stimulus, recording)`` configures (if the config
    changed since the previous run) and runs."""

    def __init__(self, device: hil.Device):
        self.device = MeteredDevice(device)
        self.info = device.info()
        self._last_hash = None

    @property
    def chip_id(self) -> str:
        return self.info.chip_id

    @property
    def runs(self) -> int:
        return self.device.totals.runs

    @property
    def chip_time_s(self) -> float:
        return self.device.totals.chip_time_s

    def run(
        self, config: hil.ChipConfig, stimulus: hil.Stimulus, recording: hil.Recording, *, what: str = ""
    ) -> hil.Measurement:
        wall0 = self.device.totals.wall_s
        h = config.content_hash()
        if h != self._last_hash:
            self.device.configure(config)
            self._last_hash = h
        m = self.device.run(stimulus, recording)
        log.debug(
            "calibration.run",
            what=what,
            trials=stimulus.n_trials,
            chip_time_s=round(stimulus.total_duration_s(), 6),
            spikes=int(m.spikes.size),
            wall_s=round(self.device.totals.wall_s - wall0, 4),
        )
        if m.health.events_dropped_input:
            log.warning("calibration.events_dropped", what=what, dropped=int(m.health.events_dropped_input))
        return m

    def real_chip_estimate_s(self) -> float:
        """Estimated time on a real chip: requested trial time plus ``REAL_RUN_OVERHEAD_S`` per run."""
        return self.chip_time_s + self.runs * REAL_RUN_OVERHEAD_S

    def figures(self) -> dict:
        """Totals of this session: device runs, trials, chip time (s), the real-chip estimate (s),
        link bytes, dropped input events and device wall time (s)."""
        t = self.device.totals
        return {
            "device_runs": t.runs,
            "trials": t.trials,
            "chip_time_s": t.chip_time_s,
            "real_chip_estimate_s": self.real_chip_estimate_s(),
            "bytes_sent": t.health.bytes_sent,
            "bytes_received": t.health.bytes_received,
            "events_dropped": t.health.events_dropped_input,
            "device_wall_s": t.wall_s,
        }
