"""Fuzz a live device server (127.0.0.1, a mock chip in its own process) with random messages
that pass the CRC checks, including RUNs with extreme field values: it must not crash or hang,
must keep answering, and must stay within its memory budget.

``HIL_FUZZ_MESSAGES`` (default 300) sets the number of messages and ``HIL_FUZZ_SEED`` (default
0) the seed; ``HIL_FUZZ_LONG_ADC=1`` adds the combination excluded below.
"""

from __future__ import annotations

import os
import socket
import struct
import time

import numpy as np
import pytest

import hil
from drivers.server import MEMORY_BUDGET_BYTES
from drivers.streams import SocketStream
from hil import wire

from .server_process import ServerProcess

MESSAGES = int(os.environ.get("HIL_FUZZ_MESSAGES", "300"))
SEED = int(os.environ.get("HIL_FUZZ_SEED", "0"))
# Excluded from the default fuzz space, for time only: RUNs that record an ADC (MADC or CADC)
# over more than LONG_ADC_TICKS of chip time. The mock's memory stays within the budget for
# them, but it simulates every event of those long trials (the 300 messages of seed 0 take
# about 3 minutes with them instead of 15 s). Longer ADC runs are clamped to this length
# unless HIL_FUZZ_LONG_ADC=1.
LONG_ADC_TICKS = 1_000_000  # 8 ms
LONG_ADC = os.environ.get("HIL_FUZZ_LONG_ADC") == "1"
LIMITS = hil.DeviceLimits()
SESSION = 0xF022

pytestmark = pytest.mark.timeout(600)


class FuzzClient:
    """One raw connection to the server; reconnects when the server ends the session."""

    def __init__(self, address: str):
        host, port = address.removeprefix("socket://").rsplit(":", 1)
        self.target = (host, int(port))
        self.seq = 1000
        self.sock: socket.socket | None = None
        self.outcomes: dict[str, int] = {}  # reply kinds to every request, e.g. "RUN_REPLY", "ERROR CONFIG"

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, data: bytes) -> None:
        for _ in range(2):
            try:
                if self.sock is None:
                    self.sock = socket.create_connection(self.target, timeout=120)
                self.sock.sendall(data)
                return
            except OSError:
                self.close()

    def probe(self) -> wire.HelloReply:
        """HELLO, and wait for its reply: every earlier request has been handled by then."""
        for _ in range(200):
            seq = self.next_seq()
            t, parts = wire.encode_message(wire.Hello(session=SESSION))
            self.send(wire.encode_frame(t, seq, parts))
            reply = self._reply(seq)
            if isinstance(reply, wire.HelloReply):
                return reply
            self.close()  # closed (after a BYE or a refused frame) or BUSY while the last session ends
        raise AssertionError("the server stopped answering HELLO")

    def _reply(self, seq: int):
        """The reply to ``seq`` (None if the connection ends first); replies on the way are counted,
        chunked ones reassembled and acknowledged."""
        channel = wire.Channel(SocketStream(self.sock), ack_timeout=0.5)
        assemblies: dict[int, wire.Assembly] = {}
        try:
            while True:
                frame = channel.next_frame(time.monotonic() + 120)
                if frame is None or frame.type < 0x80:
                    continue
                payload = frame.payload
                if frame.n_chunks > 1:
                    assembly = assemblies.setdefault(frame.seq, wire.Assembly(frame, wire.LIMITS))
                    if not channel.take_chunk(frame, assembly):
                        continue
                    payload = assemblies.pop(frame.seq).payload()
                reply = wire.decode_message(frame.type, payload)
                self._count(reply)
                if frame.seq in (seq, 0):
                    return reply
        except wire.LinkClosed:
            return None

    def _count(self, reply) -> None:
        if isinstance(reply, wire.ErrorReply):
            kind = f"ERROR {wire.ErrorCode(reply.code).name}"
        else:
            kind = wire.MsgType(wire.encode_message(reply)[0]).name
        self.outcomes[kind] = self.outcomes.get(kind, 0) + 1

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def frames_of(msg_type: int, seq: int, payload: bytes, chunk_size: int = 1 << 18) -> bytes:
    chunks = wire.split_payload([payload], chunk_size)
    return b"".join(wire.encode_frame(msg_type, seq, c, chunk=i, n_chunks=len(chunks)) for i, c in enumerate(chunks))


def pick(rng, values):
    return values[int(rng.integers(len(values)))]


def extreme_run(rng) -> bytes:
    """A RUN payload with extreme values in every field; lengths consistent unless a count lies."""
    flags = int(rng.integers(0, 16))
    recording = struct.pack(
        "<BHBId",
        flags,
        pick(rng, [0, 130, 511, 512, 65535]),
        pick(rng, [0, 1, 2, 3, 255]),
        pick(rng, [0, 1, 256, 65535, 65536, 2**32 - 1]),
        pick(rng, [0.0, 1.7e-6, 1e-5, 1e-3, 1.0, np.inf, np.nan, -1.0, 1e300, 5e-324]),
    )
    n_trials = pick(rng, [1, 2, 64, LIMITS.max_trials, LIMITS.max_trials + 1, 2**32 - 1])
    real_trials = n_trials if n_trials <= LIMITS.max_trials + 1 else 3
    durations = rng.choice(np.array([0, 1, 1000, 2**32 - 1, 2**32, 2**64 - 1], np.uint64), real_trials)
    if rng.random() < 0.5:
        durations[:] = pick(rng, [1, 1000, 2**32 - 1])
    if flags & 0b110 and not LONG_ADC and int(durations.sum(dtype=np.uint64)) > LONG_ADC_TICKS:
        durations = np.minimum(durations, LONG_ADC_TICKS // real_trials).astype(np.uint64)
    per_trial = pick(rng, [0, 0, 1, 3])
    n_events = per_trial * real_trials
    declared = pick(rng, [n_events, n_events, n_events + 1, 2**64 - 1])
    offsets = np.arange(real_trials + 1, dtype=np.int64) * per_trial
    if rng.random() < 0.2:
        offsets = rng.integers(-5, n_events + 5, real_trials + 1).astype(np.int64)
    events = np.zeros(n_events, hil.EVENT_DTYPE)
    events["tick"] = rng.integers(0, 2000, n_events)
    events["label"] = rng.integers(0, 65536, n_events)
    head = struct.pack("<IQ", n_trials, declared)
    return recording + head + durations.tobytes() + offsets.tobytes() + events.tobytes()


def extreme_valid_run(rng) -> bytes:
    """A well-formed RUN at the extremes of every field (no input events: the chip is not routed)."""
    madc, cadc = rng.random() < 0.4, rng.random() < 0.4
    n_trials = pick(rng, [1, 2, 64, LIMITS.max_trials])
    duration = pick(rng, [1, 1000, 2**32 - 1])
    if (madc or cadc) and not LONG_ADC:
        duration = min(duration, LONG_ADC_TICKS // n_trials or 1)
    recording = hil.Recording(
        spikes=bool(rng.integers(2)),
        spike_counts=bool(rng.integers(2)),
        madc_neuron=pick(rng, [0, 130, 511]) if madc else None,
        madc_source=pick(rng, list(hil.chip.MADC_SOURCES)),
        madc_samples=pick(rng, [1, 256, hil.chip.MADC_MAX_SAMPLES]) if madc else 0,
        cadc_period_s=pick(rng, [hil.chip.CADC_MIN_PERIOD_S, 1e-5, 1e-3]) if cadc else None,
    )
    stimulus = hil.Stimulus.from_trials([[]] * n_trials, duration)
    return wire.payload_bytes(wire.encode_message(wire.Run(stimulus, recording))[1])


def valid_payloads(rng) -> list[tuple[int, bytes]]:
    """Well-formed requests to mutate."""
    stim = hil.Stimulus.from_trials([[]] * 3, 1000)
    msgs = [
        wire.Hello(session=SESSION, window=int(rng.integers(0, 5)), keepalive_ms=int(rng.integers(0, 3))),
        wire.Run(stim, hil.Recording(madc_neuron=3, madc_samples=10)),
        wire.Run(stim, hil.Recording(cadc_period_s=2e-6, spike_counts=True)),
        wire.configure_message(hil.ChipConfig(), readout_config()),
    ]
    return [(t, wire.payload_bytes(parts)) for t, parts in map(wire.encode_message, msgs)]


def readout_config() -> hil.ChipConfig:
    cfg = hil.ChipConfig()
    cfg.enable_readout[:] = True
    return cfg


def fuzz_message(rng, client: FuzzClient) -> bytes:
    """The bytes of one fuzz message (whole frames with valid CRCs)."""
    kind = rng.random()
    seq = client.next_seq()
    if kind < 0.25:  # any type, random payload
        return frames_of(int(rng.integers(0, 256)), seq, rng.bytes(int(rng.integers(0, 3000))))
    if kind < 0.45:
        return frames_of(wire.MsgType.RUN, seq, extreme_run(rng))
    if kind < 0.6:
        return frames_of(wire.MsgType.RUN, seq, extreme_valid_run(rng))
    if kind < 0.85:  # a real request with a few bytes changed
        t, payload = pick(rng, valid_payloads(rng))
        data = bytearray(payload)
        for _ in range(int(rng.integers(1, 6))):
            if data:
                data[int(rng.integers(len(data)))] = int(rng.integers(256))
        return frames_of(t, seq, bytes(data))
    n = int(rng.integers(1, 1 << 16))  # chunk headers that promise more than is sent
    return b"".join(
        wire.encode_frame(pick(rng, [1, 2, 3, 0x42]), seq, rng.bytes(int(rng.integers(0, 2000))), chunk=c, n_chunks=n)
        for c in sorted({int(x) for x in rng.integers(0, n, 3)})
    )


def test_fuzz_live_server_keeps_answering_within_its_memory_budget():
    rng = np.random.default_rng(np.random.SeedSequence(SEED))
    with ServerProcess(MEMORY_BUDGET_BYTES) as server:
        client = FuzzClient(server.address)
        client.probe()
        configure = wire.Configure(
            [(k, readout_config().get_block(k)) for k in hil.ChipConfig.block_keys()], readout_config().content_hash()
        )
        client.send(
            frames_of(wire.MsgType.CONFIGURE, client.next_seq(), wire.payload_bytes(wire.encode_message(configure)[1]))
        )
        for i in range(MESSAGES):
            client.send(fuzz_message(rng, client))
            assert isinstance(client.probe(), wire.HelloReply), f"message {i}"
            assert server.alive(), f"message {i}: server gone ({server.exceeded or 'crashed'})"
        client.close()
        peak = server.peak_bytes()
    print("fuzz outcomes:", dict(sorted(client.outcomes.items())), f"server peak {peak / 2**20:.0f} MiB")
    reached = {"RUN_REPLY", "ERROR CONFIG", "ERROR PROTOCOL", "ERROR UNKNOWN_TYPE"}
    assert reached <= set(client.outcomes), f"the fuzz did not reach every path: {client.outcomes}"
    assert not server.exceeded
    assert peak < MEMORY_BUDGET_BYTES, f"server peak {peak / 2**20:.0f} MiB"
