"""Noise on: the membrane fluctuates with the documented rms, and a neuron that sat out of the
kernel's per-segment sweep (its noise caught up later) behaves statistically like one kept in it."""

from __future__ import annotations

import numpy as np

import hil
from drivers.mock import MockChip
from hil import chip

from .conftest import quiet_config, route_host

MEMBRANE_RMS = 0.7  # LSB (docs/mock.md)
MADC_NOISE_CODES = 1.5  # rms, codes


def test_resting_membrane_fluctuates_with_the_documented_rms():
    mock = MockChip(seed=21)
    cfg = quiet_config(i_bias_leak=89)  # tau_mem ~ 12 us
    cfg.enable_readout[7] = True
    mock.configure(cfg)
    meas = mock.run(
        hil.Stimulus.from_trials([np.zeros((0, 2))] * 8, 60_000), hil.Recording(madc_neuron=7, madc_samples=60_000)
    )
    truth = mock.effective_parameters()
    v = (meas.madc.samples[:, 10_000::400].astype(float) - truth["madc_offset"]) / (4 * truth["madc_gain"])
    adc = MADC_NOISE_CODES / (4 * truth["madc_gain"])
    rms = np.sqrt(max(v.var() - adc**2 - 1 / 12 / (4 * truth["madc_gain"]) ** 2, 0.0))
    assert abs(rms - MEMBRANE_RMS) < 0.12, rms
    assert abs(v.mean() - truth["v_leak"][7] - truth["i_offset"][7]) < 0.2


def _firing_probability(madc: bool, tick: int, trials: int = 1500) -> float:
    """Neuron 5 gets one input at ``tick`` that makes it fire about half of the time (through the
    membrane and threshold noise); with ``madc`` it is recorded and so never leaves the sweep."""
    mock = MockChip(seed=22)
    cfg = quiet_config(i_bias_leak=89, i_bias_synin_exc_tau=103, i_bias_synin_exc_gm=600, v_leak=269)
    route_host(cfg, 0, 0, 0)
    cfg.row_modes[0, 0] = chip.ROW_MODE_EXCITATORY
    cfg.synapse_labels[0, 0, 5], cfg.synapse_weights[0, 0, 5] = 1, 40
    cfg.enable_spike_out[5] = True
    cfg.enable_readout[5] = True
    mock.configure(cfg)
    truth = mock.effective_parameters()
    q = 40 * truth["weight_gain_exc"][5] * truth["synapse_factor"][0, 0, 5]
    tm, ts = truth["tau_mem"][5], truth["tau_syn_exc"][5]
    peak = q * ts / (ts - tm) * ((tm / ts) ** (-tm / (tm - ts)) - (tm / ts) ** (-ts / (tm - ts)))
    rest = truth["v_leak"][5] + truth["i_offset"][5]
    cfg.v_threshold[5] = _capmem_for(mock, cfg, rest + peak)  # the input just reaches threshold
    mock.configure(cfg)
    stim = hil.Stimulus.from_trials([np.array([[tick, int(chip.make_label(0, 1))]])] * trials, tick + 3000)
    rec = hil.Recording(madc_neuron=5, madc_samples=10) if madc else hil.Recording()
    meas = mock.run(stim, rec)
    return np.unique(meas.spikes["trial"][meas.spikes["neuron"] == 5]).size / trials


def _capmem_for(mock, cfg, target: float) -> int:
    """The ``v_threshold`` CapMem value of neuron 5 closest to ``target`` LSB (bisection on the truth)."""
    lo, hi = 0, chip.CAPMEM_MAX
    while hi - lo > 1:
        mid = (lo + hi) // 2
        cfg.v_threshold[5] = mid
        mock.configure(cfg)
        lo, hi = (mid, hi) if mock.effective_parameters()["v_threshold"][5] < target else (lo, mid)
    return hi


def test_neurons_out_of_the_sweep_keep_the_noise_statistics():
    """Late input (the neuron sat out for ~50 segments; its noise drawn at once) and early input
    (caught up segment by segment) give the same firing probability as a neuron kept in the sweep."""
    n = 1500
    for tick in (250, 2500):
        kept = _firing_probability(True, tick, n)
        out = _firing_probability(False, tick, n)
        assert 0.15 < kept < 0.85, kept  # a noise-sensitive case
        sigma = np.sqrt(2 * kept * (1 - kept) / n)
        assert abs(out - kept) < 4 * sigma, (tick, kept, out)
