"""Placement of the kernels' helper threads (training.lif.threads)."""

from __future__ import annotations

import os

import pytest
import torch

from training.lif import LIFParameters, spike_times
from training.lif import threads as lif_threads

from .conftest import random_layer


@pytest.mark.skipif(
    lif_threads._GETCPU is None or len(os.sched_getaffinity(0)) < 2, reason="needs sched_getcpu and two CPUs"
)
def test_helpers_may_run_on_every_cpu_of_the_caller_but_its_own(monkeypatch):
    """Linux wakes a helper on its waker's CPU; run_kernel moves it to the caller's other CPUs first."""
    cpus = os.sched_getaffinity(0)
    here = min(cpus)
    monkeypatch.setattr(lif_threads, "_GETCPU", lambda: here)
    input_times, weights = random_layer(1, batch=2 * lif_threads.TRIALS_PER_THREAD)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        for _ in range(2):  # the first call may start the helper: its id is known from then on
            spike_times(input_times, weights, LIFParameters(tau_mem=10e-6, tau_syn=5e-6), t_max=60e-6)
        helpers = lif_threads._POOLS[1].ids
        assert len(helpers) == 1
        assert os.sched_getaffinity(helpers[0]) == cpus - {here}
    finally:
        torch.set_num_threads(threads)
        for helper in lif_threads._POOLS[1].ids:
            os.sched_setaffinity(helper, cpus)


def test_a_small_batch_stays_on_the_calling_thread(monkeypatch):
    """Below ``TRIALS_PER_THREAD`` trials per thread no helper is woken (its hand-off costs more than it saves)."""
    monkeypatch.setattr(lif_threads, "_POOLS", {})
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        input_times, weights = random_layer(1, batch=2 * lif_threads.TRIALS_PER_THREAD - 1)
        spike_times(input_times, weights, params, t_max=60e-6)
        assert lif_threads._POOLS == {}
        input_times, weights = random_layer(1, batch=2 * lif_threads.TRIALS_PER_THREAD)
        spike_times(input_times, weights, params, t_max=60e-6)
        assert set(lif_threads._POOLS) == {1}
    finally:
        torch.set_num_threads(threads)
        for pool in lif_threads._POOLS.values():
            pool.executor.shutdown(wait=True)
