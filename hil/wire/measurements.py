"""RUN_REPLY's payload: a ``Measurement`` as bytes and back (docs/protocol.md section 3.4), and its
size counted without building it (``measurement_size``).

Spikes go column-wise (per-trial counts, neuron numbers, then trial-relative ticks in 2 or 4
bytes), ADC data as raw little-endian arrays; every count is checked against the bytes left
before an array is made (``Reader``).
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from .. import chip
from ..errors import ProtocolError
from ..measurement import SPIKE_DTYPE, CadcSamples, Health, MadcTrace, Measurement, Provenance
from .packing import Reader, Writer, packed_size, text_size


def _optional_text(w: Writer, value) -> None:
    w.put("B", value is not None)
    if value is not None:
        w.text(str(value))


_HEAD, _SPIKES_HEAD, _MADC_HEAD, _CADC_HEAD, _COUNTS_HEAD = "I6Q", "QB", "HBddII", "III", "II"


def _tick_width(spikes: np.ndarray, n_trials: int) -> int:
    """Bytes per spike tick on the wire: 2 when every tick fits (trials up to 524 us), else 4.
    ``ProtocolError`` for spikes the reply cannot carry (unsorted, past ``n_trials``, past the timer)."""
    trial, tick = spikes["trial"], spikes["tick"]
    if spikes.size and (np.any(trial[1:] < trial[:-1]) or int(trial[-1]) >= n_trials):
        raise ProtocolError(f"run reply: spikes must be sorted by trial with trial < n_trials = {n_trials}")
    top = int(tick.max()) if spikes.size else 0
    if top > chip.TIMER_MAX_TICKS:
        raise ProtocolError(f"run reply: spike tick {top}; allowed <= {chip.TIMER_MAX_TICKS} (32-bit timer)")
    return 2 if top <= 0xFFFF else 4


def _spikes_put(w: Writer, spikes: np.ndarray, n_trials: int) -> None:
    """Spikes column-wise: per-trial counts, then neuron numbers, then trial-relative ticks in 2 or 4
    bytes (4 or 6 bytes per spike instead of 14)."""
    width = _tick_width(spikes, n_trials)
    counts = np.bincount(spikes["trial"], minlength=n_trials)
    w.put(_SPIKES_HEAD, spikes.size, width).array(counts, "<u4").array(spikes["neuron"], "<u2")
    w.array(spikes["tick"], f"<u{width}")


def _spikes_get(r: Reader, n_trials: int) -> np.ndarray:
    n, width = r.get(_SPIKES_HEAD)
    if width not in (2, 4):
        raise ProtocolError(f"run reply: spike tick width {width} bytes; allowed 2 or 4")
    counts = r.array("<u4", n_trials, "spike counts per trial")
    if int(counts.sum(dtype=np.uint64)) != n:
        raise ProtocolError(
            f"run reply: per-trial spike counts add up to {int(counts.sum(dtype=np.uint64))}, n_spikes is {n}"
        )
    spikes = np.empty(n, SPIKE_DTYPE)
    spikes["neuron"] = r.array("<u2", n, "spike neurons")
    spikes["tick"] = r.array(f"<u{width}", n, "spike ticks")
    spikes["trial"] = np.repeat(np.arange(n_trials, dtype=np.uint32), counts)
    return spikes


def put_measurement(w: Writer, m: Measurement) -> None:
    w.put(_HEAD, m.n_trials, *attrs.astuple(m.health))
    p = m.provenance
    w.put("B", p is not None)
    if p is not None:
        w.text(p.driver).text(p.chip_id).text(p.config_hash).text(p.software_version).put("d", p.wall_time_s)
        _optional_text(w, p.calibration_id)
        _optional_text(w, p.noise_seed)
    _spikes_put(w, m.spikes, m.n_trials)
    w.put("B", m.madc is not None)
    if m.madc is not None:
        s = m.madc.samples
        w.put(
            _MADC_HEAD, m.madc.neuron, chip.MADC_SOURCES.index(m.madc.source), m.madc.period_s, m.madc.start_s, *s.shape
        ).array(s, "<u2")
    w.put("B", m.cadc is not None)
    if m.cadc is not None:
        s = m.cadc.samples
        w.put(_CADC_HEAD, *s.shape).array(s, "u1").array(m.cadc.ticks, "<u8")
    w.put("B", m.spike_counts is not None)
    if m.spike_counts is not None:
        w.put(_COUNTS_HEAD, *m.spike_counts.shape).array(m.spike_counts, "<u2")


def measurement_size(m: Measurement) -> int:
    """Bytes ``put_measurement`` writes for ``m``, counted from its fields without building them;
    ``ProtocolError`` where the encoder refuses ``m``."""
    n_spikes = m.spikes.size
    size = packed_size(_HEAD + "B" + _SPIKES_HEAD + "BBB") + 4 * m.n_trials  # "B": a part is present
    size += n_spikes * (2 + _tick_width(m.spikes, m.n_trials))
    p = m.provenance
    if p is not None:
        size += sum(text_size(t) for t in (p.driver, p.chip_id, p.config_hash, p.software_version))
        size += packed_size("dBB") + sum(text_size(str(v)) for v in (p.calibration_id, p.noise_seed) if v is not None)
    if m.madc is not None:
        size += packed_size(_MADC_HEAD) + 2 * m.madc.samples.size
    if m.cadc is not None:
        size += packed_size(_CADC_HEAD) + m.cadc.samples.size + 8 * m.cadc.ticks.size
    if m.spike_counts is not None:
        size += packed_size(_COUNTS_HEAD) + 2 * m.spike_counts.size
    return size


def _optional(r: Reader):
    return r.text() if r.one("B") else None


def get_measurement(r: Reader) -> Measurement:
    n_trials = r.one("I")
    health = Health(*r.get("6Q"))
    provenance = None
    if r.one("B"):
        driver, chip_id, config_hash, software = r.text(), r.text(), r.text(), r.text()
        wall = r.one("d")
        calibration = _optional(r)
        noise_seed = _optional(r)
        provenance = Provenance(
            driver,
            chip_id,
            config_hash,
            software,
            wall,
            calibration,
            int(noise_seed) if noise_seed is not None else None,
        )
    spikes = _spikes_get(r, n_trials)
    madc = cadc = counts = None
    if r.one("B"):
        neuron, source, period, start, rows, cols = r.get(_MADC_HEAD)
        if source >= len(chip.MADC_SOURCES) or not (math.isfinite(period) and math.isfinite(start)):
            raise ProtocolError(f"run reply: MADC source {source}, period {period}, start {start} are invalid")
        madc = MadcTrace(
            neuron,
            chip.MADC_SOURCES[source],
            r.array("<u2", rows * cols, "MADC samples").reshape(rows, cols),
            period,
            start,
        )
    if r.one("B"):
        a, b, c = r.get(_CADC_HEAD)
        samples = r.array("u1", a * b * c, "CADC samples").reshape(a, b, c)
        cadc = CadcSamples(samples, r.array("<u8", a * b, "CADC ticks").reshape(a, b))
    if r.one("B"):
        rows, cols = r.get(_COUNTS_HEAD)
        counts = r.array("<u2", rows * cols, "spike counts").reshape(rows, cols)
    return Measurement(spikes, n_trials, health, provenance, madc, cadc, counts)
