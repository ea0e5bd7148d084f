import numpy as np
import pytest

import hil
from hil.metered import MeteredDevice


class _Recorder(hil.DeviceBase):
    """A fake device: every run returns one spike per trial and a fixed Health."""

    def __init__(self):
        self.closed = False
        self.configured = []

    def info(self):
        return hil.DeviceInfo(chip_id="fake", driver="fake")

    def configure(self, config):
        self.configured.append(config)

    def run(self, stimulus, recording=hil.Recording()):
        spikes = np.zeros(stimulus.n_trials, dtype=hil.SPIKE_DTYPE)
        spikes["trial"] = np.arange(stimulus.n_trials)
        health = hil.Health(events_dropped_input=1, bytes_received=100)
        return hil.Measurement(
            spikes=spikes,
            n_trials=stimulus.n_trials,
            health=health,
            provenance=hil.Provenance("fake", "fake", "", "", 0.0),
        )

    def reset(self):
        pass

    def close(self):
        self.closed = True


def test_counts_runs_trials_chip_time_and_health():
    inner = _Recorder()
    with MeteredDevice(inner) as device:
        device.configure(hil.ChipConfig())
        stim = hil.Stimulus.from_trials([np.zeros(0, hil.EVENT_DTYPE)] * 3, durations=1250)  # 10 us each
        device.run(stim)
        device.run(stim)
        assert device.info().chip_id == "fake"
        t = device.totals
        assert (t.configures, t.runs, t.trials) == (1, 2, 6)
        assert t.chip_time_s == pytest.approx(60e-6, rel=1e-6)
        assert t.health.events_dropped_input == 2 and t.health.bytes_received == 200
        assert t.wall_s > 0
        assert t.as_dict()["bytes_received"] == 200
    assert inner.closed
