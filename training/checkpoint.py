"""The run state a checkpoint holds, written atomically and read back with validation.

``RunState`` is the one list of what a run carries from epoch to epoch (``CHECKPOINT_FIELDS``);
``state_dict``/``load_state_dict`` turn it into the checkpoint's dict and back. ``read`` loads
a checkpoint with ``torch.load(weights_only=True)`` and checks it against the network the run
will build, so a truncated, foreign or mismatched file is refused (``ConfigError`` naming the
file and the problem) before any device is opened.
"""

from __future__ import annotations

import io
import json
import pathlib

import attrs
import torch

from hil.errors import ConfigError
from hil.files import write_atomic

CHECKPOINT_FIELDS = {
    "epoch": "epochs finished",
    "weights": "the network's state_dict: raw weights in model units, 'weights.<layer>' -> (n_in, n_out)",
    "optimizer": "optimizer state_dict",
    "scheduler": "learning-rate scheduler state_dict",
    "weight_average": "moving average of the weights (training.averaging)",
    "rng": "state of the torch generator the weights were drawn from",
    "calibration_ids": "calibration id of every rank's chip (None in software)",
    "metrics": "JSON list of the finished epochs' metrics",
    "config": "JSON of the TrainerConfig",
}


@attrs.define(eq=False)
class RunState:
    """Everything a run carries between epochs (see ``CHECKPOINT_FIELDS``)."""

    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    average: object
    generator: torch.Generator
    config_json: str
    calibration_ids: list
    epoch: int = 0
    history: list = attrs.field(factory=list)

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "weights": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "weight_average": self.average.state_dict(),
            "rng": self.generator.get_state(),
            "calibration_ids": list(self.calibration_ids),
            "metrics": json.dumps(self.history),
            "config": self.config_json,
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from a checkpoint dict that ``read`` accepted (the calibration ids are checked by the caller)."""
        self.network.load_state_dict(state["weights"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.average.load_state_dict(state["weight_average"])
        self.generator.set_state(state["rng"])
        self.history = json.loads(state["metrics"])
        self.epoch = int(state["epoch"])


def save(state: dict, path) -> None:
    """Write ``state`` to ``path`` so that a crash leaves either the old or the new file, never a torn one."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getvalue())


def read(path, weight_shapes: dict[str, tuple[int, int]]) -> dict:
    """A checkpoint dict from ``path``, validated against this run's ``weight_shapes`` (layer -> (n_in, n_out)).

    ``ConfigError`` names the file and what is wrong: missing, unreadable, truncated or not a
    checkpoint, keys missing, or weights of another network shape.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"--resume: no checkpoint at {path}; start without --resume")
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:  # torch raises many types for a torn or foreign file; all mean the same here
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"checkpoint {path}: cannot be read, truncated or not a checkpoint ({first[:200]})") from None
    if not isinstance(state, dict):
        raise ConfigError(f"checkpoint {path}: holds a {type(state).__name__}; expected a checkpoint of tools/train")
    missing = [k for k in CHECKPOINT_FIELDS if k not in state]
    if missing:
        raise ConfigError(
            f"checkpoint {path}: missing {missing}; a checkpoint of tools/train holds {list(CHECKPOINT_FIELDS)}"
        )
    weights = state["weights"]
    expected = {f"weights.{name}": tuple(shape) for name, shape in weight_shapes.items()}
    found = {k: tuple(v.shape) for k, v in weights.items()} if isinstance(weights, dict) else {}
    if found != expected:
        raise ConfigError(
            f"checkpoint {path}: weights {found} do not fit this run's network {expected} "
            "(n_hidden, duplication or the data's inputs and classes differ)"
        )
    try:
        metrics = json.loads(state["metrics"])
        epoch = int(state["epoch"])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"checkpoint {path}: unreadable epoch or metrics ({exc})") from None
    if not isinstance(metrics, list) or epoch != len(metrics):
        raise ConfigError(f"checkpoint {path}: epoch {epoch} but {len(metrics)} epochs of metrics")
    return state
