"""A placed Yin-Yang network (5 inputs x 5 copies, 120 hidden, 3 outputs) runs on the mock chip."""

import numpy as np

import hil
from drivers.mock import MockChip
from tools.bench_cases.mock import yinyang_config


def yinyang_setup(seed=0):
    """Placement, a configuration with moderately strong random weights, and a chip configured with it."""
    placement = hil.place(hil.Network.feedforward(5, [120], 3, duplication=5))
    return placement, yinyang_config(placement, seed)[1]


def test_placed_yinyang_network_spikes_in_hidden_and_output_layers():
    placement, cfg = yinyang_setup()
    mock = hil.open("mock://?seed=7")
    mock.configure(cfg)
    times = np.random.default_rng(1).uniform(0, 10e-6, (40, 5))
    meas = mock.run(placement.encode(times, 50e-6))
    out = placement.decode(meas)
    assert np.isfinite(out["hidden0"]).mean() > 0.2
    assert np.isfinite(out["output"]).mean() > 0.5
    assert set(meas.spikes["neuron"].tolist()) <= set(placement.used_neurons().tolist())
    assert meas.health.events_dropped_input == 0 and meas.health.spikes_dropped_output == 0


def test_results_do_not_depend_on_the_number_of_threads(monkeypatch):
    placement, cfg = yinyang_setup()
    times = np.random.default_rng(2).uniform(0, 10e-6, (300, 5))
    stim = placement.encode(times, 30e-6)
    runs = []
    for cpus in (1, 2):
        monkeypatch.setattr("os.cpu_count", lambda cpus=cpus: cpus)
        mock = MockChip(seed=7)
        mock.configure(cfg)
        runs.append(mock.run(stim))
    np.testing.assert_array_equal(runs[0].spikes, runs[1].spikes)
