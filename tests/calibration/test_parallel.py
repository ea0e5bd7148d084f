"""Parallel calibration of several chips: one process per device, one result file per chip id."""

import os
import pathlib
import subprocess
import sys

import numpy as np

from calibration import CalibrationResult
from calibration.parallel import calibrate_many

ROOT = pathlib.Path(__file__).resolve().parents[2]


NEURONS = np.arange(16)  # a few neurons per chip keep the two calibrations short


def test_two_mock_chips_in_parallel_give_two_results(tmp_path):
    seen = []
    urls = ["mock://?seed=21", "mock://?seed=22"]
    outcomes = calibrate_many(urls, out_dir=tmp_path, neurons=NEURONS, on_done=seen.append)
    assert all(o.ok for o in outcomes) and len(seen) == 2
    assert outcomes[0].chip_id != outcomes[1].chip_id
    files = sorted(tmp_path.glob("*.json"))
    assert [f.stem for f in files] == sorted(o.chip_id for o in outcomes)
    for o in outcomes:
        assert CalibrationResult.load(o.path).chip_id == o.chip_id


def test_tool_devices_prints_a_line_per_chip_and_reports_failures(tmp_path):
    env = dict(os.environ, CI="true")
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/calibrate"),
            "--devices",
            "mock://?seed=21,mock://?seed=99&bogus=1",
            "--out",
            str(tmp_path),
            "--neurons",
            "0-15",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 1, p.stderr
    lines = p.stdout.splitlines()
    assert any(line.startswith("chip mock-") and "mock://?seed=21" in line for line in lines), p.stdout
    assert any("mock://?seed=99&bogus=1" in line and "FAILED" in line and "bogus" in line for line in lines), p.stdout
    assert len(list(tmp_path.glob("*.json"))) == 1
