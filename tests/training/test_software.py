"""The software backend (the ideal model) in the one training loop: no device, reproducible, learns."""

import json

import numpy as np
import pytest
import torch

import hil
from training import load_run
from training.config import TrainerConfig
from training.trainer import Trainer

SOFTWARE = dict(
    device="software",
    duplication=1,
    train_size=300,
    test_size=300,
    n_hidden=30,
    batch_size=20,
    epochs=4,
    init_hidden_mean=1.5,
    init_hidden_std=1.5,
    init_output_mean=0.3,
    lr=5e-3,
    ema_decay=0.9,
)


def test_software_runs_open_no_device_and_are_reproducible_from_the_seed(tmp_path, mocker):
    opened = mocker.spy(hil, "open")
    config = TrainerConfig.from_dict({**SOFTWARE, "epochs": 1, "train_size": 60, "test_size": 30})
    a = Trainer(config, tmp_path / "a", progress=False).run()
    b = Trainer(config, tmp_path / "b", progress=False).run()
    Trainer(TrainerConfig.from_dict({**config.to_dict(), "seed": 1}), tmp_path / "c", progress=False).run()
    assert opened.call_count == 0
    assert a["backend"] == "software" and a["chip_id"] is None and a["calibration"] is None
    wa, wb, wc = (load_run(tmp_path / d).weights() for d in "abc")
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name])
    assert not np.array_equal(wa["hidden0"], wc["hidden0"])
    assert a["test_accuracy"] == b["test_accuracy"]
    assert all(m["bytes_per_step"] == 0 and m["grad_cosine"] is None for m in a["metrics"])


def test_software_backend_learns_yin_yang_well_past_chance(tmp_path):
    report = Trainer(TrainerConfig.from_dict(SOFTWARE), tmp_path, progress=False).run()
    assert report["test_accuracy"] >= 0.6, report["test_accuracy"]  # chance: 1/3
    history = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


@pytest.mark.slow
def test_software_resume_matches_an_uninterrupted_run(tmp_path):
    config = TrainerConfig.from_dict({**SOFTWARE, "epochs": 2})
    Trainer(config, tmp_path / "a", progress=False).run()
    Trainer(TrainerConfig.from_dict({**SOFTWARE, "epochs": 1}), tmp_path / "b", progress=False).run()
    Trainer(config, tmp_path / "b", progress=False).run(resume=True)
    a, b = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=True)["weights"] for d in "ab")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
