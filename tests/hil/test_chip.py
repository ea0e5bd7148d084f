import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil import chip


def test_geometry_is_consistent():
    assert chip.N_NEURONS == 512
    assert chip.N_NEURONS == chip.N_QUADRANTS * chip.NEURONS_PER_QUADRANT
    assert chip.N_SYNAPSES == 131_072
    assert chip.SYNAPSE_DRIVERS * chip.ROWS_PER_DRIVER == chip.SYNAPSE_ROWS
    assert chip.PADI_BUSES * chip.DRIVERS_PER_BUS == chip.SYNAPSE_DRIVERS
    assert chip.WEIGHT_MAX == 63 and chip.SYNAPSE_LABEL_MAX == 63 and chip.CAPMEM_MAX == 1022
    assert chip.TICK_S == pytest.approx(8e-9)
    assert chip.MADC_SAMPLE_PERIOD_S == pytest.approx(34e-9, rel=0.02)


def test_neuron_geometry_helpers():
    n = np.array([0, 127, 128, 255, 256, 511])
    assert list(chip.hemisphere_of(n)) == [0, 0, 0, 0, 1, 1]
    assert list(chip.quadrant_of(n)) == [0, 0, 1, 1, 2, 3]
    assert list(chip.column_of(n)) == [0, 127, 128, 255, 0, 255]


@given(st.integers(0, chip.TIMER_MAX_TICKS))
def test_ticks_round_trip(ticks):
    assert chip.seconds_to_ticks(chip.ticks_to_seconds(ticks)) == ticks


@pytest.mark.parametrize("bad", [-1e-9, np.nan, np.inf])
def test_seconds_to_ticks_rejects_bad_times(bad):
    with pytest.raises(ValueError, match="finite"):
        chip.seconds_to_ticks([0.0, bad])


@given(st.integers(0, 3), st.integers(0, 31), st.integers(0, 63))
def test_label_round_trip(channel, row_select, synapse):
    label = chip.make_label(row_select, synapse, channel)
    assert int(label) & chip.LABEL_RESERVED_MASK == 0
    assert tuple(int(x) for x in chip.split_label(label)) == (channel, row_select, synapse)


def test_refractory_range_is_reachable():
    shortest = chip.refractory_seconds(np.arange(1, 256), 0)
    longest = chip.refractory_seconds(255, chip.REFRACTORY_CLOCK_SCALE_MAX)
    assert shortest.min() <= chip.REFRACTORY_RANGE[0]
    assert longest >= chip.REFRACTORY_RANGE[1]
