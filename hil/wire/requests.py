"""Device calls as wire requests and replies as results, shared by every side that speaks them:
the serial driver, session recording (:mod:`hil.recording`), replay and the device server."""

from __future__ import annotations

import functools

from ..config import ChipConfig
from ..device import DeviceInfo, DeviceLimits
from ..errors import ConfigError, ProtocolError
from ..stimulus import Recording, Stimulus
from .messages import Configure, ErrorReply, HelloReply, Run, payload_size, run_payload_size


class Requests:
    """Builds a session's requests from its calls, knowing what the device holds.

    ``device_config``: the configuration the device is known to hold (None: unknown, so the
    next CONFIGURE carries every block). Callers set it after a call succeeded: the target
    after CONFIGURE, ``ChipConfig()`` after RESET.
    """

    def __init__(self, limits: DeviceLimits, where: str):
        self.limits = limits
        self.where = where
        self.device_config: ChipConfig | None = None

    def configure(self, config: ChipConfig) -> tuple[ChipConfig, Configure]:
        """``(validated copy of config, the CONFIGURE that turns the device's configuration into it)``."""
        if not isinstance(config, ChipConfig):
            raise ConfigError(f"{self.where}: configure(config = {type(config).__name__}); expected hil.ChipConfig")
        target = config.copy().validate()
        return target, configure_message(self.device_config, target)

    def run(self, stimulus: Stimulus, recording: Recording) -> Run:
        """A RUN request, after checking the call against the device's limits."""
        self.limits.check(stimulus, recording, self.where)
        return Run(stimulus, recording)


def configure_message(device_config: ChipConfig | None, config: ChipConfig) -> Configure:
    """The blocks that turn ``device_config`` (None: unknown, send all) into ``config``."""
    keys = list(ChipConfig.block_keys()) if device_config is None else device_config.diff(config)
    return Configure([(k, config.get_block(k)) for k in keys], config.content_hash())


def info_of(hello: HelloReply, prefix: str) -> DeviceInfo:
    """The ``DeviceInfo`` a HELLO_REPLY announces; the driver name gets ``prefix:`` in front."""
    return DeviceInfo(hello.chip_id, f"{prefix}:{hello.driver}", hello.version, hello.boot_id, hello.limits)


def expect(reply, cls, op: str, where: str):
    """``reply`` if it is a ``cls``; the device's error re-raised; ``ProtocolError`` for anything else."""
    if isinstance(reply, ErrorReply):
        raise reply.exception(where)
    if not isinstance(reply, cls):
        raise ProtocolError(f"{where}: {op} got a {type(reply).__name__} reply, expected {cls.__name__}")
    return reply


@functools.cache
def _full_configure_bytes() -> int:
    return payload_size(configure_message(None, ChipConfig()))


def max_request_bytes(limits: DeviceLimits) -> int:
    """Payload bytes of the largest request a device with ``limits`` accepts: a CONFIGURE of
    every block, or a RUN of ``max_trials`` trials and ``max_events`` events."""
    return max(run_payload_size(limits.max_trials, limits.max_events), _full_configure_bytes())
