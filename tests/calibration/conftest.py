"""Shared fixtures: one full-chip calibration of the mock chip (seed 11, not used for tuning),
with the calibration cache in a temporary directory."""
import os

import pytest


def mock_available() -> bool:
    try:
        from drivers.mock import MockChip  # noqa: F401
    except Exception:  # noqa: BLE001 - the mock may not be importable yet
        return False
    return True


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibration-cache")
    old = os.environ.get("BSS2_HIL_CACHE")
    os.environ["BSS2_HIL_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("BSS2_HIL_CACHE", None)
    else:
        os.environ["BSS2_HIL_CACHE"] = old


@pytest.fixture(scope="session")
def mock_calibration(cache_dir):
    """(device, result) for MockChip(seed=11), calibrated once per session (and cached)."""
    if not mock_available():
        pytest.skip("drivers.mock is not available")
    from calibration import calibrate
    from drivers.mock import MockChip

    device = MockChip(seed=11)
    result = calibrate(device, progress=False, cache=True)
    return device, result
