"""Mock chip as a hil.Device: opening, options, determinism, reset, limits, drops, pacing."""

import time

import numpy as np
import pytest

import hil
from drivers.mock import MockChip
from hil import chip, wire

from .conftest import quiet_config, route_host


def test_open_by_url_and_options():
    with hil.open("mock://?seed=7") as mock:
        assert isinstance(mock, hil.Device) and isinstance(mock, MockChip)
        assert mock.info().driver == "mock" and mock.seed == 7 and mock.noise
    assert not hil.open("mock://?seed=7&noise=off").noise
    assert hil.open("mock://?seed=7").info().chip_id == MockChip(seed=7).info().chip_id
    mock = hil.open("mock://?pace=realtime&overhead_s=0.01&noise_seed=5")
    assert (mock.pace, mock.overhead_s, mock.noise_seed) == ("realtime", 0.01, 5)


@pytest.mark.parametrize(
    "url, match",
    [
        ("mock://?colour=red", "colour.*allowed: seed, noise"),
        ("mock://?seed=-1", "seed"),
        ("mock://?noise=maybe", "noise"),
        ("mock://?pace=fast", "pace"),
        ("mock://?overhead_s=x", "overhead_s"),
    ],
)
def test_bad_options_are_config_errors(url, match):
    with pytest.raises(hil.ConfigError, match=match):
        hil.open(url)


def _tonic_config():
    cfg = quiet_config(i_mem_offset=500, refractory_counter=30)
    cfg.enable_spike_out[:64] = True
    cfg.enable_readout[3] = True
    return cfg


def _run(mock, trials=3):
    stim = hil.Stimulus.from_trials([np.zeros((0, 2))] * trials, 2000)
    return mock.run(stim, hil.Recording(madc_neuron=3, madc_samples=200, cadc_period_s=2e-6))


def _same(a, b):
    return (
        np.array_equal(a.spikes, b.spikes)
        and np.array_equal(a.madc.samples, b.madc.samples)
        and np.array_equal(a.cadc.samples, b.cadc.samples)
        and np.array_equal(a.cadc.ticks, b.cadc.ticks)
    )


def test_same_seeds_same_measurement_and_noise_differs_between_runs():
    a, b = MockChip(seed=9), MockChip(seed=9)
    a.configure(_tonic_config())
    b.configure(_tonic_config())
    first_a, first_b = _run(a), _run(b)
    assert _same(first_a, first_b)
    assert first_a.spikes.size > 0
    second_a = _run(a)
    assert not _same(first_a, second_a)  # next run, next noise
    c = MockChip(seed=9, noise_seed=123)
    c.configure(_tonic_config())
    assert not _same(first_a, _run(c))
    assert first_a.provenance.noise_seed == a.noise_seed
    assert first_a.provenance.config_hash == _tonic_config().content_hash()
    assert first_a.provenance.driver == "mock" and first_a.provenance.software_version == hil.__version__


def test_noise_off_is_deterministic_and_noise_on_varies_across_trials():
    quiet = MockChip(seed=9, noise=False)
    quiet.configure(_tonic_config())
    m1, m2 = _run(quiet), _run(quiet)
    np.testing.assert_array_equal(m1.spikes["tick"], m2.spikes["tick"])
    np.testing.assert_array_equal(m1.madc.samples[0], m1.madc.samples[1])
    noisy = MockChip(seed=9)
    noisy.configure(_tonic_config())
    m = _run(noisy)
    assert not np.array_equal(m.madc.samples[0], m.madc.samples[1])


def test_reset_restores_power_on_state_and_changes_boot_id():
    mock = MockChip(seed=9)
    mock.configure(_tonic_config())
    first = _run(mock)
    boot = mock.info().boot_id
    mock.reset()
    assert mock.info().boot_id != boot
    assert mock.config == hil.ChipConfig()
    mock.configure(_tonic_config())
    assert _same(first, _run(mock))  # run counter restarts at 0 after a reset
    mock.close()
    with pytest.raises(hil.DeviceError):
        mock.info()


def test_configure_rejects_invalid_config():
    cfg = hil.ChipConfig()
    cfg.arrays()["v_leak"][0] = 1023  # bypasses the setter's check
    with pytest.raises(hil.ConfigError, match="v_leak"):
        MockChip().configure(cfg)


def test_configure_keeps_its_own_copy_and_rejects_a_bad_change_without_applying_it():
    mock = MockChip(seed=1, noise=False)
    cfg = hil.ChipConfig()
    cfg.synapse_weights[0, 3, 4] = 10
    mock.configure(cfg)
    cfg.synapse_weights[0, 3, 4] = 20  # the caller edits its configuration in place afterwards
    assert mock.config.synapse_weights[0, 3, 4] == 10
    cfg.arrays()["v_threshold"][7] = 1023  # out of range, in a field that differs from the chip's
    with pytest.raises(hil.ConfigError, match=r"v_threshold\[7\] = 1023"):
        mock.configure(cfg)
    assert mock.config.synapse_weights[0, 3, 4] == 10  # nothing of the refused configuration was applied
    cfg.v_threshold[7] = 600
    mock.configure(cfg)
    assert mock.config == cfg and mock.config.synapse_weights[0, 3, 4] == 20


def test_input_link_overload_drops_and_counts():
    mock = MockChip(seed=1, noise=False)
    cfg = quiet_config()
    route_host(cfg, 0, 0, 0)
    cfg.row_modes[0, 0] = chip.ROW_MODE_EXCITATORY
    cfg.synapse_labels[0, 0, 0] = 1
    cfg.synapse_weights[0, 0, 0] = 1
    mock.configure(cfg)
    label = int(chip.make_label(0, 1, 0))
    burst = np.array([[100, label]] * 1000)  # 1000 events in one tick
    spread = np.column_stack([np.arange(1000) * 4, np.full(1000, label)])  # exactly the link rate
    meas = mock.run(hil.Stimulus.from_trials([burst, spread], 5000))
    assert meas.health.events_dropped_input == 1000 - 64


def test_output_budget_drops_and_counts():
    mock = MockChip(seed=1, noise=False)
    cfg = quiet_config(i_mem_offset=1000, i_bias_leak=1000, refractory_counter=0, v_reset=200)
    mock.configure(cfg)
    cfg.enable_spike_out[:] = True
    mock.configure(cfg)
    meas = mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))], 1000), hil.Recording(spike_counts=True))
    total = int(meas.spike_counts.astype(np.int64).clip(max=255).sum())
    assert meas.health.spikes_dropped_output > 0
    assert meas.spikes.size == 1000 // 4 + 4096
    assert meas.spikes.size + meas.health.spikes_dropped_output >= min(total, 255 * 512) - 1


def test_stimulus_beyond_device_limits_is_rejected():
    mock = MockChip()
    limit = mock.info().limits.max_trials
    mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))] * limit, 10))
    with pytest.raises(hil.ConfigError, match=f"{limit + 1}.*max_trials"):
        mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))] * (limit + 1), 10))


def test_realtime_pace_takes_the_chip_time():
    mock = MockChip(pace="realtime", overhead_s=0.05)
    mock.configure(quiet_config())
    start = time.perf_counter()
    meas = mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))] * 2, 1_250_000))  # 2 x 10 ms
    assert time.perf_counter() - start >= 0.07
    assert meas.provenance.wall_time_s >= 0.07


def test_spike_counters_are_read_only_when_asked():
    mock = MockChip(seed=1, noise=False)
    stim = hil.Stimulus.from_trials([np.zeros((0, 2))], 100)
    assert mock.run(stim).spike_counts is None
    counts = mock.run(stim, hil.Recording(spike_counts=True)).spike_counts
    assert counts.shape == (1, chip.N_NEURONS)


def test_health_counts_the_bytes_the_run_takes_on_the_wire():
    mock = MockChip(seed=9)
    stim = hil.Stimulus.from_trials([np.array([[10, 0x0041], [20, 0x0042]])] * 2 + [np.zeros((0, 2))], 2000)
    rec = hil.Recording(madc_neuron=3, madc_samples=200, cadc_period_s=2e-6, spike_counts=True)
    mock.configure(_routed(_tonic_config()))
    m = mock.run(stim, rec)
    assert m.spikes.size > 0
    assert m.health.bytes_sent == wire.framed_size(wire.Run(stim, rec))
    assert m.health.bytes_received == wire.framed_size(wire.RunReply(m))
    spikes_only = mock.run(stim)
    assert spikes_only.health.bytes_sent == wire.framed_size(wire.Run(stim, hil.Recording()))
    assert spikes_only.health.bytes_received == wire.framed_size(wire.RunReply(spikes_only))
    assert m.health.bytes_received - spikes_only.health.bytes_received > 2 * 3 * 200  # the MADC samples


def _routed(cfg):
    """Host labels 0x0041 and 0x0042 reach neuron 3 (hemisphere 0, driver 1)."""
    route_host(cfg, 0, 0, 0)
    cfg.row_modes[0, 8] = chip.ROW_MODE_EXCITATORY
    cfg.synapse_labels[0, 8, 3] = 1
    cfg.synapse_labels[0, 8, 4] = 2
    cfg.synapse_weights[0, 8, 3:5] = 10
    return cfg
