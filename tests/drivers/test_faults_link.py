"""A bad link (corrupted bytes, dropped, duplicated and truncated frames, stalls) changes nothing in the result."""

from __future__ import annotations

import numpy as np
import pytest

import hil
from drivers.server import Server

from .fakes import FakeDevice, config, same_measurement, stimulus
from .faults import FaultyProxy
from .wire_fixtures import mock_chip_class

FAULTS = dict(corrupt=0.01, drop=0.01, duplicate=0.005, truncate=0.003, garbage=0.005, stall=0.003, stall_s=0.4)


def through_faults(device, work, *, seed=1, chunk_size=8192, **rates):
    srv = Server(device, chunk_size=chunk_size, window=8, ack_timeout=0.05).start()
    proxy = FaultyProxy(srv.address, seed=seed, **{**FAULTS, **rates})
    try:
        with hil.open(
            proxy.address, timeout=0.25, retries=8, backoff=0.01, chunk_size=chunk_size, ack_timeout=0.05
        ) as dev:
            return work(dev), proxy.counts
    finally:
        proxy.stop()
        srv.stop()


@pytest.mark.timeout(90)
def test_fake_device_1000_trials_under_faults_equal_fault_free():
    stim = stimulus(1000, 12, seed=3)
    ref = FakeDevice()
    ref.configure(config(7))
    expected = [ref.run(stim) for _ in range(2)]
    fake = FakeDevice()

    def work(dev):
        dev.configure(config(7))
        return [dev.run(stim) for _ in range(2)]

    got, counts = through_faults(fake, work)
    assert all(same_measurement(a, b) for a, b in zip(got, expected, strict=True))
    assert fake.runs == 2 and fake.configures == 1  # nothing applied twice
    assert counts["drop"] + counts["corrupt"] > 0
    assert sum(m.health.link_errors + m.health.retries for m in got) > 0


@pytest.mark.timeout(120)
def test_mock_chip_1000_trials_under_faults_equal_fault_free():
    MockChip = mock_chip_class()
    placement = hil.place(hil.Network.feedforward(5, [120], 3, duplication=5))
    rng = np.random.default_rng(0)
    weights = {p.key: rng.normal(0.5, 1.0, placement.network.weight_shape(p)) for p in placement.network.projections}
    cfg = placement.config(weights, 40.0)
    stim = placement.encode(rng.uniform(0, 30e-6, (1000, 5)), 50e-6)
    ref = MockChip(seed=7, noise=True, noise_seed=11)
    ref.configure(cfg)
    expected = [ref.run(stim) for _ in range(2)]

    def work(dev):
        dev.configure(cfg)
        return [dev.run(stim) for _ in range(2)]

    got, counts = through_faults(MockChip(seed=7, noise=True, noise_seed=11), work, seed=5)
    # noise advanced exactly once per run: the second run differs from the first only if noise is drawn per run
    assert all(same_measurement(a, b) for a, b in zip(got, expected, strict=True))
    assert sum(counts.values()) > 0
