"""What the mock chip keeps from one run to the next: the kernel's tables survive a configure that
leaves the effective neuron parameters alone (a weight update) and are rebuilt when one changes;
either way a run gives the spikes a fresh chip gives with that configuration."""

import numpy as np
import pytest

import hil
from drivers.mock import MockChip, engine
from tools.bench_cases.mock import yinyang_config


@pytest.fixture
def built(monkeypatch):
    """Records the neurons (global indices) of every ``engine.Tables`` the chip builds."""
    calls, original = [], engine.Tables.of

    def counting(params, columns, noise):
        calls.append(columns.copy())
        return original(params, columns, noise)

    monkeypatch.setattr(engine.Tables, "of", staticmethod(counting))
    return calls


def _changed(cfg: hil.ChipConfig, **fields) -> hil.ChipConfig:
    cfg = cfg.copy()
    for name, value in fields.items():
        setattr(cfg, name, value)
    return cfg


def _fresh_run(cfg: hil.ChipConfig, stim: hil.Stimulus, index: int) -> np.ndarray:
    """Spikes of run ``index`` of a new chip that only ever held ``cfg``."""
    mock = MockChip(seed=7)
    mock.configure(cfg)
    for _ in range(index):
        mock.run(stim)
    return mock.run(stim).spikes


def test_tables_are_kept_across_weight_updates_and_rebuilt_when_a_parameter_changes(built):
    placement = hil.place(hil.Network.feedforward(5, [120], 3, duplication=5))
    base = yinyang_config(placement, 0)[1]
    stim = placement.encode(np.random.default_rng(3).uniform(0, 10e-6, (6, 5)), 40e-6)
    n = np.ones(512, int)
    steps = [  # (configuration, whether the tables must be built anew)
        (base, True),
        (yinyang_config(placement, 1)[1], False),  # other weights, same neurons
        (yinyang_config(placement, 2)[1], False),
        (_changed(yinyang_config(placement, 2)[1], enable_readout=np.zeros(512, bool)), False),
        (_changed(base, v_threshold=540 * n), True),
        (_changed(base, v_threshold=540 * n, i_bias_leak=130 * n), True),  # tau_mem
        (_changed(base, v_threshold=540 * n, i_bias_leak=130 * n, refractory_counter=40 * n), True),
        (_changed(base, v_threshold=540 * n, i_bias_leak=130 * n, refractory_counter=40 * n), False),  # same again
    ]
    mock = MockChip(seed=7)
    for index, (cfg, rebuilt) in enumerate(steps):
        before = len(built)
        mock.configure(cfg)
        spikes = mock.run(stim).spikes
        assert len(built) - before == int(rebuilt), f"step {index}"
        assert spikes.size > 0
        np.testing.assert_array_equal(spikes, _fresh_run(cfg, stim, index), err_msg=f"step {index}")


def test_tables_follow_the_simulated_neurons(built):
    placement = hil.place(hil.Network.feedforward(5, [120], 3, duplication=5))
    cfg = yinyang_config(placement, 0)[1]
    stim = placement.encode(np.random.default_rng(4).uniform(0, 10e-6, (4, 5)), 40e-6)
    madc = int(np.setdiff1d(np.arange(512), placement.used_neurons())[0])  # a neuron outside the network
    cfg.enable_readout[madc] = True
    mock = MockChip(seed=7)
    mock.configure(cfg)
    plain = mock.run(stim)
    recorded = mock.run(stim, hil.Recording(madc_neuron=madc, madc_samples=100))
    again = mock.run(stim)
    assert len(built) == 3 and madc in built[1] and madc not in built[0]
    np.testing.assert_array_equal(built[0], built[2])
    assert recorded.madc is not None and plain.spikes.size and again.spikes.size
