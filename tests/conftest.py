"""Session-wide fixtures: calibration results are cached in a temporary directory, never in
the user's cache, and shared by all tests (and the subprocesses they start) of one session.
The project's own pytest plugin (``hil_device`` and friends) comes through its ``pytest11``
entry point; ``pytester`` runs example test files against it."""

import os

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibration-cache")
    old = os.environ.get("BSS2_HIL_CACHE")
    os.environ["BSS2_HIL_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("BSS2_HIL_CACHE", None)
    else:
        os.environ["BSS2_HIL_CACHE"] = old
