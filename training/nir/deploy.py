"""A NIR graph as a trainer network: to start a training run from (``initial_weights``) or to
place on a chip and evaluate (``evaluate_graph``).

The graph's layers become the trainer's chain ``hidden0, hidden1, ..., output`` in order, its
weights are expressed in threshold distances (divided by each neuron's ``v_th - v_leak``,
which is 1 for graphs exported here, so their weights come back bit for bit), and its neuron
model is checked against what the run or the chip will use. Every mismatch is a
``ConfigError`` naming the graph's value and the other side's.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch

from hil import chip
from hil.errors import ConfigError
from training.lif import LIFParameters

from ..config import TrainerConfig
from ..datasets import SpikeData, builtin
from ..inference import evaluate_weights
from ..network import Layer as ChainLayer
from ..network import layers as chain_layers
from .files import read
from .importer import import_network
from .network import ImportedNetwork

SPREAD = 0.25
"""Largest relative distance of a neuron's tau_mem / tau_syn from the network's median that one
calibration target (one value per parameter for the whole chip) is taken to meet."""

CLIP_TOLERANCE = 0.1
"""Weights up to this fraction beyond the chip's 63 LSB are clipped (and counted) without ``clip_weights``:
each neuron's weight scale differs from its layer's rounding scale by a few per cent, so a network exported
from one chip holds weights slightly beyond another chip's (or its own) rounding limit."""

BUILTIN_SPLITS = {"yinyang": (5000, 1000), "digits": (1437, 360)}
"""(train, test) sizes of the built-in data sets a graph is evaluated on (their test split)."""


@attrs.frozen(eq=False)
class GraphNetwork:
    """A NIR graph as the trainer holds a network: chain, weights (n_in, n_out) in threshold
    distances, per-layer ``LIFParameters`` (v_th 1, v_leak 0), inputs, duplication, trial length."""

    chain: list[ChainLayer]
    weights: dict[str, np.ndarray]
    lif: dict[str, LIFParameters]
    n_inputs: int
    duplication: int
    t_max: float | None
    metadata: dict


def as_trainer_network(net: ImportedNetwork) -> GraphNetwork:
    """The imported graph in the trainer's names and units."""
    sizes = [layer.n_out for layer in net.layers]
    chain = chain_layers(sizes[:-1], sizes[-1], [layer.max_spikes for layer in net.layers])
    weights, lif = {}, {}
    for mine, layer in zip(chain, net.layers, strict=True):
        n = layer.neuron_arrays()
        theta = n["v_th"] - n["v_leak"]
        weights[mine.name] = layer.weights / theta[None, :]
        lif[mine.name] = LIFParameters(
            tau_mem=torch.as_tensor(n["tau_mem"]),
            tau_syn=torch.as_tensor(n["tau_syn"]),
            v_reset=torch.as_tensor((n["v_reset"] - n["v_leak"]) / theta),
            t_refrac=torch.as_tensor(n["t_refrac"]),
        )
    return GraphNetwork(chain, weights, lif, net.input_size, net.duplication, net.t_max, net.metadata)


def load_graph(graph) -> GraphNetwork:
    """A path to a ``.nir`` file or a ``nir.NIRGraph`` -> ``GraphNetwork``."""
    import nir

    return as_trainer_network(import_network(graph if isinstance(graph, nir.NIRGraph) else read(graph)))


def _median(net: GraphNetwork, field: str) -> float:
    return float(np.median(np.concatenate([getattr(p, field).numpy().ravel() for p in net.lif.values()])))


def check_shape(net: GraphNetwork, config: TrainerConfig, n_inputs: int, n_outputs: int, where: str) -> None:
    """ConfigError naming both sides if the graph's network is not the one ``config`` and the data describe."""
    hidden = [layer.size for layer in net.chain[:-1]]
    spikes = tuple(layer.max_spikes for layer in net.chain)
    pairs = [
        ("inputs", net.n_inputs, "the data's inputs per sample", n_inputs),
        ("input duplication", net.duplication, "TrainerConfig.duplication", config.duplication),
        ("hidden layer sizes", hidden, "TrainerConfig.n_hidden", list(config.hidden_sizes)),
        ("output neurons", net.chain[-1].size, "the data's classes / targets", n_outputs),
        ("max_spikes per layer", list(spikes), "TrainerConfig.max_spikes", list(config.spikes_per_layer)),
    ]
    for what, graph_value, field, value in pairs:
        if graph_value != value:
            raise ConfigError(f"{where}: the graph has {what} {graph_value}; {field} = {value}")
    for field in ("tau_mem", "tau_syn"):
        median, target = _median(net, field), getattr(config, field)
        if abs(median - target) > SPREAD * target:
            raise ConfigError(
                f"{where}: the graph's neurons have {field} {median:.4g} s (median); TrainerConfig.{field} = "
                f"{target:.4g} s (allowed: within {SPREAD:.0%}, the neuron model the weights were trained for)"
            )


def initial_weights(config: TrainerConfig, n_inputs: int, n_outputs: int) -> dict[str, np.ndarray]:
    """Layer -> (n_in, n_out) starting weights from the graph ``config.init_from``, checked against the run."""
    net = load_graph(config.init_from)
    check_shape(net, config, n_inputs, n_outputs, f"TrainerConfig.init_from = {config.init_from!r}")
    return net.weights


def _refuse_uncalibratable(net: GraphNetwork) -> None:
    """ConfigError naming the layer, neuron and parameter a chip's calibration cannot meet."""
    ranges = {"tau_mem": chip.TAU_MEM_RANGE, "tau_syn": chip.TAU_SYN_RANGE, "t_refrac": chip.REFRACTORY_RANGE}
    for layer in net.chain:
        params = net.lif[layer.name]
        fields = ("tau_mem", "tau_syn") + (("t_refrac",) if layer.max_spikes > 1 else ())
        for field in fields:
            values, (low, high) = getattr(params, field).numpy(), ranges[field]
            bad = np.flatnonzero((values < low) | (values > high))
            if bad.size:
                j = int(bad[0])
                raise ConfigError(
                    f"layer {layer.name!r} neuron {j}: {field} = {values[j]:.4g} s; allowed on the chip: "
                    f"{low:g}..{high:g} s (the calibratable range)"
                )
            median = float(np.median(values))
            far = np.flatnonzero(np.abs(values - median) > SPREAD * median) if field != "t_refrac" else []
            if len(far):
                j = int(far[0])
                raise ConfigError(
                    f"layer {layer.name!r} neuron {j}: {field} = {values[j]:.4g} s, the layer's median {median:.4g} s; "
                    f"allowed: within {SPREAD:.0%} (the chip is calibrated to one {field} for all neurons)"
                )
        reset = params.v_reset.numpy()
        if layer.max_spikes > 1 and np.abs(reset).max() > 0.1:
            raise ConfigError(
                f"layer {layer.name!r}: v_reset = {float(reset[np.abs(reset).argmax()]):.3g} threshold distances from "
                "the leak; allowed on the chip: within 0.1 (calibrated to reset at the leak) if max_spikes > 1"
            )


def deploy_config(net: GraphNetwork, device: str, dataset: str, duration_s: float | None = None) -> TrainerConfig:
    """The ``TrainerConfig`` a graph runs with on ``device``: its shape, trial length and neuron model
    (median time constants; the refractory time of its multi-spike layers, else the default)."""
    _refuse_uncalibratable(net)
    if len(net.chain) < 2:
        raise ConfigError("the graph has one layer; allowed: at least one hidden layer before the output layer")
    duration = duration_s if duration_s is not None else net.t_max
    if duration is None:
        raise ConfigError("the graph's metadata has no t_max (trial length); pass duration_s")
    multi = [net.lif[layer.name].t_refrac.numpy() for layer in net.chain if layer.max_spikes > 1]
    train_size, test_size = BUILTIN_SPLITS.get(dataset, (1, 1))
    return TrainerConfig(
        device=device,
        dataset=dataset if dataset in BUILTIN_SPLITS else "custom",
        train_size=train_size,
        test_size=test_size,
        n_hidden=tuple(layer.size for layer in net.chain[:-1]),
        max_spikes=tuple(layer.max_spikes for layer in net.chain),
        duplication=net.duplication,
        duration_s=float(duration),
        tau_mem=_median(net, "tau_mem"),
        tau_syn=_median(net, "tau_syn"),
        **({"t_refrac": float(np.median(np.concatenate(multi)))} if multi else {}),
    )


def _prepare(net: GraphNetwork, clip: bool, clipped: dict):
    """The ``evaluate_weights`` hook: graph parameters in software; on a chip, weights it cannot hold are
    refused beyond ``CLIP_TOLERANCE`` unless ``clip``; ``clipped`` counts per layer what the quantisation clips."""

    def prepare(backend) -> str:
        model = backend.network
        if backend.device is None:
            model.params.update(net.lif)
            return "software: the ideal model with the graph's own per-neuron parameters"
        for name, limit in model.weight_limits().items():
            magnitude = np.abs(net.weights[name])
            clipped[name] = int((magnitude > limit).sum())
            if (magnitude > (1 + CLIP_TOLERANCE) * limit).any() and not clip:
                raise ConfigError(
                    f"layer {name!r}: weight {float(magnitude.max()):.4g} (threshold distances); allowed on chip "
                    f"{backend.chip_id} with calibration {backend.calibration_id}: |w| <= {limit:.4g} (63 LSB, "
                    f"+{CLIP_TOLERANCE:.0%} clipped); {clipped[name]} weights are beyond (to clip them: --clip-weights)"
                )
        return (
            f"chip {backend.chip_id}: calibration {backend.calibration_id} ({backend.calibration_source}) to the "
            "graph's median time constants; weights quantised to 6 bits through it"
            + (f"; clipped to +-63 LSB: {clipped}" if any(clipped.values()) else "")
        )

    return prepare


def evaluate_graph(
    graph, device: str = "software", *, data="yinyang", duration_s=None, clip_weights=False, progress=False
) -> dict:
    """Place a NIR graph (path or ``nir.NIRGraph``) on ``device``, map its weights through the chip's
    calibration (6-bit) and evaluate ``data``: 'yinyang' or 'digits' (their test split), or a
    ``SpikeData`` / ``(inputs, labels)`` pair / ``Dataset``. Returns what ``evaluate_weights`` returns.

    Refused with ``ConfigError`` before the device is touched: unsupported nodes, parameters outside
    the chip's calibratable range or too far from one calibration target; after calibration:
    weights beyond what the chip's 6 bits hold at its weight scale, unless ``clip_weights`` (then the
    result's ``clipped_weights`` counts them per layer).
    """
    net = load_graph(graph)
    name = data if isinstance(data, str) else "custom"
    if isinstance(data, str) and data not in BUILTIN_SPLITS:
        raise ConfigError(f"data = {data!r}; allowed: {', '.join(BUILTIN_SPLITS)} or data given in Python")
    config = deploy_config(net, device, name, duration_s)
    if isinstance(data, str):
        test = builtin(data, config.train_size, config.test_size)[1]
    else:
        test = SpikeData.of(data, n_classes=net.chain[-1].size, name="data")
    clipped = {}
    prepare = _prepare(net, bool(clip_weights), clipped)
    result = evaluate_weights(config, net.chain, net.n_inputs, net.weights, test, prepare=prepare, progress=progress)
    return {**result, "clipped_weights": clipped, "graph_calibration_id": net.metadata.get("calibration_id")}
