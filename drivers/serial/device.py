"""``SerialDevice``: a ``hil.Device`` spoken to over the wire protocol on any pyserial URL.

The device half of the host driver: it keeps the shadow configuration (what the device
holds, and what ``configure`` last asked for) and turns calls into requests on its
:class:`~drivers.serial.link.Link`, which does the transport, retries and reconnection.
A changed boot id means the device was reset: the driver greets it, sends its whole shadow
configuration again and repeats the operation. Construction does no I/O; ``open()`` connects.
"""

from __future__ import annotations

import time

import attrs

import hil
from hil import wire
from hil.device import DeviceBase
from hil.logging import get_logger
from hil.measurement import Health
from hil.wire import ErrorCode

from .link import Link

log = get_logger(__name__)


class SerialDevice(DeviceBase):
    """Host driver over ``link``; call ``open()`` (``hil.open`` does) before anything else."""

    def __init__(self, link: Link):
        self.link = link
        self.url = link.url
        self._requests: wire.Requests | None = None  # built from the device's limits at open()
        self._wanted: hil.ChipConfig | None = None  # what configure() asked for; replayed after a reset
        link.on_hello = self._on_hello

    def open(self) -> SerialDevice:
        """Connect and greet the device; returns self."""
        try:
            hello = self.link.open()
        except BaseException:
            self.link.drop()
            raise
        self._requests = wire.Requests(hello.limits, self.url)
        return self

    # --- hil.Device ---------------------------------------------------------------------------
    def info(self) -> hil.DeviceInfo:
        """Identity and limits; greets the device (a round trip), so a reset shows in ``boot_id``."""
        self.link.exchange("hello", None)
        return wire.info_of(self.link.hello, "serial")

    def configure(self, config: hil.ChipConfig) -> None:
        requests = self._opened()
        target, first = requests.configure(config)  # checked before anything is sent
        before, start = self.link.counters(), time.monotonic()
        pending = [first]  # rebuilt after a reset or a mismatch: the shadow changed
        self._op("configure", lambda: pending.pop() if pending else requests.configure(target)[1], wire.ConfigureReply)
        requests.device_config = self._wanted = target
        wall_s = round(time.monotonic() - start, 4)
        log.info("configure", url=self.url, blocks=len(first.blocks), wall_s=wall_s, **self._delta(before))

    def run(self, stimulus: hil.Stimulus, recording: hil.Recording = hil.Recording()) -> hil.Measurement:
        message = self._opened().run(stimulus, recording)
        before, start = self.link.counters(), time.monotonic()
        m = self._op("run", lambda: message, wire.RunReply).measurement
        delta = self._delta(before)
        health = m.health + Health(**{k: delta[k] for k in ("link_errors", "retries", "bytes_sent", "bytes_received")})
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
        self._opened()
        before = self.link.counters()
        reply = self._op("reset", wire.Reset, wire.ResetReply)
        self.link.hello = attrs.evolve(self.link.hello, boot_id=reply.boot_id)
        self._requests.device_config = hil.ChipConfig()
        self._wanted = None
        log.info("reset", url=self.url, boot_id=reply.boot_id, **self._delta(before))

    def close(self) -> None:
        self.link.send_bye()
        self.link.drop()

    # --- operations with recovery -------------------------------------------------------------
    def _op(self, name: str, build, reply_cls):
        """Send ``build()``; after a device reset or a configuration mismatch resynchronise and rebuild."""
        for _ in range(3):
            reply = self.link.exchange(name, build())
            if isinstance(reply, wire.ErrorReply) and reply.code == ErrorCode.RESET:
                self._resync()
                continue
            if isinstance(reply, wire.ErrorReply) and reply.code == ErrorCode.CONFIG_MISMATCH:
                self._requests.device_config = None
                continue
            break
        return wire.expect(reply, reply_cls, name, self.url)

    def _resync(self) -> None:
        """The device was reset: greet it and send the whole shadow configuration again."""
        self.link.exchange("hello", None)
        self._requests.device_config = hil.ChipConfig()
        if self._wanted is not None and self.link.hello.config_hash != self._wanted.content_hash():
            msg = wire.configure_message(self._requests.device_config, self._wanted)
            wire.expect(self.link.exchange("configure", msg), wire.ConfigureReply, "configure (after reset)", self.url)
        if self._wanted is not None:
            self._requests.device_config = self._wanted
        log.info("resync", url=self.url, boot_id=self.link.hello.boot_id, replayed=self._wanted is not None)

    def _on_hello(self, reply: wire.HelloReply, previous: wire.HelloReply | None) -> None:
        """Every HELLO_REPLY: a new boot id means the device lost its configuration; a hash that
        differs from the shadow means the shadow is unknown (CONFIGURE then sends every block)."""
        if self._requests is None:
            return
        if previous is not None and reply.boot_id != previous.boot_id:
            log.warning("device_reset_detected", url=self.url, old_boot_id=previous.boot_id, boot_id=reply.boot_id)
            self._requests.device_config = hil.ChipConfig()
        shadow = self._requests.device_config
        if shadow is not None and reply.config_hash != shadow.content_hash():
            self._requests.device_config = None

    def _opened(self) -> wire.Requests:
        if self._requests is None:
            raise hil.DeviceError(f"{self.url}: the device is not open; call open() first (hil.open does)")
        return self._requests

    def _delta(self, before: dict) -> dict:
        now = self.link.counters()
        return {k: now[k] - before[k] for k in now}
