"""Shared fixtures: one full-chip calibration of the mock chip (seed 11, not used for tuning);
the calibration cache lives in a temporary directory (tests/conftest.py)."""

import pytest


@pytest.fixture(scope="session")
def mock_calibration(cache_dir):
    """(device, result) for MockChip(seed=11), calibrated once per session (and cached)."""
    from calibration import calibrate
    from drivers.mock import MockChip

    device = MockChip(seed=11)
    result = calibrate(device, progress=False, cache=True)
    return device, result
