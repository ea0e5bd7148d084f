"""The kernel's event queue: a binary min-heap in one (capacity, 4) float64 array.

Rows hold (time, kind, id, stamp); items are ordered by time, then kind, then id, so the
order of simultaneous events is fixed. Stale items (a neuron's stamp moved on) are skipped by
the reader.
"""

from __future__ import annotations

import numba
import numpy as np

TIME, KIND, ID, STAMP = range(4)


@numba.njit(cache=True, inline="always", _nrt=False)
def _before(Q, a, b):
    """Item in row a comes before the one in row b."""
    return Q[a, TIME] < Q[b, TIME] or (
        Q[a, TIME] == Q[b, TIME] and (Q[a, KIND] < Q[b, KIND] or (Q[a, KIND] == Q[b, KIND] and Q[a, ID] < Q[b, ID]))
    )


@numba.njit(cache=True, _nrt=False, inline="always")
def push(Q, n, t, kind, ident, stamp):
    """Insert an item into the heap of size n (capacity must allow it); returns the new size."""
    Q[n, TIME], Q[n, KIND], Q[n, ID], Q[n, STAMP] = t, kind, ident, stamp
    j = n
    while j > 0:
        p = (j - 1) >> 1
        if not _before(Q, j, p):
            break
        for r in range(4):
            Q[j, r], Q[p, r] = Q[p, r], Q[j, r]
        j = p
    return n + 1


@numba.njit(cache=True, _nrt=False, inline="always")
def pop(Q, n):
    """Remove the first item (read it from row 0 before); returns the new size."""
    n -= 1
    for r in range(4):
        Q[0, r] = Q[n, r]
    j = 0
    while True:
        c = 2 * j + 1
        if c >= n:
            break
        if c + 1 < n and _before(Q, c + 1, c):
            c += 1
        if not _before(Q, c, j):
            break
        for r in range(4):
            Q[j, r], Q[c, r] = Q[c, r], Q[j, r]
        j = c
    return n


@numba.njit(cache=True)
def grown(Q, size):
    """A copy of ``Q`` with room for at least ``size`` items."""
    out = np.empty((max(2 * Q.shape[0], size), 4))
    out[: Q.shape[0]] = Q
    return out
