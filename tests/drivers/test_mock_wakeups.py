"""The mock kernel's wake-up wheel (drivers.mock.wakeups) against a plain list of filed wake-ups."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.mock import wakeups


def _wheel(capacity=64):
    wheel, nodes = np.empty(wakeups.SLOTS + 2, np.int64), np.empty((capacity, 4), np.int64)
    wakeups.clear(wheel)
    return wheel, nodes


def _take_all(wheel, nodes, seg):
    out = []
    while (j := wakeups.take(wheel, nodes, seg)) >= 0:
        out.append((int(nodes[j, wakeups.NEURON]), int(nodes[j, wakeups.STAMP])))
    return sorted(out)


def test_wake_ups_a_multiple_of_the_slots_apart_share_a_slot_but_come_due_at_their_own_segment():
    wheel, nodes = _wheel()
    wakeups.file(wheel, nodes, 3.0, 7, 1.0)
    wakeups.file(wheel, nodes, 3.0 + wakeups.SLOTS, 8, 2.0)
    wakeups.file(wheel, nodes, 3.0 + 2 * wakeups.SLOTS, 9, 3.0)
    assert wakeups.next_filed(wheel, nodes, 0, wakeups.NEVER) == 3
    assert _take_all(wheel, nodes, 3) == [(7, 1)]
    assert wakeups.next_filed(wheel, nodes, 4, wakeups.NEVER) == 3 + wakeups.SLOTS
    assert wakeups.next_filed(wheel, nodes, 4, 50) == 50  # nothing before the bound
    assert _take_all(wheel, nodes, 3 + wakeups.SLOTS) == [(8, 2)]
    assert _take_all(wheel, nodes, 3 + 2 * wakeups.SLOTS) == [(9, 3)]
    assert wakeups.next_filed(wheel, nodes, 0, wakeups.NEVER) == wakeups.NEVER


def test_an_infinite_segment_is_never_filed_and_taken_nodes_are_reused():
    wheel, nodes = _wheel(capacity=4)
    wakeups.file(wheel, nodes, math.inf, 1, 0.0)
    assert wheel[wakeups.USED] == 0
    for seg in range(100):  # one node in use at a time: the capacity of 4 is never exceeded
        wakeups.file(wheel, nodes, float(seg), seg % 5, float(seg))
        assert _take_all(wheel, nodes, seg) == [(seg % 5, seg)]
    assert wheel[wakeups.USED] == 1


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 40), st.integers(0, 9)), max_size=60))
def test_the_wheel_gives_back_exactly_what_was_filed_segment_by_segment(filed):
    """File wake-ups (segment, neuron, stamp), then walk the segments as the kernel does: skip to the
    next filed segment, take its wake-ups. Each comes back once, at its own segment."""
    wheel, nodes = _wheel(capacity=len(filed) + 1)
    for seg, neuron, stamp in filed:
        wakeups.file(wheel, nodes, float(seg), neuron, float(stamp))
    seen, seg = [], 0
    while (seg := wakeups.next_filed(wheel, nodes, seg, wakeups.NEVER)) != wakeups.NEVER:
        got = _take_all(wheel, nodes, seg)
        assert got, f"segment {seg} reported as filed but nothing came due"
        seen += [(seg, *item) for item in got]
        seg += 1
    assert seen == sorted(filed)
