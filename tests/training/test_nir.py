"""training.nir: export, file round trip, import, metadata and typed errors."""

from __future__ import annotations

import os

import nir
import numpy as np
import pytest
import torch

from hil.errors import ConfigError
from training.lif import LIFParameters, spike_times
from training.nir import Layer, export_network, import_network, read, write

T_MAX = 60e-6
FIELDS = ("tau_mem", "tau_syn", "v_th", "v_leak", "v_reset", "t_refrac")


def per_neuron_params(rng: np.random.Generator, n: int, *, t_refrac: bool) -> LIFParameters:
    """Calibrated-looking per-neuron parameters: every field differs between neurons."""
    v_leak = rng.normal(0.0, 0.1, n)
    return LIFParameters(
        tau_mem=torch.as_tensor(rng.uniform(8e-6, 15e-6, n)),
        tau_syn=torch.as_tensor(rng.uniform(4e-6, 8e-6, n)),
        v_th=torch.as_tensor(v_leak + rng.uniform(0.9, 1.1, n)),
        v_leak=torch.as_tensor(v_leak),
        v_reset=torch.as_tensor(v_leak - rng.uniform(0.0, 0.2, n)),
        t_refrac=torch.as_tensor(rng.uniform(0.5e-6, 2e-6, n) if t_refrac else np.zeros(n)),
    )


def make_layers(seed: int = 0) -> list[Layer]:
    """4 inputs -> 6 hidden (one spike, refractory) -> 3 outputs (up to 3 spikes, no refractory)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    return [
        Layer("hidden", rng.normal(1.2, 1.0, (4, 6)), per_neuron_params(rng, 6, t_refrac=True), max_spikes=1),
        Layer("out", rng.normal(0.8, 0.8, (6, 3)), per_neuron_params(rng, 3, t_refrac=False), max_spikes=3),
    ]


def make_inputs(seed: int = 1, batch: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 4, generator=g, dtype=torch.float64) * 20e-6


def predict_times(layers: list[Layer], inputs: torch.Tensor) -> list[torch.Tensor]:
    """Spike times (batch, n, max_spikes) of every layer under the exact model."""
    out, x = [], inputs
    for layer in layers:
        x = spike_times(x, torch.as_tensor(layer.weights), layer.params, t_max=T_MAX, max_spikes=layer.max_spikes).times
        out.append(x)
    return out


METADATA = {
    "chip_id": "mock-7",
    "calibration_id": "cal-3f2a",
    "weight_bits": 6,
    "weight_scale": {"hidden": 21.5, "out": 18.25},
    "note": "exported by a test",
}


def export(layers=None, **kwargs):
    kwargs = {"input_size": 4, "metadata": METADATA, "t_max": T_MAX, **kwargs}
    return export_network(make_layers() if layers is None else layers, **kwargs)


def test_round_trip_through_a_file_gives_identical_weights_parameters_and_predictions(tmp_path):
    layers = make_layers()
    path = write(tmp_path / "net.nir", export(layers))
    net = import_network(read(path))
    assert net.input_size == 4 and net.t_max == T_MAX
    assert [layer.name for layer in net.layers] == ["hidden", "out"]
    assert [layer.max_spikes for layer in net.layers] == [1, 3]
    for mine, back in zip(layers, net.layers, strict=True):
        assert np.array_equal(mine.weights, back.weights)
        for field in FIELDS:
            assert torch.equal(
                torch.as_tensor(getattr(mine.params, field)), torch.as_tensor(getattr(back.params, field))
            ), field
    inputs = make_inputs()
    before, after = predict_times(layers, inputs), predict_times(net.layers, inputs)
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)
    assert torch.isfinite(before[-1]).any(), "the test network must produce output spikes"


def test_exported_file_opens_with_nir_read_and_holds_the_documented_mapping(tmp_path):
    layers = make_layers()
    path = write(tmp_path / "net.nir", export(layers))
    assert os.stat(path).st_mode & 0o777 == 0o644
    graph = nir.read(path)
    assert isinstance(graph.nodes["input"], nir.Input) and isinstance(graph.nodes["output"], nir.Output)
    hidden, weights = graph.nodes["hidden"], graph.nodes["hidden.weights"]
    assert isinstance(hidden, nir.CubaLIF) and isinstance(weights, nir.Linear)
    assert np.array_equal(weights.weight, layers[0].weights.T)  # NIR weights are (out, in)
    params = layers[0].params
    assert np.array_equal(hidden.tau_mem, np.asarray(params.tau_mem))
    assert np.array_equal(hidden.tau_syn, np.asarray(params.tau_syn))
    assert np.array_equal(hidden.v_threshold, np.asarray(params.v_th))
    assert np.array_equal(hidden.v_leak, np.asarray(params.v_leak))
    assert np.array_equal(hidden.v_reset, np.asarray(params.v_reset))
    assert np.array_equal(hidden.r, np.ones(6)) and np.array_equal(hidden.w_in, np.ones(6))
    assert np.array_equal(hidden.metadata["t_refrac"], np.asarray(params.t_refrac))
    assert ("hidden", "hidden.silence") in graph.edges and ("hidden.feedback", "hidden") in graph.edges
    silence = graph.nodes["hidden.silence"].weight
    assert np.array_equal(silence, np.diag(np.diag(silence))) and (np.diag(silence) < 0).all()
    assert "out.silence" not in graph.nodes  # three spikes kept: no spike limit in the graph
    assert graph.metadata["event_convention"] == "current_jump"
    assert "jump by w_in * w" in graph.metadata["event_meaning"]
    assert graph.metadata["time_unit"] == "s" and float(graph.metadata["t_max"]) == T_MAX


def test_metadata_survives_the_file(tmp_path):
    net = import_network(read(write(tmp_path / "net.nir", export())))
    for key, value in METADATA.items():
        assert net.metadata[key] == value, key
    assert net.metadata["format"] == "bss2-hil.nir" and net.metadata["schema_version"] == 1


def test_max_spikes_comes_back_from_the_loop_and_from_metadata():
    graph = export()
    del graph.nodes["hidden"].metadata["max_spikes"]  # the loop alone says "one spike"
    del graph.nodes["out"].metadata["max_spikes"]
    with pytest.raises(ConfigError, match=r"'out'.*max_spikes"):
        import_network(graph)
    net = import_network(graph, max_spikes=5)
    assert [layer.max_spikes for layer in net.layers] == [1, 5]


def test_dirac_convention_folds_tau_syn_and_r_into_the_weights():
    layers = make_layers()
    graph = export(layers)
    graph.metadata["event_convention"] = "dirac"
    for layer in layers:
        cell = graph.nodes[layer.name]
        cell.w_in = cell.tau_syn * 0.5  # a Dirac pulse of area w jumps the current by w_in w / tau_syn
        cell.r = np.full_like(cell.r, 2.0)
    net = import_network(graph)
    for mine, back in zip(layers, net.layers, strict=True):
        np.testing.assert_allclose(back.weights, mine.weights, rtol=1e-15)


def test_refractory_time_with_several_spikes_is_logged_as_not_representable(caplog):
    layers = make_layers()
    layers[1] = Layer("out", layers[1].weights, LIFParameters(tau_mem=1e-5, tau_syn=5e-6, t_refrac=1e-6), max_spikes=2)
    with caplog.at_level("WARNING", logger="training.nir.export"):
        export(layers)
    assert "'out'" in caplog.text and "refractory" in caplog.text


# ---- errors on export -------------------------------------------------------------------------


def test_export_rejects_bad_chains_and_arguments():
    layers = make_layers()
    with pytest.raises(ConfigError, match=r"layers\[0\].*\(5, n_out\)"):
        export(layers, input_size=5)
    with pytest.raises(ConfigError, match=r"layers\[1\].name = 'hidden'"):
        export([layers[0], Layer("hidden", np.ones((6, 3)), layers[1].params)])
    with pytest.raises(ConfigError, match="t_max"):
        export(t_max=float("nan"))
    with pytest.raises(ConfigError, match="input_max_spikes"):
        export(input_max_spikes=0)
    with pytest.raises(ConfigError, match=r"metadata\['chip_id'\] = None"):
        export(metadata={"chip_id": None})
    with pytest.raises(ConfigError, match="written by the export"):
        export(metadata={"t_max": 1.0})
    with pytest.raises(ConfigError, match="allowed: <= 1e"):
        export(t_max=1.0)  # silencing for 1 s at tau ~ 10 us would need weights ~ exp(1e5)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "output"}, "Layer.name = 'output'"),
        ({"name": "a.b"}, "Layer.name = 'a.b'"),
        ({"weights": np.ones(3)}, r"Layer.weights has shape \(3,\)"),
        ({"weights": np.full((2, 3), np.inf)}, "non-finite"),
        ({"max_spikes": 0}, "max_spikes = 0"),
        ({"params": LIFParameters(tau_mem=torch.ones(4) * 1e-5, tau_syn=5e-6)}, "4 entries"),
    ],
)
def test_layer_validates_its_fields(kwargs, match):
    fields = {"name": "h", "weights": np.ones((2, 3)), "params": LIFParameters(tau_mem=1e-5, tau_syn=5e-6)}
    with pytest.raises(ConfigError, match=match):
        Layer(**{**fields, **kwargs})


# ---- errors on import -------------------------------------------------------------------------


def replace(graph: nir.NIRGraph, key: str, node) -> nir.NIRGraph:
    nodes = dict(graph.nodes)
    nodes[key] = node
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=graph.metadata, type_check=False)


def edit_cell(graph: nir.NIRGraph, key: str, **fields) -> nir.NIRGraph:
    cell = graph.nodes[key]
    values = {f: getattr(cell, f) for f in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")}
    return replace(graph, key, nir.CubaLIF(**{**values, **fields}, metadata=cell.metadata))


def test_unsupported_node_types_are_named():
    graph = export()
    lif = nir.LIF(tau=np.ones(6), r=np.ones(6), v_leak=np.zeros(6), v_threshold=np.ones(6))
    with pytest.raises(ConfigError, match=r"node 'hidden' has type LIF"):
        import_network(replace(graph, "hidden", lif))
    with pytest.raises(ConfigError, match=r"node 'hidden.weights' has type Delay"):
        import_network(replace(graph, "hidden.weights", nir.Delay(delay=np.ones(4))))


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"tau_mem": -np.ones(6)}, r"'hidden' \(CubaLIF\): tau_mem"),
        ({"w_in": np.zeros(6)}, r"'hidden' \(CubaLIF\): w_in"),
        ({"v_reset": np.full(6, 5.0)}, r"'hidden' \(CubaLIF\).*v_reset"),
        ({"v_leak": np.full(6, np.nan)}, r"'hidden' \(CubaLIF\): v_leak is not finite"),
    ],
)
def test_unsupported_cell_parameters_are_named(fields, match):
    with pytest.raises(ConfigError, match=match):
        import_network(edit_cell(export(), "hidden", **fields))


def test_cell_size_must_match_its_weights():
    graph = export()
    cell = graph.nodes["hidden"]
    fields = ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in")
    short = nir.CubaLIF(**{f: getattr(cell, f)[:5] for f in fields})
    with pytest.raises(ConfigError, match=r"'hidden' \(CubaLIF\): tau_syn has shape \(5,\); allowed: \(\) or \(6,\)"):
        import_network(replace(graph, "hidden", short))


def test_affine_with_a_bias_is_rejected_and_without_one_accepted():
    graph = export()
    weight = graph.nodes["out.weights"].weight
    biased = replace(graph, "out.weights", nir.Affine(weight=weight, bias=np.full(3, 0.1)))
    with pytest.raises(ConfigError, match=r"'out.weights' \(Affine\): bias"):
        import_network(biased)
    plain = import_network(replace(graph, "out.weights", nir.Affine(weight=weight, bias=np.zeros(3))))
    assert np.array_equal(plain.layers[1].weights, weight.T)


def test_recurrent_weights_other_than_a_sufficient_self_inhibition_are_rejected():
    graph = export()
    silence = graph.nodes["hidden.silence"].weight
    mixing = silence + 0.1 * np.ones_like(silence)
    with pytest.raises(ConfigError, match=r"'hidden.silence'.*not diagonal and negative"):
        import_network(replace(graph, "hidden.silence", nir.Linear(weight=mixing)))
    with pytest.raises(ConfigError, match=r"'hidden.feedback'.*weight .*inhibits neuron 0"):
        import_network(replace(graph, "hidden.silence", nir.Linear(weight=silence / 4)))  # export writes 2x the bound
    no_t_max = {k: v for k, v in graph.metadata.items() if k != "t_max"}
    with pytest.raises(ConfigError, match=r"'hidden' has a feedback loop .* no t_max"):
        import_network(nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata=no_t_max, type_check=False))


def test_graphs_off_the_chain_are_rejected():
    graph = export()
    branch = nir.NIRGraph(
        nodes={**graph.nodes, "extra": nir.Linear(weight=np.ones((2, 6)))},
        edges=[*graph.edges, ("hidden", "extra")],
        metadata=graph.metadata,
        type_check=False,
    )
    with pytest.raises(ConfigError, match=r"'hidden' feeds \['out.weights', 'extra'\]"):
        import_network(branch)
    lonely = nir.NIRGraph(
        nodes={**graph.nodes, "spare": nir.Linear(weight=np.ones((2, 2)))},
        edges=list(graph.edges),
        metadata=graph.metadata,
        type_check=False,
    )
    with pytest.raises(ConfigError, match=r"\['spare'\] are not on the chain"):
        import_network(lonely)
    with pytest.raises(ConfigError, match="nir.NIRGraph"):
        import_network(graph.nodes["hidden"])


def test_event_convention_must_be_known():
    graph = export()
    unstated = {k: v for k, v in graph.metadata.items() if k != "event_convention"}
    bare = nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata=unstated, type_check=False)
    with pytest.raises(ConfigError, match="event convention = None"):
        import_network(bare)
    assert import_network(bare, event_convention="current_jump").layers[0].max_spikes == 1
    with pytest.raises(ConfigError, match="contradicts"):
        import_network(graph, event_convention="dirac")


def test_read_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read(tmp_path / "missing.nir")
    junk = tmp_path / "junk.nir"
    junk.write_text("not hdf5")
    with pytest.raises(ConfigError, match="not a readable NIR graph"):
        read(junk)
