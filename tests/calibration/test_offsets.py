"""CADC channel offsets and the MADC scale against the fake device (known offsets, MADC = 2 V + 100)."""

import numpy as np
import pytest

import hil
from calibration.measure import estimate_offsets, madc_gain, measure_paired, rest_config
from calibration.session import Session
from hil.errors import CalibrationError

from .fake_device import FakeChip

NEURONS = np.arange(0, 512, 8)  # 64 channels, all quadrants


@pytest.fixture(scope="module")
def paired():
    chip = FakeChip(seed=4)
    s = Session(chip)
    low = rest_config(hil.ChipConfig(v_leak=250))  # ~80 LSB
    high = rest_config(hil.ChipConfig(v_leak=550))  # ~140 LSB
    levels = [measure_paired(s, low, int(n), n_trials=4, duration_s=20e-6) for n in NEURONS]
    refs = [0, 128, 256, 384]
    highs = [measure_paired(s, high, n, n_trials=4, duration_s=20e-6) for n in refs]
    return chip, levels, [levels[int(np.flatnonzero(NEURONS == n)[0])] for n in refs], highs, s


def test_madc_gain_and_offsets_match_the_device(paired):
    chip, levels, low, high, session = paired
    gain = madc_gain(low, high)
    assert gain == pytest.approx(2.0, rel=0.01)
    scale = estimate_offsets(levels, gain)
    truth = chip.cadc_offset[NEURONS] - chip.cadc_offset[NEURONS].mean()  # the convention: mean offset 0
    est, err = scale.cadc_offset[NEURONS], scale.cadc_offset_err[NEURONS]
    assert np.std(est - truth) < 0.15  # the offsets themselves spread by 1 LSB
    z = (est - truth) / err  # the reported errors are honest
    assert np.abs(z).max() < 4 and 0.6 < z.std() < 1.5
    assert np.all(np.isnan(np.delete(scale.cadc_offset, NEURONS)))  # unmeasured channels stay unknown
    # MADC code = 2 V + 100 with V the true potential; in the mean-offset convention V' = V + mean(offset)
    assert scale.madc_offset == pytest.approx(100 - 2 * chip.cadc_offset[NEURONS].mean(), abs=0.5)
    assert np.all(err < 0.2)
    assert session.runs == NEURONS.size + 4


def test_offsets_need_two_levels_and_paired_data(paired):
    _, levels, low, _, _ = paired
    with pytest.raises(CalibrationError, match="two distinct resting levels"):
        madc_gain(low, low)
    empty = [attr_evolve_empty(lv) for lv in levels]
    with pytest.raises(CalibrationError, match="no neuron gave paired"):
        estimate_offsets(empty, 2.0)


def attr_evolve_empty(level):
    import attrs

    return attrs.evolve(level, pairs=0, cadc=np.nan, madc=np.nan)


def test_a_firing_neuron_gives_no_pairs():
    chip = FakeChip(seed=5)
    cfg = rest_config(hil.ChipConfig(v_leak=250), v_threshold=0)  # threshold below rest: the neuron fires
    lv = measure_paired(Session(chip), cfg, 3, n_trials=1, duration_s=10e-6)
    assert lv.pairs == 0 and np.isnan(lv.cadc)
