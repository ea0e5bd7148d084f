"""Message sizes counted without encoding (``payload_size``, ``framed_size``) equal the bytes the real
encoder and framing produce, for randomised RUN requests and replies, chunked and empty ones included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import hil
from hil import chip, wire
from hil.errors import ProtocolError
from hil.wire.packing import MAX_TEXT

CHUNK_SIZES = st.sampled_from([1, 5, 64, 1000, wire.DEFAULT_CHUNK_SIZE])


def framed_bytes(msg, chunk_size: int) -> int:
    """Length of the frames a channel sends for ``msg``: encoded, split into chunks, each chunk framed."""
    msg_type, parts = wire.encode_message(msg)
    chunks = wire.split_payload(parts, chunk_size)
    return sum(len(wire.encode_frame(msg_type, 9, c, chunk=i, n_chunks=len(chunks))) for i, c in enumerate(chunks))


def encoded_bytes(msg) -> int:
    return len(wire.payload_bytes(wire.encode_message(msg)[1]))


@st.composite
def stimuli(draw) -> hil.Stimulus:
    trials = []
    for _ in range(draw(st.integers(1, 6))):
        ticks = sorted(draw(st.lists(st.integers(0, 4999), max_size=40)))
        labels = [
            label & ~chip.LABEL_RESERVED_MASK
            for label in draw(st.lists(st.integers(0, 0xFFFF), min_size=len(ticks), max_size=len(ticks)))
        ]
        trials.append(np.array(list(zip(ticks, labels, strict=True)), np.int64).reshape(-1, 2))
    return hil.Stimulus.from_trials(trials, draw(st.integers(5000, 2**32 - 1)))


recordings = st.builds(
    hil.Recording,
    spikes=st.booleans(),
    spike_counts=st.booleans(),
    madc_neuron=st.one_of(st.none(), st.integers(0, chip.N_NEURONS - 1)),
    madc_source=st.sampled_from(chip.MADC_SOURCES),
    madc_samples=st.integers(1, 2000),
    cadc_period_s=st.one_of(st.none(), st.floats(chip.CADC_MIN_PERIOD_S, 1e-3)),
)
texts = st.one_of(st.text(max_size=20), st.text(min_size=MAX_TEXT - 2, max_size=MAX_TEXT + 40))
provenances = st.builds(
    hil.Provenance,
    driver=texts,
    chip_id=texts,
    config_hash=st.text(max_size=64),
    software_version=st.text(max_size=10),
    wall_time_s=st.floats(0, 1e3),
    calibration_id=st.one_of(st.none(), texts),
    noise_seed=st.one_of(st.none(), st.integers(0, 2**128)),
)


@st.composite
def measurements(draw) -> hil.Measurement:
    n_trials = draw(st.integers(0, 6))
    n = draw(st.integers(0, 300)) if n_trials else 0
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    spikes = np.zeros(n, hil.SPIKE_DTYPE)
    spikes["trial"] = np.sort(rng.integers(0, max(n_trials, 1), n))
    spikes["tick"] = rng.integers(0, draw(st.sampled_from([1, 0xFFFF, 0x10000, chip.TIMER_MAX_TICKS])) + 1, n)
    spikes["neuron"] = rng.integers(0, 2**16, n)
    health = hil.Health(*draw(st.lists(st.integers(0, 2**64 - 1), min_size=6, max_size=6)))
    madc = cadc = counts = None
    if draw(st.booleans()):
        madc = hil.MadcTrace(3, "membrane", rng.integers(0, 1024, (n_trials, draw(st.integers(0, 50))), np.uint16))
    if draw(st.booleans()):
        shape = (n_trials, draw(st.integers(0, 5)), draw(st.sampled_from([0, 7, chip.N_NEURONS])))
        cadc = hil.CadcSamples(rng.integers(0, 256, shape, np.uint8), rng.integers(0, 2**40, shape[:2], np.uint64))
    if draw(st.booleans()):
        counts = rng.integers(0, 512, (n_trials, chip.N_NEURONS), np.uint16)
    return hil.Measurement(spikes, n_trials, health, draw(st.none() | provenances), madc, cadc, counts)


@settings(max_examples=150, deadline=None)
@given(stimuli(), recordings, CHUNK_SIZES)
def test_run_sizes_equal_the_encoded_and_framed_bytes(stimulus, recording, chunk_size):
    msg = wire.Run(stimulus, recording)
    assert wire.payload_size(msg) == encoded_bytes(msg)
    assert wire.framed_size(msg, chunk_size) == framed_bytes(msg, chunk_size)


@settings(max_examples=150, deadline=None)
@given(measurements(), CHUNK_SIZES)
def test_run_reply_sizes_equal_the_encoded_and_framed_bytes(measurement, chunk_size):
    msg = wire.RunReply(measurement)
    assert wire.payload_size(msg) == encoded_bytes(msg)
    assert wire.framed_size(msg, chunk_size) == framed_bytes(msg, chunk_size)


@pytest.mark.parametrize("trials, samples, chunks", [(0, 0, 1), (1, 0, 1), (60, 10, 2), (200, 10, 4)])
def test_empty_and_chunked_replies_at_the_default_chunk_size(trials, samples, chunks):
    cadc = hil.CadcSamples(np.ones((trials, samples, chip.N_NEURONS), np.uint8), np.ones((trials, samples), np.uint64))
    msg = wire.RunReply(hil.Measurement(np.zeros(0, hil.SPIKE_DTYPE), trials, cadc=cadc))
    assert wire.framed_size(msg) == framed_bytes(msg, wire.DEFAULT_CHUNK_SIZE)
    assert len(wire.split_payload(wire.encode_message(msg)[1], wire.DEFAULT_CHUNK_SIZE)) == chunks


def test_other_messages_are_sized_by_their_encoding():
    cfg = hil.ChipConfig()
    for msg in [
        wire.Hello(),
        wire.Bye(),
        wire.ErrorReply(2, "ResourceError", "x" * (MAX_TEXT + 5)),
        wire.configure_message(None, cfg),
        wire.configure_message(cfg, cfg),
    ]:
        assert wire.payload_size(msg) == encoded_bytes(msg)
        assert wire.framed_size(msg, 100) == framed_bytes(msg, 100)


@given(st.integers(1, 3), st.integers(0, 5))
@example(2, 0)
def test_run_payload_size_counts_trials_and_events(trials, events):
    stim = hil.Stimulus.from_trials([np.zeros((events, 2), np.int64)] * trials, 10)
    assert wire.run_payload_size(trials, trials * events) == encoded_bytes(wire.Run(stim, hil.Recording()))


def _spikes(trials, ticks):
    s = np.zeros(len(trials), hil.SPIKE_DTYPE)
    s["trial"], s["tick"] = trials, ticks
    return s


@pytest.mark.parametrize(
    "spikes, match",
    [
        (_spikes([1, 0], [5, 5]), "sorted by trial"),
        (_spikes([0, 2], [5, 5]), "trial < n_trials"),
        (_spikes([0, 1], [5, chip.TIMER_MAX_TICKS + 1]), "32-bit timer"),
    ],
)
def test_a_reply_the_encoder_refuses_has_no_size(spikes, match):
    msg = wire.RunReply(hil.Measurement(spikes, 2))
    with pytest.raises(ProtocolError, match=match):
        wire.encode_message(msg)
    with pytest.raises(ProtocolError, match=match):
        wire.framed_size(msg)
