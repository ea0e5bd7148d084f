"""The kernel's event queue: a 4-ary min-heap in one (capacity, 4) float64 array.

Rows hold (time, kind, id, stamp); items are ordered by time, then kind, then id, so the
order of simultaneous events is fixed (any exact priority queue pops them in the same order).
Stale items (a neuron's stamp moved on) are skipped by the reader. Four children per node
halve the depth of a binary heap; an item moves by shifting rows into a hole, not by swaps.
"""

from __future__ import annotations

import numba
import numpy as np

from .scalar import fmin

TIME, KIND, ID, STAMP = range(4)
_ARITY = 4


@numba.njit(cache=True, inline="always", _nrt=False)
def _before(t, kind, ident, t2, kind2, ident2):
    """Item (t, kind, ident) comes before item (t2, kind2, ident2)."""
    return t < t2 or (t == t2 and (kind < kind2 or (kind == kind2 and ident < ident2)))


@numba.njit(cache=True, inline="always", _nrt=False)
def _move(Q, dst, src):
    """Copy row src to row dst."""
    Q[dst, TIME], Q[dst, KIND], Q[dst, ID], Q[dst, STAMP] = Q[src, TIME], Q[src, KIND], Q[src, ID], Q[src, STAMP]


@numba.njit(cache=True, _nrt=False, inline="always")
def push(Q, n, t, kind, ident, stamp):
    """Insert an item into the heap of size n (capacity must allow it); returns the new size."""
    j = n
    while j > 0:
        p = (j - 1) // _ARITY
        if not _before(t, kind, ident, Q[p, TIME], Q[p, KIND], Q[p, ID]):
            break
        _move(Q, j, p)
        j = p
    Q[j, TIME], Q[j, KIND], Q[j, ID], Q[j, STAMP] = t, kind, ident, stamp
    return n + 1


@numba.njit(cache=True, _nrt=False, inline="always")
def pop(Q, n):
    """Remove the first item (read it from row 0 before); returns the new size."""
    n -= 1
    t, kind, ident, stamp = Q[n, TIME], Q[n, KIND], Q[n, ID], Q[n, STAMP]
    j = 0
    while True:
        c = _ARITY * j + 1
        if c >= n:
            break
        best = c
        for d in range(c + 1, fmin(c + _ARITY, n)):
            if _before(Q[d, TIME], Q[d, KIND], Q[d, ID], Q[best, TIME], Q[best, KIND], Q[best, ID]):
                best = d
        if not _before(Q[best, TIME], Q[best, KIND], Q[best, ID], t, kind, ident):
            break
        _move(Q, j, best)
        j = best
    Q[j, TIME], Q[j, KIND], Q[j, ID], Q[j, STAMP] = t, kind, ident, stamp
    return n


@numba.njit(cache=True)
def grown(Q, size):
    """A copy of ``Q`` with room for at least ``size`` items."""
    out = np.empty((max(2 * Q.shape[0], size), 4))
    out[: Q.shape[0]] = Q
    return out
