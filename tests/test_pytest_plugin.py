"""The bss2-hil pytest plugin (hil/pytest_plugin.py), run on example test files through pytester.

The example test runs unchanged against the deterministic mock, a chip behind socket://
(recorded with --hil-record) and the replay of that recording, with the same spikes.
"""

import json

import pytest

from drivers.mock import MockChip
from drivers.server import Server
from hil.pytest_plugin import DEFAULT_URL, recording_name

EXAMPLE = """
import json, os, pathlib

import numpy as np

import hil


def test_strong_input_makes_the_target_neuron_fire(hil_device):
    placement = hil.place(hil.Network.feedforward(1, [], 1))
    base = hil.ChipConfig(i_bias_synin_exc_gm=1000, syn_i_bias_dac=1000)
    hil_device.configure(placement.config({"input->output": np.full((1, 1), 63.0)}, scale=1.0, base=base))
    measurement = hil_device.run(placement.encode(np.array([[1e-6], [3e-6]]), duration_s=20e-6))
    assert np.isfinite(placement.decode(measurement)["output"]).all()
    pathlib.Path(os.environ["EXAMPLE_OUT"]).write_text(json.dumps(measurement.spikes.tolist()))
"""
EXAMPLE_ID = "test_example.py::test_strong_input_makes_the_target_neuron_fire"


@pytest.fixture
def example(pytester, monkeypatch, tmp_path):
    """The example test file; returns a function running it with options -> (outcomes, spikes)."""
    pytester.makepyfile(test_example=EXAMPLE)
    out = tmp_path / "spikes.json"
    monkeypatch.setenv("EXAMPLE_OUT", str(out))

    def run(*options):
        out.unlink(missing_ok=True)
        result = pytester.runpytest("-p", "no:cacheprovider", *options)
        return result, (json.loads(out.read_text()) if out.exists() else None)

    return run


@pytest.fixture
def mock_server():
    """The default mock chip (seed 0, no noise) served over TCP on loopback."""
    server = Server(MockChip(seed=0, noise=False), host="127.0.0.1", port=0).start()
    yield server.address
    server.stop()


def test_default_device_is_the_deterministic_mock(example):
    first, spikes = example()
    first.assert_outcomes(passed=1)
    assert spikes, "the example fires"
    assert example()[1] == spikes
    assert example("--hil-device", DEFAULT_URL.replace("seed=0", "seed=1"))[1] != spikes


def test_record_over_socket_then_replay_gives_the_same_spikes(example, mock_server, tmp_path):
    on_mock = example()[1]
    recorded, over_socket = example("--hil-device", mock_server, "--hil-record", str(tmp_path / "rec"))
    recorded.assert_outcomes(passed=1)
    assert (tmp_path / "rec" / recording_name(EXAMPLE_ID)).is_file()
    replayed, from_replay = example("--hil-device", f"replay://{tmp_path / 'rec'}")
    replayed.assert_outcomes(passed=1)
    assert on_mock == over_socket == from_replay


def test_record_the_mock_itself_then_replay(example, tmp_path):
    recorded, on_mock = example("--hil-record", str(tmp_path / "rec"))
    recorded.assert_outcomes(passed=1)
    replayed, from_replay = example("--hil-device", f"replay://{tmp_path / 'rec'}")
    replayed.assert_outcomes(passed=1)
    assert on_mock == from_replay


def test_replay_directory_without_the_test_recording_names_the_file(example, tmp_path):
    (tmp_path / "empty").mkdir()
    result, _ = example("--hil-device", f"replay://{tmp_path / 'empty'}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*no recording {recording_name(EXAMPLE_ID)} in*record it with --hil-record*"])


REAL_CHIP_ONLY = """
import pytest


@pytest.mark.hil_real_chip
def test_marked(hil_device):
    pass


@pytest.mark.hil_real_chip
def test_marked_without_device():
    pass


def test_unmarked():
    pass
"""


def test_real_chip_marker_skips_on_the_mock_also_behind_a_socket(pytester, mock_server):
    pytester.makepyfile(test_real=REAL_CHIP_ONLY)
    on_mock = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--strict-markers")
    on_mock.assert_outcomes(passed=1, skipped=2)
    on_mock.stdout.fnmatch_lines(["*needs a real chip; the device under test is mock://*"])
    over_socket = pytester.runpytest("-p", "no:cacheprovider", "-rs", "--hil-device", mock_server)
    over_socket.assert_outcomes(passed=2, skipped=1)  # a socket URL may be a real chip: only the device tells
    over_socket.stdout.fnmatch_lines(["*needs a real chip; the device under test is the mock chip mock-*"])


def test_ini_option_sets_the_default_device(pytester):
    pytester.makeini("[pytest]\nhil_device = mock://?seed=4&noise=off\n")
    pytester.makepyfile(
        test_url="def test_url(hil_device_url):\n    assert hil_device_url == 'mock://?seed=4&noise=off'\n"
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.runpytest("-p", "no:cacheprovider", "--hil-device", "mock://?seed=9").assert_outcomes(failed=1)


CALIBRATED = """
def test_calibrated(hil_calibrated_device, hil_calibration):
    assert hil_calibration.chip_id == hil_calibrated_device.info().chip_id
    assert hil_calibration.success_mask.sum() > 500
"""


@pytest.mark.slow
def test_calibrated_chip_is_calibrated_once_and_then_taken_from_the_disk_cache(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("BSS2_HIL_CACHE", str(tmp_path / "cache"))
    runs = []
    original = MockChip.run
    monkeypatch.setattr(MockChip, "run", lambda self, *a, **k: runs.append(1) or original(self, *a, **k))
    pytester.makepyfile(test_calibrated=CALIBRATED)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert len(runs) > 10, "the first session calibrates through the device"
    assert any((tmp_path / "cache").rglob("*.json")), "and stores the result in the cache on disk"
    runs.clear()
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert runs == [], "a later session takes it from the cache"


CALIBRATION_ID = """
import os, pathlib


def test_calibrated(hil_calibrated_device, hil_calibration):
    pathlib.Path(os.environ["CALIBRATION_OUT"]).write_text(hil_calibration.id)
"""


@pytest.mark.slow
def test_calibration_is_recorded_and_replayed_without_a_device(pytester, monkeypatch, mock_server, tmp_path):
    monkeypatch.setenv("BSS2_HIL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "calibration-id"
    monkeypatch.setenv("CALIBRATION_OUT", str(out))
    pytester.makepyfile(test_calibration_id=CALIBRATION_ID)
    record = ("--hil-device", mock_server, "--hil-record", str(tmp_path / "rec"))
    pytester.runpytest("-p", "no:cacheprovider", *record).assert_outcomes(passed=1)
    recorded = out.read_text()
    assert (tmp_path / "rec" / "session-calibration.hilrec").is_file()
    assert not any((tmp_path / "cache").rglob("*.json")), "recording calibrates through the device, not the cache"
    out.unlink()
    pytester.runpytest("-p", "no:cacheprovider", "--hil-device", f"replay://{tmp_path / 'rec'}").assert_outcomes(
        passed=1
    )
    assert out.read_text() == recorded
