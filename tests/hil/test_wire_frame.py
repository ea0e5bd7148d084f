"""Frames, the resynchronising decoder, chunking and the hard limits."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil import wire
from hil.errors import ProtocolError
from hil.wire import Frame, FrameDecoder, FrameFault, encode_frame


def frames_of(items):
    return [i for i in items if isinstance(i, Frame)]


def test_round_trip_and_fields():
    data = encode_frame(0x03, 41, b"payload", chunk=2, n_chunks=5)
    assert data[:4] == wire.SYNC and len(data) == wire.HEADER_SIZE + 7 + 4
    (f,) = FrameDecoder().feed(data)
    assert (f.type, f.seq, f.chunk, f.n_chunks, bytes(f.payload)) == (0x03, 41, 2, 5, b"payload")


def test_byte_by_byte_feed_and_garbage_between_frames():
    stream = b"\x00junk" + encode_frame(1, 1, b"a") + b"\xa5\x5aH" + encode_frame(2, 2, b"bb")
    d = FrameDecoder()
    out = []
    for b in stream:
        out += d.feed(bytes([b]))
    got = frames_of(out)
    assert [(f.seq, bytes(f.payload)) for f in got] == [(1, b"a"), (2, b"bb")]
    assert any(isinstance(i, FrameFault) and i.kind == "garbage" for i in out)


def test_every_single_bit_flip_is_detected_never_decoded_wrong():
    original = encode_frame(3, 9, bytes(range(40)))
    for i in range(len(original)):
        for bit in (0, 7):
            bad = bytearray(original)
            bad[i] ^= 1 << bit
            items = FrameDecoder().feed(bytes(bad) + encode_frame(4, 10, b"next"))
            good = frames_of(items)
            assert [f.seq for f in good] == [10], (i, bit)  # the damaged frame is never delivered
            assert any(isinstance(x, FrameFault) for x in items)


def test_truncated_frame_then_next_frame_is_found():
    a = encode_frame(3, 1, b"x" * 100)
    b = encode_frame(3, 2, b"y" * 10)
    d = FrameDecoder()
    items = d.feed(a[:60] + b) + d.feed(encode_frame(3, 3, b"z" * 200))
    assert [f.seq for f in frames_of(items)] == [2, 3] or [f.seq for f in frames_of(items)] == [3]
    assert 3 in [f.seq for f in frames_of(items)]


def _header(length, n_chunks=1, version=wire.WIRE_VERSION, chunk=0):
    head = struct.pack("<4sBBHIIII", wire.SYNC, version, 3, 0, 5, chunk, n_chunks, length)
    return head + struct.pack("<I", zlib.crc32(head))


def test_four_gib_payload_is_refused_at_once():
    d = FrameDecoder()
    items = d.feed(_header(0xFFFFFFFF))
    assert [(i.kind, i.seq) for i in items] == [("too_large", 5)]
    assert d.buffered == 0  # nothing kept, nothing waited for
    assert frames_of(d.feed(encode_frame(1, 6, b"ok")))[0].seq == 6


def test_bad_chunking_and_version_are_refused():
    d = FrameDecoder()
    kinds = [
        i.kind
        for i in d.feed(
            _header(0, n_chunks=0)
            + _header(0, n_chunks=1 << 20)
            + _header(0, version=9)
            + _header(0, n_chunks=2, chunk=2)
        )
    ]
    assert kinds == ["bad_chunking", "bad_chunking", "version", "bad_chunking"]


def test_split_and_assemble_with_limits():
    parts = [b"abc", memoryview(np.arange(10, dtype="<u4")).cast("B"), b"z"]
    chunks = wire.split_payload(parts, 7)
    assert all(sum(len(p) for p in c) == 7 for c in chunks[:-1])
    frames = [Frame(3, 1, i, len(chunks), b"".join(c)) for i, c in enumerate(chunks)]
    asm = wire.Assembly(frames[0], wire.LIMITS)
    for f in reversed(frames):
        asm.add(f)
    assert asm.complete and bytes(asm.payload()) == b"".join(bytes(p) for p in parts)
    assert not asm.add(frames[0])  # duplicate
    small = wire.Assembly(frames[0], wire.Limits(max_message=10))
    small.add(frames[0])
    with pytest.raises(ProtocolError, match="message limit"):
        small.add(frames[1])
    assert wire.split_payload([], 8) == [[]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.integers(0, 50))
def test_fuzz_random_bytes_never_crash_and_bounded(data, cut):
    d = FrameDecoder(wire.Limits(max_frame_payload=1024))
    items = d.feed(data[:cut]) + d.feed(data[cut:])
    assert all(isinstance(i, (Frame, FrameFault)) for i in items)
    assert d.buffered <= wire.HEADER_SIZE + 1024 + 4
    assert frames_of(d.feed(b"\x00" * 2000 + encode_frame(1, 77, b"hi")))[-1].seq == 77


@settings(max_examples=150, deadline=None)
@given(
    st.binary(min_size=0, max_size=200),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.integers(0, 2**32 - 1),
)
def test_fuzz_mutated_frames_are_detected_or_identical(payload, mutations, seq):
    frame = bytearray(encode_frame(0x83, seq, payload))
    for pos, value in mutations:
        frame[pos % len(frame)] = value
    items = FrameDecoder().feed(bytes(frame))
    for f in frames_of(items):  # anything delivered is exactly what was sent (mutations were no-ops)
        assert (f.type, f.seq, bytes(f.payload)) == (0x83, seq, payload)
