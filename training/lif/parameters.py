"""Parameters of a layer of current-based LIF neurons (model in docs/eventprop.md).

``LIFParameters`` is the one public parameter type: scalars or per-neuron vectors. The
kernels see it through ``Dynamics``, a per-neuron view in the working dtype that only
this package uses.
"""

from __future__ import annotations

from typing import NamedTuple

import attrs
import numpy as np
import torch

from hil.errors import ConfigError

Scalar = float | torch.Tensor


def _values(name: str, value) -> np.ndarray:
    """The field as a float64 array, checked to be a finite scalar or vector."""
    array = np.asarray(value.detach().cpu().numpy() if torch.is_tensor(value) else value, dtype=np.float64)
    if array.ndim > 1:
        raise ConfigError(
            f"LIFParameters.{name} has shape {array.shape}; allowed: a scalar or a per-neuron vector (n_out,)"
        )
    if not np.isfinite(array).all():
        raise ConfigError(f"LIFParameters.{name} = {value!r} is not finite; allowed: finite values")
    return array


def _positive(instance, attribute, value):
    if not bool((_values(attribute.name, value) > 0).all()):
        raise ConfigError(f"LIFParameters.{attribute.name} = {value!r}; allowed range: > 0 seconds")


def _non_negative(instance, attribute, value):
    if not bool((_values(attribute.name, value) >= 0).all()):
        raise ConfigError(f"LIFParameters.{attribute.name} = {value!r}; allowed range: >= 0 seconds")


def _finite(instance, attribute, value):
    _values(attribute.name, value)


_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}

# Rows of Dynamics.values
TAU_MEM, TAU_SYN, THETA, U_RESET, T_REFRAC, V_LEAK, V_RESET = range(7)
CLOSED_FORMS = {"": 0, "mem2": 1, "syn2": 2}  # kernels' ``form``: 1 if tau_mem = 2 tau_syn, 2 if tau_syn = 2 tau_mem


_FIELDS = ("tau_mem", "tau_syn", "v_th", "v_leak", "v_reset", "t_refrac")


class Dynamics(NamedTuple):
    """Kernel-facing per-neuron view of ``LIFParameters``.

    ``values`` (7, n_out) float64, rows TAU_MEM, TAU_SYN (s), THETA = v_th - v_leak,
    U_RESET = v_reset - v_leak, T_REFRAC (s), V_LEAK, V_RESET, each rounded to the working
    dtype first; ``form`` as in CLOSED_FORMS (the same for every neuron); ``floor_scale``
    sqrt(eps) of the working dtype (the least drive at a simulated spike, in units of theta);
    ``uniform``: all neurons share tau_mem and tau_syn (the kernels then share work across them).
    """

    values: np.ndarray
    form: int
    floor_scale: float
    uniform: bool  # every neuron has the same tau_mem and tau_syn


@attrs.frozen
class LIFParameters:
    """Parameters of a layer; each a float or a per-neuron tensor of shape (n_out,).

    Time constants and t_refrac in seconds, voltages in model units. Requires
    v_reset < v_th and v_leak < v_th (a neuron at rest does not fire). Invalid values raise
    ``hil.errors.ConfigError`` (a ``ValueError``).
    """

    tau_mem: Scalar = attrs.field(validator=_positive)
    tau_syn: Scalar = attrs.field(validator=_positive)
    v_th: Scalar = attrs.field(default=1.0, validator=_finite)
    v_leak: Scalar = attrs.field(default=0.0, validator=_finite)
    v_reset: Scalar = attrs.field(default=0.0, validator=_finite)
    t_refrac: Scalar = attrs.field(default=0.0, validator=_non_negative)
    _views: dict = attrs.field(factory=dict, init=False, repr=False, eq=False)  # (n_out, dtype, versions) -> Dynamics

    def __attrs_post_init__(self):
        lengths = {name: _values(name, getattr(self, name)).size for name in _FIELDS}
        lengths = {name: size for name, size in lengths.items() if np.ndim(getattr(self, name)) == 1}
        if len(set(lengths.values())) > 1:
            raise ConfigError(
                f"LIFParameters per-neuron fields have different lengths {lengths}; allowed: one common n_out"
            )
        v_th = _values("v_th", self.v_th)
        for name in ("v_reset", "v_leak"):
            value = _values(name, getattr(self, name))
            if not bool((value < v_th).all()):
                raise ConfigError(
                    f"LIFParameters.{name} = {getattr(self, name)!r}; allowed range: < v_th = {self.v_th!r}"
                )

    @property
    def n_neurons(self) -> int | None:
        """Length of the per-neuron vectors, None if every field is a scalar."""
        for name in _FIELDS:
            value = _values(name, getattr(self, name))
            if value.ndim == 1:
                return value.size
        return None

    def select(self, index) -> LIFParameters:
        """The parameters of the neurons ``index`` (1-D integer indices in [0, n) or a boolean
        mask of length n); vectors are indexed in order, scalars stay scalars."""
        n = self.n_neurons
        index = torch.as_tensor(np.asarray(index))
        if index.dim() != 1 or not (index.dtype == torch.bool or not index.dtype.is_floating_point):
            raise ConfigError(
                f"LIFParameters.select index has shape {tuple(index.shape)} and dtype {index.dtype}; "
                "allowed: a 1-D integer index or boolean mask"
            )
        if n is None:
            return self
        if index.dtype == torch.bool and index.numel() != n:
            raise ConfigError(f"LIFParameters.select mask has {index.numel()} entries; allowed: n = {n}")
        if index.dtype != torch.bool and index.numel() and not (0 <= int(index.min()) and int(index.max()) < n):
            raise ConfigError(
                f"LIFParameters.select index spans [{int(index.min())}, {int(index.max())}]; allowed: [0, {n - 1}]"
            )
        fields = {}
        for name in _FIELDS:
            value = getattr(self, name)
            fields[name] = torch.as_tensor(value)[index] if np.ndim(value) == 1 else value
        return LIFParameters(**fields)

    def dynamics(self, n_out: int, dtype: torch.dtype) -> Dynamics:
        """The kernels' per-neuron view for a layer of n_out neurons in the given dtype (cached;
        an in-place change of a tensor field bumps its version and so makes a new view)."""
        versions = tuple(getattr(getattr(self, name), "_version", None) for name in _FIELDS)
        key = (n_out, dtype, versions)
        if key not in self._views:
            if len(self._views) >= 8:  # a few layer sizes and dtypes; stale versions go
                self._views.clear()
            self._views[key] = self._dynamics(n_out, dtype)
        return self._views[key]

    def _dynamics(self, n_out: int, dtype: torch.dtype) -> Dynamics:
        values = {}
        for name in _FIELDS:
            value = _values(name, getattr(self, name))
            if value.ndim == 1 and value.size != n_out:
                raise ConfigError(
                    f"LIFParameters.{name} has {value.size} entries; allowed: a scalar or n_out = {n_out} entries"
                )
            values[name] = np.broadcast_to(value, (n_out,))
        tau_mem, tau_syn = values["tau_mem"], values["tau_syn"]
        closed_form = ""
        if (np.abs(tau_mem - 2 * tau_syn) <= 1e-12 * tau_mem).all():
            closed_form = "mem2"
        elif (np.abs(tau_syn - 2 * tau_mem) <= 1e-12 * tau_syn).all():
            closed_form = "syn2"
        rows = (
            tau_mem,
            tau_syn,
            values["v_th"] - values["v_leak"],
            values["v_reset"] - values["v_leak"],
            values["t_refrac"],
            values["v_leak"],
            values["v_reset"],
        )
        packed = np.stack(rows).astype(_NUMPY[dtype]).astype(np.float64)  # rounded to the working dtype
        uniform = bool((packed[:2] == packed[:2, :1]).all())
        return Dynamics(packed, CLOSED_FORMS[closed_form], float(np.finfo(_NUMPY[dtype]).eps) ** 0.5, uniform)
