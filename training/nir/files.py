"""NIR files (HDF5): thin wrappers over ``nir.write`` / ``nir.read`` with typed errors."""

from __future__ import annotations

import io
import pathlib

import nir

from hil.errors import ConfigError
from hil.files import write_atomic


def write(path, graph: nir.NIRGraph) -> pathlib.Path:
    """Write ``graph`` to ``path`` atomically (mode 0644); returns the path."""
    if not isinstance(graph, nir.NIRGraph):
        raise ConfigError(f"graph is a {type(graph).__name__}; allowed: nir.NIRGraph")
    buffer = io.BytesIO()
    try:
        nir.write(buffer, graph)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"NIR graph cannot be written to {str(path)!r}: {error}") from error
    return write_atomic(path, buffer.getvalue())


def read(path) -> nir.NIRGraph:
    """The graph in the NIR file ``path``; ConfigError if it is missing or not a NIR graph."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise ConfigError(f"NIR file {str(path)!r} does not exist; allowed: a file written by nir.write")
    try:
        return nir.read(path)
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as error:
        raise ConfigError(f"{str(path)!r} is not a readable NIR graph: {type(error).__name__}: {error}") from error
