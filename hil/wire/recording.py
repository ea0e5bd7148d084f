"""Session recordings (``.hilrec``): every request and reply of a session, in order.

File layout (little-endian): the 8-byte magic ``b"HILREC\\x00\\x01"``, then records of

    kind u8 (0 metadata JSON, 1 request, 2 reply) | type u8 | reserved u16 | seq u32 |
    length u64 | payload (length bytes) | CRC-32 of the payload u32

Requests are the host's operations as first built (before any retry or recovery traffic);
replies are what the operation finally received (an ``ERROR`` reply for a call that failed on the
device). No pickle, nothing executable.
"""

from __future__ import annotations

import json
import struct

import attrs
from isal.isal_zlib import crc32

from ..errors import ConfigError, ProtocolError
from .packing import parts_size

MAGIC = b"HILREC\x00\x01"
RECORD = struct.Struct("<BBHIQ")
KIND_META, KIND_REQUEST, KIND_REPLY = 0, 1, 2
MAX_RECORD = 1 << 31  # bytes in one record's payload


@attrs.frozen(eq=False)
class Record:
    kind: int
    type: int
    seq: int
    payload: bytes


class SessionWriter:
    """Appends records to a new file at ``path``; ``meta`` (JSON-able) is the first record."""

    def __init__(self, path, meta: dict):
        self.path = str(path)
        try:
            self._file = open(path, "wb")
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write the session recording ({exc.strerror})") from None
        self._file.write(MAGIC)
        self.write(KIND_META, 0, 0, [json.dumps(meta, sort_keys=True).encode()])

    def write(self, kind: int, msg_type: int, seq: int, parts: list) -> None:
        length = parts_size(parts)
        crc = 0
        for p in parts:
            crc = crc32(p, crc)
        self._file.write(RECORD.pack(kind, msg_type, 0, seq & 0xFFFFFFFF, length))
        for p in parts:
            self._file.write(p)
        self._file.write(struct.pack("<I", crc))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_session(path) -> tuple[dict, list[Record]]:
    """``(metadata, records)`` of a recording; ``ProtocolError`` naming the first damaged record,
    ``ConfigError`` naming the file if it cannot be read."""
    try:
        with open(path, "rb") as f:
            records = _read_records(f, path)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the session recording ({exc.strerror or exc})") from None
    if not records or records[0].kind != KIND_META:
        raise ProtocolError(f"{path}: the first record must be the metadata")
    try:
        meta = json.loads(records[0].payload)
    except ValueError:
        raise ProtocolError(f"{path}: the metadata record is not JSON") from None
    return meta, records[1:]


def _read_records(f, path) -> list[Record]:
    if f.read(len(MAGIC)) != MAGIC:
        raise ProtocolError(f"{path}: not a session recording (magic {MAGIC!r} missing)")
    records = []
    while True:
        head = f.read(RECORD.size)
        if not head:
            return records
        if len(head) < RECORD.size:
            raise ProtocolError(f"{path}: record {len(records)} is truncated in its header")
        kind, mtype, _, seq, length = RECORD.unpack(head)
        if length > MAX_RECORD or kind > KIND_REPLY:
            raise ProtocolError(
                f"{path}: record {len(records)} declares kind {kind}, {length} bytes; allowed kind 0..2, <= "
                f"{MAX_RECORD} bytes"
            )
        payload = f.read(length)
        tail = f.read(4)
        if len(payload) < length or len(tail) < 4:
            raise ProtocolError(f"{path}: record {len(records)} is truncated ({len(payload)} of {length} bytes)")
        if crc32(payload) != struct.unpack("<I", tail)[0]:
            raise ProtocolError(f"{path}: record {len(records)} fails its CRC-32")
        records.append(Record(kind, mtype, seq, payload))
