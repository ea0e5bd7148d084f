"""Mock chip readout: MADC spacing, resolution, limits; CADC period and phase; spike tick grid."""

import numpy as np
import pytest

import hil
from drivers.mock import MockChip
from hil import chip

from .conftest import quiet_config


def _chip(**kw):
    mock = MockChip(seed=2, **kw)
    cfg = quiet_config(i_mem_offset=400, refractory_counter=40)
    cfg.i_mem_offset[8:] = 0  # only neurons 0..7 fire (tonic)
    cfg.enable_spike_out[:8] = True
    cfg.enable_readout[:] = True
    mock.configure(cfg)
    return mock


def test_madc_trace_spacing_resolution_and_limits():
    mock = _chip()
    stim = hil.Stimulus.from_trials([np.zeros((0, 2))], 3000)
    meas = mock.run(stim, hil.Recording(madc_neuron=1, madc_samples=chip.MADC_MAX_SAMPLES))
    trace = meas.madc
    assert trace.samples.shape == (1, chip.MADC_MAX_SAMPLES) and trace.samples.dtype == np.uint16
    assert trace.samples.max() <= chip.MADC_MAX
    assert trace.period_s == pytest.approx(1 / 29.4e6)
    assert np.allclose(np.diff(trace.times()), chip.MADC_SAMPLE_PERIOD_S)
    assert len(np.unique(trace.samples)) > 100  # 10-bit resolution of a spiking membrane
    with pytest.raises(hil.ConfigError):
        hil.Recording(madc_neuron=1, madc_samples=chip.MADC_MAX_SAMPLES + 1)
    with pytest.raises(hil.ConfigError, match="one neuron"):
        hil.Recording(madc_neuron=[1, 2], madc_samples=10)


def test_madc_sees_spikes_as_drops_to_reset():
    mock = _chip(noise=False)
    meas = mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))], 3000), hil.Recording(madc_neuron=1, madc_samples=2000))
    p = mock.effective_parameters()
    v = (meas.madc.samples[0] - p["madc_offset"]) / (4 * p["madc_gain"])
    assert v.max() == pytest.approx(p["v_threshold"][1], abs=1.5)
    assert v.min() == pytest.approx(p["v_reset"][1], abs=1.0)


def test_cadc_period_and_random_phase():
    mock = _chip()
    stim = hil.Stimulus.from_trials([np.zeros((0, 2))] * 20, 2500)
    meas = mock.run(stim, hil.Recording(cadc_period_s=2e-6))
    c = meas.cadc
    period = int(np.ceil(2e-6 / chip.TICK_S))
    assert c.samples.shape == (20, c.ticks.shape[1], chip.N_NEURONS) and c.samples.dtype == np.uint8
    assert np.all(np.diff(c.ticks.astype(np.int64), axis=1) == period)
    assert len(set(c.ticks[:, 0].tolist())) > 10  # phase not locked to the stimulus
    assert np.all(c.ticks[:, 0] < period)
    with pytest.raises(hil.ConfigError, match="1.7e-06"):
        hil.Recording(cadc_period_s=1e-6)


def test_cadc_reads_resting_potentials_with_small_offsets():
    mock = MockChip(seed=2, noise=False)
    mock.configure(quiet_config())
    meas = mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))], 1000), hil.Recording(cadc_period_s=1.7e-6))
    p = mock.effective_parameters()
    err = meas.cadc.samples[0].astype(float) - (p["v_leak"] + p["i_offset"])
    assert np.abs(err).max() < 4.5 and 0.3 < err.std() < 2


def test_spikes_on_tick_grid_sorted_by_trial_then_tick():
    mock = _chip()
    meas = mock.run(hil.Stimulus.from_trials([np.zeros((0, 2))] * 4, 2500))
    s = meas.spikes
    assert s.dtype == hil.SPIKE_DTYPE and s.size > 0
    key = s["trial"].astype(np.int64) * 2**40 + s["tick"].astype(np.int64)
    assert np.all(np.diff(key) >= 0)
    assert np.all(s["tick"] < 2500)
    assert set(s["neuron"].tolist()) <= set(range(8))
