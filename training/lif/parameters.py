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


def _values(name: str, value) -> torch.Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float64).detach()
    if tensor.dim() > 1:
        raise ConfigError(
            f"LIFParameters.{name} has shape {tuple(tensor.shape)}; allowed: a scalar or a per-neuron vector (n_out,)"
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ConfigError(f"LIFParameters.{name} = {value!r} is not finite; allowed: finite values")
    return tensor


def _positive(instance, attribute, value):
    if not bool((_values(attribute.name, value) > 0).all()):
        raise ConfigError(f"LIFParameters.{attribute.name} = {value!r}; allowed range: > 0 seconds")


def _non_negative(instance, attribute, value):
    if not bool((_values(attribute.name, value) >= 0).all()):
        raise ConfigError(f"LIFParameters.{attribute.name} = {value!r}; allowed range: >= 0 seconds")


def _finite(instance, attribute, value):
    _values(attribute.name, value)


# Rows of Dynamics.values
TAU_MEM, TAU_SYN, THETA, U_RESET, T_REFRAC, V_LEAK, V_RESET = range(7)
CLOSED_FORMS = {"": 0, "mem2": 1, "syn2": 2}  # kernels' ``form``: 1 if tau_mem = 2 tau_syn, 2 if tau_syn = 2 tau_mem


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

    def __attrs_post_init__(self):
        lengths = {
            f.name: _values(f.name, getattr(self, f.name)).numel()
            for f in attrs.fields(type(self))
            if _values(f.name, getattr(self, f.name)).dim() == 1
        }
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
        for field in attrs.fields(type(self)):
            value = _values(field.name, getattr(self, field.name))
            if value.dim() == 1:
                return value.numel()
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
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            vector = torch.is_tensor(value) and value.dim() == 1 or np.ndim(value) == 1
            fields[field.name] = torch.as_tensor(value)[index] if vector else value
        return LIFParameters(**fields)

    def dynamics(self, n_out: int, dtype: torch.dtype) -> Dynamics:
        """The kernels' per-neuron view for a layer of n_out neurons in the given dtype."""
        values = {}
        for field in attrs.fields(type(self)):
            value = _values(field.name, getattr(self, field.name))
            if value.dim() == 1 and value.numel() != n_out:
                raise ConfigError(
                    f"LIFParameters.{field.name} has {value.numel()} entries; "
                    f"allowed: a scalar or n_out = {n_out} entries"
                )
            values[field.name] = value.expand(n_out)
        tau_mem, tau_syn = values["tau_mem"], values["tau_syn"]
        closed_form = ""
        if bool(((tau_mem - 2 * tau_syn).abs() <= 1e-12 * tau_mem).all()):
            closed_form = "mem2"
        elif bool(((tau_syn - 2 * tau_mem).abs() <= 1e-12 * tau_syn).all()):
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
        packed = np.stack([row.to(dtype).to(torch.float64).numpy() for row in rows])
        uniform = bool((packed[:2] == packed[:2, :1]).all())
        return Dynamics(packed, CLOSED_FORMS[closed_form], float(torch.finfo(dtype).eps) ** 0.5, uniform)
