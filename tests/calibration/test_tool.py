"""hil-calibrate (``calibration.cli``, ``tools/calibrate``): output, exit codes and messages.
Runs against the session's cached mock calibration (seed 11): no device runs."""

import os
import pathlib
import subprocess
import sys

import pytest

from calibration.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "calibrate"


def run_tool(args, cache_dir, timeout=300):
    env = dict(os.environ, BSS2_HIL_CACHE=str(cache_dir), CI="true")
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def test_tool_run_directly_says_cache_prints_the_table_and_writes_files(mock_calibration, cache_dir, tmp_path):
    _, result = mock_calibration
    out = tmp_path / "cal"
    p = run_tool(["--device", "mock://?seed=11", "--out", str(out), "--plot", str(tmp_path / "plots")], cache_dir)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""  # WARNING by default: no INFO lines burying the table
    first = p.stdout.splitlines()[0]
    assert first == f"chip {result.chip_id}: calibration {result.id} from the cache (no device runs)"
    for name in ("tau_mem", "weight_gain_exc", "v_threshold", "refractory", "device runs", "CADC channel offsets"):
        assert name in p.stdout
    assert out.with_suffix(".json").exists() and out.with_suffix(".npz").exists()
    names = sorted(f.name for f in (tmp_path / "plots").glob("calibration_*.png"))
    assert len(names) == 10 and "calibration_overview.png" in names


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--neurons", "-3"], 2, ["--neurons", "'-3'", "0..511"]),
        (["--neurons", "0-600"], 2, ["--neurons", "out of range"]),
        (["--tau-mem", "x"], 2, ["--tau-mem", "'x' is not a number"]),
        (["--tau-mem", "1.0"], 1, ["--tau-mem 1", "tau_mem", "allowed"]),
        (["--workers", "0"], 2, ["--workers"]),
        (["--device", "bogus://x"], 1, ["bogus"]),
    ],
)
def test_errors_name_the_option_and_exit_with_the_documented_code(args, code, words, capsys):
    assert main([*args, "--no-cache", "-q"]) == code
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    assert "Traceback" not in err
    if code == 1:
        assert len(err.strip().splitlines()) == 1  # one line on stderr


def test_target_file_errors_name_the_file_and_the_parameter(tmp_path, capsys):
    bad = tmp_path / "t.json"
    bad.write_text('{"tau_mem": "x"}')
    assert main(["--target", str(bad), "--no-cache"]) == 1
    err = capsys.readouterr().err
    assert f"--target {bad}" in err and "tau_mem = 'x' is not a number" in err
    bad.write_text("{not json")
    assert main(["--target", str(bad), "--no-cache"]) == 1
    assert "--target" in capsys.readouterr().err


def test_version_and_debug(capsys):
    assert main(["--version"]) == 0
    assert "bss2-hil" in capsys.readouterr().out
    with pytest.raises(Exception, match="bogus"):
        main(["--device", "bogus://x", "--no-cache", "--debug"])  # --debug: the error itself, with its traceback
