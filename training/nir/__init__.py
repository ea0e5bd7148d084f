"""Trained networks in and out of NIR, the Neuromorphic Intermediate Representation (PyPI ``nir``).

A feed-forward chain of LIF layers (``Layer``: weights (n_in, n_out) in model units,
``training.lif.LIFParameters``, ``max_spikes``) becomes the NIR graph
Input -> Linear -> CubaLIF -> ... -> Output and back. Layers with ``max_spikes = 1`` carry a
self-inhibition loop that silences each neuron after its first spike for the rest of the
trial, so consumers without a spike limit reproduce the model; see docs/nir.md for the
mapping, the event convention and the exactness condition.

``training.nir.runs`` turns a finished training run into a graph (``network.nir``);
``training.nir.deploy`` turns a graph into a trainer network, to start a run from
(``TrainerConfig.init_from``) or to evaluate on a chip (``evaluate_graph``).

Needs the optional extra ``nir`` (``pip install 'bss2-hil[nir]'``).
"""

from __future__ import annotations

try:
    import nir as _nir  # noqa: F401  (imported for the error message below only)
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("training.nir needs the optional package 'nir': pip install 'bss2-hil[nir]'") from error

from .export import export_network
from .files import read, write
from .importer import import_network
from .network import EVENT_CONVENTIONS, ImportedNetwork, Layer
from .silencing import silencing_weights

__all__ = [
    "EVENT_CONVENTIONS",
    "ImportedNetwork",
    "Layer",
    "export_network",
    "import_network",
    "read",
    "silencing_weights",
    "write",
]
