"""Mock chip physics: transfer functions, mismatch, the noise-free membrane against the analytic LIF."""

import numpy as np
import pytest

import hil
from drivers.mock import MockChip
from drivers.mock.physics import Mismatch
from hil import chip

from .conftest import one_event, quiet_config, route_host


def test_transfer_functions_are_monotonic_and_cover_the_feasible_ranges():
    m = Mismatch.draw(11)
    c = np.arange(chip.CAPMEM_MAX + 1)[:, None] * np.ones((1, chip.N_NEURONS))
    for name, rng in (
        ("v_leak", chip.V_LEAK_RANGE),
        ("v_reset", chip.V_RESET_RANGE),
        ("v_threshold", chip.V_THRESHOLD_RANGE),
    ):
        v = np.stack([m.potential_of(name, row) for row in c])
        assert np.all(np.diff(v, axis=0) > 0)
        assert np.all(v[0] <= rng[0]) and np.all(v[-1] >= rng[1])
    tau = np.stack([m.tau_mem_of(row) for row in c])
    assert np.all(np.diff(tau, axis=0) < 0)
    assert np.all(tau[0] >= chip.TAU_MEM_RANGE[1]) and np.all(tau[-1] <= chip.TAU_MEM_RANGE[0])
    for sign in ("exc", "inh"):
        ts = np.stack([m.tau_syn_of(sign, row) for row in c])
        assert np.all(np.diff(ts, axis=0) < 0)
        assert np.all(ts[0] >= chip.TAU_SYN_RANGE[1]) and np.all(ts[-1] <= chip.TAU_SYN_RANGE[0])
        g = np.stack([m.gain_of(sign, row, np.full(512, 600)) for row in c])
        assert np.all(np.diff(g[1:], axis=0) > 0) and np.all(g[0] == 0)
    offset = np.stack([m.offset_current_of(row) for row in c])
    assert np.all(np.abs(offset[0]) < 2) and np.all(offset[-1] > 220 - 50)


def test_uncalibrated_spread_is_tens_of_percent():
    p = MockChip(seed=5).effective_parameters()
    for name in ("tau_mem", "tau_syn_exc", "tau_syn_inh"):
        spread = p[name].std() / p[name].mean()
        assert 0.1 < spread < 0.5, (name, spread)
    assert 0.05 < p["weight_gain_exc"].std() / p["weight_gain_exc"].mean() < 0.3
    assert p["v_leak"].std() > 2  # several LSB of offset mismatch


def test_different_seeds_are_different_chips():
    a, b = MockChip(seed=1), MockChip(seed=2)
    assert a.info().chip_id != b.info().chip_id
    assert not np.allclose(a.effective_parameters()["tau_mem"], b.effective_parameters()["tau_mem"])
    assert MockChip(seed=1).info().chip_id == a.info().chip_id


def _psp_setup(neuron=5, weight=40, tick=125):
    """Chip with one host label exciting ``neuron`` (hemisphere 0) via driver 4, MADC on it."""
    mock = MockChip(seed=3, noise=False)
    cfg = quiet_config(i_bias_leak=110, i_bias_synin_exc_tau=120)
    route_host(cfg, 0, 0, 0)
    cfg.row_modes[0, 8] = chip.ROW_MODE_EXCITATORY
    cfg.synapse_labels[0, 8, neuron] = 17
    cfg.synapse_weights[0, 8, neuron] = weight
    cfg.enable_readout[neuron] = True
    mock.configure(cfg)
    label = int(chip.make_label(1, 17, 0))
    return mock, label


def _psp(t, tau_mem, tau_syn):
    """Membrane response to a unit current jump at t = 0 (0 before), from the LIF equations."""
    t = np.maximum(t, 0.0)
    return tau_syn / (tau_syn - tau_mem) * (np.exp(-t / tau_syn) - np.exp(-t / tau_mem))


def _codes_to_lsb(codes, truth):
    return (codes.astype(float) - truth["madc_offset"]) / (4 * truth["madc_gain"])


def test_noise_free_membrane_follows_the_analytic_psp():
    neuron, weight, tick = 5, 40, 125
    mock, label = _psp_setup(neuron, weight, tick)
    rec = hil.Recording(spikes=True, madc_neuron=neuron, madc_samples=1500)
    meas = mock.run(one_event(label, tick, duration=6000), rec)
    p = mock.effective_parameters()
    measured = _codes_to_lsb(meas.madc.samples[0], p)
    t = meas.madc.times()
    q = weight * p["weight_gain_exc"][neuron] * p["synapse_factor"][0, 8, neuron]
    t_arrival = tick * chip.TICK_S + p["input_latency_s"]
    v_rest = p["v_leak"][neuron] + p["i_offset"][neuron]
    expected = v_rest + q * _psp(t - t_arrival, p["tau_mem"][neuron], p["tau_syn_exc"][neuron])
    assert expected.max() - v_rest > 5  # a visible PSP
    assert np.max(np.abs(measured - expected)) < 1.0
    assert meas.spikes.size == 0


def test_synaptic_input_trace_decays_with_tau_syn():
    neuron = 5
    mock, label = _psp_setup(neuron)
    rec = hil.Recording(madc_neuron=neuron, madc_source="synin_exc", madc_samples=600)
    meas = mock.run(one_event(label, 125, duration=3000), rec)
    p = mock.effective_parameters()
    x = _codes_to_lsb(meas.madc.samples[0], p)
    t = meas.madc.times()
    late = (t > 125 * chip.TICK_S + 0.3e-6) & (x - x[0] > 3)
    slope = np.polyfit(t[late], np.log(x[late] - x[0]), 1)[0]
    assert -1 / slope == pytest.approx(p["tau_syn_exc"][neuron], rel=0.05)


def test_offset_current_drives_tonic_spiking_with_refractory_gaps():
    mock = MockChip(seed=3, noise=False)
    cfg = quiet_config(i_mem_offset=800, i_bias_leak=300, refractory_counter=100)
    cfg.refractory_clock_scale[:] = 0
    cfg.enable_spike_out[:4] = True
    mock.configure(cfg)
    meas = mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))], 2500), hil.Recording(spike_counts=True))
    s = meas.spikes_of_trial(0)
    for n in range(4):
        ticks = s["tick"][s["neuron"] == n].astype(np.int64)
        assert ticks.size > 3
        assert np.all(np.diff(ticks) >= 100)  # refractory 100 ticks at clock scale 0
    assert meas.spike_counts[0, :4].tolist() == [int(np.sum(s["neuron"] == n)) for n in range(4)]
    assert np.all(meas.spike_counts[0, 4:] > 0)  # the counters count neurons without spike output too
