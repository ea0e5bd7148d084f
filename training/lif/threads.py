"""Running a kernel over a batch on torch.get_num_threads() threads, chunk by chunk.

The kernel itself takes the next chunk of trials from a shared counter (an atomic
fetch-and-add, :func:`claim`) whenever it finishes one, so a thread that the operating
system preempts (another process on its core) holds back at most one small chunk, and no
Python runs between chunks. The chunk size depends on the batch and the layer size alone,
so per-chunk partial sums, added in chunk order, give the same result for any thread count.

Before waking its helpers, the calling thread lets them run on any of its CPUs but the one
it is on: Linux wakes a thread on its waker's CPU (wake-affine), and when another process
holds the second core the helper and the caller then share one core for the whole call.
"""

from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

MIN_CHUNK, MAX_CHUNK = 4, 16  # trials per chunk: a chunk of 16 Yin-Yang trials is ~0.2 ms of kernel time
# one thread per this many trials at most: a Yin-Yang float32 forward+backward at batch 32 took
# 2.55 ms on two threads against 1.97 ms on one (batch 64: 3.90 / 3.61 ms, batch 128: 5.46 / 6.33 ms)
TRIALS_PER_THREAD = 64
PARTIAL_BYTES = 16 * 2**20  # at most this much for the per-chunk partial sums of a layer's weight gradient


# libc's sched_getcpu() -> the calling thread's CPU; None where threads cannot be placed
_GETCPU = getattr(ctypes.CDLL(None), "sched_getcpu", None) if hasattr(os, "sched_setaffinity") else None


class _Pool:
    """Helper threads (a ThreadPoolExecutor) with their native thread ids, known once started."""

    def __init__(self, size: int):
        self.ids: list[int] = []
        self.executor = ThreadPoolExecutor(size, thread_name_prefix="lif", initializer=self._started)

    def _started(self) -> None:
        self.ids.append(threading.get_native_id())

    def keep_off_this_cpu(self) -> None:
        """Let the started helpers run on the calling thread's CPUs except the one it is on now
        (nothing changes where that leaves none)."""
        if _GETCPU is None or not self.ids:
            return
        cpus = os.sched_getaffinity(0) - {_GETCPU()}
        if not cpus:
            return
        for thread_id in self.ids:
            try:
                os.sched_setaffinity(thread_id, cpus)
            except OSError:  # a placement hint only: the kernels run wherever the threads are
                return


_POOLS: dict[int, _Pool] = {}  # size -> pool, kept: a new thread's first kernel call is slow
os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has none of the parent's threads


@intrinsic
def _fetch_add(typingctx, counter, index):
    """Atomically add 1 to counter[index] (1-D int64) and return its previous value."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, array, [args[1]])
        return builder.atomic_rmw("add", pointer, context.get_constant(types.int64, 1), "seq_cst")

    return types.int64(counter, index), codegen


@numba.njit(cache=True, inline="always")
def claim(counter):
    """The index of the next chunk nobody has taken (counter[0] counts the taken ones)."""
    return _fetch_add(counter, 0)


@numba.njit(cache=True, inline="always")
def finish(counter):
    """Count a chunk as done (counter[1])."""
    _fetch_add(counter, 1)


def chunk_size(batch: int, partial_bytes: int = 0) -> int:
    """Trials per chunk: about batch/64 within [MIN_CHUNK, MAX_CHUNK], raised until the
    per-chunk partial sums (``partial_bytes`` each) fit in PARTIAL_BYTES."""
    size = min(MAX_CHUNK, max(MIN_CHUNK, -(-batch // 64)))
    while partial_bytes and -(-batch // size) * partial_bytes > PARTIAL_BYTES and size < batch:
        size *= 2
    return size


def run_kernel(kernel_call, batch: int, size: int) -> None:
    """Call ``kernel_call(counter)`` on up to torch.get_num_threads() threads (the calling
    thread is one; one thread per ``TRIALS_PER_THREAD`` trials at most); the kernel claims
    chunks of ``size`` trials from ``counter`` until none is left. Returns when every chunk is
    done: a helper that wakes late finds nothing to do and is not waited for. The kernel must be
    compiled with nogil=True.
    """
    count = -(-batch // size)
    counter = np.zeros(2, dtype=np.int64)  # chunks taken, chunks done
    helpers = min(torch.get_num_threads(), count, max(1, batch // TRIALS_PER_THREAD)) - 1
    if helpers <= 0:
        kernel_call(counter)
        return
    all_done, errors = threading.Event(), []

    def helper():
        try:
            kernel_call(counter)
        except BaseException as error:  # handed to the calling thread below
            errors.append(error)
        if errors or counter[1] >= count:
            all_done.set()

    pool = _POOLS.get(helpers) or _POOLS.setdefault(helpers, _Pool(helpers))
    pool.keep_off_this_cpu()
    for _ in range(helpers):
        pool.executor.submit(helper)
    kernel_call(counter)
    if counter[1] < count:
        all_done.wait()
    if errors:
        raise errors[0]
