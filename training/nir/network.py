"""The per-layer description NIR graphs are made from and read into, and their metadata."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import attrs
import numpy as np
import torch

from hil.errors import ConfigError
from training.lif import LIFParameters

SCHEMA_VERSION = 1
FORMAT = "bss2-hil.nir"

CURRENT_JUMP = "current_jump"
DIRAC = "dirac"
EVENT_CONVENTIONS = {
    CURRENT_JUMP: "an input spike through weight w makes the synaptic current jump by w_in * w",
    DIRAC: "an input spike is a Dirac pulse of area w, so the synaptic current jumps by w_in * w / tau_syn",
}
"""What a synaptic event means in a CubaLIF node (``tau_syn dI/dt = -I + w_in S``); exports use CURRENT_JUMP."""

RESERVED_KEYS = (
    "format",
    "schema_version",
    "event_convention",
    "event_meaning",
    "time_unit",
    "t_max",
    "input_max_spikes",
)
"""Graph metadata keys the export writes itself (a caller's metadata may not set them)."""

COPIES = "input.copies"
"""Key of the Linear node that sends every input to its d copies (input duplication d > 1)."""

NEURON_FIELDS = ("tau_mem", "tau_syn", "v_th", "v_leak", "v_reset", "t_refrac")

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _weights(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.array(value, dtype=np.float64)
    if array.ndim != 2 or 0 in array.shape:
        raise ConfigError(f"Layer.weights has shape {array.shape}; allowed: (n_in, n_out), both >= 1")
    if not np.isfinite(array).all():
        raise ConfigError("Layer.weights contains non-finite values; allowed: finite model units")
    return array


@attrs.frozen(eq=False)
class Layer:
    """One LIF layer of a feed-forward chain.

    name:       a Python identifier, unique in the network (the CubaLIF node's key)
    weights:    (n_in, n_out) float64, model units (current jump over the threshold scale)
    params:     ``LIFParameters``: scalars or per-neuron (n_out,) vectors; seconds and model units
    max_spikes: spikes per neuron and trial that the model keeps (later crossings are dropped)
    """

    name: str
    weights: np.ndarray = attrs.field(converter=_weights)
    params: LIFParameters
    max_spikes: int = 1

    def __attrs_post_init__(self):
        if not (isinstance(self.name, str) and _NAME.match(self.name)) or self.name in ("input", "output"):
            raise ConfigError(
                f"Layer.name = {self.name!r}; allowed: a Python identifier other than 'input' and 'output'"
            )
        if not isinstance(self.params, LIFParameters):
            raise ConfigError(f"Layer {self.name!r}: params is a {type(self.params).__name__}; allowed: LIFParameters")
        if isinstance(self.max_spikes, bool) or not isinstance(self.max_spikes, int) or self.max_spikes < 1:
            raise ConfigError(f"Layer {self.name!r}: max_spikes = {self.max_spikes!r}; allowed: an integer >= 1")
        try:
            self.params.dynamics(self.n_out, torch.float64)
        except ValueError as error:
            raise ConfigError(f"Layer {self.name!r}: {error}") from error

    @property
    def n_in(self) -> int:
        return self.weights.shape[0]

    @property
    def n_out(self) -> int:
        return self.weights.shape[1]

    def neuron_arrays(self) -> dict[str, np.ndarray]:
        """The six LIF parameters as (n_out,) float64 arrays (seconds, model units)."""
        out = {}
        for name in NEURON_FIELDS:
            value = torch.as_tensor(getattr(self.params, name), dtype=torch.float64).detach()
            out[name] = value.expand(self.n_out).cpu().numpy().copy()
        return out


@attrs.frozen(eq=False)
class ImportedNetwork:
    """What ``import_network`` reads from a graph.

    layers: the chain from the input to the output; input_size: neurons of the Input node;
    t_max: trial length in seconds the graph was made for (None if it does not say);
    metadata: the graph's metadata as plain Python values (numpy arrays stay arrays);
    duplication: d, every input feeds d rows of the first layer's weights (``input.copies``).
    """

    layers: list[Layer]
    input_size: int
    t_max: float | None
    metadata: dict
    duplication: int = 1


def copy_matrix(n: int, d: int) -> np.ndarray:
    """(n * d, n) 0/1: row r copies input r // d (``torch.repeat_interleave`` of the inputs)."""
    return np.repeat(np.eye(n), d, axis=0)


def check_positive_time(name: str, value) -> float:
    """``value`` as a float if it is a finite number of seconds > 0, else ConfigError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ConfigError(f"{name} = {value!r}; allowed: a finite number of seconds > 0")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} = {value!r}; allowed: a finite number of seconds > 0")
    return value


def check_metadata(metadata: Mapping, where: str = "metadata") -> dict:
    """A copy of ``metadata`` if NIR files can hold it: str keys without '/', values str, bool,
    int, float, numeric numpy arrays or nested mappings of these. Otherwise ConfigError naming the key."""
    if not isinstance(metadata, Mapping):
        raise ConfigError(f"{where} is a {type(metadata).__name__}; allowed: a mapping")
    out = {}
    for key, value in metadata.items():
        field = f"{where}[{key!r}]"
        if not isinstance(key, str) or not key or "/" in key:
            raise ConfigError(f"{field}: key {key!r} not allowed; allowed: a non-empty str without '/'")
        if isinstance(value, Mapping):
            out[key] = check_metadata(value, field)
        elif isinstance(value, (str, bool, int, float, np.bool_, np.integer, np.floating)):
            out[key] = value
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            out[key] = value.copy()
        else:
            raise ConfigError(
                f"{field} = {value!r} ({type(value).__name__}); allowed: str, bool, int, float, "
                "a numeric numpy array or a mapping of these"
            )
    return out


def plain(value):
    """Metadata as read back from a file -> plain Python values (bytes and numpy scalars converted)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return plain(value.item())
    if isinstance(value, np.generic):
        return value.item()
    return value
