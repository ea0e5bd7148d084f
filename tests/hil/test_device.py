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


def test_replay_of_a_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "missing.hilrec"
    with pytest.raises(hil.ConfigError, match=f"{missing}: cannot read the session recording"):
        hil.open(f"replay://{missing}")


@pytest.mark.parametrize("url", ["socket://127.0.0.1:abc", "socket://127.0.0.1:99999", "socket://:5555", "socket://h"])
def test_a_malformed_socket_url_is_a_config_error_at_once(url):
    with pytest.raises(hil.ConfigError, match="expected socket://HOST:PORT with a port 1..65535"):
        hil.open(url, timeout=5.0, retries=3)  # not a DeviceTimeout after retries


def test_unknown_serial_options_are_named():
    with pytest.raises(hil.ConfigError, match="unknown option.*colour.*allowed: timeout"):
        hil.open("socket://127.0.0.1:9", colour="red")
    with pytest.raises(hil.ConfigError, match="retries = -1"):
        hil.open("socket://127.0.0.1:9", retries=-1)


LIMITS = hil.DeviceLimits(max_trials=4, max_events=10, max_madc_samples=100, max_cadc_samples=6)


@pytest.mark.parametrize(
    "stimulus, recording, field",
    [
        (hil.Stimulus.from_trials([[]] * 5, 100), hil.Recording(), "max_trials"),
        (hil.Stimulus.from_trials([[(i, 1) for i in range(11)]], 100), hil.Recording(), "max_events"),
        (hil.Stimulus.from_trials([[]] * 3, 100), hil.Recording(madc_neuron=1, madc_samples=34), "max_madc_samples"),
        # ceil(duration / 213 ticks) readings per trial, the reply rectangular: 3 trials x 3 = 9 > 6
        (hil.Stimulus.from_trials([[]] * 3, [426, 300, 427]), hil.Recording(cadc_period_s=1.7e-6), "max_cadc_samples"),
    ],
)
def test_device_limits_check_names_the_limit(stimulus, recording, field):
    with pytest.raises(hil.ConfigError, match=rf"^dev: .* exceeds the device limit DeviceLimits\.{field} = "):
        LIMITS.check(stimulus, recording, "dev")


def test_device_limits_check_passes_at_the_limits():
    LIMITS.check(hil.Stimulus.from_trials([[(i, 1) for i in range(10)], [], [], []], 100))
    LIMITS.check(hil.Stimulus.from_trials([[]] * 2, 100), hil.Recording(madc_neuron=1, madc_samples=50))
    LIMITS.check(hil.Stimulus.from_trials([[]] * 3, [426, 300, 426]), hil.Recording(cadc_period_s=1.7e-6))
    with pytest.raises(hil.ConfigError, match="expected hil.Recording"):
        LIMITS.check(hil.Stimulus.from_trials([[]], 10), "spikes")


def test_cancel_is_an_optional_capability():
    class Plain(hil.DeviceBase):
        pass

    class Stoppable(hil.DeviceBase):
        stops = 0

        def cancel(self):
            self.stops += 1

    stoppable = Stoppable()
    assert not hil.device.cancel(Plain()) and hil.device.cancel(stoppable) and stoppable.stops == 1
    assert isinstance(stoppable, hil.device.Cancellable) and not isinstance(Plain(), hil.device.Cancellable)
