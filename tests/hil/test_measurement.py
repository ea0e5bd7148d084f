import numpy as np

from hil import SPIKE_DTYPE, Health, Measurement, chip


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
