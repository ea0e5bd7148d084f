"""``ReplyCache``: the device server's replies by request sequence number, bounded in count and bytes."""

from __future__ import annotations

from collections import OrderedDict, deque


class ReplyCache:
    """Replies of the last requests, so a repeated request is answered again and never run twice.

    Holds at most ``size`` replies and ``max_bytes`` of payload, but always the newest one (the
    host waits for one request at a time, so that is the one it may repeat). The sequence
    numbers of dropped replies are remembered (the last ``remember``): a late duplicate of such
    a request is ``stale`` and is not run again. A reply is ``(type, payload segments)``.
    """

    def __init__(self, size: int = 4, max_bytes: int = 64 << 20, remember: int = 1024):
        if size < 1 or max_bytes < 0:
            raise ValueError(f"ReplyCache: size = {size}, max_bytes = {max_bytes}; allowed size >= 1, max_bytes >= 0")
        self.size, self.max_bytes = size, max_bytes
        self._replies: OrderedDict[int, tuple] = OrderedDict()
        self._nbytes: dict[int, int] = {}
        self._forgotten: deque[int] = deque(maxlen=remember)

    def __contains__(self, seq: int) -> bool:
        return seq in self._replies

    def __getitem__(self, seq: int) -> tuple:
        return self._replies[seq]

    def __len__(self) -> int:
        return len(self._replies)

    @property
    def nbytes(self) -> int:
        """Payload bytes held."""
        return sum(self._nbytes.values())

    def stale(self, seq: int) -> bool:
        """True if ``seq`` was answered but its reply has been dropped."""
        return seq in self._forgotten

    def put(self, seq: int, reply: tuple) -> None:
        self._replies[seq] = reply
        self._replies.move_to_end(seq)
        self._nbytes[seq] = sum(memoryview(p).nbytes for p in reply[1])
        while len(self._replies) > 1 and (len(self._replies) > self.size or self.nbytes > self.max_bytes):
            old, _ = self._replies.popitem(last=False)
            del self._nbytes[old]
            self._forgotten.append(old)

    def clear(self) -> None:
        """Forget everything (a new session or a device reset)."""
        self._replies.clear()
        self._nbytes.clear()
        self._forgotten.clear()
