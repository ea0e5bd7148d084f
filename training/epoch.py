"""One training epoch and one evaluation, on either backend, for one rank or a data-parallel group.

A step: forward (measured on the chip, or simulated), the loss on the output spikes, backward
(EventProp), on the first ``grad_check_batches`` batches the cosine between the device gradient
and the ideal model's, the gradient all-reduce, the optimizer step, the weight clip, weight
bumping of silent neurons, and the moving average of the weights. With ``presentations`` > 1
every sample of the batch is run that many times (separate chip trials) and the loss is the mean
over all of them, so the gradient is the mean of the presentations' gradients (on a device; the
ideal model runs each sample once). With ``mask_silent_labels``
the samples whose label neuron is silent add no gradient (``training.bumping``).
"""

from __future__ import annotations

import contextlib
import math
import time

import attrs
import torch

from hil.progress import Progress

from .bumping import mask_silent_labels
from .datasets import SpikeData, batch_targets
from .losses import Outputs, checked, class_of


@attrs.define(eq=False)
class Loop:
    """What the epoch loop works with: the run's config, group, network, optimizer, weight
    average, loss and prediction rule, data, global batch size, common weight limits (None:
    the network's own), whether to show progress, and the metered device (None in software)."""

    config: object
    group: object
    network: object
    optimizer: object
    average: object
    loss: object
    predict: object
    train: SpikeData
    test: SpikeData
    global_batch: int
    limits: dict | None = None
    progress: bool = False
    device: object = None

    def device_seconds(self) -> float:
        return self.device.totals.wall_s if self.device is not None else 0.0

    def batch(self, data: SpikeData, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = self.network.dtype
        return data.inputs[index].to(dtype), batch_targets(data.targets[index], dtype)

    def loss_of(self, times: dict, targets: torch.Tensor, samples=None) -> torch.Tensor:
        outputs = Outputs(times["output"], times, self.network.duration_s, samples)
        return checked(self.loss(outputs, targets))

    def predictions(self, times: dict, samples=None) -> torch.Tensor:
        return self.predict(Outputs(times["output"], times, self.network.duration_s, samples))


_SUMMED = ("loss", "correct", "n", "bytes", "dropped", "clamped", "beyond")


def train_epoch(loop: Loop, epoch: int) -> dict:
    """Train one epoch on shuffled batches (order from ``seed`` and ``epoch``); returns its metrics."""
    c, g, net = loop.config, loop.group, loop.network
    order = torch.randperm(len(loop.train), generator=torch.Generator().manual_seed(c.seed * 100_003 + epoch))
    batches = order.split(loop.global_batch)
    totals = dict.fromkeys(_SUMMED, 0.0) | {"cos": []}
    clock = {"backward_s": 0.0, "gradcheck_s": 0.0}
    presentations = c.presentations if loop.device is not None else 1  # the ideal model has no noise to average
    device0, collective0 = loop.device_seconds(), g.seconds
    with Progress(len(batches), f"epoch {epoch + 1}/{c.epochs}", enabled=loop.progress) as bar:
        for b, index in enumerate(batches):
            index = index.repeat(presentations)  # each sample run this often; the loss is the mean
            x, y = loop.batch(loop.train, g.shard(index))
            loop.optimizer.zero_grad()
            times, diag = forward = net(x)
            labels = class_of(y)
            masked = c.mask_silent_labels and c.readout == "first_spike"  # a membrane readout has no spike to miss
            with one_torch_thread():
                scored = mask_silent_labels(times, labels, net.duration_s, c.output_copies) if masked else times
                loss = loop.loss_of(scored, y, forward.samples)
                t0 = time.perf_counter()
                loss.backward()
                clock["backward_s"] += time.perf_counter() - t0
            if b < c.grad_check_batches and loop.device is not None:
                t0 = time.perf_counter()
                totals["cos"].append(gradient_agreement(loop, x, y, forward.samples))
                clock["gradcheck_s"] += time.perf_counter() - t0
            g.average_gradients(net.parameters(), len(y), len(index))
            with one_torch_thread():  # Adam's step opens an OpenMP region even on these small tensors
                loop.optimizer.step()
                net.clip_weights(loop.limits)
                bump_times, bump_labels = (
                    gather_outputs(loop, times, labels, len(index)) if g.world > 1 else (times, labels)
                )
                anneal = loop.optimizer.param_groups[0]["lr"] / c.lr if c.bump_anneal else 1.0
                net.bump_silent(bump_times, bump_labels, c.bump * anneal, c.output_copies)
                loop.average.update()
                correct = int((loop.predictions(times, forward.samples).detach() == labels).sum())
            _add(totals, loss.item() * len(y), correct, len(y), diag)
            bar.update(1, loss=totals["loss"] / totals["n"], acc=totals["correct"] / totals["n"])
    timing = {"device_s": loop.device_seconds() - device0, **clock, "allreduce_s": g.seconds - collective0}
    cos = [v for v in totals.pop("cos") if math.isfinite(v)]
    totals.update(cos_sum=sum(cos), cos_n=len(cos))
    if g.world > 1:  # sums over ranks (timings: mean over ranks), one all-reduce
        keys = list(totals) + list(timing)
        summed = g.sum_(torch.tensor([float(totals[k]) for k in totals] + list(timing.values()), dtype=torch.float64))
        values = dict(zip(keys, summed.tolist(), strict=True))
        totals = {k: values[k] for k in totals}
        timing = {k: values[k] / g.world for k in timing}
    return {
        "train_loss": totals["loss"] / totals["n"],
        "train_accuracy": totals["correct"] / totals["n"],
        "grad_cosine": totals["cos_sum"] / totals["cos_n"] if totals["cos_n"] else None,
        "bytes_per_step": totals["bytes"] / len(batches),
        "dropped": int(totals["dropped"]),
        "clamped_spikes": int(totals["clamped"]),
        "spikes_beyond_max": int(totals["beyond"]),
        **timing,
    }


@contextlib.contextmanager
def one_torch_thread():
    """Run the torch ops inside on one intra-op thread; the caller's thread count is restored after.

    The step's loss, its backward and the weight update work on (batch, n) and (n_in, n_out)
    tensors, yet torch's log_softmax and its backward split even a (32, 3) tensor over the OpenMP
    threads (three parallel regions per step), and so does Adam's step on the weights. After each
    region the OpenMP worker keeps spinning for milliseconds and takes a core from the mock chip's
    and the EventProp kernels' threads: with torch's default two threads a step cost twice the CPU
    of one thread (docs/benchmarks.md, "train.step"), and Adam's region alone made the mock's
    runs in the main job about 1.4x slower (docs/benchmarks.md, "Session 12"). One thread gives
    the same values (those ops split rows or elements, not sums); the EventProp adjoint kernel,
    which sizes its pool by ``torch.get_num_threads()``, then runs in the calling thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _add(totals: dict, loss: float, correct: int, n: int, diag) -> None:
    health = diag.health
    totals["loss"] += loss
    totals["correct"] += correct
    totals["n"] += n
    totals["bytes"] += diag.bytes
    totals["dropped"] += health.events_dropped_input + health.spikes_dropped_output
    totals["clamped"] += sum(diag.clamped.values())
    totals["beyond"] += sum(diag.beyond.values())


def gradient_agreement(loop: Loop, x, y, samples=None) -> float:
    """Cosine similarity of the device gradient (already in ``.grad``) and the ideal model's
    (membranes sampled at the device's sample times)."""
    params = list(loop.network.weights.values())
    device_grads = [p.grad.detach().clone() for p in params]
    model = loop.network.ideal(x, None if samples is None else samples.times)
    ideal = torch.autograd.grad(loop.loss_of(model.times, y, model.samples), params, allow_unused=True)
    ideal = [torch.zeros_like(p) if g is None else g for p, g in zip(params, ideal, strict=True)]
    return cosine(device_grads, ideal)


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    x = torch.cat([t.flatten() for t in a]).double()
    y = torch.cat([t.flatten() for t in b]).double()
    denom = float(x.norm() * y.norm())
    return float(x @ y) / denom if denom > 0 else float("nan")


def gather_outputs(loop: Loop, times: dict, labels: torch.Tensor, n: int) -> tuple[dict, torch.Tensor]:
    """First spike times of every layer and the labels of the whole global batch (row order as in one process)."""
    names = list(loop.network.weights)
    first = [times[name][..., 0].detach() for name in names]
    local = torch.cat(first + [labels.to(first[0].dtype)[:, None]], dim=1)
    full = loop.group.gather_rows(local, n)
    result, col = {}, 0
    for name, f in zip(names, first, strict=True):
        result[name] = full[:, col : col + f.shape[1], None]
        col += f.shape[1]
    return result, full[:, col].to(torch.int64)


@torch.no_grad()
def evaluate(loop: Loop, data: SpikeData | None = None, batch_size: int = 500, *, gather: bool = True) -> dict:
    """Loss, accuracy and silent trials on ``data`` (default: the test set), sharded over the ranks and
    summed. ``output_times`` (first output spike of every sample) are gathered to every rank when ``gather``."""
    data = loop.test if data is None else data
    g = loop.group
    loss, correct, silent, outputs = 0.0, 0, 0, []
    for index in g.shard(torch.arange(len(data))).split(batch_size):
        x, y = loop.batch(data, index)
        times, _ = forward = loop.network(x)
        pred = loop.predictions(times, forward.samples)
        loss += float(loop.loss_of(times, y, forward.samples)) * len(y)
        correct += int((pred == class_of(y)).sum())
        silent += int((pred < 0).sum())
        outputs.append(times["output"][..., 0])
    first = torch.cat(outputs)
    if g.world > 1:
        loss, correct, silent = g.sum_(torch.tensor([loss, correct, silent], dtype=torch.float64)).tolist()
        first = g.gather_rows(first, len(data)) if gather else first
    n = len(data)
    return {"test_loss": loss / n, "test_accuracy": correct / n, "silent_trials": int(silent), "output_times": first}
