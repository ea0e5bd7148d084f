import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hil
from hil import ConfigError, InputPopulation, LIFPopulation, Network, Projection, ResourceError, chip, place


def yinyang_network():
    return Network.feedforward(5, [120], 3, duplication=5)


def random_weights(network, rng, spread=1.0):
    return {p.key: rng.normal(0, spread, network.weight_shape(p)) for p in network.projections}


def test_yinyang_places_on_one_chip():
    net = yinyang_network()
    p = place(net)
    assert p.neurons["hidden0"].size == 120 and p.neurons["output"].size == 3
    assert np.intersect1d(p.neurons["hidden0"], p.neurons["output"]).size == 0
    assert p.source_driver["input"].size == 25
    # sources feeding a common population use distinct drivers
    assert np.unique(p.source_driver["input"]).size == 25
    assert np.unique(p.source_driver["hidden0"]).size == 120
    # every source's (driver, synapse label) pair is unique
    pairs = {
        (int(d), int(lab) & 63)
        for name in p.source_driver
        for d, lab in zip(p.source_driver[name], p.source_label[name], strict=True)
    }
    assert len(pairs) == 25 + 120 + 3


def test_600_neurons_do_not_fit():
    with pytest.raises(ResourceError, match="needs 600 neuron circuits, the chip has 512 \\(short by 88\\)"):
        place(Network.feedforward(5, [595], 5))


def test_excluded_neurons_are_skipped_and_counted():
    net = Network.feedforward(5, [120], 3, duplication=5)
    p = place(net, exclude=[3, 97, 500])
    used = p.used_neurons()
    assert used.size == 123 and not set(used.tolist()) & {3, 97, 500} and used.max() == 124
    assert np.array_equal(p.neurons["output"], [122, 123, 124])
    with pytest.raises(ResourceError, match="the chip has 508 usable \\(4 excluded\\) \\(short by 1\\)"):
        place(Network.feedforward(5, [506], 3), exclude=[0, 1, 2, 3])
    with pytest.raises(ConfigError, match="exclude = \\[512\\]"):
        place(net, exclude=[512])


def test_fan_in_beyond_drivers_is_a_resource_error():
    net = Network([InputPopulation("x", 100, duplication=2)], [LIFPopulation("y", 4)], [Projection("x", "y")])
    with pytest.raises(ResourceError, match="fan-in of 200 sources.*short by 72"):
        place(net)


def test_network_validation():
    with pytest.raises(ConfigError, match="not a LIF population"):
        Network([InputPopulation("x", 2)], [LIFPopulation("y", 2)], [Projection("y", "x")])
    with pytest.raises(ConfigError, match="unique"):
        Network([InputPopulation("x", 2)], [LIFPopulation("x", 2)], [])
    with pytest.raises(ConfigError, match="integer >= 1"):
        LIFPopulation("y", 0)


def test_config_realises_signed_weights_on_the_right_rows():
    net = yinyang_network()
    p = place(net)
    rng = np.random.default_rng(1)
    w = random_weights(net, rng)
    cfg = p.config(w, scale=20.0).validate()
    hw = p.hardware_weights(w, 20.0)
    for proj in net.projections:
        drv = p.source_driver[proj.source]
        tgt = p.neurons[proj.target]
        h, c = chip.hemisphere_of(tgt), chip.column_of(tgt)
        exc = cfg.synapse_weights[h[None, :], 2 * drv[:, None], c[None, :]].astype(int)
        inh = cfg.synapse_weights[h[None, :], 2 * drv[:, None] + 1, c[None, :]].astype(int)
        np.testing.assert_array_equal(exc - inh, hw[proj.key])
        assert np.all(cfg.row_modes[h[0], 2 * drv] == chip.ROW_MODE_EXCITATORY)
        assert np.all(cfg.row_modes[h[0], 2 * drv + 1] == chip.ROW_MODE_INHIBITORY)
        labels = cfg.synapse_labels[h[None, :], 2 * drv[:, None], c[None, :]]
        np.testing.assert_array_equal(
            labels, np.broadcast_to((p.source_label[proj.source] & 63)[:, None], labels.shape)
        )


def test_routing_delivers_each_source_to_exactly_its_rows():
    """Follow every source's label through crossbar, bus, driver and synapse labels."""
    net = yinyang_network()
    p = place(net)
    cfg = p.config(random_weights(net, np.random.default_rng(2)), 20.0)
    for pop in net.inputs + net.populations:
        for k, label in enumerate(p.source_label[pop.name]):
            channel, rs, syn = (int(x) for x in chip.split_label(label))
            if pop.name in p.neurons:
                xin = int(p.neurons[pop.name][k]) // chip.NEURON_BLOCK_SIZE
            else:
                xin = chip.CROSSBAR_HOST_INPUT_OFFSET + channel
            reached = set()
            for out in range(chip.CROSSBAR_OUTPUTS):
                if (
                    cfg.crossbar_enable[xin, out]
                    and (int(label) & int(cfg.crossbar_mask[xin, out])) == cfg.crossbar_target[xin, out]
                ):
                    h, bus = divmod(out, chip.PADI_BUSES)
                    driver = rs * chip.PADI_BUSES + bus
                    for row in (2 * driver, 2 * driver + 1):
                        cols = np.flatnonzero((cfg.synapse_labels[h, row] == syn) & (cfg.synapse_weights[h, row] > 0))
                        reached |= {h * 256 + int(c) for c in cols}
            targets = set()
            for proj in net.projections:
                if proj.source == pop.name:
                    w = p.hardware_weights(random_weights(net, np.random.default_rng(2)), 20.0)[proj.key]
                    targets |= {int(n) for n in p.neurons[proj.target][w[k] != 0]}
            assert reached == targets, (pop.name, k)


def test_quantize_rounds_and_clips():
    np.testing.assert_array_equal(hil.quantize([0.49, -0.51, 10.0, -10.0], 10), [5, -5, 63, -63])
    with pytest.raises(ConfigError, match="NaN"):
        hil.quantize([np.nan], 1)
    with pytest.raises(ConfigError, match="scale"):
        hil.quantize([1.0], 0)


def test_weight_shape_errors_name_the_projection():
    p = place(yinyang_network())
    with pytest.raises(ConfigError, match=r"weights\['input->hidden0'\]: shape \(5, 120\), expected \(25, 120\)"):
        p.config({"input->hidden0": np.zeros((5, 120)), "hidden0->output": np.zeros((120, 3))}, 1.0)
    with pytest.raises(ConfigError, match="expected"):
        p.config({"input->hidden0": np.zeros((25, 120))}, 1.0)


def test_encode_validates_times():
    p = place(yinyang_network())
    with pytest.raises(ConfigError, match="NaN"):
        p.encode(np.full((2, 5), np.nan), 50e-6)
    with pytest.raises(ConfigError, match="past the trial end"):
        p.encode(np.full((2, 5), 60e-6), 50e-6)
    with pytest.raises(ConfigError, match=r"expected \(batch, 5\)"):
        p.encode(np.zeros((2, 4)), 50e-6)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(1, 3), st.data())
def test_encode_decode_round_trip_to_the_tick(batch, n_in, dup, data):
    """Encode input times, play them back as if each source's events were spikes, decode: same ticks."""
    net = Network([InputPopulation("x", n_in, dup)], [LIFPopulation("y", 2)], [Projection("x", "y")])
    p = place(net)
    ticks = np.array(data.draw(st.lists(st.integers(0, 6000), min_size=batch * n_in, max_size=batch * n_in))).reshape(
        batch, n_in
    )
    silent = np.array(data.draw(st.lists(st.booleans(), min_size=batch * n_in, max_size=batch * n_in))).reshape(
        batch, n_in
    )
    times = np.where(silent, np.inf, ticks * chip.TICK_S)
    stim = p.encode(times, 50e-6)
    assert stim.n_trials == batch and stim.n_events == dup * int((~silent).sum())
    # map each event back to its input via the label table
    lookup = {int(lab): k // dup for k, lab in enumerate(p.source_label["x"])}
    decoded = np.full((batch, n_in), np.inf)
    for trial in range(batch):
        for ev in stim.trial(trial):
            decoded[trial, lookup[int(ev["label"])]] = ev["tick"] * chip.TICK_S
    np.testing.assert_array_equal(np.rint(decoded / chip.TICK_S), np.rint(times / chip.TICK_S))


def test_decode_returns_each_population_in_order():
    from hil import SPIKE_DTYPE, Measurement

    p = place(yinyang_network())
    out = p.neurons["output"]
    spikes = np.zeros(2, SPIKE_DTYPE)
    spikes[0] = (0, 100, out[2])
    spikes[1] = (1, 50, p.neurons["hidden0"][7])
    decoded = p.decode(Measurement(spikes, n_trials=2))
    assert decoded["output"].shape == (2, 3, 1)
    assert decoded["output"][0, 2, 0] == pytest.approx(100 * chip.TICK_S)
    assert np.isinf(decoded["output"][1]).all()
    assert decoded["hidden0"][1, 7, 0] == pytest.approx(50 * chip.TICK_S)


def test_string_and_non_numeric_arguments_are_config_errors():
    net = hil.Network.feedforward(2, [3], 1)
    p = hil.place(net)
    w = {q.key: np.ones(net.weight_shape(q)) for q in net.projections}
    cases = [
        (lambda: p.encode("abc", 1e-5), r"input_times\['input'\]: dtype <U3"),
        (lambda: p.encode([["a", "b"]], 1e-5), r"input_times\['input'\]: dtype <U1"),
        (lambda: p.encode(np.zeros((1, 2)), "x"), "duration_s = 'x': expected a real number"),
        (lambda: p.encode(np.zeros((1, 2)), True), "duration_s = True: expected a real number"),
        (lambda: p.encode([[1e-6], [1e-6, 2e-6]], 1e-5), "cannot be read as an array"),
        (lambda: p.config(w, "x"), "scale = 'x': expected a real number"),
        (lambda: p.config(w, {"input->hidden0": 1.0}), r"scale: got projections \['input->hidden0'\]"),
        (lambda: p.config(w, {k: "s" for k in w}), r"scale\['input->hidden0'\] = 's'"),
        (lambda: p.config({k: "a" for k in w}, 1.0), r"weights\['input->hidden0'\]: dtype <U1"),
        (lambda: p.config("abc", 1.0), "weights = str; expected a mapping"),
        (lambda: p.config(w, 1.0, base="cfg"), "base = str; expected a hil.ChipConfig"),
    ]
    for call, message in cases:
        with pytest.raises(hil.ConfigError, match=message):
            call()
    torch = pytest.importorskip("torch")
    assert p.encode(torch.full((2, 2), 1e-6), 1e-5).n_events == 4  # tensors and numpy scalars still work
    assert p.config(w, np.float32(3.0)).synapse_weights.sum() == 3 * (2 * 3 + 3 * 1)
