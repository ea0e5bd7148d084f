"""voltage_to_model and model_parameters on a synthetic result (every number known)."""

import numpy as np
import pytest

from hil.errors import CalibrationError, ConfigError

from .conftest import make_synthetic_result


def test_cadc_samples_map_through_channel_offsets(synthetic_result):
    r = synthetic_result
    neurons = np.array([0, 7, 300])
    leak, thr, off = (r.measured["v_leak"][neurons], r.measured["v_threshold"][neurons], r.adc.cadc_offset[neurons])
    # codes that read exactly the leak and the threshold on each channel, and the midpoint
    samples = np.stack([leak + off, thr + off, 0.5 * (leak + thr) + off])  # (3 times, 3 neurons)
    out = r.voltage_to_model(samples, neurons, adc="cadc")
    assert out.shape == (3, 3) and out.dtype == np.float64
    np.testing.assert_allclose(out, [[0, 0, 0], [1, 1, 1], [0.5, 0.5, 0.5]], atol=1e-12)
    # "target" normalisation: the target's 70 LSB distance for every neuron
    t = r.voltage_to_model(samples[1:2], neurons, normalization="target")
    np.testing.assert_allclose(t[0], (thr - leak) / 70.0)


def test_madc_trace_maps_through_the_madc_scale(synthetic_result):
    r = synthetic_result
    n = 42
    leak, thr = r.measured["v_leak"][n], r.measured["v_threshold"][n]
    trace = np.array([4.1 * leak - 3.0, 4.1 * thr - 3.0, 4.1 * (leak - 0.25 * (thr - leak)) - 3.0])
    np.testing.assert_allclose(r.voltage_to_model(trace, n, adc="madc"), [0.0, 1.0, -0.25], atol=1e-12)


def test_bad_requests_are_typed_errors(synthetic_result):
    r = synthetic_result
    with pytest.raises(ConfigError, match="adc = 'xadc'"):
        r.voltage_to_model([100], [0], adc="xadc")
    with pytest.raises(ConfigError, match="not a CADC code; allowed: 0..255"):
        r.voltage_to_model([100, 300], [0, 1])
    with pytest.raises(ConfigError, match="allowed: 0..1023"):
        r.voltage_to_model([2000.0], 3, adc="madc")
    with pytest.raises(ConfigError, match="neuron indices 0..511"):
        r.voltage_to_model([100], [512])
    with pytest.raises(ConfigError, match="neuron indices"):
        r.voltage_to_model([100], [1.5])
    with pytest.raises(ConfigError, match="do not broadcast"):
        r.voltage_to_model(np.full((4, 3), 100), [0, 1])
    with pytest.raises(ConfigError, match="normalization"):
        r.voltage_to_model([100], [0], normalization="chip")
    with pytest.raises(CalibrationError, match=r"neurons \[5\] have no calibrated"):
        r.voltage_to_model([100, 100], [4, 5])  # neuron 5's threshold is unknown


def test_madc_without_a_madc_scale_is_refused():
    from calibration.measure import AdcScale

    r = make_synthetic_result(adc=AdcScale(np.zeros(512), np.zeros(512), float("nan"), float("nan")))
    with pytest.raises(CalibrationError, match="no MADC scale"):
        r.voltage_to_model([400], 0, adc="madc")
    np.testing.assert_allclose(r.voltage_to_model([r.measured["v_leak"][0]], [0]), [0.0], atol=1e-12)


def test_model_parameters_use_the_threshold_distance(synthetic_result):
    r = synthetic_result
    mp = r.model_parameters()
    ok = mp.success
    np.testing.assert_allclose(mp.v_th[ok], 1.0)
    dist = r.measured["v_threshold"] - r.measured["v_leak"]
    np.testing.assert_allclose(mp.weight_scale_exc[ok], (dist / r.measured["weight_gain_exc"])[ok])
    np.testing.assert_allclose(mp.v_reset[ok], ((r.measured["v_reset"] - r.measured["v_leak"]) / dist)[ok])
