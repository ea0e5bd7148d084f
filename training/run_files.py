"""The trained network as files in a run directory, and reading a finished run back.

``network.json`` + ``network.npz`` (schema ``NETWORK_SCHEMA``), written at the end of a run
from the weights the test accuracy is for (the moving average):

- per layer (in order): name, size, ``max_spikes``;
- ``weights/<layer>``: (n_in, n_out) float64 model-unit weights as the trainer holds them (map
  them through any chip's calibration);
- ``effective/<layer>``: (n_in, n_out) the weights the neurons actually see on this chip
  (quantised, divided by each neuron's weight scale; equal to ``weights`` in software);
- ``hardware/<layer>``: (n_in, n_out) int8 signed 6-bit chip weights (device runs only);
- ``lif/<layer>/<field>``: (n_out,) per-neuron ``LIFParameters`` in model units (tau_mem,
  tau_syn, v_th, v_leak, v_reset, t_refrac; seconds and threshold distances);
- the input population (size, duplication, input latency, spikes per input neuron at most),
  the trial duration, chip id, calibration id, the weight-quantisation rule and each layer's
  rounding scale (hardware LSB per model weight unit; device runs only).

``load_run(run_dir)`` returns a ``FinishedRun`` with the config and these arrays;
``write_nir(run_dir)`` adds ``network.nir``, the network as a NIR graph (``training.nir.runs``).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pathlib

import attrs
import numpy as np
import torch

import hil
from hil.errors import ConfigError
from hil.files import write_atomic

from .config import TrainerConfig
from .lif import LIFParameters
from .network import Layer

NETWORK_SCHEMA = 1
LIF_FIELDS = ("tau_mem", "tau_syn", "v_th", "v_leak", "v_reset", "t_refrac")
NIR_FILE = "network.nir"

log = hil.logging.get_logger(__name__)


def write_network(out_dir, backend, config: TrainerConfig, input_max_spikes: int = 1) -> dict[str, str]:
    """Write ``network.json``/``network.npz`` for the backend's network as it is now; returns name -> path.

    input_max_spikes: spikes per input neuron and trial at most in the run's data (k of (N, n_in, k)).
    """
    out = pathlib.Path(out_dir)
    net = backend.network
    arrays = {}
    with torch.no_grad():
        for name, (eff, hw) in net.effective_weights().items():
            n = net.weights[name].shape[1]
            arrays[f"weights/{name}"] = net.weights[name].detach().double().numpy()
            arrays[f"effective/{name}"] = eff.detach().double().numpy()
            if hw is not None:
                arrays[f"hardware/{name}"] = np.asarray(hw, np.int8)
            params = net.params[name]
            for field in LIF_FIELDS:
                value = torch.as_tensor(getattr(params, field), dtype=torch.float64)
                arrays[f"lif/{name}/{field}"] = value.expand(n).numpy().copy()
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    meta = {
        "schema": NETWORK_SCHEMA,
        "kind": "bss2-hil network",
        "layers": [{"name": layer.name, "size": layer.size, "max_spikes": layer.max_spikes} for layer in net.chain],
        "input": {
            "size": net.n_inputs,
            "duplication": net.duplication,
            "latency_s": net.input_latency_s,
            "max_spikes": int(input_max_spikes),
        },
        "duration_s": net.duration_s,
        "backend": "software" if backend.device is None else "device",
        "chip_id": backend.chip_id,
        "calibration_id": backend.calibration_id,
        "quantisation": None if backend.device is None else "hil.quantize: clip(round(w * scale), -63, 63) per layer",
        "weight_bits": None if backend.device is None else hil.chip.WEIGHT_BITS,
        "weight_scale": None if backend.device is None else _rounding_scales(net),
        "arrays": "network.npz",
        "arrays_sha256": hashlib.sha256(data).hexdigest(),
        "config": config.to_dict(),
    }
    write_atomic(out / "network.npz", data)
    write_atomic(out / "network.json", json.dumps(meta, indent=2) + "\n")
    return {"json": str(out / "network.json"), "arrays": str(out / "network.npz")}


def spikes_per_input(*data) -> int:
    """Spikes per input neuron and trial at most in these ``SpikeData``: k of inputs (N, n_in, k), else 1."""
    return max(d.inputs.shape[2] if d.inputs.dim() == 3 else 1 for d in data)


def _rounding_scales(net) -> dict[str, float]:
    """Layer -> the scale ``hil.quantize`` rounds with (hardware LSB per model weight unit)."""
    return {name: hil.chip.WEIGHT_MAX / limit for name, limit in net.weight_limits().items() if math.isfinite(limit)}


def write_nir(run_dir) -> dict:
    """Write ``network.nir`` into a finished run directory: ``{"nir": path}``, or ``{"nir": None,
    "nir_skipped": reason}`` (logged) without the ``nir`` extra or for a network NIR cannot hold."""
    try:
        from .nir.runs import write_run

        return {"nir": str(write_run(run_dir))}
    except (ImportError, ConfigError) as exc:
        log.warning("no network.nir written", reason=str(exc))
        return {"nir": None, "nir_skipped": str(exc)}


def load_weights(network, weights: dict[str, np.ndarray], *, clip: bool = False) -> None:
    """Copy layer -> (n_in, n_out) model-unit weights into ``network``; ``clip``: then to the backend's limits
    (logged when that changes any weight)."""
    with torch.no_grad():
        for name, w in weights.items():
            network.weights[name].copy_(torch.from_numpy(np.asarray(w)))
        if clip:
            before = {name: w.clone() for name, w in network.weights.items()}
            network.clip_weights()
            changed = {name: int((before[name] != w).sum()) for name, w in network.weights.items()}
            if any(changed.values()):
                log.warning("starting weights clipped to what the chip holds", weights_per_layer=changed)


def weights_from_nir(config: TrainerConfig, n_inputs: int, n_outputs: int) -> dict[str, np.ndarray] | None:
    """Layer -> starting weights from ``config.init_from`` (None if unset); ConfigError on any mismatch."""
    if config.init_from is None:
        return None
    try:
        from .nir.deploy import initial_weights
    except ImportError as exc:
        raise ConfigError(f"TrainerConfig.init_from = {config.init_from!r} needs NIR: {exc}") from None
    return initial_weights(config, n_inputs, n_outputs)


@attrs.frozen(eq=False)
class TrainedLayer:
    """One layer of a finished run: model-unit and effective weights (n_in, n_out), per-neuron parameters."""

    layer: Layer
    weights: np.ndarray
    effective: np.ndarray
    lif: LIFParameters
    hardware: np.ndarray | None = None


@attrs.frozen(eq=False)
class FinishedRun:
    """A run directory read back: its config, layers, input population, chip, calibration and
    the weight quantisation (bits and per-layer rounding scale; None in software)."""

    path: pathlib.Path
    config: TrainerConfig
    layers: list
    n_inputs: int
    duplication: int
    input_latency_s: float
    duration_s: float
    chip_id: str | None
    calibration_id: str | None
    input_max_spikes: int = 1
    weight_bits: int | None = None
    weight_scale: dict | None = None

    def weights(self) -> dict[str, np.ndarray]:
        """Layer -> model-unit weights (what to load into a new network of the same shape)."""
        return {t.layer.name: t.weights for t in self.layers}


def load_run(run_dir) -> FinishedRun:
    """Read ``network.json``/``network.npz`` of a finished run; ``ConfigError`` names the file and the problem."""
    path = pathlib.Path(run_dir)
    meta_path = path / "network.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        raw = (path / "network.npz").read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(
            f"run {path}: {pathlib.Path(exc.filename).name} is missing; is it a finished run of tools/train?"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"run {path}: cannot read network.json/network.npz ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != "bss2-hil network" or meta.get("schema") != NETWORK_SCHEMA:
        raise ConfigError(f"{meta_path}: not a network file of schema {NETWORK_SCHEMA}")
    if hashlib.sha256(raw).hexdigest() != meta.get("arrays_sha256"):
        raise ConfigError(f"{meta_path}: network.npz does not match its checksum (corrupt or from another run)")
    config = TrainerConfig.from_dict(meta["config"])
    with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
        trained = []
        for spec in meta["layers"]:
            name = spec["name"]
            lif = LIFParameters(**{f: torch.from_numpy(arrays[f"lif/{name}/{f}"]) for f in LIF_FIELDS})
            hw = arrays[f"hardware/{name}"] if f"hardware/{name}" in arrays.files else None
            trained.append(
                TrainedLayer(
                    Layer(name, spec["size"], spec["max_spikes"]),
                    arrays[f"weights/{name}"],
                    arrays[f"effective/{name}"],
                    lif,
                    hw,
                )
            )
    source = meta["input"]
    return FinishedRun(
        path,
        config,
        trained,
        source["size"],
        source["duplication"],
        source["latency_s"],
        meta["duration_s"],
        meta["chip_id"],
        meta["calibration_id"],
        source.get("max_spikes", 1),
        meta.get("weight_bits"),
        meta.get("weight_scale"),
    )
