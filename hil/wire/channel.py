"""Messages over a byte stream: chunking, reassembly and windowed flow control.

A message larger than the negotiated chunk size goes out as ``n_chunks`` frames with the
same ``seq``. The sender keeps at most ``window`` chunks unacknowledged; the receiver
answers with cumulative ``ACK`` frames (``chunk`` = chunks received in order) every
``window // 2`` chunks, at the end, and at once on a gap or a duplicate. A sender that
sees no progress for ``ack_timeout`` seconds, or a repeated ACK, sends again from the
first unacknowledged chunk (go-back-N). Single-frame messages are not acknowledged: the
reply is the acknowledgement, and the host retries the request.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import numpy as np

from ..errors import ProtocolError
from .frame import HEADER_SIZE, LIMITS, Frame, FrameDecoder, FrameFault, Limits, encode_frame
from .messages import MsgType, payload_size


class LinkClosed(ConnectionError):
    """The byte stream ended (peer closed, cable pulled)."""


class LinkStalled(TimeoutError):
    """A chunked send made no progress after repeated resends."""


class ByteStream(Protocol):
    """What a channel needs from a transport."""

    def read_some(self, timeout: float) -> bytes:
        """Whatever bytes arrive within ``timeout`` seconds (``b""`` if none); ``LinkClosed`` at end of stream."""

    def write(self, data) -> None: ...


def split_payload(parts: list, chunk_size: int) -> list[list]:
    """Payload segments -> per-chunk lists of memoryview slices (no copies); at least one chunk."""
    chunks, current, room = [], [], chunk_size
    for part in parts:
        view = memoryview(part).cast("B")
        while len(view):
            take = view[:room]
            current.append(take)
            view = view[len(take) :]
            room -= len(take)
            if room == 0:
                chunks.append(current)
                current, room = [], chunk_size
    if current or not chunks:
        chunks.append(current)
    return chunks


DEFAULT_CHUNK_SIZE = 1 << 18


def framed_size(msg, chunk_size: int = DEFAULT_CHUNK_SIZE) -> int:
    """Bytes ``msg`` occupies on the link: payload plus header and payload CRC of every chunk of ``chunk_size``
    payload bytes (acks excluded). RUN and RUN_REPLY are counted without encoding them (``payload_size``)."""
    payload = payload_size(msg)
    n_chunks = max(1, -(-payload // chunk_size))
    return payload + n_chunks * (HEADER_SIZE + 4)


class Assembly:
    """Chunks of one incoming message, checked against the limits before they are kept."""

    def __init__(self, first: Frame, limits: Limits):
        self.seq, self.type, self.n_chunks = first.seq, first.type, first.n_chunks
        self.limits = limits
        self.chunks: dict[int, object] = {}
        self.nbytes = 0
        self.contiguous = 0
        self.acked = 0

    def add(self, frame: Frame) -> bool:
        """Keep ``frame``; False if it is a duplicate. ``ProtocolError`` if it breaks the limits."""
        if frame.n_chunks != self.n_chunks or frame.type != self.type:
            raise ProtocolError(
                f"message {self.seq}: chunk {frame.chunk} says type {frame.type:#04x} of {frame.n_chunks} chunks, "
                f"first chunk said {self.type:#04x} of {self.n_chunks}"
            )
        if frame.chunk in self.chunks:
            return False
        size = len(frame.payload)
        if self.nbytes + size > self.limits.max_message:
            raise ProtocolError(
                f"message {self.seq}: {self.nbytes + size} bytes exceed the message limit of {self.limits.max_message}"
            )
        self.chunks[frame.chunk] = frame.payload
        self.nbytes += size
        while self.contiguous in self.chunks:
            self.contiguous += 1
        return True

    @property
    def complete(self) -> bool:
        return self.contiguous == self.n_chunks

    def payload(self) -> np.ndarray:
        """The message payload in one writable uint8 buffer (one copy, no zero-fill)."""
        out = np.empty(self.nbytes, np.uint8)
        pos = 0
        for i in range(self.n_chunks):
            data = np.frombuffer(self.chunks[i], np.uint8)
            out[pos : pos + data.size] = data
            pos += data.size
        return out


class Channel:
    """Frames and messages on one byte stream, with counters of what went wrong."""

    def __init__(
        self,
        stream: ByteStream,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        window: int = 8,
        ack_timeout: float = 0.5,
        max_stalls: int = 6,
        limits: Limits = LIMITS,
    ):
        if not 1 <= chunk_size <= limits.max_frame_payload:
            raise ValueError(f"chunk_size = {chunk_size}; allowed 1..{limits.max_frame_payload}")
        if window < 1:
            raise ValueError(f"window = {window}; allowed >= 1")
        self.stream = stream
        self.decoder = FrameDecoder(limits)
        self.limits = limits
        self.chunk_size = chunk_size
        self.window = window
        self.ack_timeout = ack_timeout
        self.max_stalls = max_stalls
        self.inbox: deque = deque()
        self.faults = 0  # damaged frames and garbage stretches detected
        self.resends = 0  # chunk windows sent again
        self.last_fault: FrameFault | None = None
        self.on_fault: Callable[[FrameFault], None] | None = None
        self._partial_since = 0.0  # when the decoder started holding an incomplete frame
        self._next_recover = 0.0  # earliest time of the next truncation check

    # --- frames ----------------------------------------------------------------------------
    def next_frame(self, deadline: float) -> Frame | None:
        """The next good frame, reading until ``deadline`` (``time.monotonic``); None on timeout.

        A partial frame that has waited longer than ``ack_timeout`` while a well-formed header
        follows it is declared truncated (``FrameDecoder.recover``), so a cut frame cannot
        swallow the frames behind it."""
        while not self.inbox:
            now = time.monotonic()
            if self.decoder.buffered and now - self._partial_since > self.ack_timeout and now >= self._next_recover:
                self._take(self.decoder.recover())
                self._next_recover = now + self.ack_timeout
                if self.inbox:
                    break
            left = deadline - now
            if left <= 0:
                return None
            data = self.stream.read_some(min(left, self.ack_timeout) if self.decoder.buffered else left)
            if data:
                if not self.decoder.buffered:
                    self._partial_since = time.monotonic()
                self._take(self.decoder.feed(data))
        return self.inbox.popleft()

    def partial_age(self, now: float) -> float:
        """Seconds the bytes of an incomplete frame have been waiting for the rest (0 if none)."""
        return now - self._partial_since if self.decoder.buffered else 0.0

    def _take(self, items: list) -> None:
        for item in items:
            if isinstance(item, Frame):
                self.inbox.append(item)
                self._partial_since = time.monotonic()
            else:
                self.faults += 1
                self.last_fault = item
                if self.on_fault is not None:
                    self.on_fault(item)

    def unread(self, frame: Frame) -> None:
        self.inbox.appendleft(frame)

    def send_frame(self, msg_type: int, seq: int, payload=b"", *, chunk: int = 0, n_chunks: int = 1) -> None:
        self.stream.write(encode_frame(msg_type, seq, payload, chunk=chunk, n_chunks=n_chunks))

    def ack(self, assembly: Assembly) -> None:
        assembly.acked = assembly.contiguous
        self.send_frame(MsgType.ACK, assembly.seq, chunk=assembly.contiguous, n_chunks=assembly.n_chunks)

    # --- messages ----------------------------------------------------------------------------
    def send(self, msg_type: int, seq: int, parts: list, *, interrupt: Callable[[Frame], bool] | None = None) -> bool:
        """Send one message. Returns False if ``interrupt(frame)`` returned True for a frame that
        arrived meanwhile (that frame is put back for the caller). ``LinkStalled`` after
        ``max_stalls`` resends without progress."""
        chunks = split_payload(parts, self.chunk_size)
        n = len(chunks)
        if n == 1:
            self.send_frame(msg_type, seq, chunks[0])
            return True
        frames: dict[int, bytes] = {}
        acked = sent = stalls = 0
        fast_resent_at = -1
        deadline = time.monotonic() + self.ack_timeout
        while acked < n:
            while sent < min(n, acked + self.window):
                if sent not in frames:
                    frames[sent] = encode_frame(msg_type, seq, chunks[sent], chunk=sent, n_chunks=n)
                self.stream.write(frames[sent])
                sent += 1
            frame = self.next_frame(deadline)
            if frame is None:
                stalls += 1
                if stalls > self.max_stalls:
                    raise LinkStalled(
                        f"message {seq}: no acknowledgement after {stalls} waits of {self.ack_timeout:g} s ({acked} "
                        f"of {n} chunks acknowledged)"
                    )
                self.resends += 1
                sent = acked
                deadline = time.monotonic() + self.ack_timeout
                continue
            if frame.type == MsgType.ACK and frame.seq == seq:
                k = min(frame.chunk, n)
                if k > acked:
                    acked, stalls = k, 0
                    sent = max(sent, acked)  # the receiver may already hold chunks we have not (re)sent
                    for i in [i for i in frames if i < acked]:
                        del frames[i]
                    deadline = time.monotonic() + self.ack_timeout
                elif k == acked and sent > acked and fast_resent_at != acked:
                    fast_resent_at = acked
                    self.resends += 1
                    sent = acked
                continue
            if interrupt is not None and interrupt(frame):
                self.unread(frame)
                return False
        return True

    def take_chunk(self, frame: Frame, assembly: Assembly) -> bool:
        """Add a chunk to ``assembly`` and acknowledge as the flow control requires; True when complete."""
        new = assembly.add(frame)
        c = assembly.contiguous
        step = max(1, self.window // 2)
        if c == assembly.n_chunks or not new or frame.chunk >= c or c // step > assembly.acked // step:
            self.ack(assembly)
        return assembly.complete
