"""Inference from a finished run: the same chip, another chip (recalibrated or refused), software."""

import pytest

from hil.errors import CalibrationError, ConfigError
from training import evaluate_run, load_run
from training.cli import evaluate_main
from training.config import TrainerConfig
from training.trainer import Trainer

RUN = dict(
    train_size=150,
    test_size=60,
    n_hidden=40,
    batch_size=30,
    epochs=1,
    init_output_mean=0.3,
    device="mock://?seed=5&noise=off",
)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    report = Trainer(TrainerConfig.from_dict(RUN), out, progress=False).run()
    return out, report


def test_another_chip_is_refused_or_recalibrated_with_a_message_that_says_which(finished_run):
    out, report = finished_run
    other = "mock://?seed=6&noise=off"
    with pytest.raises(CalibrationError, match=f"the run was trained with calibration {report['calibration_id']}"):
        evaluate_run(out, other, on_mismatch="refuse")
    result = evaluate_run(out, other)
    assert result["chip_id"] != report["chip_id"] and result["calibration_id"] != report["calibration_id"]
    assert result["calibration_note"].startswith("recalibrated: chip " + result["chip_id"])
    assert result["run_calibration_id"] == report["calibration_id"] and result["samples"] == 60
    with pytest.raises(ConfigError, match="on_mismatch = 'ignore'"):
        evaluate_run(out, other, on_mismatch="ignore")


def test_a_run_evaluates_in_software_and_from_the_command_line(finished_run, capsys):
    out, report = finished_run
    result = evaluate_run(out, "software")
    assert result["chip_id"] is None and result["calibration_note"].startswith("software")
    assert evaluate_main([str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"chip {report['chip_id']}: the run's own calibration {report['calibration_id']}"
    assert f'"test_accuracy": {report["test_accuracy"]}' in printed[1]


def test_loaded_run_has_layers_parameters_and_weights(finished_run):
    out, report = finished_run
    run = load_run(out)
    hidden, output = run.layers
    assert (hidden.weights.shape, output.weights.shape) == ((25, 40), (40, 3))
    assert hidden.hardware.dtype.name == "int8" and abs(int(hidden.hardware.min())) <= 63
    assert float(hidden.lif.tau_mem.mean()) == pytest.approx(12e-6, rel=0.2)  # the calibration target
    assert run.chip_id == report["chip_id"] and run.n_inputs == 5 and run.duplication == 5


def test_custom_data_runs_need_their_data(tmp_path):
    import torch

    data = (torch.full((10, 3), 5e-6), torch.arange(10) % 2)
    config = TrainerConfig(dataset="custom", device="software", duplication=1, n_hidden=4, epochs=1)
    Trainer(config, tmp_path, data=(data, data), progress=False).run()
    with pytest.raises(ConfigError, match="pass data="):
        evaluate_run(tmp_path)
    assert evaluate_run(tmp_path, data=data)["samples"] == 10
