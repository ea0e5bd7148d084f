"""The kernel's event queue: a binary min-heap in one (4, capacity) float64 array.

Columns hold (time, kind, id, stamp); items are ordered by time, then kind, then id, so the
order of simultaneous events is fixed. Stale items (a neuron's stamp moved on) are skipped by
the reader.
"""

from __future__ import annotations

import numba
import numpy as np

TIME, KIND, ID, STAMP = range(4)


@numba.njit(cache=True, inline="always", _nrt=False)
def _before(Q, a, b):
    """Item in column a comes before the one in column b."""
    return Q[TIME, a] < Q[TIME, b] or (
        Q[TIME, a] == Q[TIME, b]
        and (Q[KIND, a] < Q[KIND, b] or (Q[KIND, a] == Q[KIND, b] and Q[ID, a] < Q[ID, b]))
    )


@numba.njit(cache=True, _nrt=False, inline="always")
def push(Q, n, t, kind, ident, stamp):
    """Insert an item into the heap of size n (capacity must allow it); returns the new size."""
    Q[TIME, n], Q[KIND, n], Q[ID, n], Q[STAMP, n] = t, kind, ident, stamp
    j = n
    while j > 0:
        p = (j - 1) >> 1
        if not _before(Q, j, p):
            break
        for r in range(4):
            Q[r, j], Q[r, p] = Q[r, p], Q[r, j]
        j = p
    return n + 1


@numba.njit(cache=True, _nrt=False, inline="always")
def pop(Q, n):
    """Remove the first item (read it from column 0 before); returns the new size."""
    n -= 1
    for r in range(4):
        Q[r, 0] = Q[r, n]
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
            Q[r, j], Q[r, c] = Q[r, c], Q[r, j]
        j = c
    return n


@numba.njit(cache=True)
def grown(Q, size):
    """A copy of ``Q`` with room for at least ``size`` items."""
    out = np.empty((4, max(2 * Q.shape[1], size)))
    out[:, : Q.shape[1]] = Q
    return out
