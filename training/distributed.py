"""Data-parallel training over several chips with ``torch.distributed`` (gloo on CPU).

One process per chip. Each rank opens its own device (``device_for_rank``), calibrates it
(cached per chip id) and maps the shared model-unit weights to its chip through its own
calibration. Every global batch is split across ranks (strided, ``Group.shard``);
gradients are averaged with an all-reduce weighted by local sample counts, metrics are
summed. Collectives time out after ``timeout_s`` (the same value is the
``init_process_group`` timeout), so a failed rank stops the group within a bounded time:
a failing collective raises ``CollectiveError`` naming this rank.

Launch with ``torchrun`` (env ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) or
``tools/train --nproc N``. Without those variables ``Group`` is a trivial one-process group
and every method is a no-op (or the identity), so the single-process path is unchanged.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
import time

import torch
import torch.distributed as dist

from hil.errors import ConfigError, HilError

_TEMPLATE = re.compile(r"\{\s*(?:(\d+)\s*\+\s*)?rank\s*(?:\+\s*(\d+)\s*)?\}")


def first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


class CollectiveError(HilError):
    """A collective operation failed or timed out: another rank failed (or the network broke)."""


def device_for_rank(spec: str, rank: int, world: int) -> str:
    """The device URL of ``rank``: from a comma-separated list (one per rank) or a template
    such as ``socket://127.0.0.1:{5555+rank}`` (``{rank}``, ``{N+rank}``, ``{rank+N}``)."""
    if "," in spec:
        urls = [u.strip() for u in spec.split(",")]
        if len(urls) != world:
            raise ConfigError(
                f"--device lists {len(urls)} URLs for {world} ranks; give one per rank or a template with {{rank}}"
            )
        return urls[rank]
    return _TEMPLATE.sub(lambda m: str(int(m.group(1) or 0) + rank + int(m.group(2) or 0)), spec)


def digest(tensors) -> int:
    """A 63-bit content hash of tensors (bit-exact: equal iff the bytes are equal, up to collisions)."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return int.from_bytes(h.digest()[:8], "little") >> 1


class Group:
    """The process group of this run; a trivial single-process group when not launched by torchrun.

    ``timeout_s`` bounds ``init_process_group`` and every collective. ``seconds`` accumulates
    the wall time spent in collectives (all-reduce, gathers, broadcasts), including waiting
    for the slowest rank.
    """

    def __init__(self, timeout_s: float = 120.0, *, env=None):
        env = os.environ if env is None else env
        self.world = int(env.get("WORLD_SIZE", "1"))
        self.rank = int(env.get("RANK", "0"))
        self.timeout_s = float(timeout_s)
        self.seconds = 0.0
        if not self.timeout_s > 0:
            raise ConfigError(f"collective timeout = {timeout_s!r} s; allowed: a number > 0")
        if self.world > 1 and not dist.is_initialized():
            try:
                dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=self.timeout_s))
            except (RuntimeError, ValueError) as exc:
                raise CollectiveError(
                    f"rank {self.rank}: cannot join the process group of {self.world} ranks "
                    f"(MASTER_ADDR={env.get('MASTER_ADDR')}, MASTER_PORT={env.get('MASTER_PORT')}) "
                    f"within {self.timeout_s:g} s: {exc}"
                ) from exc

    @classmethod
    def single(cls) -> Group:
        return cls(env={})

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # --- sharding -------------------------------------------------------------------------
    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This rank's part of a global batch of sample indices (strided, so ranks get near-equal shares)."""
        return index[self.rank :: self.world]

    def local_size(self, n: int, rank: int | None = None) -> int:
        """Rows of a global batch of ``n`` that ``rank`` (default: this one) holds after ``shard``."""
        rank = self.rank if rank is None else rank
        return len(range(rank, n, self.world))

    # --- collectives ----------------------------------------------------------------------
    def _collective(self, what: str, fn):
        start = time.perf_counter()
        try:
            return fn()
        except (RuntimeError, ValueError) as exc:  # gloo timeouts / peer gone (DistBackendError is a RuntimeError)
            raise CollectiveError(
                f"rank {self.rank}: collective {what} timed out or failed after {time.perf_counter() - start:.1f} s "
                f"(timeout {self.timeout_s:g} s), another rank failed: {first_line(exc)}"
            ) from exc
        finally:
            self.seconds += time.perf_counter() - start

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place sum over ranks (no-op for one process)."""
        if self.world > 1:
            self._collective("all_reduce(sum)", lambda: dist.all_reduce(tensor, op=dist.ReduceOp.SUM))
        return tensor

    def min_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place minimum over ranks."""
        if self.world > 1:
            self._collective("all_reduce(min)", lambda: dist.all_reduce(tensor, op=dist.ReduceOp.MIN))
        return tensor

    def average_gradients(self, params, local_n: int, global_n: int) -> None:
        """Turn each rank's mean-over-local-batch gradient into the mean over the global batch (one all-reduce)."""
        if self.world == 1:
            return
        params = list(params)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.flatten() for g in grads]) * (local_n / global_n)
        self._collective("all_reduce(gradients)", lambda: dist.all_reduce(flat, op=dist.ReduceOp.SUM))
        offset = 0
        for p, g in zip(params, grads, strict=True):
            p.grad = flat[offset : offset + g.numel()].view_as(g).clone()
            offset += g.numel()

    def gather_rows(self, tensor: torch.Tensor, n: int) -> torch.Tensor:
        """The global batch of ``n`` rows from each rank's ``shard`` of it, in the original row order.

        Every rank gets the same tensor (bit-identical), so anything computed from it on all
        ranks stays identical.
        """
        if self.world == 1:
            return tensor
        rows = self.local_size(n, 0)
        padded = torch.zeros((rows, *tensor.shape[1:]), dtype=tensor.dtype)
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        self._collective("all_gather(rows)", lambda: dist.all_gather(parts, padded))
        out = torch.empty((n, *tensor.shape[1:]), dtype=tensor.dtype)
        for r, part in enumerate(parts):
            out[r :: self.world] = part[: self.local_size(n, r)]
        return out

    def gather_objects(self, obj) -> list:
        """One picklable object per rank, in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        self._collective("all_gather_object", lambda: dist.all_gather_object(out, obj))
        return out

    def broadcast_object(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        box = [obj if self.is_main else None]
        self._collective("broadcast_object", lambda: dist.broadcast_object_list(box, src=0))
        return box[0]

    def broadcast_(self, tensors) -> None:
        """Overwrite ``tensors`` with rank 0's values (in place)."""
        if self.world > 1:
            for t in tensors:
                data = t.data if isinstance(t, torch.nn.Parameter) else t
                self._collective("broadcast", lambda data=data: dist.broadcast(data, src=0))

    def in_sync(self, tensors) -> bool:
        """Whether ``tensors`` are bit-identical on all ranks (one small all-gather of digests)."""
        if self.world == 1:
            return True
        return len(set(self.gather_objects(digest(tensors)))) == 1

    def barrier(self) -> None:
        if self.world > 1:
            self._collective("barrier", lambda: dist.barrier())

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
