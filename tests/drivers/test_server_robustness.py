"""The server survives any byte sequence and keeps answering; pseudo-terminal transport."""

from __future__ import annotations

import os
import random
import socket
import struct
import time
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hil
from drivers.server import Server
from hil import wire

from .fakes import FakeDevice, config, same_measurement, stimulus
from .wire_fixtures import fake_fixture, server_fixture  # noqa: F401 - fixtures "fake" and "server"

pytestmark = pytest.mark.timeout(90)


def raw_hello(address, seq=1, patience=5.0):
    """A raw HELLO over a fresh socket; the decoded reply. Waits while the server reports busy
    (the previous, closed connection's session may still be ending)."""
    host, port = address.removeprefix("socket://").split(":")
    deadline = time.monotonic() + patience
    while True:
        with socket.create_connection((host, int(port)), timeout=3) as s:
            t, parts = wire.encode_message(wire.Hello(session=99))
            s.sendall(wire.encode_frame(t, seq, parts))
            d = wire.FrameDecoder()
            reply = None
            while reply is None:
                data = s.recv(65536)
                assert data, "server closed the connection without answering"
                for item in d.feed(data):
                    if isinstance(item, wire.Frame) and item.seq in (seq, 0):
                        reply = wire.decode_message(item.type, item.payload)
        if (
            not (isinstance(reply, wire.ErrorReply) and reply.code == wire.ErrorCode.BUSY)
            or time.monotonic() > deadline
        ):
            return reply
        time.sleep(0.05)


def blast(address, data: bytes):
    host, port = address.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.sendall(data)
        s.settimeout(0.05)
        try:
            while s.recv(65536):
                pass
        except OSError:
            pass


def test_random_and_mutated_bytes_then_valid_handshake(server):
    rng = random.Random(4)
    frames = [
        wire.encode_frame(t, rng.randrange(1, 9), p)
        for t, p in (
            wire.encode_message(wire.Hello()),
            wire.encode_message(wire.Run(stimulus(3), hil.Recording())),
            wire.encode_message(wire.Reset()),
        )
    ]
    for _ in range(30):
        data = bytearray(b"".join(rng.choice(frames) for _ in range(3)))
        for _ in range(rng.randrange(0, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        data += bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
        blast(server.address, bytes(data))
    assert isinstance(raw_hello(server.address), wire.HelloReply)


@settings(max_examples=25, deadline=None)
@given(st.binary(max_size=2000))
def test_fuzz_live_server(data):
    srv = Server(FakeDevice()).start()
    try:
        blast(srv.address, data)
        assert isinstance(raw_hello(srv.address), wire.HelloReply)
    finally:
        srv.stop()


def test_four_gib_frame_is_refused_with_an_error_at_once(server):
    head = struct.pack("<4sBBHIIII", wire.SYNC, wire.WIRE_VERSION, int(wire.MsgType.RUN), 0, 5, 0, 1, 0xFFFFFFFF)
    host, port = server.address.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.sendall(head + struct.pack("<I", zlib.crc32(head)))
        d = wire.FrameDecoder()
        (frame,) = [f for f in d.feed(s.recv(65536)) if isinstance(f, wire.Frame)]
    reply = wire.decode_message(frame.type, frame.payload)
    assert frame.seq == 5 and reply.code == wire.ErrorCode.PROTOCOL and "exceeds the limit" in reply.message
    assert isinstance(raw_hello(server.address), wire.HelloReply)


def test_version_mismatch_is_answered(server):
    other = hil.PROTOCOL_VERSION + 1
    t, parts = wire.encode_message(wire.Hello(version=other))
    host, port = server.address.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.sendall(wire.encode_frame(t, 3, parts))
        (frame,) = [f for f in wire.FrameDecoder().feed(s.recv(65536)) if isinstance(f, wire.Frame)]
    reply = wire.decode_message(frame.type, frame.payload)
    assert reply.code == wire.ErrorCode.VERSION and f"version {other}" in reply.message


def test_requests_without_hello_get_reset_error(server):
    host, port = server.address.removeprefix("socket://").split(":")
    with socket.create_connection((host, int(port)), timeout=3) as s:
        s.sendall(wire.encode_frame(*wire.encode_message(wire.Reset())[:1], 4, b""))
        (frame,) = [f for f in wire.FrameDecoder().feed(s.recv(65536)) if isinstance(f, wire.Frame)]
    assert wire.decode_message(frame.type, frame.payload).code == wire.ErrorCode.RESET


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals on this platform")
def test_pseudo_terminal_transport():
    fake = FakeDevice()
    srv = Server(fake, pty=True).start()
    try:
        assert srv.address.startswith("/dev/")
        with hil.open(srv.address, timeout=1.0) as dev:
            dev.configure(config(2))
            m = dev.run(stimulus(20))
        ref = FakeDevice()
        ref.configure(config(2))
        assert same_measurement(m, ref.run(stimulus(20)))
    finally:
        srv.stop()


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="no pseudo-terminals on this platform")
def test_mock_chip_through_a_pseudo_terminal_is_bit_identical_to_in_process():
    import numpy as np

    from drivers.mock import MockChip

    net = hil.Network.feedforward(5, [120], 3, duplication=5)
    placement = hil.place(net)
    rng = np.random.default_rng(4)
    cfg = placement.config({p.key: rng.normal(0.4, 0.4, net.weight_shape(p)) for p in net.projections}, 40.0)
    stim = placement.encode(rng.uniform(1e-6, 13e-6, (50, 5)), 50e-6)
    srv = Server(MockChip(seed=7, noise=True, noise_seed=11), pty=True).start()
    try:
        with hil.open(srv.address, timeout=5.0) as dev:
            dev.configure(cfg)
            remote = [dev.run(stim) for _ in range(2)]
    finally:
        srv.stop()
    local = MockChip(seed=7, noise=True, noise_seed=11)
    local.configure(cfg)
    for m in remote:
        ref = local.run(stim)
        assert m.spikes.size > 0
        np.testing.assert_array_equal(m.spikes, ref.spikes)
