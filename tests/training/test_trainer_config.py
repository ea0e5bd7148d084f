import json

import pytest

from hil.errors import ConfigError
from training.config import TrainerConfig


def test_defaults_are_valid_and_round_trip_through_json(tmp_path):
    cfg = TrainerConfig()
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert TrainerConfig.load(path) == cfg


def test_unknown_key_is_named_with_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epochz'\]; known keys: .*'epochs'"):
        TrainerConfig.from_dict({"epochz": 3})


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("epochs", "ten", "an integer >= 1"),
        ("epochs", 0, "an integer >= 1"),
        ("lr", -1.0, "> 0"),
        ("lr", float("nan"), "> 0"),
        ("optimizer", "adamw", "'adam' or 'sgd'"),
        ("batch_size", True, "an integer >= 1"),
        ("gamma", 1.5, "(0, 1]"),
        ("batch_scope", "rank", "'global' or 'per_rank'"),
    ],
)
def test_wrong_values_name_key_value_and_allowed(key, value, allowed):
    with pytest.raises(ConfigError, match=f"TrainerConfig.{key} = ") as err:
        TrainerConfig.from_dict({key: value})
    assert allowed in str(err.value)


def test_overrides_win_and_none_is_ignored():
    cfg = TrainerConfig.from_dict({"epochs": 3, "seed": 1}, epochs=7, seed=None)
    assert cfg.epochs == 7 and cfg.seed == 1


def test_invalid_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{epochs: 3")
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainerConfig.load(path)


@pytest.mark.parametrize(
    "content, match",
    [(None, "no such file"), ("dir", "is a directory"), (b"\xff\xfe{}", "not UTF-8"), (b"[1, 2]", "a JSON object")],
)
def test_unreadable_config_files_name_the_file_and_the_problem(tmp_path, content, match):
    path = tmp_path / "c.json"
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=match) as err:
        TrainerConfig.load(path)
    assert str(path) in str(err.value)


def test_assignments_are_typed_by_the_field():
    from training.config import parse_assignment, with_assignments

    assert parse_assignment("lr=2e-3") == ("lr", 2e-3)
    assert parse_assignment("epochs=3") == ("epochs", 3)
    assert parse_assignment("device=mock://?seed=3&noise=off") == ("device", "mock://?seed=3&noise=off")
    assert parse_assignment("calibration=null") == ("calibration", None)
    assert parse_assignment("calibration=cal.json") == ("calibration", "cal.json")
    config = with_assignments(TrainerConfig(), ["n_hidden=[60, 30]", "max_spikes=[2,1,1]", "lr=1", "lr=0.5"])
    assert config.hidden_sizes == (60, 30) and config.spikes_per_layer == (2, 1, 1) and config.lr == 0.5
    assert isinstance(TrainerConfig.from_dict({"lr": 1}).lr, float)


@pytest.mark.parametrize(
    "text, match",
    [
        ("lr=abc", r"--set lr='abc': not a number.*learning rate \(default 0.001\)"),
        ("lrr=1", "--set lrr: unknown field; known: .*lr"),
        ("epochs", "expected NAME=VALUE"),
        ("epochs=2.5", r"TrainerConfig.epochs = 2.5; allowed: an integer >= 1"),
        ("max_spikes=[1,1,1]", r"max_spikes = \[1, 1, 1\] has 3 entries; allowed: one integer, or 2"),
        ("n_hidden=[40, 0]", "n_hidden"),
    ],
)
def test_bad_assignments_name_the_field(text, match):
    from training.config import with_assignments

    with pytest.raises(ConfigError, match=match):
        with_assignments(TrainerConfig(), [text])
