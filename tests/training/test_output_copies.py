"""Output population coding (``output_copies``): class times, the loss gradient through EventProp
against finite differences of an independent formula, bumping and the mask per class, the config
checks, and a software run with its NIR metadata."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hil.errors import ConfigError
from training import Trainer, TrainerConfig
from training.bumping import bump_silent, label_silent, mask_silent_labels
from training.lif import LIFParameters, spike_times
from training.losses import (
    FirstSpikeCrossEntropy,
    OutputCopies,
    Outputs,
    class_first_spikes,
    loss_from_config,
)

from .conftest import random_layer, well_posed
from .test_eventprop import assert_close_to_fd, finite_differences

T = 10e-6  # t_max of the hand-made cases
INF = math.inf


def test_class_times_mean_counts_a_silent_copy_as_t_max_and_earliest_takes_the_minimum():
    # 2 classes x 3 copies, class-major: class 0 = neurons 0-2, class 1 = neurons 3-5
    times = torch.tensor([[[1e-6], [INF], [4e-6], [INF], [INF], [12e-6]]], dtype=torch.float64)
    mean = class_first_spikes(times, 3, "mean", T)
    earliest = class_first_spikes(times, 3, "earliest", T)
    assert mean[0].tolist() == pytest.approx([(1e-6 + T + 4e-6) / 3, INF])
    assert earliest[0, 0].item() == pytest.approx(1e-6)
    assert earliest[0, 1].item() == pytest.approx(12e-6)  # beyond t_max: the loss clamps it, as for one neuron


def test_class_times_refuse_a_layer_that_is_not_a_multiple_of_the_copies():
    with pytest.raises(ValueError, match="5 output neurons; allowed: a multiple of copies = 2"):
        class_first_spikes(torch.zeros(1, 5, 1), 2, "mean", T)
    with pytest.raises(ValueError, match="how = 'median'"):
        class_first_spikes(torch.zeros(1, 4, 1), 2, "median", T)


def _reference_loss(first: np.ndarray, labels, copies, how, tau_0, t_max, alpha, tau_1) -> float:
    """The copies' first-spike cross-entropy written out per sample and class (numpy, float64)."""
    total = 0.0
    for b, label in enumerate(labels):
        class_t = []
        for c in range(first.shape[1] // copies):
            own = [min(t, t_max) for t in first[b, c * copies : (c + 1) * copies]]
            class_t.append(sum(own) / copies if how == "mean" else min(own))
        logits = [-t / tau_0 for t in class_t]
        top = max(logits)
        log_z = top + math.log(sum(math.exp(v - top) for v in logits))
        total += log_z - logits[label] + alpha * math.expm1(class_t[label] / tau_1)
    return total / len(labels)


@pytest.mark.parametrize("how", ["mean", "earliest"])
def test_copies_loss_gradient_through_eventprop_matches_finite_differences(how):
    """dL/dW of the copies loss on EventProp spike times equals central differences of an
    independent numpy formula of the loss on re-simulated spike times (float64)."""
    copies, n_classes = 2, 3
    params = LIFParameters(tau_mem=10e-6, tau_syn=5e-6, v_leak=0.0, v_reset=0.0, t_refrac=0.0)
    t_max = 50e-6
    for seed in range(50):
        x, w = random_layer(seed, n_in=8, n_out=n_classes * copies, batch=4, w_mean=1.0, w_std=1.5)
        out = spike_times(x, w, params, t_max=t_max, max_spikes=1).times
        if well_posed(x, w, params, t_max, 1) and int(torch.isfinite(out).sum()) >= 20:
            break
    else:
        raise AssertionError("no well-posed case with most neurons spiking")
    labels = torch.tensor([0, 1, 2, 1])
    loss_fn = OutputCopies(FirstSpikeCrossEntropy(tau_0=2e-6, tau_1=20e-6, alpha=0.3), copies, how)
    w = w.clone().requires_grad_()
    times = spike_times(x, w, params, t_max=t_max, max_spikes=1).times
    loss = loss_fn(Outputs(times, {"output": times}, t_max), labels)
    loss.backward()

    def reference(weights):
        first = spike_times(x, weights, params, t_max=t_max, max_spikes=1).times[..., 0].numpy()
        return _reference_loss(first, labels.tolist(), copies, how, 2e-6, t_max, 0.3, 20e-6)

    assert float(loss.detach()) == pytest.approx(reference(w.detach()), rel=1e-10)
    with torch.no_grad():
        numeric = finite_differences(lambda v: torch.tensor(reference(v)), w.detach(), 1e-7)
    assert_close_to_fd(w.grad, numeric)


def test_copies_predict_the_class_of_the_earliest_class_time():
    # class 0's copies at 1 and 9 us (mean 5), class 1's at 4 and 4 us (mean 4): mean -> 1, earliest -> 0
    times = torch.tensor([[[1e-6], [9e-6], [4e-6], [4e-6]]])
    outputs = Outputs(times, {"output": times}, T)
    base = FirstSpikeCrossEntropy(0.5e-6, 60e-6, 0.0)
    assert OutputCopies(base, 2, "mean").predict(outputs).tolist() == [1]
    assert OutputCopies(base, 2, "earliest").predict(outputs).tolist() == [0]
    silent = torch.full((1, 4, 1), INF)
    assert OutputCopies(base, 2, "mean").predict(Outputs(silent, {"output": silent}, T)).tolist() == [-1]


def test_a_label_is_silent_only_when_every_copy_of_its_class_is():
    times = torch.tensor([[[INF], [3e-6], [1e-6], [2e-6]], [[INF], [INF], [1e-6], [2e-6]]])
    labels = torch.tensor([0, 0])
    assert label_silent(times, labels, T, copies=2).tolist() == [False, True]
    assert label_silent(times, labels, T).tolist() == [True, True]  # one neuron per class: neuron 0 only
    source = times.clone().requires_grad_()
    masked = mask_silent_labels({"output": source}, labels, T, copies=2)["output"]
    torch.where(torch.isfinite(masked), masked, 0.0).sum().backward()
    assert source.grad[:, 2:, 0].tolist() == [[1.0, 1.0], [0.0, 0.0]]  # the label-silent sample gives none


def test_bump_raises_every_silent_copy_of_the_label_class():
    out = torch.tensor([[[INF], [1e-6], [INF], [INF]]])  # class 0: copy 0 silent; class 1: both silent
    w_out = torch.zeros(3, 4)
    hidden = torch.tensor([[[1e-6]]])
    bump_silent([(torch.zeros(1, 1), hidden), (w_out, out)], torch.tensor([0]), 0.5, copies=2)
    assert w_out[0].tolist() == [0.5, 0.0, 0.0, 0.0]  # the silent label copy only, not class 1's
    w_out.zero_()
    bump_silent([(torch.zeros(1, 1), hidden), (w_out, out)], torch.tensor([1]), 0.5, copies=2)
    assert w_out[0].tolist() == [0.0, 0.0, 0.5, 0.5]


@pytest.mark.parametrize(
    "values, match",
    [
        ({"output_copies": 0}, r"TrainerConfig.output_copies = 0; allowed: an integer >= 1"),
        ({"output_copies_time": "median"}, r"TrainerConfig.output_copies_time = 'median'; allowed: 'mean' or"),
        ({"output_copies": 2, "loss": "spike_count_ce"}, r"output_copies = 2 with loss = 'spike_count_ce'"),
        (
            {"output_copies": 2, "readout": "max_membrane", "v_threshold": 150, "weight_gain": 1},
            r"readout = 'max_membrane'; allowed: output_copies = 1",
        ),
    ],
)
def test_config_refuses_copies_it_cannot_read(values, match):
    with pytest.raises(ConfigError, match=match):
        TrainerConfig.from_dict(values)


def test_loss_from_config_groups_the_outputs_only_with_copies():
    assert isinstance(loss_from_config(TrainerConfig()), FirstSpikeCrossEntropy)
    config = TrainerConfig(output_copies=3, output_copies_time="earliest", tau_0=0.4e-6, tau_1=50e-6, alpha=0.2)
    assert loss_from_config(config) == OutputCopies(FirstSpikeCrossEntropy(0.4e-6, 50e-6, 0.2), 3, "earliest")


def test_software_run_with_copies_trains_3k_outputs_and_names_the_grouping_in_nir(tmp_path):
    nir = pytest.importorskip("nir")
    config = TrainerConfig.from_dict(
        dict(device="software", train_size=64, test_size=32, n_hidden=12, batch_size=32, epochs=1, output_copies=2)
    )
    report = Trainer(config, tmp_path, progress=False).run()
    assert [layer["size"] for layer in report["layers"]] == [12, 6]
    assert json.loads((tmp_path / "network.json").read_text())["layers"][-1]["size"] == 6
    graph = nir.read(tmp_path / "network.nir")
    assert np.asarray(graph.metadata["output_class"]).tolist() == [0, 0, 1, 1, 2, 2]
    assert "2 output neurons per class" in graph.metadata["output_grouping"]
    from training.inference import evaluate_run

    again = evaluate_run(tmp_path, "software")
    assert again["test_accuracy"] == pytest.approx(report["test_accuracy"])
