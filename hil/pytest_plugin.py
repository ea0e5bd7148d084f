"""pytest plugin (entry point ``pytest11``): the device under test for integration tests.

The same test runs unchanged against the deterministic mock (the default), a real chip
(``socket://HOST:PORT``, ``/dev/ttyUSB0``) or a recorded session (``replay://``)::

    def test_input_reaches_the_output(hil_device):
        hil_device.configure(...)
        assert hil_device.run(stimulus).spikes.size > 0

Options (``pytest --help``, group "bss2-hil"):

``--hil-device URL``
    device under test; default :data:`DEFAULT_URL` (ini option ``hil_device``).
    ``replay://DIR`` with a directory replays each test's own recording ``DIR/<test>.hilrec``.
``--hil-record DIR``
    record each test's device session to ``DIR/<test>.hilrec`` (``hil.open(url, record=...)``).

Fixtures: ``hil_device_url`` (session), ``hil_device`` (an open device per test, closed
after it), ``hil_calibration`` (a calibration result for the device, once per session,
through the calibration cache on disk) and ``hil_calibrated_device`` (``hil_device``
configured with that calibration). Marker: ``@pytest.mark.hil_real_chip`` skips a test
unless the device under test is a real chip (not a mock, not a replay of one).
"""

from __future__ import annotations

import pathlib
import re
import urllib.parse

import pytest

DEFAULT_URL = "mock://?seed=0&noise=off"
CALIBRATION_ENTRY_POINTS = "hil.calibration"
"""Entry-point group naming the ``calibrate(device, *, progress, cache)`` the calibrated-chip
fixture uses (this distribution registers ``calibration:calibrate``; ``hil`` never imports it)."""
MOCK_CHIP_PREFIX = "mock-"  # chip ids of the mock chip, also over socket:// and in recordings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bss2-hil", "bss2-hil device under test")
    group.addoption(
        "--hil-device",
        metavar="URL",
        help=f"device URL for the hil_device fixture (default: ini hil_device, else {DEFAULT_URL}); "
        "replay://DIR replays each test's DIR/<test>.hilrec",
    )
    group.addoption(
        "--hil-record", metavar="DIR", type=pathlib.Path, help="record each test's device session to DIR/<test>.hilrec"
    )
    parser.addini("hil_device", "default device URL of the hil_device fixture", default=DEFAULT_URL)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hil_real_chip: needs a real chip; skipped on the mock and on replays of mock sessions"
    )


def _url(config: pytest.Config) -> str:
    return config.getoption("--hil-device") or config.getini("hil_device") or DEFAULT_URL


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("hil_real_chip") and _scheme(_url(item.config)) == "mock":
        pytest.skip(f"needs a real chip; the device under test is {_url(item.config)}")


def recording_name(nodeid: str) -> str:
    """File name of a test's recording: its node id with every run of unsafe characters as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_") + ".hilrec"


def _open(url: str, record_dir: pathlib.Path | None, name: str):
    """Open ``url`` for one test or fixture called ``name``: its own file of a replay
    directory, or recorded into ``record_dir``."""
    import hil

    if _scheme(url) == "replay":
        path = pathlib.Path(urllib.parse.unquote(url[len("replay://") :]))
        if path.is_dir():
            file = path / recording_name(name)
            if not file.exists():
                raise hil.ConfigError(
                    f"--hil-device {url}: no recording {file.name} in {path}; record it with --hil-record"
                )
            url = f"replay://{file}"
    if record_dir is None:
        return hil.open(url)
    record_dir.mkdir(parents=True, exist_ok=True)
    return hil.open(url, record=str(record_dir / recording_name(name)))


def _skip_mock_for_real_chip_tests(request: pytest.FixtureRequest, device) -> None:
    chip_id = device.info().chip_id
    if request.node.get_closest_marker("hil_real_chip") and chip_id.startswith(MOCK_CHIP_PREFIX):
        device.close()
        pytest.skip(f"needs a real chip; the device under test is the mock chip {chip_id}")


@pytest.fixture(scope="session")
def hil_device_url(pytestconfig: pytest.Config) -> str:
    """URL of the device under test (``--hil-device``, ini ``hil_device``, or the deterministic mock)."""
    return _url(pytestconfig)


@pytest.fixture
def hil_device(request: pytest.FixtureRequest, hil_device_url: str):
    """An open ``hil.Device`` for this test (recorded with ``--hil-record``), closed after it."""
    device = _open(hil_device_url, request.config.getoption("--hil-record"), request.node.nodeid)
    _skip_mock_for_real_chip_tests(request, device)
    with device:
        yield device


def _calibrate_function():
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=CALIBRATION_ENTRY_POINTS)}
    if "calibrate" not in found:
        pytest.fail(f"no 'calibrate' entry point in the group {CALIBRATION_ENTRY_POINTS!r}: is bss2-hil installed?")
    return found["calibrate"].load()


@pytest.fixture(scope="session")
def hil_calibration(pytestconfig: pytest.Config, hil_device_url: str):
    """The device's calibration to the default target, computed once per session.

    Normally through the calibration cache on disk (``BSS2_HIL_CACHE``), so a later session
    costs no device runs. Recording or replaying (``--hil-record``, ``replay://DIR``), the
    calibration session itself is recorded and replayed (``session-calibration.hilrec``).
    """
    record_dir = pytestconfig.getoption("--hil-record")
    exact = record_dir is not None or _scheme(hil_device_url) == "replay"
    with _open(hil_device_url, record_dir, "session-calibration") as device:
        return _calibrate_function()(device, progress=False, cache=not exact)


@pytest.fixture
def hil_calibrated_device(hil_device, hil_calibration):
    """``hil_device`` configured with ``hil_calibration`` (calibrated neuron parameters)."""
    hil_device.configure(hil_calibration.apply(chip_id=hil_device.info().chip_id))
    return hil_device
