"""``Link``: the wire protocol's transport half of the host driver.

A link owns the pyserial port, the frame channel, the session id and the sequence numbers.
``exchange(op, msg)`` sends one request and returns the device's reply message (errors
included, as ``ErrorReply``): it repeats the request with the same sequence number after
``timeout`` seconds of silence (at most ``retries`` times, ``backoff * 2**k`` apart, never
beyond ``run_timeout``), reopens and greets (HELLO) a broken link, and waits while the
device reports BUSY (at most ``busy_wait`` seconds). No I/O happens before ``open()``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import hil
from hil import wire
from hil.wire import ErrorCode

from .port import PortStream


class _NoAnswer(Exception):
    """No reply within the idle timeout (one attempt)."""


class _Busy(Exception):
    """The device serves another client; ``reply`` says when to try again."""

    def __init__(self, reply: wire.ErrorReply):
        super().__init__(reply.message)
        self.reply = reply


class Link:
    """Requests and replies over one pyserial URL, with retries, reconnection and BUSY waits.

    ``on_hello(reply, previous)`` is called for every HELLO_REPLY accepted (``previous``:
    the one before, None at first contact), so the device side can notice a reset.
    """

    def __init__(
        self,
        url: str,
        port_url: str | None = None,
        *,
        timeout: float = 2.0,
        run_timeout: float = 600.0,
        retries: int = 3,
        backoff: float = 0.05,
        ack_timeout: float | None = None,
        chunk_size: int = wire.DEFAULT_CHUNK_SIZE,
        window: int = 8,
        baudrate: int = 115200,
        busy_wait: float | None = None,
    ):
        _check_options(url, timeout, run_timeout, retries, backoff, ack_timeout, chunk_size, window, busy_wait)
        self.url = url
        self.port_url = port_url or url
        self.timeout, self.run_timeout, self.retries, self.backoff = timeout, run_timeout, retries, backoff
        self.ack_timeout = ack_timeout if ack_timeout is not None else min(0.5, timeout / 4)
        self.busy_wait = timeout if busy_wait is None else busy_wait
        self.chunk_size, self.window, self.baudrate = chunk_size, window, baudrate
        self.session = int.from_bytes(os.urandom(8), "little")
        self.hello: wire.HelloReply | None = None
        self.on_hello: Callable[[wire.HelloReply, wire.HelloReply | None], None] | None = None
        self._seq = 0
        self._stream: PortStream | None = None
        self._channel: wire.Channel | None = None
        self._rebooted = False
        self._progress = 0  # new reply frames received; a repeat after progress is not a failed attempt
        self._assembly: wire.Assembly | None = None  # a reply being received, kept across repeats
        self._totals = {"link_errors": 0, "retries": 0, "bytes_sent": 0, "bytes_received": 0}

    # --- public -------------------------------------------------------------------------------
    def open(self) -> wire.HelloReply:
        """Connect and greet the device (HELLO); the device's HELLO_REPLY."""
        self.exchange("hello", None)
        return self.hello

    def exchange(self, op: str, msg):
        """One request and its reply, repeated on silence or a broken link; ``msg`` None is HELLO.
        ``DeviceTimeout`` naming the URL, ``op``, the attempts and the time waited."""
        hello = msg is None
        t, parts = wire.encode_message(self._hello_message() if hello else msg)
        seq = self._next_seq()
        start = time.monotonic()
        attempt, busy_since, last = 0, None, "no answer"
        while True:
            attempt += 1
            progress = self._progress
            try:
                return self._attempt(hello, t, seq, parts, start)
            except _Busy as exc:
                attempt -= 1
                busy_since = busy_since if busy_since is not None else time.monotonic()
                self._wait_busy(exc.reply, busy_since)
                continue
            except _NoAnswer as exc:
                last = str(exc)
                self._totals["retries"] += 1
                if self._progress != progress:
                    attempt -= 1  # the reply was arriving: this repeat does not use up the budget
            except wire.LinkStalled as exc:
                last = str(exc)
                self._totals["retries"] += 1
            except wire.LinkClosed as exc:
                last = str(exc)
                self._totals["link_errors"] += 1
                self.drop()
            waited = time.monotonic() - start
            if attempt > self.retries or waited > self.run_timeout:
                raise hil.DeviceTimeout(
                    f"{self.url}: {op} got no answer after {attempt} attempts in {waited:.2f} s "
                    f"(timeout {self.timeout:g} s of silence per attempt, {self.retries} retries; last: {last})"
                )
            time.sleep(self.backoff * 2 ** (attempt - 1))

    def send_bye(self) -> None:
        """Tell the device the session ends (no reply awaited)."""
        if self._channel is not None:
            try:
                self._channel.send_frame(wire.MsgType.BYE, self._next_seq())
            except wire.LinkClosed:
                pass

    def drop(self) -> None:
        """Close the port (the next exchange reopens it), keeping the traffic counts."""
        if self._channel is not None:
            self._totals["link_errors"] += self._channel.faults
            self._totals["retries"] += self._channel.resends
        if self._stream is not None:
            self._totals["bytes_sent"] += self._stream.bytes_out
            self._totals["bytes_received"] += self._stream.bytes_in
            self._stream.close()
        self._stream = self._channel = None

    def counters(self) -> dict:
        """Link errors, retries and bytes both ways since the link was made."""
        c = dict(self._totals)
        if self._channel is not None:
            c["link_errors"] += self._channel.faults
            c["retries"] += self._channel.resends
        if self._stream is not None:
            c["bytes_sent"] += self._stream.bytes_out
            c["bytes_received"] += self._stream.bytes_in
        return c

    # --- one attempt ------------------------------------------------------------------------------
    def _attempt(self, hello: bool, t: int, seq: int, parts: list, start: float):
        if self._channel is None:
            self._connect()
            if hello:
                return self.hello
            if self._rebooted:
                return wire.ErrorReply(int(ErrorCode.RESET), "DeviceError", "boot id changed on reconnect")
        reply = self._request_once(t, seq, parts, start)
        if hello:
            self._accept_hello(wire.expect(reply, wire.HelloReply, "hello", self.url))
        return reply

    def _connect(self) -> None:
        """Open the port and greet the device; ``_Busy`` if it serves another client."""
        self._stream = PortStream.open(self.port_url, self.baudrate)
        self._channel = wire.Channel(
            self._stream, chunk_size=self.chunk_size, window=self.window, ack_timeout=self.ack_timeout
        )
        t, parts = wire.encode_message(self._hello_message())
        try:
            reply = self._request_once(t, self._next_seq(), parts, time.monotonic())
            if isinstance(reply, wire.ErrorReply) and reply.code == ErrorCode.BUSY:
                raise _Busy(reply)
            self._accept_hello(wire.expect(reply, wire.HelloReply, "hello", self.url))
        except BaseException:
            self.drop()
            raise

    def _wait_busy(self, reply: wire.ErrorReply, since: float) -> None:
        """Sleep until the device's retry time if that stays within ``busy_wait``, else ``DeviceError``."""
        waited = time.monotonic() - since
        if waited + reply.retry_after_s > self.busy_wait:
            exc = hil.DeviceError(
                f"{self.url}: {reply.message}; retry after {reply.retry_after_s:.2f} s "
                f"(waited {waited:.2f} s of busy_wait = {self.busy_wait:g} s)"
            )
            exc.retry_after_s = reply.retry_after_s
            raise exc
        time.sleep(reply.retry_after_s)

    def _request_once(self, t: int, seq: int, parts: list, start: float):
        ch = self._channel
        ch.send(t, seq, parts, interrupt=lambda f: f.seq == seq and f.type != wire.MsgType.ACK)
        rtype, payload = self._receive(seq, start)
        return wire.decode_message(rtype, payload)

    def _receive(self, seq: int, start: float):
        """``(type, payload)`` of the reply to ``seq``; ``_NoAnswer`` after ``timeout`` s of silence."""
        ch = self._channel
        idle = time.monotonic() + self.timeout
        total = start + self.run_timeout
        assembly = self._assembly if self._assembly is not None and self._assembly.seq == seq else None
        while True:
            frame = ch.next_frame(min(idle, total))
            if frame is None:
                raise _NoAnswer(f"no reply to request {seq} within {self.timeout:g} s")
            if frame.seq != seq:
                if frame.seq == 0 and frame.type == wire.MsgType.ERROR:
                    return frame.type, frame.payload  # connection-level error (e.g. busy)
                if frame.n_chunks > 1 and frame.type not in (wire.MsgType.ACK, wire.MsgType.WORKING):
                    ch.send_frame(wire.MsgType.ACK, frame.seq, chunk=frame.n_chunks, n_chunks=frame.n_chunks)
                continue  # stale: told to stop sending it
            if frame.type == wire.MsgType.ACK:
                continue
            idle = time.monotonic() + self.timeout
            if frame.type == wire.MsgType.WORKING:
                self._progress += 1
                continue
            if frame.type in wire.REQUEST_TYPES:
                raise hil.ProtocolError(
                    f"{self.url}: received our own request (type {frame.type:#04x}) back; is the port a loopback "
                    "(loop://)? A device or tools/mock-device must answer"
                )
            if frame.n_chunks == 1:
                return frame.type, frame.payload
            if assembly is None or assembly.type != frame.type:
                assembly = self._assembly = wire.Assembly(frame, ch.limits)  # kept across repeats of this request
            if assembly.contiguous < frame.chunk + 1 and frame.chunk not in assembly.chunks:
                self._progress += 1
            if ch.take_chunk(frame, assembly):
                self._assembly = None
                return frame.type, assembly.payload()

    # --- handshake --------------------------------------------------------------------------------
    def _accept_hello(self, reply: wire.HelloReply) -> None:
        if reply.version != hil.PROTOCOL_VERSION:
            raise hil.ProtocolError(
                f"{self.url}: device speaks protocol version {reply.version}; this driver speaks {hil.PROTOCOL_VERSION}"
            )
        previous = self.hello
        self._rebooted = previous is not None and reply.boot_id != previous.boot_id
        self.hello = reply
        self._channel.chunk_size = max(1, min(self.chunk_size, reply.max_frame_payload))
        self._channel.window = max(1, min(self.window, reply.window))
        if self.on_hello is not None:
            self.on_hello(reply, previous)

    def _hello_message(self) -> wire.Hello:
        return wire.Hello(
            hil.PROTOCOL_VERSION, self.session, self.chunk_size, self.window, max(10, int(self.timeout * 1000 / 4))
        )

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1  # 1..2**32-1; 0 is reserved for connection-level errors
        return self._seq


def _check_options(url, timeout, run_timeout, retries, backoff, ack_timeout, chunk_size, window, busy_wait) -> None:
    """``ConfigError`` naming the first option that is not allowed."""
    seconds = {"timeout": (timeout, 0), "run_timeout": (run_timeout, 0), "ack_timeout": (ack_timeout, 0)}
    seconds |= {"backoff": (backoff, None), "busy_wait": (busy_wait, None)}
    for name, (value, above) in seconds.items():
        if value is None and name in ("ack_timeout", "busy_wait"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == above:
            allowed = "> 0" if above is not None else ">= 0"
            raise hil.ConfigError(f"{url}: {name} = {value!r}; allowed: a number of seconds {allowed}")
    for name, value, low in (("retries", retries, 0), ("chunk_size", chunk_size, 1), ("window", window, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise hil.ConfigError(f"{url}: {name} = {value!r}; allowed: an integer >= {low}")
    if chunk_size > wire.LIMITS.max_frame_payload:
        raise hil.ConfigError(f"{url}: chunk_size = {chunk_size}; allowed: 1..{wire.LIMITS.max_frame_payload} bytes")
