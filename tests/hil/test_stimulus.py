import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil import EVENT_DTYPE, ConfigError, Recording, Stimulus, chip


def test_from_trials_builds_csr_layout():
    s = Stimulus.from_trials([[(5, 1), (9, 2)], [], [(0, 3)]], durations=100)
    assert s.n_trials == 3 and s.n_events == 3
    assert list(s.offsets) == [0, 2, 2, 3]
    assert list(s.trial(0)["tick"]) == [5, 9]
    assert s.trial(1).size == 0
    assert list(s.trial_index()) == [0, 0, 2]


def test_unsorted_events_are_rejected_with_position():
    with pytest.raises(ConfigError, match="not sorted"):
        Stimulus.from_trials([[(9, 1), (5, 2)]], durations=100)


def test_events_past_trial_end_are_rejected():
    with pytest.raises(ConfigError, match="past the end of trial 1"):
        Stimulus.from_trials([[(5, 1)], [(100, 1)]], durations=100)


def test_duration_beyond_timer_is_rejected():
    with pytest.raises(ConfigError, match="32-bit timer"):
        Stimulus.from_trials([[]], durations=chip.TIMER_MAX_TICKS + 1)


def test_reserved_label_bits_are_rejected():
    with pytest.raises(ConfigError, match="reserved bits"):
        Stimulus.from_trials([[(1, 0x0800)]], durations=10)


def test_bad_labels_and_dtypes():
    with pytest.raises(ConfigError, match=r"labels = 70000 is out of range; allowed: 0..65535"):
        Stimulus.from_trials([[(1, 70000)]], durations=10)
    with pytest.raises(ConfigError, match="expected structured"):
        Stimulus(np.zeros(3), [0, 3], [10])
    with pytest.raises(ConfigError, match="finite integers"):
        Stimulus(np.zeros(0, EVENT_DTYPE), [0, 0], [np.nan])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 999), st.sampled_from([0, 1, 64, 0x4000, 0xC7FF])), max_size=20),
        min_size=1,
        max_size=8,
    )
)
def test_valid_trials_round_trip(trials):
    trials = [sorted(t) for t in trials]
    s = Stimulus.from_trials(trials, durations=1000)
    for i, t in enumerate(trials):
        got = s.trial(i)
        assert [(int(a), int(b)) for a, b in zip(got["tick"], got["label"], strict=True)] == t


def test_recording_validation():
    Recording(madc_neuron=3, madc_samples=100)
    with pytest.raises(ConfigError, match="one neuron per run"):
        Recording(madc_neuron=[3, 4], madc_samples=10)
    with pytest.raises(ConfigError, match="0..511"):
        Recording(madc_neuron=512, madc_samples=10)
    with pytest.raises(ConfigError, match="65535"):
        Recording(madc_neuron=1, madc_samples=70_000)
    with pytest.raises(ConfigError, match="1.7e-06"):
        Recording(cadc_period_s=1e-6)
    with pytest.raises(ConfigError, match="madc_source"):
        Recording(madc_neuron=1, madc_samples=5, madc_source="adaptation")
    with pytest.raises(ConfigError, match="madc_samples = 0"):
        Recording(madc_neuron=1)
