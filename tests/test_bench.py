"""tools/bench.py: the cheap cases run in quick mode and report their figures as JSON."""

import json
import pathlib
import subprocess
import sys

import hil

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_quick_bench_cases_report_figures(tmp_path):
    out = tmp_path / "bench.json"
    cases = ["mock.fullchip", "wire.codec", "hil.information"]
    subprocess.run(
        [sys.executable, str(ROOT / "tools/bench.py"), *cases, "--quick", "--repeats", "1", "--out", str(out)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    report = json.loads(out.read_text())
    assert report["machine"]["cpu"] and report["machine"]["cpus"] >= 1
    results = report["results"]
    assert sorted(results) == sorted(cases)
    assert 0 < results["mock.fullchip"]["figures"]["neurons_fired"] <= 1
    codec = results["wire.codec"]["figures"]  # the quick case round-trips 100,000 spikes (checked inside)
    assert codec["spikes"] == 100_000 and codec["bytes"] == 100_000 * hil.SPIKE_DTYPE.itemsize
    info = results["hil.information"]["figures"]
    assert (
        info["dense_bytes_per_step"] > info["eventprop_bytes_per_step"] > 4 * info["spikes_per_trial"] * info["batch"]
    )
    assert (
        info["eventprop_bytes_per_step"] < info["readout_bytes_per_step_needed"] < info["readout_bytes_per_step_sent"]
    )
    assert (
        info["readout_bytes_per_step_needed"] < info["silent_loss_bytes_per_step_needed"] < info["dense_bytes_per_step"]
    )
