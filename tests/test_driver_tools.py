"""hil-mock-device and hil-rig (drivers/cli.py, drivers/rig.py) and their tools/ wrappers:
error paths give one stderr line and the hil.cli exit code; the rig serves working chips,
passes the training's exit code on and leaves no server behind."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys

import pytest

import hil
from drivers import rig
from drivers.cli import mock_device_main, rig_main
from hil import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def busy_port():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


@pytest.mark.parametrize("listen", ["127.0.0.1:99999", "127.0.0.1", "[::1]:x"])
def test_mock_device_bad_listen_address_is_a_one_line_usage_error(capsys, listen):
    with pytest.raises(SystemExit) as stop:
        mock_device_main(["--listen", listen])
    assert stop.value.code == cli.EXIT_USAGE
    assert f"--listen {listen!r}: expected HOST:PORT with a port 0..65535" in _one_error_line(capsys)


def test_mock_device_unresolvable_host_is_one_line(capsys):
    assert mock_device_main(["--listen", "nohost.invalid:5555"]) == cli.EXIT_ERROR
    assert "--listen nohost.invalid:5555: cannot resolve the host 'nohost.invalid'" in _one_error_line(capsys)


def test_mock_device_port_in_use_is_one_line(capsys, busy_port):
    assert mock_device_main(["--listen", f"127.0.0.1:{busy_port}"]) == cli.EXIT_ERROR
    assert _one_error_line(capsys) == (
        f"hil-mock-device: error: --listen 127.0.0.1:{busy_port}: the port is in use; "
        "choose another one, or port 0 for a free one"
    )


def test_mock_device_tool_serves_the_chip_of_its_seed_until_sigterm():
    proc = subprocess.Popen(
        [str(ROOT / "tools" / "mock-device"), "--seed", "3", "--noise", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening socket://127.0.0.1:"), proc.stderr.read() if not line else line
        with hil.open(line.split()[1]) as served, hil.open("mock://?seed=3") as local:
            assert served.info().chip_id == local.info().chip_id
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == cli.EXIT_OK


FAKE_TRAINING = (
    "import json, sys, hil; a = sys.argv[1:]; urls = a[a.index('--device') + 1].split(',');"
    "print(json.dumps({'argv': a, 'chips': [hil.open(u).info().chip_id for u in urls]})); sys.exit(7)"
)


def test_rig_serves_the_chips_runs_the_training_and_passes_its_exit_code_on(monkeypatch, capfd):
    monkeypatch.setattr(rig, "train_command", lambda: [sys.executable, "-c", FAKE_TRAINING])
    assert rig_main(["--chips", "2", "--seed0", "5", "--noise", "off", "--", "--epochs", "1"]) == 7
    out = capfd.readouterr().out.splitlines()
    urls = out[0].split(": ")[-1].split(",")
    seen = json.loads(out[1])
    assert seen["argv"] == ["--nproc", "2", "--device", ",".join(urls), "--epochs", "1"]
    expected = []
    for seed in (5, 6):
        with hil.open(f"mock://?seed={seed}") as chip:
            expected.append(chip.info().chip_id)
    assert seen["chips"] == expected
    for url in urls:  # every server is gone
        with pytest.raises(OSError):
            socket.create_connection(tuple(url.removeprefix("socket://").rsplit(":", 1)), timeout=2).close()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--chips", "0"], "--chips 0; allowed: an integer >= 1"),
        (["--chips", "1", "--", "--device", "mock://"], "the rig sets --device and --nproc"),
        (["--chips", "1", "--overhead", "0.1"], "--overhead needs --pace realtime"),
    ],
)
def test_rig_usage_errors(capsys, argv, says):
    with pytest.raises(SystemExit) as stop:
        rig_main(argv)
    assert stop.value.code == cli.EXIT_USAGE
    assert says in _one_error_line(capsys)


def test_rig_tool_stops_its_chips_on_sigterm():
    proc = subprocess.Popen(
        [str(ROOT / "tools" / "rig"), "--chips", "1", "--print-urls"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    assert line.startswith("hil-rig: 1 chip(s): socket://"), proc.stderr.read()
    url = line.split(": ")[-1].strip()
    with hil.open(url) as chip:
        assert chip.info().chip_id.startswith("mock-")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == cli.EXIT_INTERRUPTED
    assert proc.stderr.read().strip() == "hil-rig: interrupted"
    with pytest.raises(OSError):
        socket.create_connection(tuple(url.removeprefix("socket://").rsplit(":", 1)), timeout=2).close()


def test_python_m_drivers_runs_both_programs():
    for program in ("mock-device", "rig"):
        done = subprocess.run(
            [sys.executable, "-m", "drivers", program, "--version"],
            capture_output=True,
            text=True,
            env=rig.child_env(),
            cwd=os.path.dirname(ROOT),
        )
        assert done.returncode == 0 and done.stdout.startswith(f"hil-{program} (bss2-hil) {hil.__version__}")
    assert subprocess.run([sys.executable, "-m", "drivers"], capture_output=True, env=rig.child_env()).returncode == 2
