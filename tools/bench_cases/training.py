"""Benchmarks of the hardware-in-the-loop training step."""

from __future__ import annotations

import contextlib

import attrs
import numpy as np
import torch
from bench import case

import hil
from hil import chip, wire
from training.config import TrainerConfig
from training.epoch import one_torch_thread
from training.losses import Outputs
from training.membrane import SampleRequest
from training.trainer import Trainer

_open = contextlib.ExitStack()  # the bench process keeps the device open until it exits


def _setup(batch: int):
    """The default run's device network on its calibrated chip, one batch of training inputs and labels, the loss."""
    config = TrainerConfig(grad_check_batches=0)
    trainer = Trainer(config, "/tmp/bench-training", progress=False)
    backend = _open.enter_context(trainer.open_backend(torch.Generator().manual_seed(0)))
    net = backend.network
    x, y = trainer.train_data.inputs[:batch].to(net.dtype), trainer.train_data.targets[:batch]

    def loss(times):
        return trainer.loss(Outputs(times["output"], times, net.duration_s), y)

    return net, x, loss


def _reply_bytes(meas, channels=None) -> int:
    """Framed bytes of a run reply; with ``channels``, the CADC part restricted to those neuron circuits."""
    if channels is not None and meas.cadc is not None:
        cadc = hil.CadcSamples(np.ascontiguousarray(meas.cadc.samples[..., channels]), meas.cadc.ticks)
        meas = attrs.evolve(meas, cadc=cadc)
    return wire.framed_size(wire.RunReply(meas))


def _with_samples(net, x, request: SampleRequest):
    """The device reply of one forward pass that samples ``request``'s layers."""
    net.sample_request = request
    try:
        with torch.no_grad():
            return net(x).diagnostics.measurement
    finally:
        net.sample_request = None


@case("hil.information")
def information(bench):
    """Bytes read per gradient step (batch 32, default network): EventProp on spike times only; spikes plus
    the CADC samples each membrane loss needs (every ``TrainerConfig.sample_period_s``: the output layer for
    the max-membrane readout, every layer for the silent-neuron loss), as sent (all 512 CADC channels) and
    restricted to the neurons the loss reads; and dense CADC traces of all used neurons at the fastest period."""
    batch, period = 32, TrainerConfig().sample_period_s
    net, x, _ = _setup(batch)
    used, neurons = net.placement.used_neurons(), net.placement.neurons
    with torch.no_grad():
        spikes_only = net(x).diagnostics.measurement
    eventprop = _reply_bytes(spikes_only)
    readout = _with_samples(net, x, SampleRequest(["output"], "cadc", period))
    silent = _with_samples(net, x, SampleRequest([layer.name for layer in net.chain], "cadc", period))
    dense = _with_samples(net, x, SampleRequest([layer.name for layer in net.chain], "cadc", chip.CADC_MIN_PERIOD_S))
    figures = {
        "batch": batch,
        "used_neurons": int(used.size),
        "spikes_per_trial": spikes_only.spikes.size / batch,
        "sample_period_s": period,
        "samples_per_trial": int(readout.cadc.samples.shape[1]),
        "dense_samples_per_trial": int(dense.cadc.samples.shape[1]),
        "eventprop_bytes_per_step": eventprop,
        "readout_bytes_per_step_sent": _reply_bytes(readout),
        "readout_bytes_per_step_needed": _reply_bytes(readout, neurons["output"]),
        "silent_loss_bytes_per_step_sent": _reply_bytes(silent),
        "silent_loss_bytes_per_step_needed": _reply_bytes(silent, used),
        "dense_bytes_per_step": _reply_bytes(dense, used),
    }
    figures["ratio"] = figures["dense_bytes_per_step"] / eventprop
    figures["readout_needed_ratio"] = figures["readout_bytes_per_step_needed"] / eventprop
    figures["silent_needed_ratio"] = figures["silent_loss_bytes_per_step_needed"] / eventprop
    return figures


@case("train.step")
def step(bench):
    """Wall time of one training step (batch 32, default config): device forward + EventProp replay backward
    (``step_ms``, the issue-15 figure); and with the weight update, Adam's step at a negligible rate, as
    training.epoch.train_epoch runs it (``step_with_update_ms``)."""
    net, x, loss = _setup(32)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-12)

    def one_step():  # as training.epoch.train_epoch runs it
        net.zero_grad()
        times = net(x).times
        with one_torch_thread():
            loss(times).backward()

    def with_update():
        one_step()
        with one_torch_thread():
            optimizer.step()

    seconds = bench.time(one_step)
    updated = bench.time(with_update, label="with_update")
    return {"batch": 32, "step_ms": 1e3 * seconds, "samples_per_s": 32 / seconds, "step_with_update_ms": 1e3 * updated}
