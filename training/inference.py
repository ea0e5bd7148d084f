"""Inference from a finished run: load its network and evaluate a data set on a device or in software.

The run's weights are in model units, so they map onto any chip through that chip's own
calibration to the run's neuron model. ``evaluate_run`` says which calibration it used: the
run's own (same chip, same calibration id), or another one, which it uses
(``on_mismatch="recalibrate"``: the chip's calibration to the run's target, from the cache
or calibrated now) or refuses (``"refuse"``: ``CalibrationError`` naming both).
"""

from __future__ import annotations

import torch

import hil
from hil.errors import CalibrationError, ConfigError

from . import datasets, losses
from .backends import open_backend
from .distributed import Group
from .epoch import Loop, evaluate
from .network import hil_network
from .run_files import load_run, load_weights

ON_MISMATCH = ("recalibrate", "refuse")


def evaluate_run(
    run_dir, device: str | None = None, *, data=None, loss=None, on_mismatch="recalibrate", progress=False
):
    """Evaluate the finished run in ``run_dir`` on ``device`` (a URL or 'software'; default: the run's device).

    data: None (the test split of the run's built-in data set) or a ``SpikeData``, an
    ``(inputs, targets)`` pair or a ``Dataset``; loss: needed only for runs with a custom loss.
    Returns test_accuracy, test_loss, silent_trials, samples, chip_id, calibration_id,
    calibration (where it came from), run_calibration_id and ``calibration_note`` (what was done).
    """
    if on_mismatch not in ON_MISMATCH:
        raise ConfigError(f"on_mismatch = {on_mismatch!r}; allowed: {', '.join(ON_MISMATCH)}")
    run = load_run(run_dir)
    config = (
        run.config if device is None else run.config.__class__.from_dict({**run.config.to_dict(), "device": device})
    )
    test = _test_data(config, data, run.layers[-1].layer.size)
    result = evaluate_weights(
        config,
        [t.layer for t in run.layers],
        run.n_inputs,
        run.weights(),
        test,
        loss=loss,
        prepare=lambda backend: _calibration_note(run, backend, on_mismatch),
        progress=progress,
    )
    return {**result, "run_calibration_id": run.calibration_id}


def evaluate_weights(config, chain, n_inputs: int, weights: dict, test, *, loss=None, prepare=None, progress=False):
    """Evaluate model-unit ``weights`` (layer -> (n_in, n_out)) of ``chain`` on ``test`` (``SpikeData``) on
    ``config.device``, which is placed and calibrated to ``config``'s neuron model.

    prepare: called with the open ``Backend`` before the weights are loaded; returns the
    ``calibration_note`` (and may refuse by raising). Returns test_accuracy, test_loss,
    silent_trials, samples, chip_id, calibration_id, calibration (where it came from), calibration_note.
    """
    test.check_fits(n_inputs, chain[-1].size, config.duration_s, "data")
    placement = None if config.software else hil.place(hil_network(n_inputs, config.duplication, chain))
    loss = losses.loss_from_config(config) if loss is None else loss
    generator = torch.Generator().manual_seed(0)
    with open_backend(
        config,
        chain,
        n_inputs,
        placement,
        url=config.device,
        calibration_file=None,
        generator=generator,
        progress=progress,
    ) as backend:
        note = prepare(backend) if prepare is not None else ""
        load_weights(backend.network, weights)
        loop = Loop(
            config, Group.single(), backend.network, None, None, loss, losses.prediction_rule(loss), test, test, 1
        )
        result = evaluate(loop)
    result.pop("output_times")
    return {
        **result,
        "samples": len(test),
        "chip_id": backend.chip_id,
        "calibration_id": backend.calibration_id,
        "calibration": backend.calibration_source,
        "calibration_note": note,
    }


def _test_data(config, data, n_outputs: int) -> datasets.SpikeData:
    if data is not None:
        return datasets.SpikeData.of(data, n_classes=n_outputs, name="data")
    if config.dataset == "custom":
        raise ConfigError("the run was trained on custom data: pass data=(inputs, targets) to evaluate it")
    return datasets.builtin(config.dataset, config.train_size, config.test_size)[1]


def _calibration_note(run, backend, on_mismatch: str) -> str:
    """What the evaluation does about the calibration; ``CalibrationError`` when refusing a mismatch."""
    if backend.device is None:
        return "software: the ideal model with the run's neuron model"
    if backend.calibration_id == run.calibration_id:
        return f"chip {backend.chip_id}: the run's own calibration {run.calibration_id}"
    trained = f"the run was trained with calibration {run.calibration_id} on chip {run.chip_id}"
    here = f"chip {backend.chip_id} has calibration {backend.calibration_id} ({backend.calibration_source})"
    if on_mismatch == "refuse":
        raise CalibrationError(
            f"{here}; {trained}; refused (on_mismatch='refuse'; use 'recalibrate' to map the weights)"
        )
    return f"recalibrated: {here}; {trained}; the model-unit weights map through this chip's calibration"
