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
