import numpy as np

from hil import SPIKE_DTYPE, Health, Measurement, chip
from hil.measurement import NO_SPIKE_TICK


def _spikes(rows):
    arr = np.zeros(len(rows), SPIKE_DTYPE)
    for i, (trial, tick, neuron) in enumerate(rows):
        arr[i] = (trial, tick, neuron)
    return arr


def test_dense_spike_times():
    m = Measurement(_spikes([(0, 10, 5), (0, 12, 7), (0, 20, 5), (1, 3, 7)]), n_trials=3)
    t = m.spike_times([5, 7], max_spikes=2)
    assert t.shape == (3, 2, 2)
    np.testing.assert_array_equal(t[0, 0], np.array([10, 20]) * chip.TICK_S)
    np.testing.assert_array_equal(t[0, 1], [12 * chip.TICK_S, np.inf])
    np.testing.assert_array_equal(t[1, 1], [3 * chip.TICK_S, np.inf])
    assert np.all(np.isinf(t[2]))
    first = m.first_spike_times([7, 5])
    np.testing.assert_array_equal(first[0], [12 * chip.TICK_S, 10 * chip.TICK_S])
    assert m.count_beyond([5, 7], max_spikes=1) == 1
    assert m.count_beyond([7], max_spikes=1) == 0
    assert m.first_spike_times().shape == (3, chip.N_NEURONS)


def test_spikes_of_trial_and_health_sum():
    m = Measurement(_spikes([(0, 1, 1), (2, 4, 4), (2, 5, 5)]), n_trials=3)
    assert list(m.spikes_of_trial(2)["neuron"]) == [4, 5]
    assert m.spikes_of_trial(1).size == 0
    assert Health(retries=1, bytes_sent=10) + Health(retries=2, link_errors=1) == Health(
        retries=3, link_errors=1, bytes_sent=10
    )


def _reference_times(spikes, n_trials, neurons, max_spikes):
    """Spike by spike: each (trial, neuron)'s ticks in ascending order, the first max_spikes kept."""
    out = np.full((n_trials, len(neurons), max_spikes), np.inf)
    beyond = 0
    for j, n in enumerate(neurons):
        for t in range(n_trials):
            ticks = sorted(int(s["tick"]) for s in spikes if s["trial"] == t and s["neuron"] == n)
            out[t, j, : min(len(ticks), max_spikes)] = np.array(ticks[:max_spikes]) * chip.TICK_S
            beyond += max(len(ticks) - max_spikes, 0)
    return out, beyond


def test_dense_spike_times_match_a_spike_by_spike_reference():
    rng = np.random.default_rng(3)
    n_trials, n = 5, 400
    rows = sorted(zip(rng.integers(0, n_trials, n), rng.integers(0, 3000, n), rng.integers(0, 12, n), strict=True))
    in_order = Measurement(_spikes(rows), n_trials=n_trials)
    shuffled = Measurement(_spikes([rows[i] for i in rng.permutation(n)]), n_trials=n_trials)  # not as documented
    for m in (in_order, shuffled):
        for neurons in ([0, 3, 5, 11], [7], [11, 2, 9, 4, 1], list(range(12))):
            for max_spikes in (1, 2, 7):
                times, beyond = m.spike_times_and_beyond(neurons, max_spikes)
                ref, ref_beyond = _reference_times(m.spikes, n_trials, neurons, max_spikes)
                np.testing.assert_array_equal(times, ref)
                assert beyond == ref_beyond == m.count_beyond(neurons, max_spikes)
                np.testing.assert_array_equal(m.spike_times(neurons, max_spikes), ref)
                ticks = m.spike_ticks(neurons, max_spikes)
                np.testing.assert_array_equal(np.where(ticks == NO_SPIKE_TICK, np.inf, ticks * chip.TICK_S), ref)
    assert m.spike_times_and_beyond([], 2)[0].shape == (n_trials, 0, 2)
    empty = Measurement(_spikes([]), n_trials=2)
    assert np.all(np.isinf(empty.spike_times([1, 2], 3))) and empty.count_beyond([1], 1) == 0
