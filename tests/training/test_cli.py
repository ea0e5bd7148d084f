"""tools/train and tools/evaluate: options, help, and one-line errors with the shared exit codes."""

import json
import pathlib
import subprocess
import sys

import attrs
import pytest
import torch

import hil
from training.cli import evaluate_main, strip_nproc, train_main
from training.config import FIELD_HELP, TrainerConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]


def errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_help_lists_every_config_field_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_:
        train_main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    fields = text.split("config fields (--set")[1].splitlines()
    defaults = TrainerConfig().to_dict()
    for name in FIELD_HELP:
        line = next(line for line in fields if line.strip().startswith(name + " "))
        assert json.dumps(defaults[name]) in line and FIELD_HELP[name] in line, line
    flat = " ".join(text.split())
    assert "--epochs EPOCHS training epochs" in flat and "--seed SEED seed of the initial weights" in flat


def test_print_config_applies_file_then_set_then_flags(tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3, "lr": 0.1, "n_hidden": 50}))
    argv = ["--config", str(path), "--set", "lr=2e-3", "--set", "epochs=4", "--epochs", "7", "--print-config"]
    assert train_main(argv) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {**TrainerConfig().to_dict(), "epochs": 7, "lr": 2e-3, "n_hidden": 50}


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: ["--config", str(p / "missing.json")], "missing.json: no such file"),
        (lambda p: ["--config", str(p)], "is a directory"),
        (lambda p: ["--config", str(p / "latin1.json")], "not UTF-8"),
        (lambda p: ["--out", str(p / "a-file")], "is a file; expected a directory"),
        (lambda p: ["--set", "epochs=zero"], "--set epochs='zero'"),
        (lambda p: ["--out", str(p / "run"), "--resume"], "no checkpoint at"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_1(tmp_path, capsys, make, match):
    (tmp_path / "latin1.json").write_bytes('{"device": "caf\xe9"}'.encode("latin-1"))
    (tmp_path / "a-file").write_text("x")
    assert train_main([*make(tmp_path), "--quiet"]) == 1
    lines = errors(capsys)
    assert len(lines) == 1 and lines[0].startswith("hil-train: error: ") and match in lines[0], lines


def test_missing_replay_file_is_one_line_not_a_traceback(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools/train"),
            "--device",
            f"replay://{tmp_path}/missing.hilrec",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith("hil-train: error: ") and "missing.hilrec" in p.stderr.splitlines()[0]


def _checkpoint_cases(path: pathlib.Path, good: dict) -> dict:
    buffer = path.read_bytes()
    return {
        "empty": (b"", "cannot be read"),
        "truncated": (buffer[: len(buffer) // 2], "cannot be read"),
        "garbage": (b"\x00garbage" * 50, "cannot be read"),
        "no keys": ({"weights": good["weights"]}, "missing ['epoch'"),
        "other shape": (
            {**good, "weights": {"weights.hidden0": torch.zeros(25, 7), "weights.output": torch.zeros(7, 3)}},
            "do not fit this run's network",
        ),
    }


def test_bad_checkpoints_are_refused_before_a_device_is_opened(tmp_path, capsys, mocker):
    import calibration

    config = {"train_size": 30, "test_size": 30, "n_hidden": 8, "epochs": 1, "device": "mock://?seed=5&noise=off"}
    (tmp_path / "c.json").write_text(json.dumps(config))
    good_dir = tmp_path / "good"
    assert train_main(["--config", str(tmp_path / "c.json"), "--out", str(good_dir), "--quiet"]) == 0
    good = torch.load(good_dir / "checkpoint.pt", weights_only=True)
    opened, calibrated = mocker.spy(hil, "open"), mocker.spy(calibration, "calibrate")
    for name, (content, match) in _checkpoint_cases(good_dir / "checkpoint.pt", good).items():
        run = tmp_path / name.replace(" ", "-")
        run.mkdir()
        (run / "config.json").write_text(json.dumps(config))
        if isinstance(content, bytes):
            (run / "checkpoint.pt").write_bytes(content)
        else:
            torch.save(content, run / "checkpoint.pt")
        capsys.readouterr()
        assert train_main(["--out", str(run), "--resume", "--quiet"]) == 1, name
        lines = errors(capsys)
        assert len(lines) == 1 and match in lines[0] and str(run / "checkpoint.pt") in lines[0], (name, lines)
    assert opened.call_count == 0 and calibrated.call_count == 0


def test_checkpoint_holds_exactly_the_run_state_fields(tmp_path):
    from training.checkpoint import CHECKPOINT_FIELDS

    config = TrainerConfig(train_size=30, test_size=30, n_hidden=8, epochs=1, device="software", duplication=1)
    from training.trainer import Trainer

    Trainer(config, tmp_path, progress=False).run()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert list(state) == list(CHECKPOINT_FIELDS)
    assert state["calibration_ids"] == [None] and state["epoch"] == 1
    assert attrs.asdict(TrainerConfig.from_dict(json.loads(state["config"]))) == attrs.asdict(config)


def test_evaluate_of_something_that_is_not_a_run(tmp_path, capsys):
    assert evaluate_main([str(tmp_path)]) == 1
    lines = errors(capsys)
    assert len(lines) == 1 and "network.json is missing" in lines[0]


def test_nproc_is_stripped_from_the_relaunched_arguments():
    assert strip_nproc(["--nproc", "2", "--out", "x", "--nproc=3", "--epochs", "1"]) == ["--out", "x", "--epochs", "1"]
