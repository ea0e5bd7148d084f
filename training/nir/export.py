"""Export: a feed-forward chain of ``Layer`` -> NIR graph Input -> Linear -> CubaLIF -> ... -> Output."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import nir
import numpy as np

from hil.errors import ConfigError

from .network import (
    COPIES,
    CURRENT_JUMP,
    EVENT_CONVENTIONS,
    FORMAT,
    RESERVED_KEYS,
    SCHEMA_VERSION,
    Layer,
    check_metadata,
    check_positive_time,
    copy_matrix,
)
from .silencing import MAX_WEIGHT, silencing_weights

log = logging.getLogger(__name__)

SAFETY = 2.0
"""The self-inhibition written is this factor above the exactness bound (float32 consumers round)."""


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} = {value!r}; allowed: an integer >= 1")
    return value


def _check_chain(layers: Sequence[Layer], input_size: int, duplication: int) -> list[Layer]:
    _positive_int("input_size", input_size)
    _positive_int("input_duplication", duplication)
    layers = list(layers)
    if not layers:
        raise ConfigError("layers is empty; allowed: one or more Layer")
    size, names = input_size * duplication, set()
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ConfigError(f"layers[{i}] is a {type(layer).__name__}; allowed: training.nir.Layer")
        if layer.n_in != size:
            raise ConfigError(
                f"layers[{i}] ({layer.name!r}).weights has shape {layer.weights.shape}; allowed: ({size}, n_out), "
                "n_in = the size of the layer before"
            )
        if layer.name in names:
            raise ConfigError(f"layers[{i}].name = {layer.name!r} is used twice; allowed: unique names")
        names.add(layer.name)
        size = layer.n_out
    return layers


def _graph_metadata(metadata: Mapping, t_max: float, input_max_spikes: int) -> dict:
    meta = check_metadata(metadata)
    clash = sorted(set(meta) & set(RESERVED_KEYS))
    if clash:
        raise ConfigError(f"metadata sets {clash}; these keys are written by the export: {list(RESERVED_KEYS)}")
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "event_convention": CURRENT_JUMP,
        "event_meaning": EVENT_CONVENTIONS[CURRENT_JUMP],
        "time_unit": "s",
        "t_max": t_max,
        "input_max_spikes": input_max_spikes,
        **meta,
    }


def _silencing(layer: Layer, neurons: dict, t_max: float, pre_spikes: int) -> np.ndarray:
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        weights = SAFETY * silencing_weights(layer.weights, neurons, t_max=t_max, pre_spikes=pre_spikes)
    bad = np.flatnonzero(~(weights <= MAX_WEIGHT))
    if bad.size:
        j = int(bad[0])
        raise ConfigError(
            f"layer {layer.name!r} neuron {j}: silencing it for t_max = {t_max!r} s after its first spike needs a "
            f"self-inhibition of {weights[j]:.3g} (tau_mem = {neurons['tau_mem'][j]!r} s, tau_syn = "
            f"{neurons['tau_syn'][j]!r} s); allowed: <= {MAX_WEIGHT:.0e}: shorten t_max"
        )
    # A neuron that cannot fire again still gets a (small) loop, so import sees max_spikes = 1.
    return np.maximum(weights, SAFETY * (neurons["v_th"] - neurons["v_leak"]))


def _cell(layer: Layer, neurons: dict, spike_limit: str) -> nir.CubaLIF:
    ones = np.ones(layer.n_out)
    return nir.CubaLIF(
        tau_syn=neurons["tau_syn"],
        tau_mem=neurons["tau_mem"],
        r=ones,
        v_leak=neurons["v_leak"],
        v_threshold=neurons["v_th"],
        v_reset=neurons["v_reset"],
        w_in=ones.copy(),
        metadata={"t_refrac": neurons["t_refrac"], "max_spikes": layer.max_spikes, "spike_limit": spike_limit},
    )


def _warn_refractory(layer: Layer, neurons: Mapping) -> None:
    log.warning(
        "nir export: layer %r keeps %d spikes with t_refrac up to %.3g s; CubaLIF has no refractory "
        "period, so later spikes of the graph differ from the model's",
        layer.name,
        layer.max_spikes,
        float(neurons["t_refrac"].max()),
    )


def export_network(
    layers: Sequence[Layer],
    *,
    input_size: int,
    metadata: Mapping,
    t_max: float,
    input_max_spikes: int = 1,
    input_duplication: int = 1,
) -> nir.NIRGraph:
    """A NIR graph of a trained feed-forward network.

    layers: the chain from the input to the output; input_size: input neurons; metadata: put in
    the graph's metadata (e.g. chip_id, calibration_id, weight_scale, weight_bits; values str,
    numbers, numeric arrays or mappings of these); t_max: the trial length in seconds the
    behaviour is preserved for; input_max_spikes: spikes per input neuron and trial at most;
    input_duplication: d, every input sent d times with its own weights (the first layer's
    weights are then (input_size * d, n_out), copies of input i in rows i*d .. i*d + d - 1).

    With d > 1 the Input feeds ``input.copies`` (Linear, (input_size * d, input_size), one 1 per
    row) before the first layer's weights, so consumers feed the data's inputs as they are.

    Per layer: ``<name>.weights`` (Linear, weight (n_out, n_in)) -> ``<name>`` (CubaLIF, r = 1,
    w_in = 1, current-jump events; t_refrac, max_spikes in its metadata). Layers with
    max_spikes = 1 get ``<name>.silence`` (Linear, diagonal -W) -> ``<name>.feedback`` (Linear,
    identity) -> ``<name>``: the self-inhibition that ends the neuron's activity after its first
    spike (``training.nir.silencing``). The identity node makes the loop three edges long: the
    snnTorch 1.0 importer rewrites two-edge loops into subgraphs that nirtorch 2.6 cannot wire.
    """
    layers = _check_chain(layers, input_size, input_duplication)
    t_max = check_positive_time("t_max", t_max)
    _positive_int("input_max_spikes", input_max_spikes)
    graph_meta = _graph_metadata(metadata, t_max, input_max_spikes)
    nodes = {"input": nir.Input(input_type=np.array([input_size]))}
    edges = []
    previous, pre_spikes = "input", input_max_spikes
    if input_duplication > 1:
        nodes[COPIES] = nir.Linear(weight=copy_matrix(input_size, input_duplication))
        edges.append(("input", COPIES))
        previous = COPIES
    for layer in layers:
        neurons = layer.neuron_arrays()
        name = layer.name
        nodes[f"{name}.weights"] = nir.Linear(weight=layer.weights.T.copy())
        nodes[name] = _cell(layer, neurons, "self_inhibition" if layer.max_spikes == 1 else "none")
        edges += [(previous, f"{name}.weights"), (f"{name}.weights", name)]
        if layer.max_spikes == 1:
            nodes[f"{name}.silence"] = nir.Linear(weight=np.diag(-_silencing(layer, neurons, t_max, pre_spikes)))
            nodes[f"{name}.feedback"] = nir.Linear(weight=np.eye(layer.n_out))
            edges += [(name, f"{name}.silence"), (f"{name}.silence", f"{name}.feedback"), (f"{name}.feedback", name)]
        elif (neurons["t_refrac"] > 0).any():
            _warn_refractory(layer, neurons)
        previous, pre_spikes = name, layer.max_spikes
    nodes["output"] = nir.Output(output_type=np.array([layers[-1].n_out]))
    edges.append((previous, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph_meta)
