"""The mock kernel's event queue against a plain-Python reference: items pop in (time, kind, id)
order whatever the push/pop interleaving."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.mock import heap


def _drain_order(ops, capacity=8):
    """Run ``ops`` (("push", (t, kind, id, stamp)) or ("pop", None)) on the kernel's heap; the items popped."""
    Q, n, out = np.empty((capacity, 4)), 0, []
    for op, item in ops:
        if op == "push":
            if n == Q.shape[0]:
                Q = heap.grown(Q, n + 1)
            n = heap.push(Q, n, *item)
        elif n > 0:
            out.append(tuple(Q[0]))
            n = heap.pop(Q, n)
    while n > 0:
        out.append(tuple(Q[0]))
        n = heap.pop(Q, n)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_heap_pops_in_time_kind_id_order(seed):
    rng = np.random.default_rng(seed)
    ops, pending, expected = [], [], []
    for stamp in range(400):
        if pending and rng.random() < 0.4:
            ops.append(("pop", None))
            pending.sort(key=lambda item: item[:3])
            expected.append(pending.pop(0))
            continue
        # few distinct times, kinds and ids: many ties at every level of the order
        item = (float(rng.integers(0, 6)) * 0.25, float(rng.integers(0, 4)), float(rng.integers(0, 5)), float(stamp))
        ops.append(("push", item))
        pending.append(item)
    expected += sorted(pending, key=lambda item: item[:3])
    got = _drain_order(ops)
    # items equal in (time, kind, id) may pop in either order: compare the keys, and the stamps as multisets
    assert [g[:3] for g in got] == [e[:3] for e in expected]
    assert sorted(g[3] for g in got) == sorted(e[3] for e in expected)


def test_heap_single_and_empty():
    assert _drain_order([("push", (1.0, 2.0, 3.0, 4.0)), ("pop", None), ("pop", None)]) == [(1.0, 2.0, 3.0, 4.0)]
