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


def _bench_module():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import bench
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return bench


def test_figures_of_several_processes_merge_to_medians():
    merge = _bench_module().merge_figures
    merged = merge(
        [
            {"rate": 10.0, "n": 4, "sha": "ab", "ok": True, "inner": {"x": 3.0}, "load": [1.0, 2.0]},
            {"rate": 30.0, "n": 4, "sha": "ab", "ok": False, "inner": {"x": 1.0}, "load": [1.0, 2.0]},
            {"rate": 11.0, "n": 4, "sha": "cd", "ok": True, "inner": {"x": 1.5}, "load": [0.5, 2.0]},
        ]
    )
    assert merged == {
        "rate": 11.0,  # the median, not the mean
        "n": 4,
        "sha": ["ab", "ab", "cd"],  # a disagreement is shown, not hidden
        "ok": [True, False, True],  # booleans are not numbers here
        "inner": {"x": 1.5},
        "load": [[1.0, 2.0], [1.0, 2.0], [0.5, 2.0]],
    }
    assert merge([{"a": 1.0}, {"b": 1.0}]) == [{"a": 1.0}, {"b": 1.0}]


def test_processes_option_reports_medians_over_fresh_processes(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "tools/bench.py"), "wire.codec", "--quick", "--repeats", "1"]
    subprocess.run([*command, "--processes", "3", "--out", str(out)], check=True, timeout=600, capture_output=True)
    report = json.loads(out.read_text())
    assert report["processes"] == 3
    codec = report["results"]["wire.codec"]
    assert len(codec["per_process"]) == len(codec["runs_s"]) == 3
    rates = sorted(p["codec_MB_s"] for p in codec["per_process"])
    assert codec["figures"]["codec_MB_s"] == rates[1] and codec["figures"]["spikes"] == 100_000
    refused = subprocess.run([*command, "--processes", "0"], timeout=600, capture_output=True, text=True)
    assert refused.returncode == 2 and "--processes 0" in refused.stderr
