"""Device side of the wire protocol: serve any ``hil.Device`` over TCP or a pseudo-terminal.

``Server(device, host="127.0.0.1", port=0)`` listens on TCP (port 0 picks a free port;
``.address`` is the ``socket://`` URL); ``Server(device, pty=True)`` creates a
pseudo-terminal and ``.address`` is the path the host opens. One client at a time: a
second connection gets an ``ERROR BUSY`` frame (seq 0) and is closed. ``start()`` serves
from a thread, ``serve_forever()`` from the caller's; ``stop()`` ends both.

Per request the server keeps the reply under its sequence number (``cache_size`` of
them), so a retried request is answered from the cache and never applied twice. The
device's configuration is mirrored here: ``CONFIGURE`` blocks are applied to a copy of
the mirror, checked against the host's expected hash, then the whole configuration is
handed to ``device.configure``. A device reset (its ``boot_id`` changes) invalidates the
session until the host says ``HELLO`` again.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import tty
from collections import OrderedDict
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor

import attrs

import hil
from hil import wire
from hil.logging import get_logger
from hil.measurement import Health
from hil.wire import ErrorCode, ErrorReply, MsgType

log = get_logger(__name__)


class SocketStream:
    """``ByteStream`` over a connected socket."""

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def read_some(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not ready:
            return b""
        try:
            data = self.sock.recv(1 << 20)
        except OSError as exc:
            raise wire.LinkClosed(f"socket read failed: {exc}") from exc
        if not data:
            raise wire.LinkClosed("peer closed the connection")
        return data

    def write(self, data) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise wire.LinkClosed(f"socket write failed: {exc}") from exc


class FdStream:
    """``ByteStream`` over a file descriptor (the master side of a pseudo-terminal)."""

    def __init__(self, fd: int):
        self.fd = fd

    def read_some(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not ready:
            return b""
        try:
            return os.read(self.fd, 1 << 16)
        except OSError as exc:  # EIO: no process has the terminal open
            time.sleep(min(timeout, 0.05))
            if exc.errno == 5:
                return b""
            raise wire.LinkClosed(f"pty read failed: {exc}") from exc

    def write(self, data) -> None:
        view = memoryview(data)
        while len(view):
            select.select([], [self.fd], [], 1.0)
            n = os.write(self.fd, view)
            view = view[n:]


def _refuse(conn: socket.socket, frame: bytes) -> None:
    """Send ``frame``, then close gently: drain what the peer sent so the close is not a reset
    that would discard our frame before the peer reads it."""
    try:
        conn.sendall(frame)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.5)
        while conn.recv(4096):
            pass
    except OSError:
        pass
    finally:
        conn.close()


def error_reply(code: ErrorCode, message: str, error_class: str = "") -> tuple[int, list]:
    return wire.encode_message(ErrorReply(int(code), error_class or wire.ERROR_CLASSES[code].__name__, message))


class Server:
    """Serves ``device`` over TCP (default) or a pseudo-terminal (``pty=True``)."""

    def __init__(
        self,
        device: hil.Device,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pty: bool = False,
        chunk_size: int = 1 << 18,
        window: int = 8,
        ack_timeout: float = 0.5,
        cache_size: int = 4,
        limits: wire.Limits = wire.LIMITS,
    ):
        self.device = device
        self.chunk_size, self.window, self.ack_timeout, self.limits = chunk_size, window, ack_timeout, limits
        self.cache_size = cache_size
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="hil-device")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: threading.Thread | None = None
        self._client_peer = ""
        self.cache: OrderedDict = OrderedDict()
        self.mirror = hil.ChipConfig()
        self.boot_id = self._call(device.info).boot_id
        self.session: int | None = None
        self.session_boot: int | None = None
        self.requests = 0
        self._keepalive = 0.25  # s between WORKING frames; the host's HELLO sets it
        self._listener = self._pty_master = self._pty_slave = None
        if pty:
            self._pty_master, self._pty_slave = os.openpty()
            tty.setraw(self._pty_slave)
            self.address = os.ttyname(self._pty_slave)
        else:
            self._listener = socket.create_server((host, port))
            self._listener.settimeout(0.1)
            bound_host, bound_port = self._listener.getsockname()[:2]
            self.address = f"socket://{bound_host}:{bound_port}"

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Server:
        """Serve from a background thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="hil-server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve until ``stop()``."""
        log.info("serve", address=self.address)
        if self._pty_master is not None:
            self._session(FdStream(self._pty_master), self.address)
        else:
            while not self._stop.is_set():
                try:
                    conn, peer = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    break
                self._accept(conn, f"{peer[0]}:{peer[1]}")
        self._close_resources()

    def request_stop(self) -> None:
        """Ask ``serve_forever`` to return (safe from a signal handler)."""
        self._stop.set()

    def stop(self) -> None:
        """Stop serving; waits for the serving threads."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._client is not None and self._client is not threading.current_thread():
            self._client.join(timeout=5)
        self._close_resources()

    def _close_resources(self) -> None:
        if self._listener is not None:
            self._listener.close()
        for fd in (self._pty_master, self._pty_slave):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._pty_master = self._pty_slave = None
        self._executor.shutdown(wait=False)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self, conn: socket.socket, peer: str) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._client is not None and self._client.is_alive():
            t, parts = error_reply(ErrorCode.BUSY, f"device busy: serving {self._client_peer}; one client at a time")
            threading.Thread(target=_refuse, args=(conn, wire.encode_frame(t, 0, parts)), daemon=True).start()
            log.info("busy", refused=peer, serving=self._client_peer)
            return
        self._client_peer = peer
        self._client = threading.Thread(
            target=self._session_closing, args=(conn, peer), name="hil-session", daemon=True
        )
        self._client.start()

    def _session_closing(self, conn: socket.socket, peer: str) -> None:
        try:
            self._session(SocketStream(conn), peer)
        finally:
            conn.close()

    # --- one client --------------------------------------------------------------------------
    def _session(self, stream, peer: str) -> None:
        ch = wire.Channel(
            stream, chunk_size=self.chunk_size, window=self.window, ack_timeout=self.ack_timeout, limits=self.limits
        )
        ch.on_fault = lambda fault: self._answer_fault(ch, fault)
        assembly: wire.Assembly | None = None
        log.info("session", peer=peer)
        try:
            while not self._stop.is_set():
                frame = ch.next_frame(time.monotonic() + 0.1)
                if frame is None or frame.type not in wire.REQUEST_TYPES:
                    continue  # stale ACK/WORKING, or a reply type from a confused peer
                if frame.seq in self.cache:
                    self._repeat(ch, frame)
                    continue
                if frame.n_chunks > 1:
                    if assembly is None or assembly.seq != frame.seq:
                        assembly = wire.Assembly(frame, self.limits)
                    try:
                        if not ch.take_chunk(frame, assembly):
                            continue
                    except hil.ProtocolError as exc:
                        assembly = None
                        self._send(ch, frame.seq, error_reply(ErrorCode.PROTOCOL, str(exc)))
                        continue
                    payload, assembly = assembly.payload(), None
                else:
                    payload = frame.payload
                reply = self._handle(ch, frame.type, frame.seq, payload)
                self.cache[frame.seq] = reply
                while len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
                self._send(ch, frame.seq, reply)
                if frame.type == MsgType.BYE:
                    break
        except wire.LinkClosed:
            pass
        except Exception as exc:  # the server outlives any client
            log.error("session_failed", peer=peer, error=f"{type(exc).__name__}: {exc}")
        log.info("session_end", peer=peer, link_faults=ch.faults, resends=ch.resends)

    def _send(self, ch: wire.Channel, seq: int, reply: tuple) -> None:
        try:
            ch.send(reply[0], seq, reply[1], interrupt=lambda f: f.type in wire.REQUEST_TYPES and f.seq != seq)
        except wire.LinkStalled:
            pass  # the host will ask again; the reply stays cached

    def _repeat(self, ch: wire.Channel, frame: wire.Frame) -> None:
        """A chunk of a request already answered: acknowledge it whole (the host stops sending it)
        and, on its first chunk (where every repeat starts), send the cached reply again."""
        if frame.n_chunks > 1:
            ch.send_frame(MsgType.ACK, frame.seq, chunk=frame.n_chunks, n_chunks=frame.n_chunks)
        if frame.chunk == 0:
            self._send(ch, frame.seq, self.cache[frame.seq])

    def _answer_fault(self, ch: wire.Channel, fault: wire.FrameFault) -> None:
        """Frames with a valid header but refused content get an ERROR naming why."""
        codes = {"version": ErrorCode.VERSION, "too_large": ErrorCode.PROTOCOL, "bad_chunking": ErrorCode.PROTOCOL}
        if fault.kind in codes:
            t, parts = error_reply(codes[fault.kind], f"frame refused: {fault.detail}")
            ch.send_frame(t, fault.seq, wire.payload_bytes(parts))

    # --- requests ------------------------------------------------------------------------------
    def _handle(self, ch: wire.Channel, msg_type: int, seq: int, payload) -> tuple[int, list]:
        self.requests += 1
        faults_before = ch.faults
        self._check_boot()
        try:
            msg = wire.decode_message(msg_type, payload)
            if isinstance(msg, wire.Hello):
                return self._hello(ch, msg)
            if self.session_boot != self.boot_id:
                return error_reply(
                    ErrorCode.RESET,
                    f"no session for boot id {self.boot_id}: the device was reset or no HELLO was sent; send HELLO, then the whole configuration",
                )
            if isinstance(msg, wire.Configure):
                return self._configure(ch, seq, msg)
            if isinstance(msg, wire.Run):
                return self._run(ch, seq, msg, faults_before)
            if isinstance(msg, wire.Reset):
                self._call(self.device.reset, ch=ch, seq=seq)
                self.boot_id = self.session_boot = self._call(self.device.info).boot_id
                self.mirror = hil.ChipConfig()
                return wire.encode_message(wire.ResetReply(self.boot_id))
            if isinstance(msg, wire.Bye):
                return wire.encode_message(wire.ByeReply())
            return error_reply(ErrorCode.UNKNOWN_TYPE, f"message type {msg_type:#04x} is not a request")
        except hil.HilError as exc:
            code = wire.error_code_of(exc)
            return error_reply(code, str(exc), type(exc).__name__)
        except Exception as exc:
            log.error("request_failed", seq=seq, error=f"{type(exc).__name__}: {exc}")
            return error_reply(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", type(exc).__name__)

    def _check_boot(self) -> None:
        """Notice a device reset we did not ask for: its configuration and our replies are gone."""
        boot = self._call(self.device.info).boot_id
        if boot != self.boot_id:
            log.warning("device_reset_detected", old_boot_id=self.boot_id, boot_id=boot)
            self.boot_id = boot
            self.mirror = hil.ChipConfig()
            self.cache.clear()

    def _hello(self, ch: wire.Channel, msg: wire.Hello) -> tuple[int, list]:
        if msg.version != hil.PROTOCOL_VERSION:
            return error_reply(
                ErrorCode.VERSION,
                f"host speaks protocol version {msg.version}; this device speaks {hil.PROTOCOL_VERSION}",
            )
        if msg.session != self.session:
            self.cache.clear()
            self.session = msg.session
        self.session_boot = self.boot_id
        ch.chunk_size = max(1, min(self.chunk_size, msg.max_frame_payload, self.limits.max_frame_payload))
        ch.window = max(1, min(self.window, msg.window))
        self._keepalive = max(msg.keepalive_ms, 10) / 1000
        info = self._call(self.device.info)
        return wire.encode_message(
            wire.HelloReply(
                hil.PROTOCOL_VERSION,
                self.boot_id,
                ch.chunk_size,
                ch.window,
                info.limits,
                info.chip_id,
                info.driver,
                self.mirror.content_hash(),
            )
        )

    def _configure(self, ch, seq, msg: wire.Configure) -> tuple[int, list]:
        new = self.mirror.copy()
        for key, arrays in msg.blocks:
            new.set_block(key, arrays)
        digest = new.content_hash()
        if digest != msg.expected_hash:
            return error_reply(
                ErrorCode.CONFIG_MISMATCH,
                f"configuration after {len(msg.blocks)} blocks has hash {digest[:16]}, host expected {msg.expected_hash[:16]}; send every block",
            )
        self._call(self.device.configure, new, ch=ch, seq=seq)
        self.mirror = new
        return wire.encode_message(wire.ConfigureReply(digest))

    def _run(self, ch, seq, msg: wire.Run, faults_before: int) -> tuple[int, list]:
        m = self._call(self.device.run, msg.stimulus, msg.recording, ch=ch, seq=seq)
        if self._call(self.device.info).boot_id != self.boot_id:
            self._check_boot()
            return error_reply(
                ErrorCode.RESET,
                f"the device was reset during the run (boot id now {self.boot_id}); send HELLO, the configuration, and the run again",
            )
        link = Health(link_errors=ch.faults - faults_before)
        return wire.encode_message(wire.RunReply(attrs.evolve(m, health=m.health + link)))

    def _call(self, fn, *args, ch: wire.Channel | None = None, seq: int = 0):
        """Run ``fn`` on the device thread. Meanwhile keep reading the link (so a retrying host never
        blocks on a full buffer): repeats of request ``seq`` are acknowledged whole and dropped,
        other frames are kept for later; every ``keepalive`` seconds a WORKING frame goes out."""
        future = self._executor.submit(fn, *args)
        if ch is None:
            return future.result()
        later = []
        next_working = time.monotonic() + self._keepalive
        while not future.done():
            futures.wait([future], timeout=0.005)
            frame = ch.next_frame(time.monotonic() + 0.0005)
            if frame is not None:
                if frame.seq == seq and frame.type in wire.REQUEST_TYPES:
                    if frame.n_chunks > 1:
                        ch.send_frame(MsgType.ACK, seq, chunk=frame.n_chunks, n_chunks=frame.n_chunks)
                else:
                    later.append(frame)
            if time.monotonic() >= next_working:
                ch.send_frame(MsgType.WORKING, seq)
                next_working = time.monotonic() + self._keepalive
        for frame in reversed(later):
            ch.unread(frame)
        return future.result()
