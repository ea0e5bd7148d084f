"""NIR and training runs: network.nir at the end of a run, round trip from a run directory,
a run started from a graph, and a graph deployed on a chip."""

from __future__ import annotations

import json

import nir
import numpy as np
import pytest
import torch

import hil
from hil.errors import ConfigError
from training import evaluate_run, load_run
from training.cli import evaluate_main
from training.config import TrainerConfig
from training.datasets import builtin
from training.lif import LIFParameters, spike_times
from training.nir import Layer, export_network, import_network, read, write
from training.nir.deploy import as_trainer_network, evaluate_graph
from training.nir.runs import export_run
from training.trainer import Trainer

from .test_nir_consumer import first_spike, simulate, without_silencing

SOFTWARE = dict(  # a small Yin-Yang network (5 x 5 inputs), trained in software for a few epochs
    device="software",
    train_size=1500,
    test_size=300,
    n_hidden=60,
    epochs=4,
    lr=5e-3,
    batch_size=16,
    ema_decay=0.9,
)
CHIP = dict(  # a small Yin-Yang network trained on the mock for two epochs
    train_size=600,
    test_size=200,
    n_hidden=40,
    batch_size=20,
    epochs=2,
    lr=5e-3,
    ema_decay=0.9,
    init_output_mean=0.3,
    device="mock://?seed=5&noise=off",
)


@pytest.fixture(scope="module")
def software_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("software")
    return out, Trainer(TrainerConfig.from_dict(SOFTWARE), out, progress=False).run()


@pytest.fixture(scope="module")
def chip_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("chip")
    return out, Trainer(TrainerConfig.from_dict(CHIP), out, progress=False).run()


def model_times(run, inputs: torch.Tensor) -> torch.Tensor:
    """Output spike times of a finished run's network under the exact model (float64)."""
    x = inputs.double().repeat_interleave(run.duplication, dim=1) + run.input_latency_s
    for t in run.layers:
        x = spike_times(
            x, torch.from_numpy(t.effective), t.lif, t_max=run.duration_s, max_spikes=t.layer.max_spikes
        ).times
    return x


def graph_times(graph: nir.NIRGraph, inputs: torch.Tensor) -> torch.Tensor:
    """Output spike times of an imported graph under the exact model, from the import alone."""
    net = as_trainer_network(import_network(graph))
    x = inputs.double().repeat_interleave(net.duplication, dim=1)
    for layer in net.chain:
        w = torch.from_numpy(net.weights[layer.name])
        x = spike_times(x, w, net.lif[layer.name], t_max=net.t_max, max_spikes=layer.max_spikes).times
    return x


def test_a_software_run_writes_network_nir_that_nir_read_opens(software_run):
    out, report = software_run
    assert report["network_files"]["nir"] == str(out / "network.nir")
    graph = nir.read(out / "network.nir")
    meta = graph.metadata
    assert meta["backend"] == "software" and "chip_id" not in meta and "calibration_id" not in meta
    assert meta["event_convention"] == "current_jump" and float(meta["t_max"]) == 50e-6
    assert json.loads(meta["trainer_config"]) == report["config"]
    assert float(meta["refractory_s"]) == report["config"]["t_refrac"]
    assert isinstance(graph.nodes["input.copies"], nir.Linear)  # duplication 5
    assert graph.nodes["hidden0.weights"].weight.shape == (60, 25)
    assert np.array_equal(graph.nodes["out"].tau_mem, np.full(3, 12e-6))


def test_round_trip_from_a_run_directory_gives_identical_weights_and_predictions(software_run, tmp_path):
    out, report = software_run
    run = load_run(out)
    back = read(write(tmp_path / "again.nir", export_run(out)))
    net = as_trainer_network(import_network(back))
    assert [layer.size for layer in net.chain] == [60, 3] and (net.n_inputs, net.duplication) == (5, 5)
    for t in run.layers:
        assert np.array_equal(net.weights[t.layer.name], t.weights)  # software: effective == trained
        for field in ("tau_mem", "tau_syn", "v_reset", "t_refrac"):
            assert torch.equal(getattr(net.lif[t.layer.name], field), getattr(t.lif, field).expand(t.layer.size))
    test = builtin("yinyang", 1500, 300)[1]
    assert torch.equal(graph_times(back, test.inputs), model_times(run, test.inputs))
    # the run's own evaluation and the graph's agree exactly in software
    graph_result = evaluate_graph(back, "software", data=test)
    assert graph_result["test_accuracy"] == evaluate_run(out, "software")["test_accuracy"] == report["test_accuracy"]


@pytest.mark.slow  # about 40 s on an idle machine: 4 software epochs (fixture) and a 2,500-step snnTorch run
def test_independent_consumer_reproduces_a_trained_run_exported_from_its_directory(software_run):
    out, report = software_run
    assert report["test_accuracy"] > 0.8  # trained well past chance (1/3)
    graph = read(out / "network.nir")
    run = load_run(out)
    test = builtin("yinyang", 1500, 300)[1]
    ours = first_spike(model_times(run, test.inputs), run.duration_s).argmin(1)
    theirs = first_spike(simulate(graph, test.inputs, 20e-9, t_max=run.duration_s), run.duration_s).argmin(1)
    assert float((ours == theirs).double().mean()) >= 0.97
    plain = simulate(without_silencing(graph), test.inputs, 20e-9, t_max=run.duration_s)  # the loops matter here
    assert float((ours == first_spike(plain, run.duration_s).argmin(1)).double().mean()) < 0.9


def test_a_chip_run_exports_its_chip_calibration_and_quantisation(chip_run):
    out, report = chip_run
    run = load_run(out)
    meta = read(out / "network.nir").metadata
    assert (meta["chip_id"], meta["calibration_id"]) == (report["chip_id"], report["calibration_id"])
    assert meta["backend"] == "device" and int(meta["weight_bits"]) == 6
    for t in run.layers:  # the scale in the metadata is the one the hardware weights were rounded with
        scale = float(meta["weight_scale"][t.layer.name])
        assert np.array_equal(t.hardware, hil.quantize(t.weights, scale))
    graph = read(out / "network.nir")
    assert np.array_equal(graph.nodes["hidden0.weights"].weight, run.layers[0].effective.T)
    assert not np.array_equal(run.layers[0].effective, run.layers[0].weights)  # quantised, per-neuron scale


def test_a_run_starts_from_a_graph(software_run, tmp_path):
    out, _ = software_run
    config = dict(SOFTWARE, epochs=1, lr=1e-9, bump=0.0, init_from=str(out / "network.nir"))
    Trainer(TrainerConfig.from_dict(config), tmp_path, progress=False).run()
    for a, b in zip(load_run(out).layers, load_run(tmp_path).layers, strict=True):
        assert np.allclose(a.weights, b.weights, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"n_hidden": 30}, r"hidden layer sizes \[60\]; TrainerConfig.n_hidden = \[30\]"),
        ({"duplication": 1}, "input duplication 5; TrainerConfig.duplication = 1"),
        ({"max_spikes": 2, "t_refrac": 1e-6}, r"max_spikes per layer \[1, 1\]; TrainerConfig.max_spikes = \[2, 2\]"),
        ({"tau_mem": 20e-6}, r"tau_mem 1.2e-05 s \(median\); TrainerConfig.tau_mem = 2e-05 s"),
    ],
)
def test_init_from_a_graph_of_another_network_is_refused_naming_both(software_run, tmp_path, change, match):
    out, _ = software_run
    config = TrainerConfig.from_dict(dict(SOFTWARE, device="socket://127.0.0.1:1", init_from=str(out / "network.nir")))
    config = TrainerConfig.from_dict({**config.to_dict(), **change})
    with pytest.raises(ConfigError, match=match):  # before the (unreachable) device
        Trainer(config, tmp_path, progress=False)
    with pytest.raises(ConfigError, match="does not exist"):
        Trainer(TrainerConfig.from_dict(dict(SOFTWARE, init_from=str(tmp_path / "no.nir"))), tmp_path, progress=False)


@pytest.mark.slow  # about 40 s idle: calibrating a second mock chip to the graph's time constants
def test_a_graph_deploys_on_a_chip_through_its_calibration(chip_run, capsys):
    out, report = chip_run
    assert report["test_accuracy"] > 0.6
    result = evaluate_graph(out / "network.nir", "mock://?seed=6&noise=off", data="yinyang")
    assert result["chip_id"] != report["chip_id"] and result["graph_calibration_id"] == report["calibration_id"]
    assert result["calibration_note"].startswith(f"chip {result['chip_id']}: calibration {result['calibration_id']}")
    assert set(result["clipped_weights"]) == {"hidden0", "output"} and result["samples"] == 1000
    assert result["test_accuracy"] > 0.55  # the trained network still works on another chip (chance: 1/3)
    assert evaluate_main([str(out / "network.nir"), "--device", "software", "--quiet"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("software") and json.loads(printed[1])["samples"] == 1000


def one_layer_graph(tmp_path, *, tau_mem=12e-6, weight=0.5):
    params = LIFParameters(tau_mem=tau_mem, tau_syn=6e-6)
    layers = [Layer("hidden", np.full((5, 4), weight), params), Layer("out", np.full((4, 3), 0.5), params)]
    return write(tmp_path / "g.nir", export_network(layers, input_size=5, metadata={}, t_max=50e-6))


def test_graphs_the_chip_cannot_meet_are_refused_naming_the_parameter(tmp_path):
    unreachable = "socket://127.0.0.1:1"  # refused before it is opened
    with pytest.raises(ConfigError, match=r"layer 'hidden0' neuron 0: tau_mem = 0.0001 s; allowed on the chip: 5e-07"):
        evaluate_graph(one_layer_graph(tmp_path, tau_mem=100e-6), unreachable)
    with pytest.raises(ConfigError, match="data = 'mnist'; allowed: yinyang, digits"):
        evaluate_graph(one_layer_graph(tmp_path), unreachable, data="mnist")
    graph = read(one_layer_graph(tmp_path))
    graph.nodes["delay"] = nir.Delay(delay=np.ones(3))
    with pytest.raises(ConfigError, match="NIR node 'delay' has type Delay"):
        evaluate_graph(graph, unreachable)
    big = one_layer_graph(tmp_path, weight=5.0)
    with pytest.raises(ConfigError, match=r"layer 'hidden0': weight 5 .* 20 weights are beyond"):
        evaluate_graph(big, "mock://?seed=5&noise=off")
    clipped = evaluate_graph(big, "mock://?seed=5&noise=off", clip_weights=True)
    assert clipped["clipped_weights"] == {"hidden0": 20, "output": 0}


def test_a_run_whose_network_nir_cannot_hold_says_why_in_its_report(tmp_path):
    data = (torch.full((10, 3), 5e-6), torch.arange(10) % 2)
    config = TrainerConfig(  # 1 ms trials of 1 us neurons: no finite self-inhibition silences them for so long
        dataset="custom",
        device="software",
        duplication=1,
        n_hidden=4,
        epochs=1,
        tau_mem=1e-6,
        tau_syn=5e-7,
        duration_s=1e-3,
    )
    report = Trainer(config, tmp_path, data=(data, data), progress=False).run()
    files = report["network_files"]
    assert files["nir"] is None and "needs a self-inhibition" in files["nir_skipped"]
    assert not (tmp_path / "network.nir").exists() and (tmp_path / "network.json").exists()
