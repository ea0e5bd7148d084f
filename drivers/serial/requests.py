"""Building requests and reading replies, shared by the live driver and session replay."""

from __future__ import annotations

import hil
from hil import wire
from hil.errors import ConfigError


def configure_message(device_config: hil.ChipConfig | None, config: hil.ChipConfig) -> wire.Configure:
    """The blocks that turn ``device_config`` (None: unknown, send all) into ``config``."""
    keys = list(hil.ChipConfig.block_keys()) if device_config is None else device_config.diff(config)
    return wire.Configure([(k, config.get_block(k)) for k in keys], config.content_hash())


def run_message(stimulus, recording, limits: hil.DeviceLimits, url: str) -> wire.Run:
    """A ``Run`` request after checking the stimulus against the device's limits."""
    if not isinstance(stimulus, hil.Stimulus):
        raise ConfigError(f"{url}: run(stimulus = {type(stimulus).__name__}); expected hil.Stimulus")
    if not isinstance(recording, hil.Recording):
        raise ConfigError(f"{url}: run(recording = {type(recording).__name__}); expected hil.Recording")
    if stimulus.n_trials > limits.max_trials:
        raise ConfigError(
            f"{url}: Stimulus.n_trials = {stimulus.n_trials} is out of range; allowed: 1..{limits.max_trials} (device limit); split the batch"
        )
    if stimulus.n_events > limits.max_events:
        raise ConfigError(
            f"{url}: Stimulus.n_events = {stimulus.n_events} is out of range; allowed: 0..{limits.max_events} (device limit); split the batch"
        )
    return wire.Run(stimulus, recording)


def info_of(hello: wire.HelloReply) -> hil.DeviceInfo:
    return hil.DeviceInfo(hello.chip_id, f"serial:{hello.driver}", hello.version, hello.boot_id, hello.limits)


def expect(reply, cls, op: str, where: str):
    """``reply`` if it is a ``cls``; the device's error re-raised; ``ProtocolError`` for anything else."""
    if isinstance(reply, wire.ErrorReply):
        raise reply.exception(where)
    if not isinstance(reply, cls):
        raise hil.ProtocolError(f"{where}: {op} got a {type(reply).__name__} reply, expected {cls.__name__}")
    return reply
