"""Message types of the wire protocol and their payload encodings (all little-endian).

Requests (host -> device) have types below 0x80; the reply to a request of type ``t`` has
type ``t | 0x80`` or ``ERROR``. ``ACK`` and ``WORKING`` are link-level frames without payload.
``encode_message(msg) -> (type, [buffers])`` and ``decode_message(type, payload) -> msg``
convert between the attrs classes below and payload bytes; docs/protocol.md lists every field.
"""

from __future__ import annotations

import enum

import attrs

from .. import chip
from ..device import PROTOCOL_VERSION, DeviceLimits
from ..errors import CalibrationError, ConfigError, DeviceError, DeviceTimeout, HilError, ProtocolError, ResourceError
from ..measurement import Measurement
from ..stimulus import EVENT_DTYPE, Recording, Stimulus
from .config_blocks import BLOCK_FIELDS, BLOCK_KINDS, MAX_BLOCKS, get_blocks, put_blocks
from .frame import ACK_TYPE
from .measurements import get_measurement, measurement_size, put_measurement
from .packing import Reader, Writer, little_endian, packed_size, parts_size


class MsgType(enum.IntEnum):
    HELLO = 0x01
    CONFIGURE = 0x02
    RUN = 0x03
    RESET = 0x04
    BYE = 0x05
    WORKING = 0x7D  # device -> host: still executing request ``seq`` (keep-alive)
    ACK = ACK_TYPE  # receiver -> sender: ``chunk`` = chunks of message ``seq`` received in order
    HELLO_REPLY = 0x81
    CONFIGURE_REPLY = 0x82
    RUN_REPLY = 0x83
    RESET_REPLY = 0x84
    BYE_REPLY = 0x85
    ERROR = 0xFF


REQUEST_TYPES = frozenset({MsgType.HELLO, MsgType.CONFIGURE, MsgType.RUN, MsgType.RESET, MsgType.BYE})


class ErrorCode(enum.IntEnum):
    CONFIG = 1  # ConfigError: invalid configuration, stimulus or recording
    RESOURCE = 2  # ResourceError
    PROTOCOL = 3  # ProtocolError: undecodable request
    TIMEOUT = 4  # DeviceTimeout: the chip itself did not finish
    DEVICE = 5  # DeviceError
    CALIBRATION = 6  # CalibrationError
    BUSY = 16  # another client holds the device
    VERSION = 17  # protocol version not spoken
    RESET = 18  # no valid session: the device rebooted (or no Hello yet); send Hello and the configuration
    CONFIG_MISMATCH = 19  # configuration after applying the blocks differs from the expected hash
    UNKNOWN_TYPE = 20  # request type not known
    INTERNAL = 255  # any other failure on the device


ERROR_CLASSES: dict[int, type] = {
    ErrorCode.CONFIG: ConfigError,
    ErrorCode.RESOURCE: ResourceError,
    ErrorCode.PROTOCOL: ProtocolError,
    ErrorCode.TIMEOUT: DeviceTimeout,
    ErrorCode.DEVICE: DeviceError,
    ErrorCode.CALIBRATION: CalibrationError,
    ErrorCode.BUSY: DeviceError,
    ErrorCode.VERSION: ProtocolError,
    ErrorCode.RESET: DeviceError,
    ErrorCode.CONFIG_MISMATCH: DeviceError,
    ErrorCode.UNKNOWN_TYPE: ProtocolError,
    ErrorCode.INTERNAL: DeviceError,
}


def error_code_of(exc: BaseException) -> ErrorCode:
    """The code a device reports for ``exc`` (most specific ``hil.errors`` class first)."""
    for code in (
        ErrorCode.CONFIG,
        ErrorCode.RESOURCE,
        ErrorCode.PROTOCOL,
        ErrorCode.TIMEOUT,
        ErrorCode.CALIBRATION,
        ErrorCode.DEVICE,
    ):
        if isinstance(exc, ERROR_CLASSES[code]):
            return code
    return ErrorCode.INTERNAL


# --- messages ------------------------------------------------------------------------------
@attrs.frozen
class Hello:
    """Host opens (or resumes) a session. ``session``: random per host object, so a reconnecting
    host keeps the device's reply cache; ``keepalive_ms``: WORKING interval the host wants."""

    version: int = PROTOCOL_VERSION
    session: int = 0
    max_frame_payload: int = 1 << 18
    window: int = 8
    keepalive_ms: int = 250


@attrs.frozen
class HelloReply:
    version: int
    boot_id: int
    max_frame_payload: int
    window: int
    limits: DeviceLimits
    chip_id: str
    driver: str
    config_hash: str  # hex SHA-256 of the configuration the device holds


@attrs.frozen(eq=False)
class Configure:
    """Blocks to write, then the expected ``ChipConfig.content_hash()`` of the result."""

    blocks: list  # of (BlockKey, {field: array})
    expected_hash: str


@attrs.frozen
class ConfigureReply:
    config_hash: str


@attrs.frozen(eq=False)
class Run:
    stimulus: Stimulus
    recording: Recording


@attrs.frozen(eq=False)
class RunReply:
    measurement: Measurement


@attrs.frozen
class Reset:
    pass


@attrs.frozen
class ResetReply:
    boot_id: int


@attrs.frozen
class Bye:
    pass


@attrs.frozen
class ByeReply:
    pass


@attrs.frozen
class ErrorReply:
    """``retry_after_s`` (BUSY only, on the wire in ms): when the client may try again."""

    code: int
    error_class: str
    message: str
    retry_after_s: float = 0.0

    @classmethod
    def of(cls, exc: BaseException) -> ErrorReply:
        """The reply a device sends for ``exc`` (``hil.errors`` classes keep their message)."""
        code = error_code_of(exc)
        text = str(exc) if code != ErrorCode.INTERNAL else f"{type(exc).__name__}: {exc}"
        return cls(int(code), type(exc).__name__, text)

    def exception(self, where: str) -> HilError:
        """The ``hil.errors`` exception this reply stands for, with the device's message; a BUSY
        one carries ``retry_after_s``."""
        exc = ERROR_CLASSES.get(self.code, DeviceError)(
            f"{self.message} [device error {self.error_class}, code {self.code}, at {where}]"
        )
        if self.code == ErrorCode.BUSY:
            exc.retry_after_s = self.retry_after_s
        return exc


# --- encoders ------------------------------------------------------------------------------
_LIMITS_FORMAT = "IQQdQQ"


def _limits_put(w: Writer, lim: DeviceLimits) -> None:
    w.put(
        _LIMITS_FORMAT,
        lim.max_trials,
        lim.max_events,
        lim.max_spikes,
        lim.link_events_per_s,
        lim.max_madc_samples,
        lim.max_cadc_samples,
    )


_RECORDING_FORMAT, _STIMULUS_HEAD = "BHBId", "IQ"


def _recording_put(w: Writer, rec: Recording) -> None:
    flags = (
        int(rec.spikes)
        | (rec.madc_neuron is not None) << 1
        | (rec.cadc_period_s is not None) << 2
        | int(rec.spike_counts) << 3
    )
    w.put(
        _RECORDING_FORMAT,
        flags,
        rec.madc_neuron or 0,
        chip.MADC_SOURCES.index(rec.madc_source),
        rec.madc_samples,
        rec.cadc_period_s or 0.0,
    )


def _stimulus_put(w: Writer, stim: Stimulus) -> None:
    w.put(_STIMULUS_HEAD, stim.n_trials, stim.n_events)
    w.array(stim.durations, "<u8").array(stim.offsets, "<i8").array(stim.events, EVENT_DTYPE)


def encode_message(msg) -> tuple[int, list]:
    """``(message type, payload segments)`` of a message object."""
    w = Writer()
    if isinstance(msg, Hello):
        w.put("HQIHH", msg.version, msg.session, msg.max_frame_payload, msg.window, msg.keepalive_ms)
    elif isinstance(msg, HelloReply):
        w.put("HQIH", msg.version, msg.boot_id, msg.max_frame_payload, msg.window)
        _limits_put(w, msg.limits)
        w.text(msg.chip_id).text(msg.driver).parts.append(bytes.fromhex(msg.config_hash))
    elif isinstance(msg, Configure):
        put_blocks(w, msg.blocks)
        w.parts.append(bytes.fromhex(msg.expected_hash))
    elif isinstance(msg, ConfigureReply):
        w.parts.append(bytes.fromhex(msg.config_hash))
    elif isinstance(msg, Run):
        _recording_put(w, msg.recording)
        _stimulus_put(w, msg.stimulus)
    elif isinstance(msg, RunReply):
        put_measurement(w, msg.measurement)
    elif isinstance(msg, ResetReply):
        w.put("Q", msg.boot_id)
    elif isinstance(msg, ErrorReply):
        w.put("H", msg.code).text(msg.error_class).text(msg.message)
        if msg.code == ErrorCode.BUSY:
            w.put("I", min(int(round(max(msg.retry_after_s, 0.0) * 1000)), 0xFFFFFFFF))
    elif not isinstance(msg, (Reset, Bye, ByeReply)):
        raise TypeError(f"encode_message: {type(msg).__name__} is not a wire message")
    return int(TYPE_OF[type(msg)]), w.parts


def run_payload_size(n_trials: int, n_events: int) -> int:
    """Payload bytes of a RUN of ``n_trials`` trials holding ``n_events`` events in all."""
    per_trial = 8 + 8  # duration u64, offset i64
    fixed = packed_size(_RECORDING_FORMAT + _STIMULUS_HEAD) + 8  # the last trial's end offset
    return fixed + per_trial * n_trials + little_endian(EVENT_DTYPE).itemsize * n_events


def payload_size(msg) -> int:
    """Payload bytes ``encode_message(msg)`` produces. RUN and RUN_REPLY are counted from their contents
    without building the bytes (``ProtocolError`` where the encoder refuses the message); others are encoded."""
    if isinstance(msg, Run):
        return run_payload_size(msg.stimulus.n_trials, msg.stimulus.n_events)
    if isinstance(msg, RunReply):
        return measurement_size(msg.measurement)
    return parts_size(encode_message(msg)[1])


# --- decoders -------------------------------------------------------------------------------
def _hash(r: Reader) -> str:
    return bytes(r.array("u1", 32, "config hash")).hex()


def _decode_configure(r: Reader) -> Configure:
    return Configure(get_blocks(r), _hash(r))


def _decode_run(r: Reader) -> Run:
    flags, neuron, source, samples, period = r.get(_RECORDING_FORMAT)
    if source >= len(chip.MADC_SOURCES):
        raise ProtocolError(f"run: MADC source index {source}; allowed 0..{len(chip.MADC_SOURCES) - 1}")
    recording = Recording(
        spikes=bool(flags & 1),
        madc_neuron=neuron if flags & 2 else None,
        madc_source=chip.MADC_SOURCES[source],
        madc_samples=samples,
        cadc_period_s=period if flags & 4 else None,
        spike_counts=bool(flags & 8),
    )
    n_trials, n_events = r.get(_STIMULUS_HEAD)
    durations = r.array("<u8", n_trials, "durations")
    offsets = r.array("<i8", n_trials + 1, "offsets")
    events = r.array(EVENT_DTYPE, n_events, "events")
    return Run(Stimulus(events, offsets, durations), recording)


def decode_message(msg_type: int, payload):
    """The message object of a complete payload; ``ProtocolError`` for anything malformed."""
    try:
        t = MsgType(msg_type)
    except ValueError:
        raise ProtocolError(f"unknown message type {msg_type:#04x}") from None
    r = Reader(payload, t.name.lower())
    try:
        msg = _DECODERS[t](r)
    except KeyError:
        raise ProtocolError(f"message type {t.name} carries no payload to decode") from None
    except ConfigError as exc:
        if t is MsgType.RUN or t is MsgType.CONFIGURE:
            raise  # the content is well-formed bytes but invalid: the device reports CONFIG
        raise ProtocolError(f"{t.name.lower()}: {exc}") from exc
    r.end()
    return msg


def _decode_error(r: Reader) -> ErrorReply:
    code, error_class, message = r.one("H"), r.text(), r.text()
    return ErrorReply(code, error_class, message, r.one("I") / 1000 if code == ErrorCode.BUSY else 0.0)


_DECODERS = {
    MsgType.HELLO: lambda r: Hello(*r.get("HQIHH")),
    MsgType.HELLO_REPLY: lambda r: HelloReply(
        *r.get("HQIH"), DeviceLimits(*r.get(_LIMITS_FORMAT)), r.text(), r.text(), _hash(r)
    ),
    MsgType.CONFIGURE: _decode_configure,
    MsgType.CONFIGURE_REPLY: lambda r: ConfigureReply(_hash(r)),
    MsgType.RUN: _decode_run,
    MsgType.RUN_REPLY: lambda r: RunReply(get_measurement(r)),
    MsgType.RESET: lambda r: Reset(),
    MsgType.RESET_REPLY: lambda r: ResetReply(r.one("Q")),
    MsgType.BYE: lambda r: Bye(),
    MsgType.BYE_REPLY: lambda r: ByeReply(),
    MsgType.ERROR: _decode_error,
}

TYPE_OF = {
    Hello: MsgType.HELLO,
    HelloReply: MsgType.HELLO_REPLY,
    Configure: MsgType.CONFIGURE,
    ConfigureReply: MsgType.CONFIGURE_REPLY,
    Run: MsgType.RUN,
    RunReply: MsgType.RUN_REPLY,
    Reset: MsgType.RESET,
    ResetReply: MsgType.RESET_REPLY,
    Bye: MsgType.BYE,
    ByeReply: MsgType.BYE_REPLY,
    ErrorReply: MsgType.ERROR,
}


def reply_type(request_type: int) -> int:
    """Type of the successful reply to a request type."""
    return request_type | 0x80


def payload_bytes(parts) -> bytes:
    """Join payload segments (tests, recordings)."""
    return b"".join(parts)


__all__ = [
    "PROTOCOL_VERSION",
    "MsgType",
    "REQUEST_TYPES",
    "ErrorCode",
    "ERROR_CLASSES",
    "error_code_of",
    "Hello",
    "HelloReply",
    "Configure",
    "ConfigureReply",
    "Run",
    "RunReply",
    "Reset",
    "ResetReply",
    "Bye",
    "ByeReply",
    "ErrorReply",
    "BLOCK_FIELDS",
    "BLOCK_KINDS",
    "MAX_BLOCKS",
    "encode_message",
    "payload_size",
    "run_payload_size",
    "decode_message",
    "reply_type",
    "payload_bytes",
]
