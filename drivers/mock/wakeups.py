"""Wake-ups of ``SAFE`` neurons, filed by segment in a hashed timing wheel.

A neuron leaves the sweep until the start of a known later segment; its wake-up waits in a
list for that segment instead of in the event queue, so the queue holds only timed events
(and stays short). Segment ``seg`` files under slot ``seg % SLOTS``; a slot's list may also
hold wake-ups a multiple of ``SLOTS`` segments later, which stay until their segment comes.

``wheel`` (SLOTS + 2,) int64: the first node of each slot's list (or -1), then the nodes in
use and the first free node (or -1). ``nodes`` (capacity, 4) int64 rows: next node (or -1),
neuron, its stamp when filed (the wake-up is stale once the stamp moves on), segment.
"""

from __future__ import annotations

import numba
import numpy as np

SLOTS = 64
USED, FREE = SLOTS, SLOTS + 1
NEXT, NEURON, STAMP, SEGMENT = range(4)
NEVER = 2**62  # a segment past any trial


@numba.njit(cache=True, _nrt=False)
def clear(wheel):
    """Empty the wheel (at the start of a trial)."""
    wheel[:SLOTS] = -1
    wheel[USED], wheel[FREE] = 0, -1


@numba.njit(cache=True, inline="always", _nrt=False)
def file(wheel, nodes, seg, i, stamp):
    """File a wake-up of neuron i (queue stamp ``stamp``) at the start of segment ``seg`` (a whole
    float; never, when it is infinite). Takes a free node, else a new one: the capacity must allow
    ``wheel[USED] + 1``."""
    if not seg < NEVER:
        return
    j = wheel[FREE]
    if j >= 0:
        wheel[FREE] = nodes[j, NEXT]
    else:
        j = wheel[USED]
        wheel[USED] += 1
    slot = int(seg) % SLOTS
    nodes[j, NEXT], nodes[j, NEURON], nodes[j, STAMP], nodes[j, SEGMENT] = wheel[slot], i, int(stamp), int(seg)
    wheel[slot] = j


@numba.njit(cache=True, _nrt=False)
def take(wheel, nodes, seg):
    """Take one wake-up filed for segment ``seg`` out of the wheel and return its node (its neuron and
    stamp stay readable until the next ``file``), or -1 when none is left."""
    slot = seg % SLOTS
    prev, j = -1, wheel[slot]
    while j >= 0 and nodes[j, SEGMENT] != seg:
        prev, j = j, nodes[j, NEXT]
    if j >= 0:
        if prev >= 0:
            nodes[prev, NEXT] = nodes[j, NEXT]
        else:
            wheel[slot] = nodes[j, NEXT]
        nodes[j, NEXT], wheel[FREE] = wheel[FREE], j
    return j


@numba.njit(cache=True, _nrt=False)
def next_filed(wheel, nodes, lo, hi):
    """The earliest segment in [lo, hi) with a wake-up filed, else hi."""
    best = hi
    for slot in range(SLOTS):
        j = wheel[slot]
        while j >= 0:
            if lo <= nodes[j, SEGMENT] < best:
                best = nodes[j, SEGMENT]
            j = nodes[j, NEXT]
    return best


@numba.njit(cache=True)
def grown(nodes, size):
    """A copy of ``nodes`` with room for at least ``size`` rows."""
    out = np.empty((max(2 * nodes.shape[0], size), 4), np.int64)
    out[: nodes.shape[0]] = nodes
    return out
