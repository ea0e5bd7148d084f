"""``replay://path``: play back a session recorded with ``hil.open(url, record=path)``.

The replay device builds each request exactly as the recorder did (same shadow
configuration, same encoder, ``hil.wire.Requests``) and compares it byte for byte with the
next recorded request; on a match it returns the recorded reply (raising the recorded
error, if the call failed), otherwise ``ProtocolError`` names the request number, the
operation and the first differing byte.
"""

from __future__ import annotations

import attrs

import hil
from hil import wire
from hil.device import DeviceBase
from hil.logging import get_logger

log = get_logger(__name__)


class ReplayDevice(DeviceBase):
    """A ``hil.Device`` answering from a recording."""

    def __init__(self, path: str):
        self.path = path
        self.meta, records = wire.read_session(path)
        self._records = records
        self._next = 0
        self._pop(wire.KIND_REQUEST, None, "hello")
        self._hello = wire.expect(self._decode_reply("hello"), wire.HelloReply, "hello", self._where())
        self._requests = wire.Requests(self._hello.limits, self._where())

    def info(self) -> hil.DeviceInfo:
        return wire.info_of(self._hello, "replay")

    def configure(self, config: hil.ChipConfig) -> None:
        target, request = self._requests.configure(config)
        self._exchange("configure", request, wire.ConfigureReply)
        self._requests.device_config = target

    def run(self, stimulus: hil.Stimulus, recording: hil.Recording = hil.Recording()) -> hil.Measurement:
        reply = self._exchange("run", self._requests.run(stimulus, recording), wire.RunReply)
        m = reply.measurement
        prov = attrs.evolve(m.provenance, driver=f"replay:{m.provenance.driver}") if m.provenance is not None else None
        log.info("run", path=self.path, trials=stimulus.n_trials, spikes=int(m.spikes.size))
        return attrs.evolve(m, provenance=prov)

    def reset(self) -> None:
        reply = self._exchange("reset", wire.Reset(), wire.ResetReply)
        self._hello = attrs.evolve(self._hello, boot_id=reply.boot_id)
        self._requests.device_config = hil.ChipConfig()

    def close(self) -> None:
        self._records = []

    # --- records ---------------------------------------------------------------------------
    def _where(self) -> str:
        return f"replay://{self.path}"

    def _exchange(self, op: str, msg, reply_cls):
        msg_type, parts = wire.encode_message(msg)
        self._pop(wire.KIND_REQUEST, (msg_type, wire.payload_bytes(parts)), op)
        return wire.expect(self._decode_reply(op), reply_cls, op, self._where())

    def _pop(self, kind: int, request, op: str) -> wire.Record:
        index = self._next
        if index >= len(self._records):
            raise hil.ProtocolError(
                f"{self._where()}: {op} is request {index // 2} but the recording ends after "
                f"{len(self._records) // 2} requests"
            )
        record = self._records[index]
        self._next += 1
        if record.kind != kind:
            raise hil.ProtocolError(
                f"{self._where()}: record {index} is of kind {record.kind}, expected {kind}; the file is out of order"
            )
        if request is not None:
            _compare(request, record, index // 2, op, self._where())
        return record

    def _decode_reply(self, op: str):
        record = self._pop(wire.KIND_REPLY, None, op)
        return wire.decode_message(record.type, record.payload)


def _compare(request: tuple, record: wire.Record, number: int, op: str, where: str) -> None:
    """``ProtocolError`` naming the first difference between a request and its recorded twin."""
    msg_type, payload = request
    if record.type != msg_type:
        raise hil.ProtocolError(
            f"{where}: request {number} is {_name(msg_type)}, the recording has {_name(record.type)} there"
        )
    if record.payload != payload:
        at = next(
            (i for i, (a, b) in enumerate(zip(record.payload, payload, strict=False)) if a != b),
            min(len(payload), len(record.payload)),
        )
        raise hil.ProtocolError(
            f"{where}: request {number} ({op}) differs from the recording at payload byte {at} "
            f"(recorded {len(record.payload)} bytes, now {len(payload)} bytes); replay needs the same calls with the "
            "same arguments"
        )


def _name(msg_type: int) -> str:
    try:
        return wire.MsgType(msg_type).name
    except ValueError:
        return f"type {msg_type:#04x}"


def open_url(url: str, **options) -> ReplayDevice:
    """``hil.open`` entry point for ``replay://path`` (absolute paths: ``replay:///abs/path``)."""
    if options:
        raise hil.ConfigError(f"{url}: replay takes no options, got {sorted(options)}")
    path = url[len("replay://") :] if url.startswith("replay://") else url
    if not path:
        raise hil.ConfigError(f"{url}: expected replay://PATH of a session recording")
    return ReplayDevice(path)
