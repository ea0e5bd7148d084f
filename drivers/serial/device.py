"""``SerialDevice``: a ``hil.Device`` spoken to over the wire protocol on any pyserial URL.

Every request gets a fresh sequence number and is sent again, with the same number, when
no answer comes within ``timeout`` seconds of silence (the device sends WORKING frames while
it computes) — at most ``retries`` times, ``backoff * 2**k`` seconds apart; the device
answers a repeated number from its reply cache, so nothing is applied twice. A broken link
is reopened and greeted again (HELLO). A changed boot id means the device was reset: the
driver greets it, sends its whole shadow configuration again and repeats the operation.
"""

from __future__ import annotations

import os
import time

import attrs

import hil
from hil import wire
from hil.device import DeviceBase
from hil.logging import get_logger
from hil.measurement import Health
from hil.wire import ErrorCode

from .port import PortStream
from .requests import configure_message, expect, info_of, run_message

log = get_logger(__name__)


class _NoAnswer(Exception):
    """No reply within the idle timeout (one attempt)."""


class SerialDevice(DeviceBase):
    """Host driver. ``timeout``: s of silence before a request is repeated; ``run_timeout``: s an
    operation may take in total; ``retries``: repeats before ``DeviceTimeout``; ``record``: path
    of a session recording to write."""

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
        chunk_size: int = 1 << 18,
        window: int = 8,
        baudrate: int = 115200,
        record=None,
    ):
        if timeout <= 0 or run_timeout <= 0 or retries < 0 or backoff < 0:
            raise hil.ConfigError(
                f"{url}: timeout = {timeout}, run_timeout = {run_timeout}, retries = {retries}, backoff = {backoff}; allowed: timeouts > 0, retries >= 0, backoff >= 0"
            )
        self.url = url
        self.port_url = port_url or url
        self.timeout, self.run_timeout, self.retries, self.backoff = timeout, run_timeout, retries, backoff
        self.ack_timeout = ack_timeout if ack_timeout is not None else min(0.5, timeout / 4)
        self.chunk_size, self.window, self.baudrate = chunk_size, window, baudrate
        self._session = int.from_bytes(os.urandom(8), "little")
        self._seq = 0
        self._stream: PortStream | None = None
        self._channel: wire.Channel | None = None
        self._hello: wire.HelloReply | None = None
        self._device_config: hil.ChipConfig | None = None  # what the device holds; None: unknown
        self._wanted: hil.ChipConfig | None = None  # what configure() asked for; replayed after a reset
        self._totals = {"link_errors": 0, "retries": 0, "bytes_sent": 0, "bytes_received": 0}
        self._recorder = None
        try:
            self._exchange("hello", None)
            if record is not None:
                self._recorder = wire.SessionWriter(
                    record, {"url": url, "software_version": hil.__version__, "created_unix_s": time.time()}
                )
                self._record(wire.KIND_REQUEST, *wire.encode_message(self._hello_message()))
                self._record(wire.KIND_REPLY, *wire.encode_message(self._hello))
        except BaseException:
            self.close()
            raise

    # --- hil.Device ---------------------------------------------------------------------------
    def info(self) -> hil.DeviceInfo:
        """Identity and limits; greets the device (a round trip), so a reset shows in ``boot_id``."""
        self._exchange("hello", None)
        return info_of(self._hello)

    def configure(self, config: hil.ChipConfig) -> None:
        if not isinstance(config, hil.ChipConfig):
            raise hil.ConfigError(f"{self.url}: configure(config = {type(config).__name__}); expected hil.ChipConfig")
        target = config.copy().validate()
        before = self._counters()
        start = time.monotonic()
        blocks = []

        def build():
            msg = configure_message(self._device_config, target)
            blocks.append(len(msg.blocks))
            return msg

        self._op("configure", build, wire.ConfigureReply)
        self._device_config = self._wanted = target
        log.info(
            "configure",
            url=self.url,
            blocks=blocks[0],
            wall_s=round(time.monotonic() - start, 4),
            **self._delta(before),
        )

    def run(self, stimulus: hil.Stimulus, recording: hil.Recording = hil.Recording()) -> hil.Measurement:
        limits = self._hello.limits
        message = run_message(stimulus, recording, limits, self.url)
        before = self._counters()
        start = time.monotonic()
        reply = self._op("run", lambda: message, wire.RunReply)
        m = reply.measurement
        delta = self._delta(before)
        health = m.health + Health(
            link_errors=delta["link_errors"],
            retries=delta["retries"],
            bytes_sent=delta["bytes_sent"],
            bytes_received=delta["bytes_received"],
        )
        provenance = (
            attrs.evolve(m.provenance, driver=f"serial:{m.provenance.driver}") if m.provenance is not None else None
        )
        log.info(
            "run",
            url=self.url,
            trials=stimulus.n_trials,
            events=stimulus.n_events,
            spikes=int(m.spikes.size),
            wall_s=round(time.monotonic() - start, 4),
            **delta,
        )
        return attrs.evolve(m, health=health, provenance=provenance)

    def reset(self) -> None:
        before = self._counters()
        reply = self._op("reset", wire.Reset, wire.ResetReply)
        self._hello = attrs.evolve(self._hello, boot_id=reply.boot_id)
        self._device_config = hil.ChipConfig()
        self._wanted = None
        log.info("reset", url=self.url, boot_id=reply.boot_id, **self._delta(before))

    def close(self) -> None:
        if self._channel is not None:
            try:
                self._channel.send_frame(wire.MsgType.BYE, self._next_seq())
            except wire.LinkClosed:
                pass
        self._drop_link()
        if self._recorder is not None:
            self._recorder.close()
            self._recorder = None

    # --- operations with recovery -------------------------------------------------------------
    def _op(self, name: str, build, reply_cls):
        """Send ``build()``; after a device reset or a configuration mismatch resynchronise and rebuild."""
        first = True
        for _ in range(3):
            msg = build()
            if first and self._recorder is not None:
                self._record(wire.KIND_REQUEST, *wire.encode_message(msg))
            first = False
            reply = self._exchange(name, msg)
            if isinstance(reply, wire.ErrorReply) and reply.code == ErrorCode.RESET:
                self._resync()
                continue
            if isinstance(reply, wire.ErrorReply) and reply.code == ErrorCode.CONFIG_MISMATCH:
                self._device_config = None
                continue
            break
        if self._recorder is not None:
            self._record(wire.KIND_REPLY, *wire.encode_message(reply))
        return expect(reply, reply_cls, name, self.url)

    def _resync(self) -> None:
        """The device was reset: greet it and send the whole shadow configuration again."""
        self._exchange("hello", None)
        self._device_config = hil.ChipConfig()
        if self._wanted is not None and self._hello.config_hash != self._wanted.content_hash():
            reply = self._exchange("configure", configure_message(self._device_config, self._wanted))
            expect(reply, wire.ConfigureReply, "configure (replay after reset)", self.url)
        self._device_config = self._wanted if self._wanted is not None else self._device_config
        log.info("resync", url=self.url, boot_id=self._hello.boot_id, replayed=self._wanted is not None)

    def _exchange(self, op: str, msg):
        """One request and its reply, repeated on silence or a broken link; ``msg`` None is HELLO."""
        hello = msg is None
        t, parts = wire.encode_message(self._hello_message() if hello else msg)
        seq = self._next_seq()
        start = time.monotonic()
        attempt, last = 0, "no answer"
        while True:
            attempt += 1
            progress = self._progress
            try:
                if self._channel is None:
                    self._open_link()
                    if hello:
                        return self._hello
                    if self._rebooted:
                        return wire.ErrorReply(int(ErrorCode.RESET), "DeviceError", "boot id changed on reconnect")
                reply = self._request_once(t, seq, parts, start)
                if hello:
                    reply = expect(reply, wire.HelloReply, "hello", self.url)
                    self._accept_hello(reply)
                return reply
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
                self._drop_link()
            waited = time.monotonic() - start
            if attempt > self.retries or waited > self.run_timeout:
                raise hil.DeviceTimeout(
                    f"{self.url}: {op} got no answer after {attempt} attempts in {waited:.2f} s "
                    f"(timeout {self.timeout:g} s of silence per attempt, {self.retries} retries; last: {last})"
                )
            time.sleep(self.backoff * 2 ** (attempt - 1))

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
                    ch.send_frame(
                        wire.MsgType.ACK, frame.seq, chunk=frame.n_chunks, n_chunks=frame.n_chunks
                    )  # stale: stop sending it
                continue
            if frame.type == wire.MsgType.ACK:
                continue
            idle = time.monotonic() + self.timeout
            if frame.type == wire.MsgType.WORKING:
                self._progress += 1
                continue
            if frame.type in wire.REQUEST_TYPES:
                raise hil.ProtocolError(
                    f"{self.url}: received our own request (type {frame.type:#04x}) back; is the port a loopback (loop://)? A device or tools/mock-device must answer"
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

    # --- link -------------------------------------------------------------------------------
    def _open_link(self) -> None:
        self._stream = PortStream.open(self.port_url, self.baudrate)
        self._channel = wire.Channel(
            self._stream, chunk_size=self.chunk_size, window=self.window, ack_timeout=self.ack_timeout
        )
        t, parts = wire.encode_message(self._hello_message())
        try:
            reply = expect(
                self._request_once(t, self._next_seq(), parts, time.monotonic()), wire.HelloReply, "hello", self.url
            )
            self._accept_hello(reply)
        except BaseException:
            self._drop_link()
            raise

    def _accept_hello(self, reply: wire.HelloReply) -> None:
        if reply.version != hil.PROTOCOL_VERSION:
            raise hil.ProtocolError(
                f"{self.url}: device speaks protocol version {reply.version}; this driver speaks {hil.PROTOCOL_VERSION}"
            )
        self._rebooted = self._hello is not None and reply.boot_id != self._hello.boot_id
        if self._rebooted:
            log.warning("device_reset_detected", url=self.url, old_boot_id=self._hello.boot_id, boot_id=reply.boot_id)
            self._device_config = hil.ChipConfig()
        if self._device_config is not None and reply.config_hash != self._device_config.content_hash():
            self._device_config = None
        self._hello = reply
        self._channel.chunk_size = max(1, min(self.chunk_size, reply.max_frame_payload))
        self._channel.window = max(1, min(self.window, reply.window))

    def _hello_message(self) -> wire.Hello:
        return wire.Hello(
            hil.PROTOCOL_VERSION, self._session, self.chunk_size, self.window, max(10, int(self.timeout * 1000 / 4))
        )

    def _drop_link(self) -> None:
        if self._channel is not None:
            self._totals["link_errors"] += self._channel.faults
            self._totals["retries"] += self._channel.resends
        if self._stream is not None:
            self._totals["bytes_sent"] += self._stream.bytes_out
            self._totals["bytes_received"] += self._stream.bytes_in
            self._stream.close()
        self._stream = self._channel = None

    def _next_seq(self) -> int:
        self._seq = self._seq % 0xFFFFFFFF + 1  # 1..2**32-1; 0 is reserved for connection-level errors
        return self._seq

    def _counters(self) -> dict:
        c = dict(self._totals)
        if self._channel is not None:
            c["link_errors"] += self._channel.faults
            c["retries"] += self._channel.resends
        if self._stream is not None:
            c["bytes_sent"] += self._stream.bytes_out
            c["bytes_received"] += self._stream.bytes_in
        return c

    def _delta(self, before: dict) -> dict:
        now = self._counters()
        return {k: now[k] - before[k] for k in now}

    def _record(self, kind: int, msg_type: int, parts: list) -> None:
        self._recorder.write(kind, msg_type, self._seq, parts)

    _rebooted = False
    _progress = 0  # new reply chunks received; a repeat after progress is not a failed attempt
    _assembly: wire.Assembly | None = None  # a reply being received, kept across repeats
