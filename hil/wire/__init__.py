"""The byte protocol between host and device (specified in docs/protocol.md).

:mod:`hil.wire.frame` frames and the resynchronising decoder, :mod:`hil.wire.messages` the
message types and payload encodings, :mod:`hil.wire.channel` chunking and flow control over
a byte stream, :mod:`hil.wire.recording` session files. Imports nothing of the project but ``hil``.
"""
from .channel import DEFAULT_CHUNK_SIZE, Assembly, ByteStream, Channel, LinkClosed, LinkStalled, framed_size, split_payload
from .frame import HEADER_SIZE, LIMITS, SYNC, WIRE_VERSION, Frame, FrameDecoder, FrameFault, Limits, encode_frame
from .messages import (
    BLOCK_FIELDS, BLOCK_KINDS, ERROR_CLASSES, MAX_BLOCKS, REQUEST_TYPES, Bye, ByeReply, Configure, ConfigureReply,
    ErrorCode, ErrorReply, Hello, HelloReply, MsgType, Reset, ResetReply, Run, RunReply, decode_message,
    encode_message, error_code_of, payload_bytes, reply_type,
)
from .recording import KIND_META, KIND_REPLY, KIND_REQUEST, Record, SessionWriter, read_session

__all__ = [
    "DEFAULT_CHUNK_SIZE", "framed_size", "Assembly", "ByteStream", "Channel", "LinkClosed", "LinkStalled", "split_payload", "HEADER_SIZE", "LIMITS",
    "SYNC", "WIRE_VERSION", "Frame", "FrameDecoder", "FrameFault", "Limits", "encode_frame", "BLOCK_FIELDS",
    "BLOCK_KINDS", "ERROR_CLASSES", "MAX_BLOCKS", "REQUEST_TYPES", "Bye", "ByeReply", "Configure",
    "ConfigureReply", "ErrorCode", "ErrorReply", "Hello", "HelloReply", "MsgType", "Reset", "ResetReply", "Run",
    "RunReply", "decode_message", "encode_message", "error_code_of", "payload_bytes", "reply_type", "Record",
    "SessionWriter", "read_session", "KIND_META", "KIND_REPLY", "KIND_REQUEST",
]
