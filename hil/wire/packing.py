"""Little-endian packing of message payloads: scalars with ``struct``, arrays as numpy views.

``Writer`` collects a payload as a list of buffers (array data is not copied until the
frame is built); ``Reader`` checks every declared count against the bytes that are
actually left *before* it creates an array, so a lying count cannot allocate anything.
"""

from __future__ import annotations

import struct

import numpy as np

from ..errors import ProtocolError

_TEXT_LEN = struct.Struct("<H")
MAX_TEXT = 4096  # bytes of UTF-8 in one text field


def little_endian(dtype) -> np.dtype:
    """``dtype`` with every field little-endian (bool stays bool)."""
    return np.dtype(dtype).newbyteorder("<")


class Writer:
    """Builds a payload as a list of bytes-like segments."""

    def __init__(self):
        self.parts: list = []

    def put(self, fmt: str, *values) -> Writer:
        self.parts.append(struct.pack("<" + fmt, *values))
        return self

    def text(self, value: str) -> Writer:
        data = value.encode("utf-8")[:MAX_TEXT]
        self.parts += [_TEXT_LEN.pack(len(data)), data]
        return self

    def array(self, arr, dtype) -> Writer:
        """Raw little-endian bytes of ``arr`` as ``dtype`` (a zero-copy view when already so)."""
        a = np.ascontiguousarray(arr, dtype=little_endian(dtype))
        if a.size:
            self.parts.append(memoryview(a.reshape(-1)).cast("B"))
        return self

    @property
    def nbytes(self) -> int:
        return parts_size(self.parts)


def parts_size(parts) -> int:
    """Bytes in a list of bytes-like payload parts."""
    return sum(memoryview(p).nbytes for p in parts)


def packed_size(fmt: str) -> int:
    """Bytes ``Writer.put(fmt, ...)`` writes."""
    return struct.calcsize("<" + fmt)


def text_size(value: str) -> int:
    """Bytes ``Writer.text(value)`` writes: the length field and the UTF-8 bytes, cut at ``MAX_TEXT``."""
    return _TEXT_LEN.size + min(len(value.encode("utf-8")), MAX_TEXT)


class Reader:
    """Reads a payload front to back; every overrun raises ``ProtocolError`` naming ``what``."""

    def __init__(self, payload, what: str):
        self.view = (
            memoryview(payload).cast("B") if not isinstance(payload, memoryview) or payload.format != "B" else payload
        )
        self.pos = 0
        self.what = what

    @property
    def left(self) -> int:
        return len(self.view) - self.pos

    def get(self, fmt: str) -> tuple:
        s = struct.Struct("<" + fmt)
        if s.size > self.left:
            raise ProtocolError(
                f"{self.what}: payload ends at byte {len(self.view)}, needed {s.size} more bytes at {self.pos}"
            )
        values = s.unpack_from(self.view, self.pos)
        self.pos += s.size
        return values

    def one(self, fmt: str):
        return self.get(fmt)[0]

    def text(self) -> str:
        (n,) = self.get("H")
        if n > min(MAX_TEXT, self.left):
            raise ProtocolError(
                f"{self.what}: text field of {n} bytes at byte {self.pos}; allowed <= {min(MAX_TEXT, self.left)}"
            )
        raw = bytes(self.view[self.pos : self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def array(self, dtype, count: int, field: str) -> np.ndarray:
        """``count`` elements of ``dtype`` (a view of the payload); the count is checked first."""
        dt = little_endian(dtype)
        if count < 0 or count * dt.itemsize > self.left:
            raise ProtocolError(
                f"{self.what}: {field} declares {count} x {dt.itemsize} bytes, only {self.left} bytes are left"
            )
        nbytes = count * dt.itemsize
        arr = np.frombuffer(self.view[self.pos : self.pos + nbytes], dtype=np.uint8 if dt.kind == "b" else dt)
        self.pos += nbytes
        if dt.kind == "b":
            if arr.size and arr.max() > 1:
                raise ProtocolError(f"{self.what}: {field} holds a boolean byte {int(arr.max())}; allowed 0 or 1")
            arr = arr.view(bool)
        return arr

    def end(self) -> None:
        if self.left:
            raise ProtocolError(f"{self.what}: {self.left} unexpected bytes after the last field (at byte {self.pos})")
