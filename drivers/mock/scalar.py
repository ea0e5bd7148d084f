"""Scalar ``max``/``min`` for the mock's numba kernels, inlined where they are used.

Numba compiles the builtins ``max`` and ``min`` to out-of-line calls (with an error check and
register spills around each); these are the same selections (``max(a, b)`` keeps ``a`` unless
``b > a``, ``min(a, b)`` unless ``b < a``, as Python's builtins do, NaN included) without the call.
"""

from __future__ import annotations

import numba


@numba.njit(cache=True, inline="always", _nrt=False)
def fmax(a, b):
    """``max(a, b)``."""
    return b if b > a else a


@numba.njit(cache=True, inline="always", _nrt=False)
def fmin(a, b):
    """``min(a, b)``."""
    return b if b < a else a
