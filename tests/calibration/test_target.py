import numpy as np
import pytest

from calibration import CalibrationTarget
from hil import chip
from hil.errors import ConfigError


def test_defaults_are_feasible_and_documented():
    t = CalibrationTarget()
    assert (t.v_leak, t.v_reset, t.v_threshold) == (80.0, 80.0, 150.0)
    assert t.tau_mem == 12e-6 and t.tau_syn_exc == 6e-6 and t.refractory == 30e-6
    assert t.per_neuron("tau_mem").shape == (chip.N_NEURONS,)


@pytest.mark.parametrize(
    "name,value",
    [
        ("v_leak", 10.0),
        ("v_threshold", 300.0),
        ("tau_mem", 100e-6),
        ("tau_syn_exc", 0.1e-6),
        ("refractory", 1e-3),
        ("weight_gain_inh", -1.0),
        ("tau_mem", float("nan")),
    ],
)
def test_out_of_range_names_parameter_value_and_range(name, value):
    with pytest.raises(ConfigError) as err:
        CalibrationTarget(**{name: value})
    msg = str(err.value)
    assert name in msg and "allowed" in msg


def test_per_neuron_arrays_and_bad_shapes():
    tau = np.linspace(8e-6, 16e-6, chip.N_NEURONS)
    t = CalibrationTarget(tau_mem=tau)
    assert np.array_equal(t.per_neuron("tau_mem"), tau)
    with pytest.raises(ConfigError, match="shape"):
        CalibrationTarget(tau_mem=np.ones(3) * 1e-5)
    bad = tau.copy()
    bad[7] = 1.0
    with pytest.raises(ConfigError, match=r"tau_mem\[7\]"):
        CalibrationTarget(tau_mem=bad)


def test_threshold_must_exceed_leak_and_reset():
    with pytest.raises(ConfigError, match="v_threshold - v_leak"):
        CalibrationTarget(v_leak=150.0, v_threshold=150.0)
    with pytest.raises(ConfigError, match="v_threshold - v_reset"):
        CalibrationTarget(v_reset=160.0, v_threshold=150.0)


def test_dict_roundtrip_and_key():
    t = CalibrationTarget(tau_mem=np.full(chip.N_NEURONS, 10e-6), v_leak=70.0)
    u = CalibrationTarget.from_dict(t.to_dict())
    assert u == t and u.key() == t.key()
    assert CalibrationTarget().key() != t.key()
    with pytest.raises(ConfigError, match="unknown"):
        CalibrationTarget.from_dict({"tau_membrane": 1e-5})
