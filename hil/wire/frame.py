"""Frames: the unit of bytes on the link, and an incremental decoder that resynchronises.

A frame is a 28-byte little-endian header, the payload, and the payload's CRC-32::

    0  sync        4  b"\\xa5\\x5aHW"
    4  version     1  WIRE_VERSION
    5  type        1  message type (see ``hil.wire.messages.MsgType``)
    6  flags       2  reserved, 0
    8  seq         4  request sequence number (replies echo it)
   12  chunk       4  chunk index (ACK: number of chunks received in order)
   16  n_chunks    4  chunks in the message (>= 1)
   20  length      4  payload bytes (<= Limits.max_frame_payload)
   24  header_crc  4  CRC-32 of bytes 0..23
   28  payload     length
   28+length crc   4  CRC-32 of the payload

CRC-32 is the zlib/IEEE 802.3 polynomial (same values as ``zlib.crc32``; computed with ISA-L,
which is several times faster). The decoder never trusts a
field before the header CRC has checked it, refuses oversized frames before reading their
payload, and reports every damaged frame as a :class:`FrameFault` instead of decoding it.
"""

from __future__ import annotations

import struct

import attrs
from isal.isal_zlib import crc32

from .packing import parts_size

SYNC = b"\xa5\x5aHW"
WIRE_VERSION = 1
HEADER = struct.Struct("<4sBBHIIII")  # sync, version, type, flags, seq, chunk, n_chunks, length
HEADER_SIZE = HEADER.size + 4  # + header CRC: 28 bytes
CRC_SIZE = 4
_U32 = struct.Struct("<I")
ACK_TYPE = 0x7E  # ACK frames carry a received count in ``chunk``, which may equal ``n_chunks``


@attrs.frozen
class Limits:
    """Hard limits, checked before anything is allocated.

    max_frame_payload: bytes in one frame's payload (1 MiB)
    max_chunks:        frames in one message
    max_message:       bytes in one reassembled message (1 GiB)
    """

    max_frame_payload: int = 1 << 20
    max_chunks: int = 1 << 16
    max_message: int = 1 << 30


LIMITS = Limits()


@attrs.frozen(eq=False)
class Frame:
    """One decoded, CRC-checked frame. ``payload`` is a bytes-like object."""

    type: int
    seq: int
    chunk: int
    n_chunks: int
    payload: object = b""


@attrs.frozen
class FrameFault:
    """A damaged or refused stretch of input: ``kind`` is ``garbage`` (bytes before a sync word),
    ``header_crc``, ``payload_crc``, ``truncated`` (see ``recover``), ``version`` (well-formed header of another
    protocol version), ``too_large`` (declared payload beyond the limit) or ``bad_chunking``.
    ``seq``/``type`` are known for ``version``, ``too_large`` and ``bad_chunking`` (header CRC valid), else -1."""

    kind: str
    nbytes: int
    detail: str
    seq: int = -1
    type: int = -1
    version: int = -1


def encode_frame(msg_type: int, seq: int, payload=b"", *, chunk: int = 0, n_chunks: int = 1) -> bytes:
    """One frame as bytes. ``payload``: a bytes-like object or a list of them (joined once)."""
    parts = payload if isinstance(payload, list) else [payload]
    length = parts_size(parts)
    head = HEADER.pack(SYNC, WIRE_VERSION, msg_type, 0, seq & 0xFFFFFFFF, chunk, n_chunks, length)
    crc = 0
    for p in parts:
        crc = crc32(p, crc)
    return b"".join([head, _U32.pack(crc32(head)), *parts, _U32.pack(crc)])


class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the frames and faults completed by these bytes.

    After any fault it searches for the next sync word one byte further on, so a frame that
    follows garbage, a truncated frame or a corrupted frame is still found.
    """

    def __init__(self, limits: Limits = LIMITS):
        self.limits = limits
        self._buf = bytearray()
        self.bytes_in = 0

    def feed(self, data) -> list:
        self.bytes_in += len(data)
        if self._buf:
            self._buf += data
            src = self._buf
        else:
            src = bytes(data)
        owned = src is self._buf
        out, pos, n = [], 0, len(src)
        with memoryview(src) as view:
            while True:
                start = src.find(SYNC, pos)
                if start < 0:
                    keep = max(pos, n - (len(SYNC) - 1))
                    if keep > pos:
                        out.append(FrameFault("garbage", keep - pos, f"{keep - pos} bytes without a sync word"))
                    pos = keep
                    break
                if start > pos:
                    out.append(FrameFault("garbage", start - pos, f"{start - pos} bytes before a sync word"))
                    pos = start
                if n - pos < HEADER_SIZE:
                    break
                fault, length = self._check_header(src, view, pos)
                if fault is not None:
                    out.append(fault)
                    pos += fault.nbytes
                    continue
                end = pos + HEADER_SIZE + length
                if n < end + CRC_SIZE:
                    break
                item = self._take(src, view, pos, end, owned)
                out.append(item)
                pos = end + CRC_SIZE if isinstance(item, Frame) else pos + 1
        if owned:
            del self._buf[:pos]
        else:
            self._buf = bytearray(src[pos:])
        return out

    def _check_header(self, src, view, pos):
        """(fault or None, payload length) of the header at ``pos``."""
        _, version, mtype, _flags, seq, chunk, n_chunks, length = HEADER.unpack_from(src, pos)
        (hcrc,) = _U32.unpack_from(src, pos + HEADER.size)
        if crc32(view[pos : pos + HEADER.size]) != hcrc:
            return FrameFault("header_crc", 1, "header CRC mismatch"), 0
        if version != WIRE_VERSION:
            return FrameFault(
                "version",
                HEADER_SIZE,
                f"frame version {version}, this decoder reads {WIRE_VERSION}",
                seq,
                mtype,
                version,
            ), 0
        if length > self.limits.max_frame_payload:
            return FrameFault(
                "too_large",
                HEADER_SIZE,
                f"payload length {length} bytes exceeds the limit of {self.limits.max_frame_payload}",
                seq,
                mtype,
            ), 0
        chunk_limit = n_chunks + 1 if mtype == ACK_TYPE else n_chunks
        if not 1 <= n_chunks <= self.limits.max_chunks or chunk >= chunk_limit:
            return FrameFault(
                "bad_chunking",
                HEADER_SIZE,
                f"chunk {chunk} of {n_chunks}; allowed 1..{self.limits.max_chunks} chunks",
                seq,
                mtype,
            ), 0
        return None, length

    @staticmethod
    def _take(src, view, pos, end, owned):
        """The frame whose payload ends at ``end``, or a ``payload_crc`` fault."""
        _, _, mtype, _, seq, chunk, n_chunks, length = HEADER.unpack_from(src, pos)
        (pcrc,) = _U32.unpack_from(src, end)
        payload = view[pos + HEADER_SIZE : end]
        if crc32(payload) != pcrc:
            payload.release()
            return FrameFault(
                "payload_crc", 1, f"payload CRC mismatch (seq {seq}, type {mtype:#04x}, {length} bytes)", seq, mtype
            )
        if owned:  # the buffer is reused: copy out and drop the view
            data = bytes(payload)
            payload.release()
            payload = data
        return Frame(mtype, seq, chunk, n_chunks, payload)

    def recover(self) -> list:
        """Give up on a partial frame that later bytes prove truncated: if a well-formed header
        (sync word and valid header CRC) follows the pending one, skip to it and decode from
        there. Returns the ``truncated`` fault and whatever decodes after it ([] if no proof)."""
        buf = self._buf
        nxt = buf.find(SYNC, 1)
        while 0 <= nxt <= len(buf) - HEADER_SIZE:
            (hcrc,) = _U32.unpack_from(buf, nxt + HEADER.size)
            if crc32(bytes(buf[nxt : nxt + HEADER.size])) == hcrc:
                rest = bytes(buf[nxt:])
                self._buf = bytearray()
                self.bytes_in -= len(rest)
                return [
                    FrameFault(
                        "truncated", nxt, f"frame cut short after {nxt} bytes; resynchronised on the next header"
                    )
                ] + self.feed(rest)
            nxt = buf.find(SYNC, nxt + 1)
        return []

    @property
    def buffered(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)
