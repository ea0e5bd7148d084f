"""Mock chip routing: crossbar, PADI buses, drivers, synapse labels, neuron->neuron; bad routes."""

import numpy as np
import pytest

import hil
from drivers.mock import MockChip
from hil import chip

from .conftest import one_event, quiet_config, route_host


def _excitable(cfg):
    """Low threshold and strong synapses: one event of weight 63 makes a neuron spike."""
    cfg.v_leak[:] = 300
    cfg.v_threshold[:] = 420
    cfg.i_bias_synin_exc_gm[:] = 1000
    cfg.syn_i_bias_dac[:] = 1022
    cfg.i_bias_synin_exc_tau[:] = 60
    cfg.i_bias_leak[:] = 60
    return cfg


def test_host_event_fires_exactly_the_matching_synapses():
    mock = MockChip(seed=4, noise=False)
    cfg = _excitable(quiet_config())
    cfg.enable_spike_out[:] = True
    cfg.neuron_label[:] = 0x3FFF  # never routed back (no node takes it)
    route_host(cfg, 1, 0, 1)  # host channel 1 -> hemisphere 0, bus 1
    d = 4 * 3 + 1  # row-select 3 on bus 1
    for row in (2 * d, 2 * d + 1):
        cfg.row_modes[0, row] = chip.ROW_MODE_EXCITATORY
        cfg.row_modes[1, row] = chip.ROW_MODE_EXCITATORY
    cfg.synapse_weights[:, 2 * d, :40] = 63
    cfg.synapse_labels[0, 2 * d, :20] = 9  # columns 0..19 match
    cfg.synapse_labels[0, 2 * d, 20:40] = 10  # same driver, other label
    cfg.synapse_labels[1, 2 * d, :40] = 9  # hemisphere 1: bus not routed
    other = 4 * 3 + 2  # same row-select, bus 2 (not routed)
    cfg.row_modes[0, 2 * other] = chip.ROW_MODE_EXCITATORY
    cfg.synapse_weights[0, 2 * other, 100:120] = 63
    cfg.synapse_labels[0, 2 * other, 100:120] = 9
    mock.configure(cfg)
    meas = mock.run(one_event(int(chip.make_label(3, 9, channel=1))), hil.Recording(spike_counts=True))
    assert sorted(set(meas.spikes["neuron"].tolist())) == list(range(20))
    np.testing.assert_array_equal(meas.spike_counts[0] > 0, np.arange(512) < 20)


def test_inhibitory_row_lowers_the_membrane():
    mock = MockChip(seed=4, noise=False)
    cfg = quiet_config(i_bias_synin_inh_gm=800)
    route_host(cfg, 0, 1, 0)
    cfg.row_modes[1, 1] = chip.ROW_MODE_INHIBITORY  # driver 0, second row
    cfg.synapse_weights[1, 1, 7] = 50
    cfg.synapse_labels[1, 1, 7] = 3
    cfg.enable_readout[256 + 7] = True
    mock.configure(cfg)
    meas = mock.run(one_event(int(chip.make_label(0, 3, 0))), hil.Recording(madc_neuron=256 + 7, madc_samples=500))
    trace = meas.madc.samples[0].astype(int)
    assert trace.min() < trace[0] - 20


def test_hidden_neuron_drives_the_next_neuron_through_the_crossbar():
    mock = MockChip(seed=4, noise=False)
    cfg = _excitable(quiet_config())
    route_host(cfg, 0, 0, 0)
    cfg.row_modes[0, 0] = chip.ROW_MODE_EXCITATORY  # driver 0: host -> neuron 10
    cfg.synapse_weights[0, 0, 10], cfg.synapse_labels[0, 0, 10] = 63, 1
    cfg.enable_spike_out[10] = True
    cfg.neuron_label[10] = int(chip.make_label(2, 5, channel=3))  # driver 4*2+3 = 11 on bus 3
    block = 10 // chip.NEURON_BLOCK_SIZE
    cfg.crossbar_enable[block, 4 + 3] = True  # block 0 -> hemisphere 1, bus 3
    cfg.crossbar_mask[block, 4 + 3] = chip.LABEL_CHANNEL_MASK
    cfg.crossbar_target[block, 4 + 3] = 3 << chip.LABEL_CHANNEL_SHIFT
    cfg.row_modes[1, 22] = chip.ROW_MODE_EXCITATORY
    cfg.synapse_weights[1, 22, 44], cfg.synapse_labels[1, 22, 44] = 63, 5
    cfg.synapse_weights[1, 22, 45], cfg.synapse_labels[1, 22, 45] = 63, 6  # wrong label
    cfg.enable_spike_out[256 + 44] = True
    cfg.enable_spike_out[256 + 45] = True
    mock.configure(cfg)
    meas = mock.run(one_event(int(chip.make_label(0, 1, 0))))
    first = {n: int(meas.spikes["tick"][meas.spikes["neuron"] == n].min()) for n in set(meas.spikes["neuron"].tolist())}
    assert set(first) == {10, 300}
    assert first[300] > first[10]
    # without the crossbar node the second neuron stays silent
    cfg.crossbar_enable[block, 4 + 3] = False
    mock.configure(cfg)
    assert set(mock.run(one_event(int(chip.make_label(0, 1, 0)))).spikes["neuron"].tolist()) == {10}


def test_unrouted_label_is_an_error_naming_it():
    mock = MockChip(seed=4, noise=False)
    cfg = quiet_config()
    mock.configure(cfg)
    with pytest.raises(hil.ConfigError, match="0x0041"):
        mock.run(one_event(0x0041))
    route_host(cfg, 0, 0, 0)
    mock.configure(cfg)
    with pytest.raises(hil.ConfigError, match="no synapse"):
        mock.run(one_event(0x0041))


def test_madc_neuron_needs_readout_enabled():
    mock = MockChip(seed=4, noise=False)
    mock.configure(quiet_config())
    with pytest.raises(hil.ConfigError, match="enable_readout"):
        mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))], 100), hil.Recording(madc_neuron=3, madc_samples=10))
