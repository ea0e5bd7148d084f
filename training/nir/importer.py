"""Import: a NIR graph Input -> Linear|Affine -> CubaLIF -> ... -> Output -> ``ImportedNetwork``."""

from __future__ import annotations

import nir
import numpy as np
import torch

from hil.errors import ConfigError
from training.lif import LIFParameters

from .network import DIRAC, EVENT_CONVENTIONS, ImportedNetwork, Layer, check_positive_time, copy_matrix, plain
from .silencing import silencing_weights

SUPPORTED = (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.CubaLIF)
CHAIN = (
    "Input [-> Linear copies] -> Linear|Affine -> CubaLIF -> ... -> Output "
    "(CubaLIF optionally with a self-inhibition loop)"
)
CELL_FIELDS = ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")


def _kind(node) -> str:
    return type(node).__name__


def _matrix(key: str, node) -> np.ndarray:
    """Weight (out, in) of a Linear or zero-bias Affine node."""
    weight = np.asarray(node.weight, dtype=np.float64)
    if weight.ndim != 2 or not np.isfinite(weight).all():
        raise ConfigError(
            f"NIR node {key!r} ({_kind(node)}): weight has shape {weight.shape}; allowed: finite (out, in)"
        )
    if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0):
        raise ConfigError(f"NIR node {key!r} (Affine): bias is not zero; allowed: zero (the model has no bias current)")
    return weight


def _cell_arrays(key: str, node: nir.CubaLIF, n: int) -> dict[str, np.ndarray]:
    out = {}
    for field in CELL_FIELDS:
        value = np.asarray(getattr(node, field), dtype=np.float64)
        if value.shape not in ((), (n,)):
            raise ConfigError(f"NIR node {key!r} (CubaLIF): {field} has shape {value.shape}; allowed: () or ({n},)")
        if not np.isfinite(value).all():
            raise ConfigError(f"NIR node {key!r} (CubaLIF): {field} is not finite; allowed: finite values")
        out[field] = np.broadcast_to(value, (n,)).copy()
    for field in ("tau_syn", "tau_mem", "r", "w_in"):
        if not (out[field] > 0).all():
            raise ConfigError(f"NIR node {key!r} (CubaLIF): {field} = {out[field].min()!r}; allowed: > 0")
    return out


def _adjacency(graph: nir.NIRGraph) -> tuple[dict, dict]:
    succ = {k: [] for k in graph.nodes}
    pred = {k: [] for k in graph.nodes}
    for a, b in graph.edges:
        succ[a].append(b)
        pred[b].append(a)
    return succ, pred


def _loop(graph: nir.NIRGraph, succ: dict, cell: str) -> tuple[list[str], list[str]]:
    """(feedback path of Linear/Affine nodes from ``cell`` back to it or [], forward successors)."""
    loop, forward = [], []
    for start in succ[cell]:
        path, key = [], start
        while isinstance(graph.nodes[key], (nir.Linear, nir.Affine)) and len(succ[key]) == 1 and key not in path:
            path.append(key)
            key = succ[key][0]
        if key == cell and path:
            if loop:
                raise ConfigError(f"NIR node {cell!r} (CubaLIF) has two feedback loops; allowed: {CHAIN}")
            loop = path
        else:
            forward.append(start)
    return loop, forward


def _max_spikes(key, node, loop, neurons, weights, *, t_max, pre_spikes, default) -> int:
    """1 for a verified self-inhibition loop; else the node's metadata max_spikes or ``default``."""
    stated = plain(node.metadata or {}).get("max_spikes")
    if loop:
        m = loop[-1]
        if stated not in (None, 1):
            raise ConfigError(f"NIR node {key!r}: metadata max_spikes = {stated!r} but it has a self-inhibition loop")
        if t_max is None:
            raise ConfigError(f"NIR node {key!r} has a feedback loop via {loop}; the graph metadata has no t_max")
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            need = silencing_weights(weights, neurons, t_max=t_max, pre_spikes=pre_spikes)
        short = np.flatnonzero(~(neurons["inhibition"] >= need))
        if short.size:
            j = int(short[0])
            raise ConfigError(
                f"NIR node {m!r}: weight (feedback of {key!r}) inhibits neuron {j} by {neurons['inhibition'][j]!r}; "
                f"allowed: recurrent weights only as a self-inhibition >= {need[j]:.6g} that ends the neuron's "
                f"activity after its first spike within t_max = {t_max!r} s"
            )
        return 1
    value = stated if stated is not None else default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"NIR node {key!r} (CubaLIF): max_spikes = {value!r} (node metadata or import_network(max_spikes=)); "
            "allowed: an integer >= 1 (CubaLIF has no spike limit: say how many spikes the model keeps)"
        )
    return value


def _feedback(graph, key: str, loop: list[str], n: int, factor: np.ndarray) -> np.ndarray:
    """Inhibitory current jump (n,) of a feedback loop, checked diagonal and negative."""
    product = np.eye(n)
    for k in loop:
        matrix = _matrix(k, graph.nodes[k])
        if matrix.shape != (n, n):
            raise ConfigError(
                f"NIR node {k!r} (feedback of {key!r}): weight has shape {matrix.shape}; allowed: ({n}, {n})"
            )
        product = matrix @ product
    diagonal = np.diag(product)
    if np.any(product - np.diag(diagonal) != 0) or not (diagonal < 0).all():
        raise ConfigError(
            f"NIR node {loop[0]!r}: weight of the feedback loop of {key!r} is not diagonal and negative; "
            "allowed: recurrent weights only as a self-inhibition (diagonal, < 0)"
        )
    return -diagonal * factor


def _layer(graph, key, w_key, loop, size, *, convention, t_max, pre_spikes, default) -> Layer:
    node = graph.nodes[key]
    matrix = _matrix(w_key, graph.nodes[w_key])
    if matrix.shape[1] != size:
        raise ConfigError(f"NIR node {w_key!r}: weight has shape {matrix.shape}; allowed: (n_out, {size})")
    n = matrix.shape[0]
    cell = _cell_arrays(key, node, n)
    factor = cell["r"] * cell["w_in"] / (cell["tau_syn"] if convention == DIRAC else 1.0)
    weights = matrix.T * factor[None, :]
    t_refrac = np.asarray(plain(node.metadata or {}).get("t_refrac", 0.0), dtype=np.float64)
    neurons = {
        "tau_mem": cell["tau_mem"],
        "tau_syn": cell["tau_syn"],
        "v_th": cell["v_threshold"],
        "v_leak": cell["v_leak"],
        "v_reset": cell["v_reset"],
    }
    try:
        params = LIFParameters(
            **{name: torch.as_tensor(value) for name, value in neurons.items()},
            t_refrac=torch.as_tensor(np.broadcast_to(t_refrac, (n,)).copy()),
        )
    except ValueError as error:
        raise ConfigError(f"NIR node {key!r} (CubaLIF): {error}") from error
    if loop:
        neurons["inhibition"] = _feedback(graph, key, loop, n, factor)
    k = _max_spikes(key, node, loop, neurons, weights, t_max=t_max, pre_spikes=pre_spikes, default=default)
    return Layer(name=key, weights=weights, params=params, max_spikes=k)


def _convention(meta: dict, event_convention: str | None) -> str:
    stated = meta.get("event_convention")
    chosen = event_convention if event_convention is not None else stated
    if chosen not in EVENT_CONVENTIONS:
        raise ConfigError(
            f"event convention = {chosen!r} (graph metadata['event_convention'] or import_network(event_convention=)); "
            f"allowed: {sorted(EVENT_CONVENTIONS)}"
        )
    if stated is not None and stated != chosen:
        raise ConfigError(f"event_convention = {chosen!r} contradicts the graph metadata's {stated!r}")
    return chosen


def _endpoint(graph, kind) -> str:
    keys = [k for k, node in graph.nodes.items() if isinstance(node, kind)]
    if len(keys) != 1:
        raise ConfigError(f"NIR graph has {len(keys)} {kind.__name__} nodes {keys}; allowed: exactly one")
    return keys[0]


def _input_size(key: str, node: nir.Input) -> int:
    shape = np.asarray(list(node.input_type.values())[0]).ravel()
    if shape.size != 1:
        raise ConfigError(f"NIR node {key!r} (Input): shape {shape.tolist()}; allowed: one dimension")
    return int(shape[0])


def _duplication(graph, succ: dict, key: str, size: int) -> tuple[int, str | None]:
    """(d, key of the copy node) if the Input feeds a Linear that copies every input d times into
    the first layer's weights; (1, None) if the Input feeds the weights directly."""
    nxt = succ[key]
    if len(nxt) != 1 or len(succ[nxt[0]]) != 1:
        return 1, None
    node, after = graph.nodes[nxt[0]], graph.nodes[succ[nxt[0]][0]]
    if not (isinstance(node, (nir.Linear, nir.Affine)) and isinstance(after, (nir.Linear, nir.Affine))):
        return 1, None
    weight = _matrix(nxt[0], node)
    d = weight.shape[0] // size
    if weight.shape[1] != size or d < 1 or not np.array_equal(weight, copy_matrix(size, d)):
        raise ConfigError(
            f"NIR node {nxt[0]!r} ({_kind(node)}) between {key!r} and {succ[nxt[0]][0]!r}: weight of shape "
            f"{weight.shape}; allowed there: only input duplication, (d * {size}, {size}), row r = unit vector r // d"
        )
    return d, nxt[0]


def _walk(graph, meta, *, convention, default) -> tuple[int, int, list[Layer], set]:
    """Follow the chain from the Input node; returns (input_size, duplication, layers, visited node keys)."""
    succ, pred = _adjacency(graph)
    t_max = meta.get("t_max")
    t_max = None if t_max is None else check_positive_time("metadata['t_max']", t_max)
    pre_spikes = meta.get("input_max_spikes", 1)
    if isinstance(pre_spikes, bool) or not isinstance(pre_spikes, int) or pre_spikes < 1:
        raise ConfigError(f"graph metadata['input_max_spikes'] = {pre_spikes!r}; allowed: an integer >= 1")
    current = _endpoint(graph, nir.Input)
    input_size = _input_size(current, graph.nodes[current])
    duplication, copies = _duplication(graph, succ, current, input_size)
    size = input_size * duplication
    layers, seen = [], {current}
    if copies is not None:
        seen.add(copies)
        current = copies
    forward = succ[current]
    while True:
        if len(forward) != 1:
            raise ConfigError(f"NIR node {current!r} feeds {forward}; allowed: one successor ({CHAIN})")
        w_key = forward[0]
        if isinstance(graph.nodes[w_key], nir.Output) and layers:
            return input_size, duplication, layers, seen | {w_key}
        cells = succ[w_key]
        if not isinstance(graph.nodes[w_key], (nir.Linear, nir.Affine)) or len(cells) != 1 or pred[w_key] != [current]:
            raise ConfigError(f"NIR node {w_key!r} ({_kind(graph.nodes[w_key])}) after {current!r}; allowed: {CHAIN}")
        key = cells[0]
        if not isinstance(graph.nodes[key], nir.CubaLIF):
            raise ConfigError(f"NIR node {key!r} ({_kind(graph.nodes[key])}) after {w_key!r}; allowed: {CHAIN}")
        loop, forward = _loop(graph, succ, key)
        if sorted(pred[key]) != sorted([w_key] + loop[-1:]):
            raise ConfigError(f"NIR node {key!r} receives from {pred[key]}; allowed: {CHAIN}")
        layer = _layer(
            graph, key, w_key, loop, size, convention=convention, t_max=t_max, pre_spikes=pre_spikes, default=default
        )
        layers.append(layer)
        seen |= {w_key, key, *loop}
        current, size, pre_spikes = key, layer.n_out, layer.max_spikes


def import_network(
    graph: nir.NIRGraph, *, max_spikes: int | None = None, event_convention: str | None = None
) -> ImportedNetwork:
    """The per-layer description of a NIR graph made by ``export_network`` (or of the same shape).

    max_spikes: for CubaLIF nodes that neither carry a self-inhibition loop nor say
    ``max_spikes`` in their metadata (CubaLIF itself has no spike limit). event_convention:
    ``"current_jump"`` or ``"dirac"`` (``EVENT_CONVENTIONS``) for graphs whose metadata does not
    say; CubaLIF's r and w_in are folded into the weights. Unsupported nodes, parameters or
    shapes raise ``ConfigError`` naming the node and the field.
    """
    if not isinstance(graph, nir.NIRGraph):
        raise ConfigError(f"graph is a {type(graph).__name__}; allowed: nir.NIRGraph")
    for key, node in graph.nodes.items():
        if not isinstance(node, SUPPORTED):
            raise ConfigError(f"NIR node {key!r} has type {_kind(node)}; supported: {[t.__name__ for t in SUPPORTED]}")
    meta = plain(graph.metadata if isinstance(graph.metadata, dict) else {})
    convention = _convention(meta, event_convention)
    input_size, duplication, layers, seen = _walk(graph, meta, convention=convention, default=max_spikes)
    extra = sorted(set(graph.nodes) - seen)
    if extra:
        raise ConfigError(f"NIR nodes {extra} are not on the chain; allowed: {CHAIN}")
    t_max = meta.get("t_max")
    return ImportedNetwork(
        layers=layers,
        input_size=input_size,
        t_max=None if t_max is None else float(t_max),
        metadata=meta,
        duplication=duplication,
    )
