"""Device side of the wire protocol: serve any ``hil.Device`` over TCP or a pseudo-terminal.

``Server(device, host="127.0.0.1", port=0)`` listens on TCP (port 0: a free port; ``.address``
is the ``socket://`` URL); ``Server(device, pty=True)`` opens a pseudo-terminal (``.address``:
its path). ``start()`` serves from a thread, ``serve_forever()`` from the caller's; ``stop()`` ends both.

One client at a time. A second connection gets ``ERROR BUSY`` (seq 0) with the time it may
retry, and is closed. A TCP client that sends no request for ``idle_timeout`` seconds, or
leaves a frame incomplete for ``frame_timeout`` seconds, is disconnected, so nobody can hold
the slot by doing nothing. Requests are bounded: a message larger than the largest request
the device's limits allow is refused while it arrives, and a RUN beyond the limits is
answered ``ERROR CONFIG`` before the device sees it (docs/protocol.md, "Budgets").

Replies are cached by sequence number (``ReplyCache``), so a retried request is never applied
twice. ``CONFIGURE`` blocks are applied to a mirror of the device's configuration, checked
against the host's expected hash, then the whole configuration goes to ``device.configure``.
A device reset (``boot_id`` changes) ends the session until the next ``HELLO``. Device calls
run on a worker thread (``DeviceWorker``), which cancels a run whose client disconnects.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
import tty

import attrs

import hil
from hil import wire
from hil.logging import get_logger
from hil.measurement import Health
from hil.wire import ErrorCode, ErrorReply, MsgType

from .device_worker import DeviceWorker
from .reply_cache import ReplyCache
from .streams import FdStream, SocketStream, refuse

log = get_logger(__name__)

MEMORY_BUDGET_BYTES = 512 << 20  # a server process stays within this for any run DeviceLimits allow
IDLE_TIMEOUT_S = 60.0
FRAME_TIMEOUT_S = 10.0
BUSY_RETRY_S = 1.0


def error_reply(code: ErrorCode, message: str, retry_after_s: float = 0.0) -> tuple[int, list]:
    """An encoded ``ERROR`` reply of ``code``."""
    return wire.encode_message(ErrorReply(int(code), wire.ERROR_CLASSES[code].__name__, message, retry_after_s))


class Server:
    """Serves ``device`` over TCP (default) or a pseudo-terminal (``pty=True``).

    ``idle_timeout`` / ``frame_timeout`` (s): the TCP deadlines above; ``busy_retry_s``: the
    longest retry time a refused client is given; ``cache_size`` / ``cache_bytes``: the reply
    cache's bounds; ``limits``: frame limits (the message limit is lowered to the device's
    largest request).
    """

    def __init__(
        self,
        device: hil.Device,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pty: bool = False,
        chunk_size: int = wire.DEFAULT_CHUNK_SIZE,
        window: int = 8,
        ack_timeout: float = 0.5,
        cache_size: int = 4,
        cache_bytes: int = 64 << 20,
        idle_timeout: float = IDLE_TIMEOUT_S,
        frame_timeout: float = FRAME_TIMEOUT_S,
        busy_retry_s: float = BUSY_RETRY_S,
        limits: wire.Limits = wire.LIMITS,
    ):
        for name, value in (("idle_timeout", idle_timeout), ("frame_timeout", frame_timeout)):
            if not value > 0:
                raise hil.ConfigError(f"Server: {name} = {value!r}; allowed: seconds > 0")
        self.device = device
        self.chunk_size, self.window, self.ack_timeout = chunk_size, window, ack_timeout
        self.idle_timeout, self.frame_timeout, self.busy_retry_s = idle_timeout, frame_timeout, busy_retry_s
        self.cache = ReplyCache(cache_size, cache_bytes)
        self._stop = threading.Event()
        self.worker = DeviceWorker(device, self._stop)
        self._info = self.worker.call(device.info)
        self.limits = attrs.evolve(
            limits, max_message=min(limits.max_message, wire.max_request_bytes(self._info.limits))
        )
        self.boot_id = self._info.boot_id
        self.mirror = hil.ChipConfig()
        self.session: int | None = None
        self.session_boot: int | None = None
        self.requests = 0
        self._active = time.monotonic()  # last request finished (inf while one executes)
        self._assembly: wire.Assembly | None = None  # chunks of the request arriving
        self._thread: threading.Thread | None = None
        self._client: threading.Thread | None = None
        self._client_peer = ""
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
        log.info("serve", address=self.address, idle_timeout=self.idle_timeout, frame_timeout=self.frame_timeout)
        if self._pty_master is not None:
            self._session(FdStream(self._pty_master), self.address, deadlines=False)
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
        """Stop serving (a running device call is cancelled if the device can); waits for the threads."""
        self._stop.set()
        for thread in (self._thread, self._client):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=5)
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
        self.worker.shutdown()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self, conn: socket.socket, peer: str) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._client is not None and self._client.is_alive():
            retry = self.retry_after()
            t, parts = error_reply(
                ErrorCode.BUSY, f"device busy: serving {self._client_peer}; one client at a time", retry
            )
            threading.Thread(target=refuse, args=(conn, wire.encode_frame(t, 0, parts)), daemon=True).start()
            log.info("busy", refused=peer, serving=self._client_peer, retry_after_s=round(retry, 3))
            return
        self._client_peer = peer
        self._active = time.monotonic()
        self._client = threading.Thread(
            target=self._session_closing, args=(conn, peer), name="hil-session", daemon=True
        )
        self._client.start()

    def retry_after(self) -> float:
        """Seconds a refused client should wait: until the current client's idle deadline, at most ``busy_retry_s``."""
        idle_left = self._active + self.idle_timeout - time.monotonic()
        return min(self.busy_retry_s, max(0.05, idle_left))

    def _session_closing(self, conn: socket.socket, peer: str) -> None:
        try:
            self._session(SocketStream(conn), peer, deadlines=True)
        finally:
            conn.close()

    # --- one client --------------------------------------------------------------------------
    def _session(self, stream, peer: str, *, deadlines: bool) -> None:
        ch = wire.Channel(
            stream, chunk_size=self.chunk_size, window=self.window, ack_timeout=self.ack_timeout, limits=self.limits
        )
        ch.on_fault = lambda fault: self._answer_fault(ch, fault)
        self._active = time.monotonic()
        log.info("session", peer=peer)
        ended = "server stopped"
        try:
            while not self._stop.is_set():
                frame = ch.next_frame(time.monotonic() + 0.1)
                overdue = self._overdue(ch) if deadlines else ""
                if overdue:
                    ended = overdue
                    log.warning("client_dropped", peer=peer, reason=overdue)
                    break
                if frame is not None and not self._serve_frame(ch, frame):
                    ended = "BYE"
                    break
        except wire.LinkClosed as exc:
            ended = str(exc)
        except Exception as exc:  # the server outlives any client
            ended = f"{type(exc).__name__}: {exc}"
            log.error("session_failed", peer=peer, error=ended)
        self._assembly = None
        log.info("session_end", peer=peer, reason=ended, link_faults=ch.faults, resends=ch.resends)

    def _overdue(self, ch: wire.Channel) -> str:
        """Why the client is to be dropped ("" if it is not)."""
        now = time.monotonic()
        if now - self._active > self.idle_timeout:
            return f"no request for {now - self._active:.1f} s (idle_timeout = {self.idle_timeout:g} s)"
        age = ch.partial_age(now)
        if age > self.frame_timeout:
            return f"a frame stayed incomplete for {age:.1f} s (frame_timeout = {self.frame_timeout:g} s)"
        return ""

    def _serve_frame(self, ch: wire.Channel, frame: wire.Frame) -> bool:
        """Answer one incoming frame; False when the session ends (BYE)."""
        if frame.type not in wire.REQUEST_TYPES:
            if frame.type < MsgType.WORKING:
                self._unknown_type(ch, frame)
            return True  # stale ACK/WORKING, or a reply type from a confused peer
        self._active = time.monotonic()  # every chunk of a request counts as activity
        repeat = frame.seq in self.cache or self.cache.stale(frame.seq)
        if repeat and frame.type != MsgType.HELLO:  # HELLO is always answered: it may open a new session
            self._repeat(ch, frame)
            return True
        payload = self._reassemble(ch, frame)
        if payload is None:
            return True
        self._active = math.inf
        try:
            reply = self._handle(ch, frame.type, frame.seq, payload)
            self.cache.put(frame.seq, reply)
            self._send(ch, frame.seq, reply)
        finally:
            self._active = time.monotonic()
        return frame.type != MsgType.BYE

    def _reassemble(self, ch: wire.Channel, frame: wire.Frame):
        """The request's payload once complete (None while chunks are missing or after a refused message)."""
        if frame.n_chunks == 1:
            return frame.payload
        if self._assembly is None or self._assembly.seq != frame.seq:
            self._assembly = wire.Assembly(frame, self.limits)
        try:
            if not ch.take_chunk(frame, self._assembly):
                return None
        except hil.ProtocolError as exc:
            self._assembly = None
            self._send(ch, frame.seq, error_reply(ErrorCode.PROTOCOL, str(exc)))
            return None
        payload, self._assembly = self._assembly.payload(), None
        return payload

    def _send(self, ch: wire.Channel, seq: int, reply: tuple) -> None:
        try:
            ch.send(reply[0], seq, reply[1], interrupt=lambda f: f.type in wire.REQUEST_TYPES and f.seq != seq)
        except wire.LinkStalled:
            pass  # the host will ask again; the reply stays cached

    def _repeat(self, ch: wire.Channel, frame: wire.Frame) -> None:
        """A chunk of a request already answered: acknowledge it whole (the host stops sending it)
        and, on its first chunk (where every repeat starts), send the cached reply again. A late
        duplicate of a request whose reply is no longer cached is only acknowledged."""
        if frame.n_chunks > 1:
            ch.send_frame(MsgType.ACK, frame.seq, chunk=frame.n_chunks, n_chunks=frame.n_chunks)
        if frame.chunk == 0 and frame.seq in self.cache:
            self._send(ch, frame.seq, self.cache[frame.seq])

    def _unknown_type(self, ch: wire.Channel, frame: wire.Frame) -> None:
        """A request type this device does not know: ``ERROR UNKNOWN_TYPE`` on its first chunk."""
        if frame.n_chunks > 1:
            ch.send_frame(MsgType.ACK, frame.seq, chunk=frame.n_chunks, n_chunks=frame.n_chunks)
        if frame.chunk == 0:
            known = ", ".join(f"{t.name} {int(t):#04x}" for t in sorted(wire.REQUEST_TYPES))
            t, parts = error_reply(
                ErrorCode.UNKNOWN_TYPE, f"message type {frame.type:#04x} is not a request this device knows ({known})"
            )
            ch.send_frame(t, frame.seq, wire.payload_bytes(parts))

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
        try:
            self._check_boot()
            msg = wire.decode_message(msg_type, payload)
            if isinstance(msg, wire.Hello):
                return self._hello(ch, msg)
            if self.session_boot != self.boot_id:
                return error_reply(
                    ErrorCode.RESET,
                    f"no session for boot id {self.boot_id}: the device was reset or no HELLO was sent; send HELLO, "
                    "then the whole configuration",
                )
            if isinstance(msg, wire.Configure):
                return self._configure(ch, seq, msg)
            if isinstance(msg, wire.Run):
                return self._run(ch, seq, msg, faults_before)
            if isinstance(msg, wire.Reset):
                self.worker.call_serving(ch, seq, self.device.reset)
                self._info = self.worker.call(self.device.info)
                self.boot_id = self.session_boot = self._info.boot_id
                self.mirror = hil.ChipConfig()
                return wire.encode_message(wire.ResetReply(self.boot_id))
            return wire.encode_message(wire.ByeReply())
        except wire.LinkClosed:
            raise
        except Exception as exc:
            if not isinstance(exc, hil.HilError):
                log.error("request_failed", seq=seq, error=f"{type(exc).__name__}: {exc}")
            return wire.encode_message(ErrorReply.of(exc))

    def _check_boot(self) -> None:
        """Notice a device reset we did not ask for: its configuration and our replies are gone."""
        self._info = self.worker.call(self.device.info)
        if self._info.boot_id != self.boot_id:
            log.warning("device_reset_detected", old_boot_id=self.boot_id, boot_id=self._info.boot_id)
            self.boot_id = self._info.boot_id
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
        self.worker.keepalive = max(msg.keepalive_ms, 10) / 1000
        info = self._info
        reply = wire.HelloReply(
            hil.PROTOCOL_VERSION,
            self.boot_id,
            ch.chunk_size,
            ch.window,
            info.limits,
            info.chip_id,
            info.driver,
            self.mirror.content_hash(),
        )
        return wire.encode_message(reply)

    def _configure(self, ch, seq, msg: wire.Configure) -> tuple[int, list]:
        new = self.mirror.copy()
        for key, arrays in msg.blocks:
            new.set_block(key, arrays)
        digest = new.content_hash()
        if digest != msg.expected_hash:
            return error_reply(
                ErrorCode.CONFIG_MISMATCH,
                f"configuration after {len(msg.blocks)} blocks has hash {digest[:16]}, host expected "
                f"{msg.expected_hash[:16]}; send every block",
            )
        self.worker.call_serving(ch, seq, self.device.configure, new)
        self.mirror = new
        return wire.encode_message(wire.ConfigureReply(digest))

    def _run(self, ch, seq, msg: wire.Run, faults_before: int) -> tuple[int, list]:
        self._info.limits.check(msg.stimulus, msg.recording)  # refused before the device sees it
        m = self.worker.call_serving(ch, seq, self.device.run, msg.stimulus, msg.recording)
        if self.worker.call(self.device.info).boot_id != self.boot_id:
            self._check_boot()
            return error_reply(
                ErrorCode.RESET,
                f"the device was reset during the run (boot id now {self.boot_id}); send HELLO, the configuration, "
                "and the run again",
            )
        link = Health(link_errors=ch.faults - faults_before)
        return wire.encode_message(wire.RunReply(attrs.evolve(m, health=m.health + link)))
