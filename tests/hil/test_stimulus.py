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


@pytest.mark.parametrize(
    "trials, durations, message",
    [
        ([[(1, 1.7)]], 10, r"labels = \[1.7\]; allowed: finite integers"),  # refused, not truncated to 1
        ([[(1.5, 1)]], 10, r"ticks = \[1.5\]; allowed: finite integers"),
        ([[(1, "a")]], 10, "ticks: dtype <U"),
        ([[("a", "b")]], 10, "ticks: dtype <U"),
        ("abc", 10, "trials = 'abc'; expected a list"),
        (5, 10, "trials = 5; expected a list"),
        ([[(1, 2)], [(1,)]], 10, r"trial 1: shape \(1, 1\)"),
        ([[(1, 2)], [(1, 2, 3), (4,)]], 10, "trial 1: cannot be read as an array"),
        ([[(1, 2)]], "x", "durations: dtype <U1, expected integers"),
        ([[(1, 2)]], 10.5, r"durations = \[10.5\]; allowed: finite integers"),
        ([[(1, 2)]], [10, 20], r"durations: shape \(2,\); expected one duration or one per trial \(1\)"),
        ([[(1, -2)]], 10, "labels = -2 is negative"),
    ],
)
def test_from_trials_refuses_strings_floats_and_ragged_input_with_config_error(trials, durations, message):
    with pytest.raises(ConfigError, match=message):
        Stimulus.from_trials(trials, durations)


def test_integral_floats_are_accepted_as_ticks_and_labels():
    s = Stimulus.from_trials([np.array([[5.0, 65.0]])], 100.0)
    assert s.events["label"][0] == 65 and s.events["tick"][0] == 5 and s.durations[0] == 100


def test_recording_rejects_non_numbers_and_counts_cadc_readings():
    with pytest.raises(ConfigError, match="cadc_period_s = 'x': expected a number"):
        Recording(cadc_period_s="x")
    rec = Recording(cadc_period_s=1.7e-6)  # 212.5 ticks -> every 213 ticks
    assert rec.cadc_period_ticks == 213
    assert rec.cadc_samples([1, 213, 214, 426, 2**32 - 1]).tolist() == [1, 1, 2, 2, (2**32 - 2) // 213 + 1]
    assert Recording().cadc_samples([100, 200]).tolist() == [0, 0]
    assert Recording(cadc_period_s=1e300).cadc_samples([2**32 - 1]).tolist() == [1]
