"""CADC channel offsets and the MADC's scale, from runs that read one neuron with both ADCs.

Every potential read on CADC channel ``n`` carries that channel's offset; the MADC has one
offset and one gain for all neurons. A run with the MADC on neuron ``n`` and the CADC on
reads the same membrane twice: interpolated to the CADC's sample times, the MADC trace gives
pairs ``(V + o_n + noise, m0 + g V + noise)``, so the membrane noise cancels in
``b_n = mean(cadc) - mean(madc) / g = o_n - m0 / g``. Over all channels the offsets are fixed
up to one constant, which this calibration sets by defining the mean channel offset as 0: a
potential is "what the average CADC channel reads". The gain ``g`` (MADC codes per CADC LSB)
comes from a few neurons read at two resting levels.
"""

from __future__ import annotations

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.errors import CalibrationError
from hil.stimulus import Recording

from .rest import CADC_PERIOD_S
from .setups import N, idle_stimulus

NOMINAL_MADC_GAIN = 2.0 ** (chip.MADC_BITS - chip.CADC_BITS)  # codes per CADC LSB if both span one range


@attrs.frozen(eq=False)
class PairedLevel:
    """One neuron read by both ADCs: mean CADC reading (LSB) and mean MADC code at the same
    instants, the rms of their difference (LSB at the nominal gain) and the number of pairs."""

    neuron: int
    cadc: float
    madc: float
    spread: float
    pairs: int


def measure_paired(
    session, config: ChipConfig, neuron: int, *, n_trials: int = 4, duration_s: float = 20e-6, what="offsets"
) -> PairedLevel:
    """Read ``neuron``'s membrane with the MADC and the CADC in one run of ``config`` (its
    neurons resting). Samples at 0 or the ADC's top, and CADC samples outside the MADC's
    trace, are left out. Raises ``CalibrationError`` if the device returns no ADC data."""
    cfg = config.copy()
    cfg.enable_readout = False
    cfg.enable_readout[neuron] = True
    n_samples = min(int(duration_s / chip.MADC_SAMPLE_PERIOD_S), chip.MADC_MAX_SAMPLES)
    recording = Recording(spikes=True, madc_neuron=int(neuron), madc_samples=n_samples, cadc_period_s=CADC_PERIOD_S)
    m = session.run(cfg, idle_stimulus(n_trials, duration_s), recording, what=f"{what}[{neuron}]")
    if m.madc is None or m.cadc is None or m.madc.samples.size == 0 or m.cadc.samples.size == 0:
        raise CalibrationError(f"{what}: the device returned no MADC or CADC samples for neuron {neuron}")
    t_madc = m.madc.times()
    c = m.cadc.samples[:, :, neuron].astype(np.float64)  # (T, S)
    t_cadc = m.cadc.ticks.astype(np.float64) * chip.TICK_S
    madc = np.stack([np.interp(t_cadc[k], t_madc, m.madc.samples[k].astype(np.float64)) for k in range(c.shape[0])])
    ok = (c > 0) & (c < chip.CADC_MAX) & (t_cadc >= t_madc[0]) & (t_cadc <= t_madc[-1])
    raw = m.madc.samples
    if np.any((raw <= 0) | (raw >= chip.MADC_MAX)) or np.any(m.spikes["neuron"] == neuron):
        ok[:] = False  # the MADC left its range, or the neuron did not rest
    if not ok.any():
        return PairedLevel(int(neuron), np.nan, np.nan, np.nan, 0)
    diff = c[ok] - madc[ok] / NOMINAL_MADC_GAIN
    return PairedLevel(int(neuron), float(c[ok].mean()), float(madc[ok].mean()), float(diff.std()), int(ok.sum()))


@attrs.frozen(eq=False)
class AdcScale:
    """``cadc_offset`` (512,) LSB per channel (``nan`` where not measured), ``madc_offset``
    (codes) and ``madc_gain`` (codes per LSB): a true potential is ``cadc - cadc_offset[n]``
    or ``(madc - madc_offset) / madc_gain``. ``cadc_offset_err`` (512,): standard errors."""

    cadc_offset: np.ndarray
    cadc_offset_err: np.ndarray
    madc_offset: float
    madc_gain: float


def madc_gain(low: list[PairedLevel], high: list[PairedLevel]) -> float:
    """MADC codes per CADC LSB: the median over neurons of the slope between two resting levels."""
    slopes = [
        (h.madc - lo.madc) / (h.cadc - lo.cadc)
        for lo, h in zip(low, high, strict=True)
        if lo.pairs and h.pairs and abs(h.cadc - lo.cadc) >= 10.0
    ]
    if not slopes:
        raise CalibrationError(
            "offsets: no neuron gave two distinct resting levels on both ADCs; cannot scale the MADC to the CADC"
        )
    return float(np.median(slopes))


def estimate_offsets(levels: list[PairedLevel], gain: float) -> AdcScale:
    """Channel offsets (mean 0 over the measured channels) and the MADC offset from paired levels."""
    b = np.full(N, np.nan)
    err = np.full(N, np.nan)
    for lv in levels:
        if lv.pairs:
            b[lv.neuron] = lv.cadc - lv.madc / gain
            err[lv.neuron] = lv.spread / np.sqrt(lv.pairs)
    if not np.any(np.isfinite(b)):
        raise CalibrationError("offsets: no neuron gave paired CADC and MADC readings at rest")
    centre = float(np.nanmean(b))
    return AdcScale(b - centre, err, madc_offset=-gain * centre, madc_gain=gain)
