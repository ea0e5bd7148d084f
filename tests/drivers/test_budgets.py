"""Bounded work per request: every run the advertised ``DeviceLimits`` allow completes within
the server's memory budget, and a run beyond them is refused at once on both ends."""

from __future__ import annotations

import socket

import numpy as np
import pytest

import hil
from drivers.server import MEMORY_BUDGET_BYTES
from hil import wire

from .server_process import ServerProcess
from .wire_fixtures import fake_fixture, server_fixture  # noqa: F401 - fixtures "fake" and "server"

pytestmark = pytest.mark.timeout(300)
LIMITS = hil.DeviceLimits()


def quiet_network():
    """Yin-Yang placement with zero weights: every input event is routed and taken, no neuron fires."""
    net = hil.Network.feedforward(5, [120], 3, duplication=5)
    placement = hil.place(net)
    cfg = placement.config({p.key: np.zeros(net.weight_shape(p)) for p in net.projections}, 40.0)
    cfg.enable_readout[:] = True
    return placement, cfg


def largest_runs(placement):
    """(name, stimulus, recording) at each limit, and all limits at once."""
    rng = np.random.default_rng(0)
    T = LIMITS.max_trials
    per_input = LIMITS.max_events // (T * 25)
    madc_trials = LIMITS.max_madc_samples // hil.chip.MADC_MAX_SAMPLES
    cadc_trials = 32
    cadc_each = LIMITS.max_cadc_samples // cadc_trials
    both = LIMITS.max_cadc_samples  # trials of one CADC reading each
    return [
        (
            "max_trials, max_events, spike counters",
            placement.encode(rng.uniform(0, 40e-6, (T, 5, per_input)), 50e-6),
            hil.Recording(spike_counts=True),
        ),
        (
            "max_madc_samples",
            placement.encode(rng.uniform(0, 40e-6, (madc_trials, 5)), 2.3e-3),
            hil.Recording(madc_neuron=130, madc_samples=hil.chip.MADC_MAX_SAMPLES),
        ),
        (
            "max_cadc_samples",
            placement.encode(rng.uniform(0, 40e-6, (cadc_trials, 5)), cadc_each * hil.chip.CADC_MIN_PERIOD_S),
            hil.Recording(cadc_period_s=hil.chip.CADC_MIN_PERIOD_S),
        ),
        (
            "all at once",
            placement.encode(rng.uniform(0, 1e-6, (both, 5, LIMITS.max_events // (both * 25))), 1.7e-6),
            hil.Recording(
                spike_counts=True,
                cadc_period_s=hil.chip.CADC_MIN_PERIOD_S,
                madc_neuron=130,
                madc_samples=LIMITS.max_madc_samples // both,
            ),
        ),
    ]


def test_largest_allowed_runs_stay_within_the_memory_budget():
    placement, cfg = quiet_network()
    runs = largest_runs(placement)
    for _, stim, rec in runs:
        LIMITS.check(stim, rec)  # each is allowed
    assert runs[0][1].n_trials == LIMITS.max_trials and runs[3][1].n_events > 0.8 * LIMITS.max_events
    assert hil.Recording.cadc_samples(runs[2][2], runs[2][1].durations).sum() == LIMITS.max_cadc_samples
    with ServerProcess(MEMORY_BUDGET_BYTES) as server:
        with hil.open(server.address, timeout=60) as dev:
            dev.configure(cfg)
            for name, stim, rec in runs:
                m = dev.run(stim, rec)
                assert m.n_trials == stim.n_trials, name
                assert not server.exceeded, f"{name}: {server.exceeded}"
        peak = server.peak_bytes()
    assert peak < MEMORY_BUDGET_BYTES, f"server peak {peak / 2**20:.0f} MiB"


def raw_request(address: str, msg_type: int, parts: list, seq: int = 2, n_chunks: int | None = None):
    """HELLO (seq 1), then a request of ``msg_type`` with payload ``parts`` in 256 KiB chunks
    (declaring ``n_chunks`` if given); the decoded reply to ``seq``."""
    host, port = address.removeprefix("socket://").rsplit(":", 1)
    chunks = wire.split_payload(parts, 1 << 18)
    n = n_chunks or len(chunks)
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(wire.encode_frame(wire.MsgType.HELLO, 1, wire.encode_message(wire.Hello(session=5))[1]))
        for i, chunk in enumerate(chunks):
            s.sendall(wire.encode_frame(msg_type, seq, chunk, chunk=i, n_chunks=n))
        decoder = wire.FrameDecoder()
        while True:
            data = s.recv(1 << 20)
            assert data, "the server closed the connection without answering"
            for item in decoder.feed(data):
                if isinstance(item, wire.Frame) and item.seq == seq and item.type >= 0x80:
                    return wire.decode_message(item.type, item.payload)


BEYOND = [
    (hil.Stimulus.from_trials([[]] * (LIMITS.max_trials + 1), 100), hil.Recording(), "max_trials"),
    (hil.Stimulus.from_trials([np.zeros((LIMITS.max_events + 1, 2), np.int64)], 100), hil.Recording(), "max_events"),
    (
        hil.Stimulus.from_trials([[]] * (LIMITS.max_madc_samples // hil.chip.MADC_MAX_SAMPLES + 1), 300_000),
        hil.Recording(madc_neuron=0, madc_samples=hil.chip.MADC_MAX_SAMPLES),
        "max_madc_samples",
    ),
    (hil.Stimulus.from_trials([[]], 2**32 - 1), hil.Recording(cadc_period_s=1e-3), "max_cadc_samples"),
]


@pytest.mark.parametrize("stim, rec, field", BEYOND, ids=[b[2] for b in BEYOND])
def test_runs_beyond_the_limits_are_refused_by_host_and_device(server, fake, stim, rec, field):
    message = f"DeviceLimits.{field} = {getattr(LIMITS, field)} per run"
    with hil.open(server.address, timeout=5) as dev:  # the host refuses before sending ...
        before = server.requests
        with pytest.raises(hil.ConfigError, match=message):
            dev.run(stim, rec)
        assert server.requests == before
    reply = raw_request(server.address, *wire.encode_message(wire.Run(stim, rec)))  # ... the device too
    assert reply.code == wire.ErrorCode.CONFIG and message in reply.message
    assert fake.runs == 0


def test_a_message_larger_than_any_allowed_request_is_refused_while_it_arrives(server, fake):
    limit = wire.max_request_bytes(fake.limits)
    parts = [bytes(limit + 1)]
    reply = raw_request(server.address, wire.MsgType.RUN, parts, n_chunks=10_000)  # declares far more
    assert reply.code == wire.ErrorCode.PROTOCOL and f"exceed the message limit of {limit}" in reply.message


@pytest.mark.timeout(120)
def test_the_52_byte_request_of_issue_16_stays_within_the_budget():
    """HELLO, CONFIGURE with enable_readout, RUN of 1 trial of 2**32-1 ticks with 1 MADC sample of neuron 0."""
    cfg = hil.ChipConfig()
    cfg.enable_readout[:] = True
    stim = hil.Stimulus.from_trials([[]], 2**32 - 1)
    rec = hil.Recording(madc_neuron=0, madc_samples=1)
    LIMITS.check(stim, rec)  # within the advertised limits
    with ServerProcess(MEMORY_BUDGET_BYTES) as server:
        try:
            with hil.open(server.address, timeout=90, retries=0) as dev:
                dev.configure(cfg)
                assert dev.run(stim, rec).madc.samples.shape == (1, 1)
        except hil.HilError as exc:
            pytest.fail(f"{exc}; watchdog: {server.exceeded}")
        assert server.peak_bytes() < MEMORY_BUDGET_BYTES
