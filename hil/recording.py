"""``hil.open(url, record=path)``: the session of any device written to a ``.hilrec`` file.

:class:`RecordingDevice` wraps the opened device. Each call becomes the request a wire host
would send for it (CONFIGURE with the blocks that changed since the previous configure,
RUN, RESET) and the device's answer becomes its reply (an ``ERROR`` for a call that raised),
and both are appended to the file in order (:mod:`hil.wire.recording`, format in
docs/protocol.md section 6). ``hil.open("replay://path")`` plays the file back, so a session
recorded on the mock, a chip behind a bridge or another recording replays the same way.
Calls refused before they reach the device (invalid configuration, limits) are not written.
"""

from __future__ import annotations

import os
import time

from . import __version__, wire
from .config import ChipConfig
from .device import PROTOCOL_VERSION, DeviceBase, DeviceInfo
from .errors import ConfigError
from .measurement import Measurement
from .stimulus import Recording, Stimulus

UNKNOWN_CONFIG_HASH = "00" * 32  # HELLO_REPLY of a recording: what the device held is not known


class RecordingDevice(DeviceBase):
    """``device`` with every call also written to ``path``; other attributes are ``device``'s."""

    def __init__(self, device, path, url: str):
        if not isinstance(path, (str, os.PathLike)) or not str(path):
            raise ConfigError(f"{url}: record = {path!r}; expected the path of a .hilrec file to write")
        self.device = device
        self.path = str(path)
        info = device.info()
        self._requests = wire.Requests(info.limits, url)
        meta = {"url": url, "software_version": __version__, "created_unix_s": time.time()}
        self._writer = wire.SessionWriter(self.path, meta)
        self._seq = 0
        hello = wire.Hello(PROTOCOL_VERSION, 0, wire.DEFAULT_CHUNK_SIZE, 8, 250)
        self._write(wire.KIND_REQUEST, hello)
        self._write(wire.KIND_REPLY, _hello_reply(info))

    # --- hil.Device ---------------------------------------------------------------------------
    def info(self) -> DeviceInfo:
        return self.device.info()

    def configure(self, config: ChipConfig) -> None:
        target, request = self._requests.configure(config)
        self._call(request, lambda: self.device.configure(target), lambda _: wire.ConfigureReply(request.expected_hash))
        self._requests.device_config = target

    def run(self, stimulus: Stimulus, recording: Recording = Recording()) -> Measurement:
        request = self._requests.run(stimulus, recording)
        return self._call(request, lambda: self.device.run(stimulus, recording), wire.RunReply)

    def reset(self) -> None:
        self._call(wire.Reset(), self.device.reset, lambda _: wire.ResetReply(self.device.info().boot_id))
        self._requests.device_config = ChipConfig()

    def close(self) -> None:
        try:
            self.device.close()
        finally:
            self._writer.close()

    def __getattr__(self, name: str):
        if name == "device":  # not set yet: the constructor failed early
            raise AttributeError(name)
        return getattr(self.device, name)

    # --- records ------------------------------------------------------------------------------
    def _call(self, request, call, reply_of):
        """Write ``request``, run ``call()``, write ``reply_of(result)`` or the error it raised."""
        self._seq += 1
        self._write(wire.KIND_REQUEST, request)
        try:
            result = call()
        except Exception as exc:
            self._write(wire.KIND_REPLY, wire.ErrorReply.of(exc))
            raise
        self._write(wire.KIND_REPLY, reply_of(result))
        return result

    def _write(self, kind: int, msg) -> None:
        msg_type, parts = wire.encode_message(msg)
        self._writer.write(kind, msg_type, self._seq, parts)


def _hello_reply(info: DeviceInfo) -> wire.HelloReply:
    return wire.HelloReply(
        PROTOCOL_VERSION,
        info.boot_id,
        wire.DEFAULT_CHUNK_SIZE,
        8,
        info.limits,
        info.chip_id,
        info.driver,
        UNKNOWN_CONFIG_HASH,
    )
