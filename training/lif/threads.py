"""Running a kernel over chunks of a batch on torch.get_num_threads() threads.

The threads take the next chunk from a shared counter whenever they finish one, so a thread
that the operating system preempts (another process on its core) holds back at most one
chunk instead of half the batch. The chunk size depends on the batch alone, so per-chunk
partial sums, added in chunk order, give the same result for any thread count.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

import torch

_POOLS: dict[int, ThreadPoolExecutor] = {}  # size -> pool, kept: a new thread's first kernel call is slow
os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has none of the parent's threads

MIN_CHUNK, MAX_CHUNK = 8, 32  # trials per chunk; a chunk of 32 Yin-Yang trials is ~0.5 ms of kernel time


def chunk_size(batch: int) -> int:
    """Trials per chunk: about batch/16, within [MIN_CHUNK, MAX_CHUNK]."""
    return min(MAX_CHUNK, max(MIN_CHUNK, -(-batch // 16)))


def n_chunks(batch: int) -> int:
    return -(-batch // chunk_size(batch))


def over_chunks(run, batch: int) -> None:
    """Call run(c, lo, hi) for every chunk c = [lo, hi) of range(batch), on up to
    torch.get_num_threads() threads (the calling thread is one of them).

    For numba kernels compiled with nogil=True that write disjoint rows (or chunk c's own
    partial sums).
    """
    size, count = chunk_size(batch), n_chunks(batch)
    claim = itertools.count()  # next() on it is atomic under the GIL

    def work():
        while (c := next(claim)) < count:
            run(c, c * size, min(batch, (c + 1) * size))

    helpers = min(torch.get_num_threads(), count) - 1
    if helpers <= 0:
        work()
        return
    pool = _POOLS.get(helpers) or _POOLS.setdefault(helpers, ThreadPoolExecutor(helpers, thread_name_prefix="lif"))
    futures = [pool.submit(work) for _ in range(helpers)]
    try:
        work()
    finally:
        for future in futures:
            future.result()
