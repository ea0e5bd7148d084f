"""Running a batch kernel on torch.get_num_threads() threads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

_POOLS: dict[int, ThreadPoolExecutor] = {}  # thread count -> pool, kept: a new thread's first kernel call is slow
os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has none of the parent's threads


def over_batch(run, batch: int, min_slice: int = 64) -> list:
    """Call run(lo, hi) on up to torch.get_num_threads() contiguous slices of range(batch) at
    once, each of at least ``min_slice`` rows (smaller ones do not pay for the hand-over);
    returns the results in slice order.

    For numba kernels compiled with nogil=True that write disjoint batch rows.
    """
    n = max(min(torch.get_num_threads(), batch // min_slice), 1)
    if n == 1:
        return [run(0, batch)]
    pool = _POOLS.get(n) or _POOLS.setdefault(n, ThreadPoolExecutor(n, thread_name_prefix="lif-kernel"))
    bounds = np.linspace(0, batch, n + 1).astype(int)
    return list(pool.map(run, bounds[:-1], bounds[1:]))
