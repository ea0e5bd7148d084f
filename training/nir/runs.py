"""A finished training run as a NIR graph: ``export_run`` and ``write_run`` (``network.nir``).

The graph is the network as the ideal model runs it: per layer the effective weights (on a
chip: the 6-bit hardware weights divided by each neuron's weight scale; in software: the
trained weights) and each neuron's parameters in model units (on a chip: its calibrated
values). The graph metadata says where the run came from (docs/nir.md).
"""

from __future__ import annotations

import json
import pathlib

import nir
import numpy as np

import hil

from ..run_files import NIR_FILE, FinishedRun, load_run
from .export import export_network
from .files import write
from .network import Layer

INPUT_LATENCY = "input_latency_s"
OUTPUT_LAYER = "out"
"""Node key of the output layer ('output' is the graph's Output node); hidden layers keep their names."""


def run_layers(run: FinishedRun) -> list[Layer]:
    """The run's chain as ``training.nir.Layer`` (effective weights, per-neuron parameters, max_spikes)."""
    return [
        Layer(
            OUTPUT_LAYER if i == len(run.layers) - 1 else t.layer.name,
            t.effective,
            t.lif,
            max_spikes=t.layer.max_spikes,
        )
        for i, t in enumerate(run.layers)
    ]


def run_metadata(run: FinishedRun) -> dict:
    """Graph metadata of a run: backend, chip and calibration ids, quantisation, refractory time, input
    latency, the trainer config (as JSON text) and, with output copies, each output neuron's class."""
    meta = {
        "source": "bss2-hil training run",
        "software_version": hil.__version__,
        "backend": "software" if run.chip_id is None else "device",
        "refractory_s": run.config.t_refrac,
        INPUT_LATENCY: run.input_latency_s,
        "input_latency_meaning": "the model adds input_latency_s to every input spike time before the first layer",
        "trainer_config": json.dumps(run.config.to_dict(), sort_keys=True),
    }
    copies = run.config.output_copies
    if copies > 1:
        meta.update(
            output_class=np.arange(run.layers[-1].layer.size) // copies,
            output_grouping=f"{copies} output neurons per class, class-major: neuron j reads class j // {copies}; "
            f"a class's time is the {run.config.output_copies_time} of its neurons' first spikes",
        )
    if run.chip_id is not None:
        meta.update(chip_id=run.chip_id, calibration_id=run.calibration_id)
    if run.weight_scale:
        meta.update(
            weight_bits=run.weight_bits,
            weight_scale={name: float(v) for name, v in run.weight_scale.items()},
            weight_quantisation="hardware weight = clip(round(w * weight_scale[layer]), -63, 63); the graph "
            "holds it divided by each neuron's measured weight scale",
        )
    return meta


def export_run(run) -> nir.NIRGraph:
    """The NIR graph of a finished run (a run directory or a ``FinishedRun``)."""
    run = run if isinstance(run, FinishedRun) else load_run(run)
    return export_network(
        run_layers(run),
        input_size=run.n_inputs,
        metadata=run_metadata(run),
        t_max=run.duration_s,
        input_max_spikes=run.input_max_spikes,
        input_duplication=run.duplication,
    )


def write_run(run_dir) -> pathlib.Path:
    """Write ``network.nir`` of the finished run in ``run_dir``; returns its path."""
    return write(pathlib.Path(run_dir) / NIR_FILE, export_run(run_dir))
