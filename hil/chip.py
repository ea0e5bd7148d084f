"""Facts of the BrainScaleS-2 (HICANN-X) chip as named constants, and unit conversions.

Every validation in the project uses these names. Potentials are in CADC LSB (the
calibration's unit), times in seconds unless a name says ``_TICKS``.
"""

from __future__ import annotations

import numpy as np

# --- geometry -----------------------------------------------------------------------
N_HEMISPHERES = 2
N_QUADRANTS = 4
NEURONS_PER_HEMISPHERE = 256
NEURONS_PER_QUADRANT = 128
N_NEURONS = N_HEMISPHERES * NEURONS_PER_HEMISPHERE  # 512
NEURON_BLOCK_SIZE = 64  # neurons sharing one event output into the crossbar
N_NEURON_BLOCKS = N_NEURONS // NEURON_BLOCK_SIZE  # 8

SYNAPSE_ROWS = 256  # per hemisphere (synapse array)
SYNAPSE_COLUMNS = 256  # per hemisphere, one per neuron column
N_SYNAPSES = N_HEMISPHERES * SYNAPSE_ROWS * SYNAPSE_COLUMNS  # 131,072
SYNAPSE_DRIVERS = 128  # per hemisphere
ROWS_PER_DRIVER = 2
PADI_BUSES = 4  # per hemisphere
DRIVERS_PER_BUS = SYNAPSE_DRIVERS // PADI_BUSES  # 32; driver d sits on bus d % 4

# --- synapses and events ----------------------------------------------------------------
WEIGHT_BITS = 6
WEIGHT_MAX = 2**WEIGHT_BITS - 1  # 63
SYNAPSE_LABEL_BITS = 6
SYNAPSE_LABEL_MAX = 2**SYNAPSE_LABEL_BITS - 1  # 63
ROW_MODE_DISABLED, ROW_MODE_EXCITATORY, ROW_MODE_INHIBITORY = 0, 1, 2
ROW_MODES = ("disabled", "excitatory", "inhibitory")

EVENT_LABEL_BITS = 16
EVENT_LABEL_MAX = 2**EVENT_LABEL_BITS - 1
LABEL_CHANNEL_SHIFT = 14  # bits 15-14: input channel / crossbar routing bits
LABEL_CHANNEL_MASK = 0xC000
LABEL_RESERVED_MASK = 0x3800  # bits 13-11: must be zero
LABEL_ROW_SELECT_SHIFT = 6  # bits 10-6: driver on the bus (row-select)
LABEL_ROW_SELECT_MASK = 0x07C0
LABEL_SYNAPSE_MASK = 0x003F  # bits 5-0: synapse label
N_HOST_CHANNELS = 4

# Crossbar: inputs 0..7 are the neuron blocks, 8..11 the host channels;
# outputs 0..7 are the PADI buses (hemisphere * 4 + bus).
CROSSBAR_INPUTS = N_NEURON_BLOCKS + N_HOST_CHANNELS  # 12
CROSSBAR_OUTPUTS = N_HEMISPHERES * PADI_BUSES  # 8
CROSSBAR_HOST_INPUT_OFFSET = N_NEURON_BLOCKS

# --- analog parameters (CapMem) ---------------------------------------------------------
CAPMEM_BITS = 10
CAPMEM_MAX = 1022  # 1023 is reserved
NEURON_CAPMEM_PARAMETERS = (
    "v_leak",
    "v_reset",
    "v_threshold",
    "i_bias_leak",
    "i_bias_synin_exc_tau",
    "i_bias_synin_inh_tau",
    "i_bias_synin_exc_gm",
    "i_bias_synin_inh_gm",
    "i_mem_offset",
)
QUADRANT_CAPMEM_PARAMETERS = ("syn_i_bias_dac",)

# --- refractory counter -------------------------------------------------------------------
REFRACTORY_COUNTER_MAX = 255
REFRACTORY_CLOCK_SCALE_MAX = 7
REFRACTORY_CLOCK_BASE_HZ = 125e6  # period per count = 2**scale / base

# --- time -----------------------------------------------------------------------------
FPGA_CLOCK_HZ = 125e6
TICK_S = 1.0 / FPGA_CLOCK_HZ  # 8 ns
TIMER_MAX_TICKS = 2**32 - 1  # 32-bit experiment timer
ACCELERATION = 1000.0  # hardware time is 1000x faster than biology

# --- readout ----------------------------------------------------------------------------
MADC_BITS = 10
MADC_MAX = 2**MADC_BITS - 1
MADC_SAMPLE_RATE_HZ = 29.4e6
MADC_SAMPLE_PERIOD_S = 1.0 / MADC_SAMPLE_RATE_HZ  # about 34 ns
MADC_MAX_SAMPLES = 65_535
MADC_SOURCES = ("membrane", "synin_exc", "synin_inh")

CADC_BITS = 8
CADC_MAX = 2**CADC_BITS - 1
CADC_MIN_PERIOD_S = 1.7e-6
SPIKE_COUNTER_BITS = 8
SPIKE_COUNTER_MAX = 2**SPIKE_COUNTER_BITS - 1

# --- feasible calibration ranges (calix) ------------------------------------------------------
V_LEAK_RANGE = (50.0, 160.0)  # CADC LSB
V_RESET_RANGE = (50.0, 160.0)
V_THRESHOLD_RANGE = (50.0, 220.0)
TAU_MEM_RANGE = (0.5e-6, 60e-6)  # s
TAU_SYN_RANGE = (0.3e-6, 30e-6)
REFRACTORY_RANGE = (40e-9, 32e-6)


def seconds_to_ticks(seconds) -> np.ndarray:
    """Seconds -> nearest 8 ns FPGA tick (uint64). Raises ``ValueError`` for negative or non-finite input."""
    arr = np.asarray(seconds, dtype=np.float64)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(
            f"seconds_to_ticks: times must be finite and >= 0, got {arr[~np.isfinite(arr) | (arr < 0)][:3]}"
        )
    return np.rint(arr / TICK_S).astype(np.uint64)


def ticks_to_seconds(ticks) -> np.ndarray:
    """8 ns FPGA ticks -> seconds (float64)."""
    return np.asarray(ticks, dtype=np.float64) * TICK_S


def refractory_seconds(counter, clock_scale) -> np.ndarray:
    """Refractory time in seconds of a counter value (0..255) at a clock scale (0..7)."""
    return np.asarray(counter, dtype=np.float64) * (2.0 ** np.asarray(clock_scale)) / REFRACTORY_CLOCK_BASE_HZ


def hemisphere_of(neuron) -> np.ndarray:
    """Hemisphere (0, 1) of neuron circuit indices."""
    return np.asarray(neuron) // NEURONS_PER_HEMISPHERE


def quadrant_of(neuron) -> np.ndarray:
    """Quadrant (0..3) of neuron circuit indices; quadrants 0, 1 form hemisphere 0."""
    return np.asarray(neuron) // NEURONS_PER_QUADRANT


def column_of(neuron) -> np.ndarray:
    """Synapse column (0..255) of neuron circuit indices within their hemisphere."""
    return np.asarray(neuron) % NEURONS_PER_HEMISPHERE


def make_label(row_select, synapse_label, channel=0) -> np.ndarray:
    """Compose 16-bit event labels from channel (0..3), row-select (0..31) and synapse label (0..63)."""
    return (
        (np.asarray(channel, dtype=np.uint32) << LABEL_CHANNEL_SHIFT)
        | (np.asarray(row_select, dtype=np.uint32) << LABEL_ROW_SELECT_SHIFT)
        | np.asarray(synapse_label, dtype=np.uint32)
    ).astype(np.uint16)


def split_label(label):
    """16-bit labels -> (channel, row_select, synapse_label) arrays."""
    lab = np.asarray(label, dtype=np.uint32)
    return (
        (lab & LABEL_CHANNEL_MASK) >> LABEL_CHANNEL_SHIFT,
        (lab & LABEL_ROW_SELECT_MASK) >> LABEL_ROW_SELECT_SHIFT,
        lab & LABEL_SYNAPSE_MASK,
    )
