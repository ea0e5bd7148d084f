"""Wire protocol: codec throughput, request latency over TCP loopback, Yin-Yang batch through a socket."""

from __future__ import annotations

import statistics
import time

import numpy as np
from bench import case

import hil
from drivers.server import Server
from hil import wire


def _measurement(n_spikes: int) -> hil.Measurement:
    rng = np.random.default_rng(0)
    spikes = np.empty(n_spikes, hil.SPIKE_DTYPE)
    spikes["trial"] = np.sort(rng.integers(0, 1000, n_spikes))
    spikes["tick"] = rng.integers(0, 6250, n_spikes)
    spikes["neuron"] = rng.integers(0, 512, n_spikes)
    return hil.Measurement(spikes, 1000)


@case("wire.codec")
def codec(bench):
    """Encode a 1-million-spike RunReply into 256 KiB frames and decode it back (CRC-checked)."""
    n = 100_000 if bench.quick else 1_000_000
    m = _measurement(n)
    nbytes = m.spikes.nbytes

    def round_trip():
        t, parts = wire.encode_message(wire.RunReply(m))
        chunks = wire.split_payload(parts, 1 << 18)
        frames = [wire.encode_frame(t, 1, c, chunk=i, n_chunks=len(chunks)) for i, c in enumerate(chunks)]
        decoder = wire.FrameDecoder()
        got = [f for data in frames for f in decoder.feed(data)]
        assembly = wire.Assembly(got[0], wire.LIMITS)
        for f in got:
            assembly.add(f)
        return wire.decode_message(t, assembly.payload()).measurement

    assert np.array_equal(round_trip().spikes, m.spikes)
    codec_s = bench.time(round_trip)
    src = m.spikes.view(np.uint8)
    dst = np.empty_like(src)
    memcpy_s = bench.time(lambda: np.copyto(dst, src), label="memcpy")
    crc_s = bench.time(lambda: wire.frame.crc32(src), label="crc32")
    return {
        "spikes": n,
        "bytes": nbytes,
        "codec_MB_s": nbytes / codec_s / 1e6,
        "memcpy_MB_s": nbytes / memcpy_s / 1e6,
        "crc32_MB_s": nbytes / crc_s / 1e6,
        "codec_vs_memcpy": codec_s / memcpy_s,
        "floor_vs_memcpy": (2 * crc_s + 2 * memcpy_s) / memcpy_s,  # two CRC passes + two copies are unavoidable
    }


class _Echo(hil.DeviceBase):
    def info(self):
        return hil.DeviceInfo("echo", "echo")

    def configure(self, config):
        pass

    def run(self, stimulus, recording=hil.Recording()):
        return hil.Measurement(np.empty(0, hil.SPIKE_DTYPE), stimulus.n_trials)

    def reset(self):
        pass

    def close(self):
        pass


@case("wire.latency")
def latency(bench):
    """A one-trial run with no spikes (one frame each way) over TCP loopback."""
    stim = hil.Stimulus.from_trials([np.array([[10, 1]])], 100)
    with Server(_Echo()) as srv, hil.open(srv.address) as dev:
        samples = []
        for _ in range(200 if bench.quick else 1000):
            t0 = time.perf_counter()
            dev.run(stim)
            samples.append(time.perf_counter() - t0)
        median = bench.time(lambda: dev.run(stim))
    samples.sort()
    return {
        "median_us": statistics.median(samples) * 1e6,
        "p99_us": samples[int(0.99 * len(samples))] * 1e6,
        "bench_median_us": median * 1e6,
    }


@case("wire.yinyang")
def yinyang(bench):
    """Yin-Yang batch (5-120-3, duplication 5; 1000 trials of 50 us) through socket:// vs the in-process mock."""
    try:
        from drivers.mock import MockChip

        MockChip(seed=7, noise=False).info()
    except Exception as exc:
        return {"skipped": f"mock chip not usable: {type(exc).__name__}: {exc}"}
    placement = hil.place(hil.Network.feedforward(5, [120], 3, duplication=5))
    rng = np.random.default_rng(0)
    weights = {p.key: rng.normal(0.5, 1.0, placement.network.weight_shape(p)) for p in placement.network.projections}
    cfg = placement.config(weights, 40.0)
    trials = 200 if bench.quick else 1000
    stim = placement.encode(rng.uniform(0, 30e-6, (trials, 5)), 50e-6)
    local = MockChip(seed=7, noise=False)
    local.configure(cfg)
    local_s = bench.time(lambda: local.run(stim), label="in_process")
    with Server(MockChip(seed=7, noise=False)) as srv, hil.open(srv.address) as dev:
        dev.configure(cfg)
        m = dev.run(stim)
        wire_s = bench.time(lambda: dev.run(stim), label="socket")
    assert np.array_equal(m.spikes, local.run(stim).spikes)
    return {
        "trials": trials,
        "spikes_per_batch": int(m.spikes.size),
        "in_process_trials_s": trials / local_s,
        "socket_trials_s": trials / wire_s,
        "socket_vs_in_process": local_s / wire_s,
        "bytes_per_batch": m.health.bytes_sent + m.health.bytes_received,
    }
