"""tools/calibrate as a program (served from the session's calibration cache: no device runs)."""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "calibrate"


def run_tool(args, cache_dir, timeout=300):
    env = dict(os.environ, BSS2_HIL_CACHE=str(cache_dir), CI="true")
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


def test_tool_table_out_and_plots(mock_calibration, cache_dir, tmp_path):
    _, result = mock_calibration
    out = tmp_path / "cal"
    p = run_tool(["--device", "mock://?seed=11", "--out", str(out), "--plot", str(tmp_path / "plots")], cache_dir)
    assert p.returncode == 0, p.stderr
    assert result.id in p.stdout
    for name in ("tau_mem", "weight_gain_exc", "v_threshold", "refractory"):
        assert name in p.stdout
    assert "device runs" in p.stdout
    assert out.with_suffix(".json").exists() and out.with_suffix(".npz").exists()
    assert len(list((tmp_path / "plots").glob("calibration_*.png"))) == 9


def test_tool_rejects_bad_target_with_message(cache_dir, tmp_path):
    p = run_tool(["--tau-mem", "1.0", "--no-cache"], cache_dir)
    assert p.returncode == 1
    assert "tau_mem" in p.stderr and "allowed" in p.stderr
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    p = run_tool(["--target", str(bad), "--no-cache"], cache_dir)
    assert p.returncode == 1 and "--target" in p.stderr


def test_tool_reports_unknown_device(cache_dir):
    p = run_tool(["--device", "bogus://x", "--no-cache"], cache_dir)
    assert p.returncode == 1 and "bogus" in p.stderr
