import pytest

import hil


def test_unknown_scheme_names_installed_schemes():
    with pytest.raises(hil.HilError, match=r"no driver for URL scheme 'nope'.*installed schemes: .*mock"):
        hil.open("nope://x")


def test_bad_url_is_rejected():
    with pytest.raises(hil.HilError, match="expected a device URL"):
        hil.open("")


def test_entry_points_cover_the_transports():
    assert {"mock", "serial", "socket", "loop", "spy", "replay"} <= set(hil.installed_drivers())


def test_error_hierarchy():
    for cls in (
        hil.ConfigError,
        hil.ResourceError,
        hil.ProtocolError,
        hil.DeviceTimeout,
        hil.DeviceError,
        hil.CalibrationError,
    ):
        assert issubclass(cls, hil.HilError)
    assert issubclass(hil.ConfigError, ValueError)


def test_logging_json_lines(capsys):
    import io
    import json

    stream = io.StringIO()
    hil.logging.configure(json=True, stream=stream)
    try:
        hil.logging.get_logger("t").info("run", trials=3)
        record = json.loads(stream.getvalue().strip())
        assert record["event"] == "run" and record["trials"] == 3 and record["level"] == "info"
    finally:
        hil.logging.configure(level="WARNING")
