"""Layouts shared by the mock's numba kernel: the columns of its parameter and state tables,
the settings arrays, and the kinds of queue items."""

SEGMENT_S = 384e-9  # membrane-noise hold; the unit of the kernel's outer loop

# columns of the per-neuron parameter table P (N, N_ROWS); rates are inverse time constants,
# CE/CI the closed form's current coefficients, *_H factors over a whole segment, KMAX_H and
# KPEAK the largest PSP kernel value within a segment and overall
V_REST, V_RESET, V_THR, RATE_M, RATE_E, RATE_I, CE, CI, EM_H, FE_H, FI_H, KMAX_H, KPEAK, T_REF, NOISE_I = range(15)
N_ROWS = 15
# columns of the per-neuron state table S (N, N_STATE): values at the segment start (V, E, I);
# coefficients (A, EH, IH) and drive (VINF) of the closed form in the segment; a bound of V over
# the rest of the segment (UB); end of the reset hold (HOLD, s); threshold; queue stamp; a spike
# is queued (PEND, 0/1); factors to the segment end (EM, FE, FI); spikes so far (NSPK) and inside
# the trial (COUNT); while parked the time V, E, I refer to (PARK, -1 in the sweep); kept in
# the sweep (PIN, 0/1)
V, E, I, A, EH, IH, VINF, UB, HOLD, THETA, STAMP, PEND, EM, FE, FI, NSPK, COUNT, PARK, PIN = range(19)
N_STATE = 19
# noise settings: membrane rms, threshold rms, jitter rms (s), spike latency (s), quiet margin
M_RMS, TH_RMS, JIT_RMS, LATENCY, MARGIN = range(5)
# readout settings
MADC_COL, MADC_SRC, MADC_PERIOD, MADC_OFFSET, MADC_GAIN, MADC_NOISE, MADC_BASE, CADC_NOISE = range(8)
# queue item kinds, processed in this order at equal times (before host events at that time)
SPIKE, RELEASE, ARRIVAL = 0.0, 1.0, 2.0
SLACK = 1e-9  # LSB added to a bound before it rules a crossing out (covers rounding)
