"""The server's client slot: idle and partial-frame deadlines, BUSY with a retry time (and the
host driver waiting on it), ERROR UNKNOWN_TYPE, and runs cancelled when the client leaves."""

from __future__ import annotations

import socket
import threading
import time

import pytest

import hil
from drivers.reply_cache import ReplyCache
from drivers.server import Server
from hil import wire

from .fakes import FakeDevice, config, same_measurement, stimulus
from .wire_fixtures import fake_fixture, server_fixture  # noqa: F401 - fixtures "fake" and "server"

pytestmark = pytest.mark.timeout(60)


def connect(address: str) -> socket.socket:
    host, port = address.removeprefix("socket://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def hello_frame(seq: int = 1, session: int = 5) -> bytes:
    t, parts = wire.encode_message(wire.Hello(session=session))
    return wire.encode_frame(t, seq, parts)


def replies(sock: socket.socket, until_seq: int, decoder=None) -> list:
    """Decoded messages received until the reply (type >= 0x80) to ``until_seq``."""
    decoder = decoder or wire.FrameDecoder()
    out = []
    while True:
        data = sock.recv(1 << 16)
        assert data, "the server closed the connection without answering"
        for item in decoder.feed(data):
            if isinstance(item, wire.Frame) and item.type >= 0x80:
                out.append((item.seq, wire.decode_message(item.type, item.payload)))
                if item.seq in (until_seq, 0):
                    return out


def closed_by_server(sock: socket.socket, within_s: float) -> bool:
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


class BlockingDevice(FakeDevice):
    """A fake whose ``run`` blocks until ``release`` is set; ``cancel()`` sets it and makes run fail."""

    def __init__(self, cancellable: bool):
        super().__init__()
        self.started, self.release, self.cancelled = threading.Event(), threading.Event(), threading.Event()
        if cancellable:
            self.cancel = self._cancel

    def _cancel(self) -> None:
        self.cancelled.set()
        self.release.set()

    def run(self, stimulus, recording=hil.Recording()):
        self.started.set()
        self.release.wait(20)
        if self.cancelled.is_set():
            raise hil.DeviceError("run cancelled")
        return super().run(stimulus, recording)


def test_idle_client_is_dropped_and_a_waiting_client_gets_busy_with_a_retry_time():
    with Server(FakeDevice(), idle_timeout=0.5) as srv:
        idle = connect(srv.address)  # connects, says nothing
        time.sleep(0.1)
        with connect(srv.address) as second:
            second.sendall(hello_frame())
            ((seq, busy),) = replies(second, 1)
        assert seq == 0 and busy.code == wire.ErrorCode.BUSY and 0 < busy.retry_after_s <= 0.5
        assert "device busy" in busy.message
        with hil.open(srv.address, timeout=1.0, busy_wait=5.0) as dev:  # waits for the idle client's deadline
            assert dev.info().chip_id == "fake-0"
        assert closed_by_server(idle, 1.0)
        idle.close()


@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "one byte per 0.1 s"])
def test_a_partial_frame_does_not_hold_the_slot(trickle):
    with Server(FakeDevice(), idle_timeout=30.0, frame_timeout=0.4) as srv:
        partial = connect(srv.address)
        header = hello_frame()[:10]
        stop = threading.Event()

        def send():
            for piece in [bytes([b]) for b in header] if trickle else [header]:
                if stop.is_set():
                    return
                try:
                    partial.sendall(piece)
                except OSError:  # dropped by the server
                    return
                time.sleep(0.1)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        time.sleep(0.05)
        with hil.open(srv.address, timeout=1.0, busy_wait=5.0) as dev:
            dev.configure(config(1))
        stop.set()
        assert closed_by_server(partial, 1.0)
        partial.close()


def test_host_driver_waits_on_busy_or_says_when_to_retry():
    with Server(FakeDevice()) as srv:
        first = hil.open(srv.address, timeout=1.0)
        with pytest.raises(hil.DeviceError, match=r"device busy: serving .*; retry after [\d.]+ s") as info:
            hil.open(srv.address, timeout=1.0, busy_wait=0)
        assert 0 < info.value.retry_after_s <= 1.0
        threading.Timer(0.5, first.close).start()
        with hil.open(srv.address, timeout=1.0, busy_wait=10.0) as second:  # gets the slot once first closes
            second.configure(config(2))
            ref = FakeDevice()
            ref.configure(config(2))
            assert same_measurement(second.run(stimulus(3)), ref.run(stimulus(3)))


def test_unknown_request_type_gets_error_unknown_type_at_once(server):
    with connect(server.address) as s:
        s.sendall(wire.encode_frame(0x10, 7, b"\x01\x02"))
        ((seq, reply),) = replies(s, 7)
        assert seq == 7 and reply.code == wire.ErrorCode.UNKNOWN_TYPE and "0x10" in reply.message
        assert isinstance(reply.exception("here"), hil.ProtocolError)
        s.sendall(wire.encode_frame(0x33, 8, b"x", chunk=0, n_chunks=3))  # chunked: acknowledged whole, answered once
        decoder = wire.FrameDecoder()
        frames = []
        while not any(f.type == wire.MsgType.ERROR for f in frames):
            frames += [f for f in decoder.feed(s.recv(1 << 16)) if isinstance(f, wire.Frame)]
        assert any(f.type == wire.MsgType.ACK and f.chunk == 3 for f in frames)
        s.sendall(hello_frame(9))
        assert isinstance(replies(s, 9)[-1][1], wire.HelloReply)  # still serving


def start_run(address: str, session: int = 5) -> socket.socket:
    """HELLO, then RUN seq 2 over a raw socket; returns once the device started (WORKING arrives)."""
    s = connect(address)
    s.sendall(hello_frame(1, session))
    replies(s, 1)
    t, parts = wire.encode_message(wire.Run(stimulus(4), hil.Recording()))
    s.sendall(wire.encode_frame(t, 2, parts))
    decoder = wire.FrameDecoder()
    while not any(isinstance(f, wire.Frame) and f.type == wire.MsgType.WORKING for f in decoder.feed(s.recv(4096))):
        pass
    return s


def test_a_client_that_disconnects_during_a_run_cancels_it():
    device = BlockingDevice(cancellable=True)
    with Server(device) as srv:
        start_run(srv.address).close()
        assert device.cancelled.wait(5), "the server did not cancel the run of a client that left"
        device.release.clear()
        device.cancelled.clear()
        device.release.set()
        with hil.open(srv.address, timeout=2.0, busy_wait=5.0) as dev:  # the slot and the device are free again
            assert dev.run(stimulus(2)).n_trials == 2


def test_a_run_that_completes_after_the_client_left_is_answered_from_the_cache():
    device = BlockingDevice(cancellable=False)
    with Server(device) as srv:
        start_run(srv.address, session=77).close()
        time.sleep(0.2)
        device.release.set()  # the run completes with nobody listening
        deadline = time.monotonic() + 5
        while True:  # the same host reconnects (same session) and repeats its request
            with connect(srv.address) as s:
                s.sendall(hello_frame(3, session=77))
                (seq, hello), *_ = replies(s, 3)
                if isinstance(hello, wire.HelloReply):
                    t, parts = wire.encode_message(wire.Run(stimulus(4), hil.Recording()))
                    s.sendall(wire.encode_frame(t, 2, parts))
                    reply = replies(s, 2)[-1][1]
                    break
            assert time.monotonic() < deadline, "the server stayed busy"
            time.sleep(0.1)
    assert isinstance(reply, wire.RunReply) and device.runs == 1
    assert same_measurement(reply.measurement, FakeDevice().run(stimulus(4)))


def test_stopping_the_server_cancels_a_running_request():
    device = BlockingDevice(cancellable=True)
    srv = Server(device).start()
    sock = start_run(srv.address)
    srv.stop()
    assert device.cancelled.is_set()
    sock.close()


def test_reply_cache_is_bounded_by_count_and_bytes_and_remembers_what_it_dropped():
    cache = ReplyCache(size=3, max_bytes=1000)
    for seq in range(1, 5):
        cache.put(seq, (0x83, [bytes(300)]))
    assert [s for s in range(1, 5) if s in cache] == [2, 3, 4] and cache.nbytes == 900
    cache.put(5, (0x83, [bytes(800)]))
    assert [s for s in range(1, 6) if s in cache] == [5] and cache.stale(4) and cache.stale(1)
    cache.put(6, (0x83, [bytes(5000)]))  # larger than the budget alone: the newest is always kept
    assert 6 in cache and 5 not in cache and len(cache) == 1 and not cache.stale(6)
    cache.clear()
    assert len(cache) == 0 and not cache.stale(5)


def test_a_new_session_hello_is_answered_even_if_its_seq_was_cached(server):
    with connect(server.address) as a:
        a.sendall(hello_frame(1, session=5) + wire.encode_frame(wire.MsgType.BYE, 2))
        assert isinstance(replies(a, 2)[-1][1], wire.ByeReply)
    deadline = time.monotonic() + 5
    while True:
        with connect(server.address) as b:
            b.sendall(hello_frame(2, session=6))  # seq 2 is the previous session's cached BYE
            seq, reply = replies(b, 2)[-1]
        if seq == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)  # BUSY (seq 0) while the first session ends
    assert isinstance(reply, wire.HelloReply)


def test_a_slow_chunked_request_is_not_idle():
    with Server(FakeDevice(), idle_timeout=0.5) as srv, connect(srv.address) as s:
        s.sendall(hello_frame(1))
        replies(s, 1)
        t, parts = wire.encode_message(wire.configure_message(None, config(3)))
        chunks = wire.split_payload(parts, 120_000)
        assert len(chunks) == 3
        for i, chunk in enumerate(chunks):  # 0.9 s in all, each chunk within the idle deadline
            s.sendall(wire.encode_frame(t, 2, chunk, chunk=i, n_chunks=len(chunks)))
            time.sleep(0.3)
        assert isinstance(replies(s, 2)[-1][1], wire.ConfigureReply)
