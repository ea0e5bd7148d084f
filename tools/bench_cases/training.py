"""Benchmarks of the hardware-in-the-loop training step."""

from __future__ import annotations

import contextlib

import attrs
import numpy as np
import torch
from bench import case

import hil
from hil import wire
from training.backends import open_backend
from training.config import TrainerConfig
from training.losses import Outputs
from training.trainer import Trainer

_open = contextlib.ExitStack()  # the bench process keeps the device open until it exits


def _setup(batch: int):
    """The default run's device network on its calibrated chip, one batch of training inputs and labels, the loss."""
    config = TrainerConfig(grad_check_batches=0)
    trainer = Trainer(config, "/tmp/bench-training", progress=False)
    backend = _open.enter_context(
        open_backend(
            config,
            trainer.chain,
            trainer.train_data.n_inputs,
            trainer.placement,
            url=config.device,
            calibration_file=None,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )
    )
    net = backend.network
    x, y = trainer.train_data.inputs[:batch].to(net.dtype), trainer.train_data.targets[:batch]

    def loss(times):
        return trainer.loss(Outputs(times["output"], times, net.duration_s), y)

    return net, x, loss


@case("hil.information")
def information(bench):
    """Bytes read per gradient step: EventProp (spike times only) vs dense CADC membrane traces
    of all used neurons at the CADC's fastest period (what a surrogate-gradient setup reads)."""
    batch = 32
    net, x, _ = _setup(batch)
    used = net.placement.used_neurons()
    with torch.no_grad():
        spikes_only = net(x).diagnostics.measurement
    eventprop = wire.framed_size(wire.RunReply(spikes_only))
    with torch.no_grad():
        dense = net(x, hil.Recording(cadc_period_s=hil.chip.CADC_MIN_PERIOD_S)).diagnostics.measurement
    traces = hil.CadcSamples(np.ascontiguousarray(dense.cadc.samples[..., used]), dense.cadc.ticks)
    dense_bytes = wire.framed_size(wire.RunReply(attrs.evolve(dense, cadc=traces)))
    return {
        "batch": batch,
        "used_neurons": int(used.size),
        "spikes_per_trial": spikes_only.spikes.size / batch,
        "cadc_samples_per_trial": int(dense.cadc.samples.shape[1]),
        "eventprop_bytes_per_step": eventprop,
        "dense_bytes_per_step": dense_bytes,
        "ratio": dense_bytes / eventprop,
    }


@case("train.step")
def step(bench):
    """Wall time of one training step (batch 32, default config): device forward + EventProp replay backward."""
    net, x, loss = _setup(32)

    def one_step():
        net.zero_grad()
        loss(net(x).times).backward()

    seconds = bench.time(one_step)
    return {"batch": 32, "step_ms": 1e3 * seconds, "samples_per_s": 32 / seconds}
