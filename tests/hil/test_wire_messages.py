"""Message payloads: every type round-trips; malformed payloads raise ProtocolError, never allocate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hil
from hil import wire
from hil.errors import ConfigError, ProtocolError


def round_trip(msg):
    t, parts = wire.encode_message(msg)
    return wire.decode_message(t, wire.payload_bytes(parts))


def test_simple_messages_round_trip():
    for msg in [
        wire.Hello(1, 2**63, 4096, 4, 100),
        wire.Reset(),
        wire.ResetReply(7),
        wire.Bye(),
        wire.ByeReply(),
        wire.ErrorReply(1, "ConfigError", "v_leak = 2000 is out of range"),
        wire.ConfigureReply("ab" * 32),
        wire.HelloReply(1, 9, 1 << 18, 8, hil.DeviceLimits(), "chip-ü", "mock", "cd" * 32),
    ]:
        assert round_trip(msg) == msg


def test_error_reply_reraises_device_class_with_message():
    exc = wire.ErrorReply(int(wire.ErrorCode.CONFIG), "ConfigError", "Stimulus.durations = 0").exception("socket://x")
    assert isinstance(exc, ConfigError) and "Stimulus.durations = 0" in str(exc)
    assert wire.error_code_of(hil.ResourceError("x")) == wire.ErrorCode.RESOURCE
    assert wire.error_code_of(KeyError("x")) == wire.ErrorCode.INTERNAL


def test_configure_round_trip_all_blocks():
    cfg = hil.ChipConfig()
    cfg.synapse_weights[1, 200] = np.arange(256) % 64
    cfg.crossbar_enable[3, 2] = True
    blocks = [(k, cfg.get_block(k)) for k in hil.ChipConfig.block_keys()]
    back = round_trip(wire.Configure(blocks, cfg.content_hash()))
    rebuilt = hil.ChipConfig()
    for key, arrays in back.blocks:
        rebuilt.set_block(key, arrays)
    assert rebuilt == cfg and back.expected_hash == cfg.content_hash()


events = st.lists(st.tuples(st.integers(0, 999), st.sampled_from([0, 5, 0x7C0, 0xC03F])), max_size=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(events, min_size=1, max_size=5), st.booleans(), st.booleans())
def test_run_and_reply_round_trip(trials, madc, counts):
    stim = hil.Stimulus.from_trials([np.array(sorted(t), dtype=np.int64).reshape(-1, 2) for t in trials], 1000)
    rec = (
        hil.Recording(madc_neuron=3, madc_samples=4, spike_counts=counts)
        if madc
        else hil.Recording(cadc_period_s=2e-6, spike_counts=counts)
    )
    back = round_trip(wire.Run(stim, rec))
    assert back.stimulus == stim and back.recording == rec
    spikes = np.zeros(stim.n_events, hil.SPIKE_DTYPE)
    spikes["tick"] = stim.events["tick"]
    m = hil.Measurement(
        spikes,
        stim.n_trials,
        hil.Health(1, 2, 3, 4, 5, 6),
        hil.Provenance("d", "c", "h", "v", 1.5, "cal", 2**70),
        hil.MadcTrace(3, "synin_inh", np.ones((stim.n_trials, 4), np.uint16)) if madc else None,
        None
        if madc
        else hil.CadcSamples(np.ones((stim.n_trials, 2, 512), np.uint8), np.ones((stim.n_trials, 2), np.uint64)),
        np.full((stim.n_trials, 512), 3, np.uint16),
    )
    got = round_trip(wire.RunReply(m)).measurement
    assert np.array_equal(got.spikes, m.spikes) and got.health == m.health and got.provenance == m.provenance
    assert np.array_equal(got.spike_counts, m.spike_counts)


def test_lying_counts_are_refused_before_allocation():
    stim = hil.Stimulus.from_trials([np.array([[1, 2]])], 10)
    t, parts = wire.encode_message(wire.Run(stim, hil.Recording()))
    payload = bytearray(wire.payload_bytes(parts))
    payload[17:25] = (2**62).to_bytes(8, "little")  # n_events
    with pytest.raises(ProtocolError, match="declares"):
        wire.decode_message(t, payload)
    with pytest.raises(ProtocolError, match="needed"):
        wire.decode_message(t, payload[:10])
    with pytest.raises(ProtocolError, match="unexpected bytes"):
        wire.decode_message(int(wire.MsgType.RESET_REPLY), b"\0" * 9)
    with pytest.raises(ProtocolError, match="unknown message type"):
        wire.decode_message(0x42, b"")


def test_invalid_stimulus_content_is_a_config_error():
    stim = hil.Stimulus.from_trials([np.array([[5, 2]])], 10)
    t, parts = wire.encode_message(wire.Run(stim, hil.Recording()))
    payload = bytearray(wire.payload_bytes(parts))
    payload[-10:-2] = (50).to_bytes(8, "little")  # event tick past the trial end
    with pytest.raises(ConfigError, match="past the end"):
        wire.decode_message(t, payload)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(list(wire.MsgType)), st.binary(max_size=300))
def test_fuzz_payloads_raise_only_hil_errors(msg_type, payload):
    try:
        wire.decode_message(int(msg_type), payload)
    except hil.HilError:
        pass


def _spikes(trials, ticks, neurons):
    s = np.empty(len(trials), hil.SPIKE_DTYPE)
    s["trial"], s["tick"], s["neuron"] = trials, ticks, neurons
    return s


@pytest.mark.parametrize("top_tick, bytes_per_spike", [(65_535, 4), (65_536, 6), (2**32 - 1, 6)])
def test_spikes_travel_column_wise_in_the_narrowest_tick_width(top_tick, bytes_per_spike):
    rng = np.random.default_rng(1)
    n_trials, n = 7, 500
    trials = np.sort(rng.choice([0, 2, 3, 6], n))  # trials 1, 4 and 5 stay empty
    spikes = _spikes(trials, rng.integers(0, top_tick, n), rng.integers(0, 2**16, n))
    spikes["tick"][-1] = top_tick
    with_spikes = wire.RunReply(hil.Measurement(spikes, n_trials))
    without = wire.RunReply(hil.Measurement(spikes[:0], n_trials))
    got = round_trip(with_spikes).measurement
    assert np.array_equal(got.spikes, spikes) and got.n_trials == n_trials
    assert wire.framed_size(with_spikes) - wire.framed_size(without) == n * bytes_per_spike


def test_unsorted_spikes_are_refused_when_encoded():
    unsorted = hil.Measurement(_spikes([1, 0], [5, 5], [3, 3]), 2)
    with pytest.raises(ProtocolError, match="sorted by trial"):
        wire.encode_message(wire.RunReply(unsorted))
    past_end = hil.Measurement(_spikes([0, 2], [5, 5], [3, 3]), 2)
    with pytest.raises(ProtocolError, match="trial < n_trials = 2"):
        wire.encode_message(wire.RunReply(past_end))


def test_spike_counts_that_do_not_add_up_are_refused():
    m = hil.Measurement(_spikes([0, 1, 1], [5, 6, 7], [3, 3, 4]), 2)
    t, parts = wire.encode_message(wire.RunReply(m))
    payload = bytes(wire.payload_bytes(parts))
    head = payload.index((3).to_bytes(8, "little") + b"\x02")  # n_spikes = 3, tick width 2
    bad = bytearray(payload)
    bad[head + 9 : head + 13] = (2).to_bytes(4, "little")  # trial 0 claims 2 spikes
    with pytest.raises(ProtocolError, match="add up to 4, n_spikes is 3"):
        wire.decode_message(t, bad)
    bad = bytearray(payload)
    bad[head + 8] = 3
    with pytest.raises(ProtocolError, match="tick width 3"):
        wire.decode_message(t, bad)


def test_hello_reply_carries_every_limit_and_busy_carries_its_retry_time():
    limits = hil.DeviceLimits(7, 8, 9, 1.5e6, 10, 11)
    reply = round_trip(wire.HelloReply(hil.PROTOCOL_VERSION, 9, 4096, 8, limits, "c", "d", "ab" * 32))
    assert reply.limits == limits
    busy = round_trip(wire.ErrorReply(int(wire.ErrorCode.BUSY), "DeviceError", "device busy", 1.25))
    assert busy.retry_after_s == 1.25
    exc = busy.exception("socket://x")
    assert isinstance(exc, hil.DeviceError) and exc.retry_after_s == 1.25
    other = wire.ErrorReply(int(wire.ErrorCode.CONFIG), "ConfigError", "bad", 3.0)  # only BUSY carries it
    assert round_trip(other).retry_after_s == 0.0


def test_error_reply_of_an_exception():
    assert wire.ErrorReply.of(hil.ResourceError("no room")) == wire.ErrorReply(2, "ResourceError", "no room")
    assert wire.ErrorReply.of(KeyError("k")) == wire.ErrorReply(255, "KeyError", "KeyError: 'k'")


def test_max_request_bytes_is_the_largest_run_the_limits_allow():
    limits = hil.DeviceLimits(max_trials=2000, max_events=40_000)
    stim = hil.Stimulus.from_trials([np.zeros((20, 2), np.int64)] * 2000, 100)
    _, parts = wire.encode_message(wire.Run(stim, hil.Recording(cadc_period_s=2e-6)))
    assert stim.n_events == limits.max_events and sum(len(p) for p in parts) == wire.max_request_bytes(limits)
    full = wire.encode_message(wire.configure_message(None, hil.ChipConfig()))[1]
    assert wire.max_request_bytes(hil.DeviceLimits(max_trials=1, max_events=0)) == sum(len(p) for p in full)


def test_worked_examples_in_the_protocol_page_match_the_encoder():
    page = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    examples = page[page.index("## 7. Worked example") : page.index("## 8.")].split("```")[1::2]
    dumps = [bytes.fromhex(" ".join(line[6:] for line in block.strip().splitlines())) for block in examples]
    stim = hil.Stimulus.from_trials([[(100, 0x41), (250, 0x42)]], 1000)
    expected = [
        wire.encode_frame(
            wire.MsgType.HELLO, 1, wire.encode_message(wire.Hello(3, 0x0123456789ABCDEF, 262144, 8, 500))[1]
        ),
        wire.encode_frame(wire.MsgType.RUN, 2, wire.encode_message(wire.Run(stim, hil.Recording()))[1]),
        wire.encode_frame(wire.MsgType.ACK, 2, chunk=3, n_chunks=5),
        wire.encode_frame(wire.MsgType.ERROR, 2, wire.encode_message(wire.ErrorReply(1, "ConfigError", "bad"))[1]),
        wire.encode_frame(
            wire.MsgType.ERROR, 0, wire.encode_message(wire.ErrorReply(16, "DeviceError", "busy", 1.0))[1]
        ),
    ]
    assert hil.PROTOCOL_VERSION == 3 and dumps == expected
