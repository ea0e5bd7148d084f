"""Shared fixtures: one full-chip calibration of the mock chip (seed 11, not used for tuning);
the calibration cache lives in a temporary directory (tests/conftest.py). ``synthetic_result``
builds a small, fully known ``CalibrationResult`` without any device."""

import numpy as np
import pytest

N = 512


@pytest.fixture(scope="session")
def mock_calibration(cache_dir):
    """(device, result) for MockChip(seed=11), calibrated once per session (and cached)."""
    from calibration import calibrate
    from drivers.mock import MockChip

    device = MockChip(seed=11)
    result = calibrate(device, progress=False, cache=True)
    return device, result


def make_synthetic_result(seed=0, **changes):
    """A ``CalibrationResult`` with seeded values: leak 80 + N(0,1), threshold 150 + N(0,1),
    reset 80, channel offsets N(0,1), MADC code = 4.1 V - 3; neuron 5 failed (nan threshold)."""
    import hil
    from calibration import CalibrationResult, CalibrationTarget
    from calibration.measure import AdcScale
    from calibration.target import PARAMETERS

    rng = np.random.default_rng(np.random.SeedSequence(seed))
    target = CalibrationTarget()
    measured = {p: target.per_neuron(p) * (1 + 0.01 * rng.standard_normal(N)) for p in PARAMETERS}
    measured["v_leak"] = 80 + rng.standard_normal(N)
    measured["v_threshold"] = 150 + rng.standard_normal(N)
    measured["v_threshold"][5] = np.nan
    success = {p: np.isfinite(measured["v_threshold"]) for p in PARAMETERS}
    cfg = hil.ChipConfig()
    fields = dict(
        codes={name: np.asarray(getattr(cfg, name)).copy() for name in ("v_leak", "i_bias_leak", "syn_i_bias_dac")},
        measured=measured,
        errors={p: np.full(N, 0.1) for p in PARAMETERS},
        before={p: measured[p] * 1.2 for p in PARAMETERS},
        success=success,
        reasons=np.array(["" if ok else "v_threshold: measurement failed" for ok in success["v_leak"]], dtype=object),
        target=target,
        chip_id="synthetic-chip",
        software_version=hil.__version__,
        timestamp="2026-01-01T00:00:00+00:00",
        wall_time_s=1.5,
        figures={"device_runs": 3, "trials": 12, "chip_time_s": 0.001, "bytes_sent": 0, "bytes_received": 0},
        aux={"drive_codes": np.full(N, 300), "psp_weight": np.array(16), "input_latency_s": np.array(4e-8)},
        adc=AdcScale(rng.standard_normal(N), np.full(N, 0.1), madc_offset=-3.0, madc_gain=4.1),
    )
    fields.update(changes)
    return CalibrationResult(**fields)


@pytest.fixture
def synthetic_result():
    return make_synthetic_result()
