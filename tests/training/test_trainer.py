"""The hardware-in-the-loop trainer on the mock chip: outputs, gradients, resume, bad input."""

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


def final_weights(out_dir):
    return torch.load(pathlib.Path(out_dir) / "checkpoint.pt", weights_only=True)["weights"]


def test_run_writes_report_metrics_checkpoint_and_plots(tmp_path):
    report = Trainer(small(), tmp_path, progress=False).run()
    assert 0.0 <= report["test_accuracy"] <= 1.0 and report["epochs"] == 2
    saved = json.loads((tmp_path / "report.json").read_text())
    assert (
        saved["test_accuracy"] == report["test_accuracy"]
        and saved["calibration_id"]
        and saved["chip_id"].startswith("mock-")
    )
    lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert all(m["bytes_per_step"] > 0 for m in lines)
    for name in ("curves", "raster", "output_times", "weights"):
        path = pathlib.Path(report["plots"][name])
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"


def test_device_gradient_agrees_with_the_ideal_model_without_noise(tmp_path):
    report = Trainer(small(epochs=1, grad_check_batches=3), tmp_path, progress=False).run()
    cos = report["metrics"][0]["grad_cosine"]
    assert cos >= 0.9, cos


def test_resume_after_a_finished_epoch_matches_an_uninterrupted_run(tmp_path):
    whole = Trainer(small(ema_decay=0.9), tmp_path / "a", progress=False).run()
    Trainer(small(epochs=1, ema_decay=0.9), tmp_path / "b", progress=False).run()
    resumed = Trainer(small(ema_decay=0.9), tmp_path / "b", progress=False).run(resume=True)
    a, b = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    avg_a, avg_b = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=True)["weight_average"] for d in "ab")
    assert avg_a["steps"] == avg_b["steps"] == 10
    for x, y in zip(avg_a["sums"], avg_b["sums"]):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert resumed["test_accuracy"] == whole["test_accuracy"]  # evaluated with the same averaged weights
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(l)["epoch"] for l in lines] == [1, 2]


@pytest.mark.slow
def test_killed_mid_epoch_then_resumed_reaches_the_same_weights(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**SMALL, "epochs": 3, "train_size": 600}))
    cmd = [sys.executable, str(ROOT / "tools/train"), "--config", str(config), "--quiet"]
    env = dict(os.environ, CI="true")
    subprocess.run(cmd + ["--out", str(tmp_path / "a")], check=True, env=env, timeout=600)
    proc = subprocess.Popen(cmd + ["--out", str(tmp_path / "b")], env=env)
    ckpt = tmp_path / "b" / "checkpoint.pt"
    deadline = time.time() + 300
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.01)
    assert ckpt.exists(), "no checkpoint appeared"
    proc.send_signal(signal.SIGKILL)  # in the second epoch: an epoch takes far longer than the polling interval
    proc.wait(timeout=30)
    assert torch.load(ckpt, weights_only=True)["epoch"] == 1
    subprocess.run(cmd + ["--out", str(tmp_path / "b"), "--resume"], check=True, env=env, timeout=600)
    a, b = final_weights(tmp_path / "a"), final_weights(tmp_path / "b")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_network_that_does_not_fit_fails_before_any_device_run(mocker, tmp_path):
    opened = mocker.spy(hil, "open")
    with pytest.raises(ResourceError, match="short by"):
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
    assert 0 <= report["test_accuracy"] <= 1


def test_calibration_of_another_chip_is_refused(tmp_path):
    import calibration
    from drivers.mock import MockChip

    other = calibration.calibrate(MockChip(seed=6, noise=False), progress=False, cache=True)
    path = other.save(tmp_path / "other")
    with pytest.raises(CalibrationError, match="for chip"):
        Trainer(small(calibration=str(path)), tmp_path / "run", progress=False).run()


def test_dataset_with_nan_is_refused(monkeypatch, tmp_path):
    from training import data

    original = data.YinYang.__init__

    def poisoned(self, size, seed):
        original(self, size, seed)
        self.x_np[3, 1] = np.nan

    monkeypatch.setattr(data.YinYang, "__init__", poisoned)
    with pytest.raises(ConfigError, match="NaN"):
        Trainer(small(), tmp_path, progress=False)


def test_device_that_stops_answering_keeps_the_checkpoint_and_says_how_to_resume(monkeypatch, tmp_path):
    from drivers.mock import MockChip

    runs = {"n": 0}
    real_run = MockChip.run

    def failing_run(self, stimulus, recording=hil.Recording()):
        runs["n"] += 1
        if runs["n"] > 9:  # epoch 1: 5 train + 2 test runs; fails during epoch 2
            raise DeviceTimeout("socket://127.0.0.1:9: run: no answer after 3 attempts (6.0 s)")
        return real_run(self, stimulus, recording)

    Trainer(small(epochs=1), tmp_path, progress=False).run()  # calibrate (cached) before counting runs
    monkeypatch.setattr(MockChip, "run", failing_run)
    (tmp_path / "checkpoint.pt").unlink()
    with pytest.raises(TrainingInterrupted, match="--resume") as err:
        Trainer(small(epochs=3), tmp_path, progress=False).run()
    assert "epoch 2" in str(err.value)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 1
