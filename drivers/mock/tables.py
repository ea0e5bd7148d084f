"""Layouts shared by the mock's numba kernel: the columns of its parameter and state tables,
the settings arrays, and the kinds of queue items."""

SEGMENT_TICKS = 48
SEGMENT_S = SEGMENT_TICKS * 8e-9  # membrane-noise hold (384 ns); the unit of the kernel's outer loop
# growth table G (GROWTH_ROWS, 3, N): G[j, x, i] = e^{s / tau_x(i)} for a host event at segment time
# s = (j - GROWTH_LEAD) ticks + input latency, x = membrane, excitatory, inhibitory
GROWTH_LEAD = 10
GROWTH_ROWS = SEGMENT_TICKS + 2 * GROWTH_LEAD

# columns of the per-neuron parameter table P (N, N_ROWS); rates are inverse time constants,
# CE/CI the closed form's current coefficients, *_H factors over a whole segment, KMAX_H and
# KPEAK the largest PSP kernel value within a segment and overall
V_REST, V_RESET, V_THR, RATE_M, RATE_E, RATE_I, CE, CI, EM_H, FE_H, FI_H, KMAX_H, KPEAK, T_REF, NOISE_I = range(15)
# ... KE_H, KI_H: V's response over a whole segment to a unit current (CE (FE_H - EM_H), CI (FI_H - EM_H));
# NOISE_MAX: the largest excursion of the drive (the membrane-noise draws are bounded)
KE_H, KI_H, NOISE_MAX = range(15, 18)
# ... GM_H, GE_H, GI_H: growth over a whole segment, e^{SEGMENT_S / tau_x} (membrane, exc, inh)
GM_H, GE_H, GI_H = range(18, 21)
N_ROWS = 21
# columns of the per-neuron state table S (N, N_STATE): values at the segment start (V, E, I);
# coefficients (A, EH, IH) and drive (VINF) of the closed form in the segment; a bound of V over
# the rest of the segment (UB); end of the reset hold (HOLD, s); threshold; queue stamp; a spike
# is queued (PEND, 0/1); factors to the segment end (EM, FE, FI); spikes so far (NSPK) and inside
# the trial (COUNT); outside the sweep the time V, E, I refer to (SINCE); kept in the sweep (PIN,
# 0/1); segment ends in a row at which it could not have fired without input (CALM); MODE below
V, E, I, A, EH, IH, VINF, UB, HOLD, THETA, STAMP, PEND, EM, FE, FI, NSPK, COUNT, SINCE, PIN, CALM, MODE = range(21)
# growth factors e^{(segment start - SINCE) / tau_x} and the segment they are for
GA, GB, GC, GSEG = range(21, 25)
NO_SEGMENT = -2.0  # GSEG when the growth factors are unset (never k or k - 1 of a segment k >= 0)
N_STATE = 25
# MODE: in the sweep; out of it and unable to fire before a wake-up item in the queue (or ever)
# whatever the noise (caught up exactly, segment by segment, when it returns); out of it and
# unable to fire unless the noise makes a 6 sigma excursion (advanced with one Gaussian draw for
# the membrane noise of the whole stretch)
SWEEP, SAFE, PARKED = 0.0, 1.0, 2.0
SAFE_MIN = 2  # segments a neuron must be safe for to leave the sweep until a wake-up
PARK_AFTER = 2  # calm segment ends before a neuron is parked (an input soon after would unpark it)
CATCH_UP_MAX = 8  # segments a SAFE neuron is caught up one by one; longer stretches as one draw
LAZY_SPAN = 10.0  # time constants since SINCE up to which a SAFE neuron takes inputs without waking
# noise settings: membrane rms, threshold rms, jitter rms (s), spike latency (s), quiet margin,
# input latency (s)
M_RMS, TH_RMS, JIT_RMS, LATENCY, MARGIN, IN_LATENCY = range(6)
# readout settings
MADC_COL, MADC_SRC, MADC_PERIOD, MADC_OFFSET, MADC_GAIN, MADC_NOISE, MADC_BASE, CADC_NOISE = range(8)
# queue item kinds, processed in this order at equal times (before host events at that time)
SPIKE, RELEASE, ARRIVAL = 0.0, 1.0, 2.0
SLACK = 1e-9  # LSB added to a bound before it rules a crossing out (covers rounding)
