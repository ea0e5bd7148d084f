"""Measurements against the fake device (a numpy LIF with known parameters)."""

import numpy as np
import pytest

import hil
from calibration import measure as M
from calibration.session import Session
from hil.errors import CalibrationError

from .fake_device import FakeChip


@pytest.fixture(scope="module")
def chip():
    return FakeChip(seed=3)


def base_config():
    # mid-range codes of the fake: leak ~ 80 LSB, tau_mem ~ 12 us, tau_syn ~ 6 us, gain ~ 1
    return hil.ChipConfig(
        v_leak=250,
        v_reset=250,
        v_threshold=460,
        i_bias_leak=247,
        i_bias_synin_exc_tau=313,
        i_bias_synin_inh_tau=313,
        i_bias_synin_exc_gm=300,
        i_bias_synin_inh_gm=300,
        refractory_counter=125,
        refractory_clock_scale=2,
    )


def test_rest_matches_truth_up_to_cadc_offsets(chip):
    s = Session(chip)
    cfg = M.rest_config(base_config())
    r = M.measure_rest(s, cfg)
    truth = chip.truth(cfg)
    err = r.mean - (truth["v_leak"] + chip.cadc_offset)
    assert r.valid.all() and np.abs(err).max() < 0.8
    assert s.runs == 1 and s.chip_time_s == pytest.approx(4 * 60e-6)


def test_spiking_measures_reset_threshold_tau_and_refractory(chip):
    s = Session(chip)
    cfg = M.spiking_config(base_config(), 400)  # drive ~ v_leak + 120 LSB
    drive = M.measure_drive(s, cfg)
    sp = M.measure_spiking(s, cfg, drive.mean, n_trials=4, duration_s=80e-6)
    t = chip.truth(cfg)
    ok = sp.valid
    assert ok.mean() > 0.95
    assert np.median(np.abs(sp.tau_mem[ok] / t["tau_mem"][ok] - 1)) < 0.03
    assert np.median(np.abs(sp.v_reset[ok] - t["v_reset"][ok] - chip.cadc_offset[ok])) < 1.0
    assert np.median(np.abs(sp.v_threshold[ok] - t["v_threshold"][ok] - chip.cadc_offset[ok])) < 1.5
    assert np.median(np.abs(sp.refractory[ok] / t["refractory"][ok] - 1)) < 0.1
    assert np.all(np.isfinite(sp.tau_mem_err[ok]))


def test_psp_measures_tau_syn_and_gain(chip):
    s = Session(chip)
    setup = M.SynapseSetup(n_drivers=4, weight=32)
    cfg = M.psp_config(base_config(), setup)
    t = chip.truth(cfg)
    out = M.measure_psp(s, cfg, setup, t["tau_mem"], latency_s=chip.latency, n_trials=2, n_bursts=3, interval_s=60e-6)
    for sign in ("exc", "inh"):
        p = out[sign]
        assert p.valid.mean() > 0.95
        assert np.median(np.abs(p.tau_syn[p.valid] / t[f"tau_syn_{sign}"][p.valid] - 1)) < 0.05
        assert np.median(np.abs(p.gain[p.valid] / t[f"weight_gain_{sign}"][p.valid] - 1)) < 0.05


def test_dead_neuron_is_flagged_not_guessed():
    chip = FakeChip(seed=4, dead=[5, 77])
    s = Session(chip)
    cfg = M.spiking_config(base_config(), 400)
    sp = M.measure_spiking(s, cfg, M.measure_drive(s, cfg).mean, n_trials=2, duration_s=60e-6)
    for n in (5, 77):
        assert not sp.valid[n] and np.isnan(sp.tau_mem[n]) and "no spikes" in sp.reasons[n]
    assert sp.valid.sum() > 480


def test_silent_device_gives_reasons_for_every_neuron():
    chip = FakeChip(seed=5, silent=True)
    s = Session(chip)
    cfg = M.spiking_config(base_config(), 400)
    sp = M.measure_spiking(s, cfg, None, n_trials=2, duration_s=40e-6)
    assert not sp.valid.any() and all("no spikes" in r for r in sp.reasons)


class NoCadc(FakeChip):
    def run(self, stimulus, recording=None):
        recording = recording or hil.Recording()
        m = super().run(stimulus, hil.Recording(spikes=recording.spikes))
        return m


def test_device_without_cadc_raises_clear_error():
    s = Session(NoCadc(seed=6))
    with pytest.raises(CalibrationError, match="no CADC samples"):
        M.measure_rest(s, M.rest_config(base_config()))


def test_rest_flags_neurons_that_fire():
    chip = FakeChip(seed=7)
    cfg = M.rest_config(base_config(), v_threshold=0)  # threshold below everything: neurons fire
    r = M.measure_rest(Session(chip), cfg, n_trials=1, duration_s=20e-6)
    assert not r.valid.any() and "fired" in r.reasons[0]
