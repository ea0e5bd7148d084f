"""Benchmarks of the hardware-in-the-loop training step."""

from __future__ import annotations

import attrs
import numpy as np
import torch
from bench import case

import hil
from hil import wire
from training.config import TrainerConfig
from training.trainer import Trainer


def _setup(batch: int):
    config = TrainerConfig(grad_check_batches=0)
    trainer = Trainer(config, "/tmp/bench-training", progress=False)
    device = hil.open(config.device)
    result = trainer._calibrate(device)
    net = trainer._build(device, result, torch.Generator().manual_seed(0))
    x, y = trainer._inputs(trainer.train_set, torch.arange(batch))
    return trainer, device, net, x, y


@case("hil.information")
def information(bench):
    """Bytes read per gradient step: EventProp (spike times only) vs dense CADC membrane traces
    of all used neurons at the CADC's fastest period (what a surrogate-gradient setup reads)."""
    batch = 32
    trainer, device, net, x, y = _setup(batch)
    used = net.placement.used_neurons()
    with torch.no_grad():
        net(x)
    spikes_only = net.last_measurement
    eventprop = wire.framed_size(wire.RunReply(spikes_only))
    with torch.no_grad():
        net(x, hil.Recording(cadc_period_s=hil.chip.CADC_MIN_PERIOD_S))
    dense = net.last_measurement
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
    trainer, device, net, x, y = _setup(32)

    def one_step():
        net.zero_grad()
        trainer._loss(net(x), y).backward()

    seconds = bench.time(one_step)
    return {"batch": 32, "step_ms": 1e3 * seconds, "samples_per_s": 32 / seconds}
