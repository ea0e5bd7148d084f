"""The trainer on the mock chip: outputs, gradients, resume, failures, bad input."""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import hil
from hil.errors import CalibrationError, ConfigError, DeviceTimeout, ResourceError
from training import SpikeData, evaluate_run, load_run
from training.config import TrainerConfig
from training.trainer import Trainer, TrainingInterrupted

ROOT = pathlib.Path(__file__).resolve().parents[2]
SMALL = dict(
    train_size=150,
    test_size=60,
    n_hidden=40,
    batch_size=30,
    epochs=2,
    init_output_mean=0.3,
    device="mock://?seed=5&noise=off",
)


def small(**kw):
    return TrainerConfig.from_dict({**SMALL, **kw})


def checkpoint_of(out_dir):
    return torch.load(pathlib.Path(out_dir) / "checkpoint.pt", weights_only=True)


def assert_same_tensors(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_run_writes_report_metrics_checkpoint_network_and_plots(tmp_path):
    report = Trainer(small(), tmp_path, progress=False).run()
    saved = json.loads((tmp_path / "report.json").read_text())
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2] and saved["epochs"] == 2
    # the final figure is the last epoch's evaluation, and the files agree with what run() returned
    assert saved["test_accuracy"] == report["test_accuracy"] == lines[-1]["test_accuracy"]
    assert saved["chip_id"].startswith("mock-") and saved["calibration"] in ("cache", "calibrated")
    assert [layer["title"] for layer in saved["layers"]] == ["hidden layer 1", "output layer"]
    assert saved["device_totals"]["runs"] > 0 and saved["device_totals"]["trials"] >= 2 * (150 + 60)
    assert json.loads((tmp_path / "config.json").read_text()) == small().to_dict()
    for name in ("curves", "raster", "output_times", "weights"):
        assert pathlib.Path(report["plots"][name]).read_bytes()[:4] == b"\x89PNG"
    # the network files hold the averaged weights the accuracy is for; evaluating them again on the
    # same noise-free chip reproduces the accuracy exactly
    run = load_run(tmp_path)
    assert [t.layer.name for t in run.layers] == ["hidden0", "output"] and run.calibration_id == saved["calibration_id"]
    average = checkpoint_of(tmp_path)["weight_average"]
    for t, s in zip(run.layers, average["sums"], strict=True):
        expected = (s / (1 - average["decay"] ** average["steps"])).float().double().numpy()
        np.testing.assert_array_equal(t.weights, expected)
    again = evaluate_run(tmp_path)
    assert again["test_accuracy"] == report["test_accuracy"] and again["calibration_id"] == run.calibration_id


def test_run_says_whether_it_calibrated_or_used_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BSS2_HIL_CACHE", str(tmp_path / "cache"))
    config = small(epochs=1, train_size=30, test_size=30, device="mock://?seed=8&noise=off")
    first = Trainer(config, tmp_path / "a").run()
    second = Trainer(config, tmp_path / "b").run()
    assert (first["calibration"], second["calibration"]) == ("calibrated", "cache")
    assert first["calibration_id"] == second["calibration_id"]
    out = capsys.readouterr().out
    assert f"chip {first['chip_id']}: calibration {first['calibration_id']} (calibrated now)" in out
    assert f"calibration {first['calibration_id']} (from the cache)" in out


def test_device_gradient_agrees_with_the_ideal_model_without_noise(tmp_path):
    report = Trainer(small(epochs=1, grad_check_batches=3), tmp_path, progress=False).run()
    cos = report["metrics"][0]["grad_cosine"]
    assert cos >= 0.9, cos


def test_resume_after_a_finished_epoch_matches_an_uninterrupted_run(tmp_path):
    whole = Trainer(small(ema_decay=0.9), tmp_path / "a", progress=False).run()
    Trainer(small(epochs=1, ema_decay=0.9), tmp_path / "b", progress=False).run()
    resumed = Trainer(small(ema_decay=0.9), tmp_path / "b", progress=False).run(resume=True)
    a, b = checkpoint_of(tmp_path / "a"), checkpoint_of(tmp_path / "b")
    assert_same_tensors(a["weights"], b["weights"])
    assert a["weight_average"]["steps"] == b["weight_average"]["steps"] == 10
    for x, y in zip(a["weight_average"]["sums"], b["weight_average"]["sums"], strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert resumed["test_accuracy"] == whole["test_accuracy"]  # evaluated with the same averaged weights
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_reaches_the_same_weights(tmp_path):
    """A paced mock (0.5 s per run) makes epoch 2 last >= 10 s: the kill, right after the first
    checkpoint appears, lands inside epoch 2 every time."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**SMALL, "epochs": 3, "train_size": 600}))
    cmd = [sys.executable, str(ROOT / "tools/train"), "--config", str(config), "--quiet"]
    env = dict(os.environ, CI="true")
    subprocess.run(cmd + ["--out", str(tmp_path / "a")], check=True, env=env, timeout=600)
    paced = ["--device", "mock://?seed=5&noise=off&pace=realtime&overhead_s=0.5"]
    proc = subprocess.Popen(cmd + paced + ["--out", str(tmp_path / "b")], env=env)
    ckpt = tmp_path / "b" / "checkpoint.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert checkpoint_of(tmp_path / "b")["epoch"] == 1
    subprocess.run(cmd + ["--out", str(tmp_path / "b"), "--resume"], check=True, env=env, timeout=600)
    a, b = checkpoint_of(tmp_path / "a"), checkpoint_of(tmp_path / "b")
    assert b["epoch"] == 3
    assert_same_tensors(a["weights"], b["weights"])


def test_network_that_does_not_fit_fails_before_any_device_run(mocker, tmp_path):
    opened = mocker.spy(hil, "open")
    with pytest.raises(ResourceError, match=r"'hidden0' \(600 neurons\).*short by.*hidden0 = hidden layer 1"):
        Trainer(small(n_hidden=600), tmp_path, progress=False)
    assert opened.call_count == 0


def test_neurons_that_failed_calibration_are_not_used(tmp_path):
    import calibration
    from drivers.mock import MockChip

    result = calibration.calibrate(MockChip(seed=5, noise=False), progress=False, cache=True)
    for name in ("tau_mem", "v_threshold"):  # neuron 3 (a hidden neuron by default) failed
        result.success[name][3] = False
        result.measured[name][3] = np.nan
    result.save(tmp_path / "cal.json")
    trainer = Trainer(small(epochs=1, calibration=str(tmp_path / "cal.json")), tmp_path / "run", progress=False)
    assert 3 in trainer.placement.used_neurons()
    report = trainer.run()
    assert 3 not in trainer.placement.used_neurons() and trainer.placement.used_neurons().size == 43
    assert report["calibration"] == "file" and report["placement"]["neurons"] == 43


def test_calibration_of_another_chip_is_refused(tmp_path):
    import calibration
    from drivers.mock import MockChip

    other = calibration.calibrate(MockChip(seed=6, noise=False), progress=False, cache=True)
    path = other.save(tmp_path / "other")
    with pytest.raises(CalibrationError, match="for chip"):
        Trainer(small(calibration=str(path)), tmp_path / "run", progress=False).run()


def test_data_with_nan_is_refused_before_any_device(mocker, tmp_path):
    opened = mocker.spy(hil, "open")
    x = torch.full((10, 3), 5e-6)
    x[3, 1] = float("nan")
    data = (x, torch.zeros(10, dtype=torch.int64))
    with pytest.raises(ConfigError, match="train data: input times contain NaN"):
        Trainer(small(dataset="custom"), tmp_path, data=(data, data))
    assert opened.call_count == 0


def test_device_that_stops_answering_keeps_the_checkpoint_and_says_how_to_resume(monkeypatch, tmp_path):
    from drivers.mock import MockChip

    real_run = MockChip.run
    ckpt = tmp_path / "checkpoint.pt"

    def failing_run(self, stimulus, recording=None):
        if ckpt.exists():  # epoch 1 is done and saved: fail in epoch 2
            raise DeviceTimeout("socket://127.0.0.1:9: run: no answer after 3 attempts (6.0 s)")
        return real_run(self, stimulus, recording or hil.Recording())

    monkeypatch.setattr(MockChip, "run", failing_run)
    with pytest.raises(TrainingInterrupted, match="--resume") as err:
        Trainer(small(epochs=3), tmp_path, progress=False).run()
    assert "during epoch 2" in str(err.value) and "checkpoint of epoch 1" in str(err.value)
    assert checkpoint_of(tmp_path)["epoch"] == 1


def test_custom_data_of_the_wrong_shape_is_refused_before_any_device(mocker, tmp_path):
    opened = mocker.spy(hil, "open")
    train = SpikeData.from_tensors(torch.full((8, 4), 5e-6), torch.arange(8) % 2)
    cases = [
        ((train, (torch.full((8, 5), 5e-6), torch.arange(8) % 2)), "test data: 5 inputs per sample; the network has 4"),
        ((train, (torch.full((8, 4), 5e-6), torch.arange(8) % 3)), r"test data: class label 2; allowed: 0..1"),
        ((train, (torch.full((8, 4), 60e-6), torch.arange(8) % 2)), "input spike at 6e-05 s; allowed: before"),
        (((torch.full((8, 4), 5e-6), torch.rand(8, 2, 2)), train), "targets of shape \\(8, 2, 2\\)"),
    ]
    for data, match in cases:
        with pytest.raises(ConfigError, match=match):
            Trainer(small(dataset="custom"), tmp_path, data=data)
    with pytest.raises(ConfigError, match="set dataset='custom'"):
        Trainer(small(), tmp_path, data=(train, train))
    assert opened.call_count == 0
