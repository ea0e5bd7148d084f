"""Describe a layered spiking network: input populations (spike sources driven by the host),
LIF populations (neuron circuits) and dense signed projections between them.
``hil.placement.place`` maps a ``Network`` onto the chip.
"""

from __future__ import annotations

import attrs
import numpy as np

from .errors import ConfigError


def _name(inst, attribute, value):
    if not isinstance(value, str) or not value.isidentifier():
        raise ConfigError(f"{type(inst).__name__}.{attribute.name} = {value!r}: expected a Python identifier")


def _positive_int(inst, attribute, value):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{type(inst).__name__}.{attribute.name} = {value!r}: expected an integer >= 1")


@attrs.frozen
class InputPopulation:
    """``size`` host-driven spike sources; each is sent ``duplication`` times to separate
    synapse rows (the BSS-2 Yin-Yang experiments use 5), giving ``size * duplication`` sources."""

    name: str = attrs.field(validator=_name)
    size: int = attrs.field(validator=_positive_int)
    duplication: int = attrs.field(default=1, validator=_positive_int)

    @property
    def n_sources(self) -> int:
        return self.size * self.duplication


@attrs.frozen
class LIFPopulation:
    """``size`` LIF neuron circuits."""

    name: str = attrs.field(validator=_name)
    size: int = attrs.field(validator=_positive_int)

    @property
    def n_sources(self) -> int:
        return self.size


@attrs.frozen
class Projection:
    """Dense signed connection ``source -> target``; weights have shape (source sources, target size)."""

    source: str
    target: str

    @property
    def key(self) -> str:
        return f"{self.source}->{self.target}"


@attrs.frozen
class Network:
    inputs: tuple = attrs.field(converter=tuple)
    populations: tuple = attrs.field(converter=tuple)
    projections: tuple = attrs.field(converter=tuple)

    def __attrs_post_init__(self):
        names = [p.name for p in self.inputs + self.populations]
        if len(set(names)) != len(names):
            raise ConfigError(f"Network: population names must be unique, got {names}")
        if not all(isinstance(p, InputPopulation) for p in self.inputs):
            raise ConfigError("Network.inputs: expected InputPopulation entries")
        if not all(isinstance(p, LIFPopulation) for p in self.populations):
            raise ConfigError("Network.populations: expected LIFPopulation entries")
        lif = {p.name for p in self.populations}
        seen = set()
        for proj in self.projections:
            if proj.source not in names:
                raise ConfigError(f"Projection {proj.key}: source {proj.source!r} is not a population; known: {names}")
            if proj.target not in lif:
                raise ConfigError(
                    f"Projection {proj.key}: target {proj.target!r} is not a LIF population; known: {sorted(lif)}"
                )
            if proj.key in seen:
                raise ConfigError(f"Projection {proj.key} is given twice")
            seen.add(proj.key)

    @classmethod
    def feedforward(cls, n_inputs: int, hidden: tuple | list, n_outputs: int, *, duplication: int = 1) -> Network:
        """``input -> hidden0 -> ... -> output`` with dense projections (names ``input``, ``hidden0``.., ``output``)."""
        layers = [f"hidden{i}" for i in range(len(hidden))] + ["output"]
        sizes = list(hidden) + [n_outputs]
        chain = ["input"] + layers
        return cls(
            inputs=[InputPopulation("input", n_inputs, duplication)],
            populations=[LIFPopulation(n, s) for n, s in zip(layers, sizes, strict=True)],
            projections=[Projection(a, b) for a, b in zip(chain[:-1], chain[1:], strict=True)],
        )

    def population(self, name: str):
        for p in self.inputs + self.populations:
            if p.name == name:
                return p
        raise ConfigError(
            f"Network has no population {name!r}; known: {[p.name for p in self.inputs + self.populations]}"
        )

    def weight_shape(self, projection: Projection) -> tuple[int, int]:
        return (self.population(projection.source).n_sources, self.population(projection.target).size)
