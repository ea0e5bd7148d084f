"""Running a kernel over chunks of a batch on torch.get_num_threads() threads.

The threads take the next chunk from a shared counter whenever they finish one, so a thread
that the operating system preempts (another process on its core) holds back at most one
chunk instead of half the batch. The chunk size depends on the batch alone, so per-chunk
partial sums, added in chunk order, give the same result for any thread count.
"""

from __future__ import annotations

import itertools
import os
import threading
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
    torch.get_num_threads() threads; the calling thread is one of them and returns as soon as
    every chunk is done (a helper that wakes late finds no chunk left and is not waited for).

    For numba kernels compiled with nogil=True that write disjoint rows (or chunk c's own
    partial sums). An exception in any chunk is raised here after all chunks have run.
    """
    size, count = chunk_size(batch), n_chunks(batch)
    helpers = min(torch.get_num_threads(), count) - 1
    if helpers <= 0:
        for c in range(count):
            run(c, c * size, min(batch, (c + 1) * size))
        return
    claim, finished = itertools.count(), itertools.count(1)  # next() on them is atomic under the GIL
    all_done, errors = threading.Event(), []

    def work():
        while (c := next(claim)) < count:
            try:
                run(c, c * size, min(batch, (c + 1) * size))
            except BaseException as error:  # handed to the calling thread below
                errors.append(error)
            if next(finished) == count:
                all_done.set()

    pool = _POOLS.get(helpers) or _POOLS.setdefault(helpers, ThreadPoolExecutor(helpers, thread_name_prefix="lif"))
    for _ in range(helpers):
        pool.submit(work)
    work()
    all_done.wait()
    if errors:
        raise errors[0]
