"""Soak: many small runs of a mock chip over ``socket://`` through a fault-injecting proxy give
the same spikes as the chip in-process, and neither the server nor the client grows.

``HIL_SOAK_RUNS`` (default 2000, a few tens of seconds; the issue's soak is ``HIL_SOAK_RUNS=10000``) sets the
number of runs.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import hil
from drivers.mock import MockChip
from drivers.server import MEMORY_BUDGET_BYTES

from .faults import FaultyProxy
from .server_process import ServerProcess, rss_bytes

RUNS = int(os.environ.get("HIL_SOAK_RUNS", "2000"))
WARMUP = min(200, RUNS // 5)  # runs before the memory baseline is taken
GROWTH_LIMIT = 50 << 20
FAULTS = dict(corrupt=0.002, drop=0.002, duplicate=0.002, truncate=0.001, garbage=0.002)


def small_experiment(seed: int = 0):
    """A 5-16-3 network and 16 batches of 4 trials."""
    net = hil.Network.feedforward(5, [16], 3, duplication=2)
    placement = hil.place(net)
    rng = np.random.default_rng(seed)
    cfg = placement.config({p.key: rng.normal(1.0, 0.8, net.weight_shape(p)) for p in net.projections}, 40.0)
    stimuli = [placement.encode(rng.uniform(0, 30e-6, (4, 5)), 50e-6) for _ in range(16)]
    return cfg, stimuli


@pytest.mark.timeout(1800)
def test_soak_small_runs_through_faults_are_identical_and_do_not_leak():
    cfg, stimuli = small_experiment()
    reference = MockChip(seed=7, noise=True, noise_seed=11)
    reference.configure(cfg)
    spikes = link_trouble = 0
    with ServerProcess(MEMORY_BUDGET_BYTES, seed=7, noise_seed=11) as server:
        proxy = FaultyProxy(server.address, seed=3, **FAULTS)
        try:
            with hil.open(proxy.address, timeout=0.1, retries=10, backoff=0.005, ack_timeout=0.05, busy_wait=10) as dev:
                dev.configure(cfg)
                for k in range(RUNS):
                    if k == WARMUP:
                        base = server.rss_bytes(), rss_bytes(os.getpid())
                    m = dev.run(stimuli[k % len(stimuli)])
                    ref = reference.run(stimuli[k % len(stimuli)])
                    assert np.array_equal(m.spikes, ref.spikes), f"run {k} differs from the in-process chip"
                    spikes += m.spikes.size
                    link_trouble += m.health.link_errors + m.health.retries
                end = server.rss_bytes(), rss_bytes(os.getpid())
        finally:
            proxy.stop()
        assert not server.exceeded
    growth = [(b - a) / 2**20 for a, b in zip(base, end, strict=True)]
    print(
        f"soak: {RUNS} runs, {spikes} spikes, faults {dict(proxy.counts)}, link errors + retries {link_trouble}, "
        f"RSS growth server {growth[0]:.1f} MiB, client {growth[1]:.1f} MiB"
    )
    assert spikes > RUNS  # the runs did something
    assert sum(proxy.counts.values()) > 0 and link_trouble > 0  # and went through trouble
    assert max(growth) * 2**20 < GROWTH_LIMIT, f"RSS growth (server, client) = {growth} MiB"
