"""``Trainer``: hardware-in-the-loop EventProp training of Yin-Yang on a ``hil.Device``.

One run: open the device, check the network fits (before any device run), load or compute
(cached) the calibration, then per epoch: train on shuffled batches (forward measured on
the device, backward by EventProp replay), compare the device gradient with the ideal
model's on the first batches, evaluate the test set on the device, append a JSON line to
``metrics.jsonl`` and write an atomic checkpoint. At the end: ``report.json`` and plots.

Data-parallel (``group`` of several ranks, see ``training.distributed``): every rank opens
its own device (``device_for_rank``), calibrates it, and trains on its strided share of
every global batch; gradients are averaged and metrics summed over ranks, weight bumping
uses the gathered global batch, and the weight clip uses the tightest limit of all chips,
so the ranks' weights stay bit-identical (checked every epoch). Rank 0 writes the files.
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import numpy as np
import torch

import calibration
import hil
from hil import wire
from hil.errors import CalibrationError, ConfigError, DeviceError, DeviceTimeout, HilError, ProtocolError
from hil.progress import Progress

from . import checkpoint, data, losses
from .averaging import WeightAverage
from .config import TrainerConfig
from .distributed import CollectiveError, Group, device_for_rank, digest
from .hardware import DeviceNetwork, NeuronModel

log = hil.logging.get_logger(__name__)

N_INPUTS = 5  # x, y, 1-x, 1-y and the bias spike
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
REPORT = "report.json"


class TrainingInterrupted(HilError):
    """Training stopped early (device failure, interrupt); the message says how to resume."""


def predictions(output_times: torch.Tensor) -> torch.Tensor:
    """(batch, n_classes, k) output spike times -> predicted class (batch,); -1 where no output neuron spiked."""
    pred = losses.predict(output_times, math.inf)
    return torch.where(torch.isfinite(output_times[..., 0]).any(dim=1), pred, torch.full_like(pred, -1))


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    x = torch.cat([t.flatten() for t in a]).double()
    y = torch.cat([t.flatten() for t in b]).double()
    denom = float(x.norm() * y.norm())
    return float(x @ y) / denom if denom > 0 else float("nan")


class TimedDevice:
    """A ``hil.Device`` wrapper that adds up the wall time of ``configure`` and ``run`` in ``seconds``."""

    def __init__(self, device):
        self._device = device
        self.seconds = 0.0

    def configure(self, config):
        start = time.perf_counter()
        try:
            return self._device.configure(config)
        finally:
            self.seconds += time.perf_counter() - start

    def run(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self._device.run(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name):
        return getattr(self._device, name)


class Trainer:
    """Train according to ``config``, writing everything to ``out_dir``.

    ``group``: the ``training.distributed.Group`` of a data-parallel run (default: one process).
    """

    def __init__(self, config: TrainerConfig, out_dir, *, progress: bool = True, group: Group | None = None):
        self.config = config
        self.out = pathlib.Path(out_dir)
        self.group = group if group is not None else Group.single()
        self.progress = progress and self.group.is_main
        self.dtype = getattr(torch, config.dtype)
        self.encoding = data.SpikeEncoding()
        self.network = hil.Network.feedforward(
            N_INPUTS, [config.n_hidden], len(data.CLASSES), duplication=config.duplication
        )
        self.placement = hil.place(self.network)  # ResourceError before any device run
        self.train_set = data.YinYang(config.train_size, data.TRAIN_SEED)
        self.test_set = data.YinYang(config.test_size, data.TEST_SEED)
        for name, ds in (("train", self.train_set), ("test", self.test_set)):
            if not np.all(np.isfinite(ds.x_np)):
                raise ConfigError(f"{name} dataset contains NaN or infinite features; allowed: finite values")
        world = self.group.world
        self.global_batch = config.batch_size * (world if config.batch_scope == "per_rank" else 1)
        smallest = min(self.global_batch, config.train_size % self.global_batch or self.global_batch)
        if world > 1 and (smallest < world or config.test_size < world):
            raise ConfigError(
                f"{world} ranks need at least one sample each: smallest training batch {smallest}, test_size {config.test_size}; "
                f"allowed: the step's batch, the last batch (train_size % batch) and test_size >= {world}"
            )
        self.device_url = device_for_rank(config.device, self.group.rank, world)

    # --- set-up ------------------------------------------------------------------------
    def _calibrate(self, device) -> calibration.CalibrationResult:
        info = device.info()
        if self.config.calibration:
            path = device_for_rank(self.config.calibration, self.group.rank, self.group.world)
            result = calibration.CalibrationResult.load(path)
            if result.chip_id != info.chip_id:
                raise CalibrationError(
                    f"calibration {path} is for chip {result.chip_id!r}, the device is chip {info.chip_id!r}; "
                    "calibrate this chip (tools/calibrate) or drop --calibration to calibrate automatically"
                )
            return result
        return calibration.calibrate(device, calibration.CalibrationTarget(), progress=self.progress, cache=True)

    def _place_on_calibrated(self, result) -> None:
        """Move the placement off neuron circuits that failed calibration (their model parameters are unknown)."""
        failed = np.flatnonzero(~result.success_mask)
        if np.intersect1d(failed, self.placement.used_neurons()).size:
            self.placement = hil.place(
                self.network, exclude=failed
            )  # ResourceError if too few calibrated circuits remain
            log.warning(
                "placement avoids neurons that failed calibration", neurons=failed.tolist(), calibration=result.id
            )

    def _build(self, device, result, generator) -> DeviceNetwork:
        c = self.config
        self._place_on_calibrated(result)
        init = {"hidden0": (c.init_hidden_mean, c.init_hidden_std), "output": (c.init_output_mean, c.init_output_std)}
        return DeviceNetwork(
            device,
            self.placement,
            NeuronModel.from_calibration(result),
            result.apply(hil.ChipConfig()),
            duration_s=c.duration_s,
            max_spikes=1,
            init=init,
            generator=generator,
            dtype=self.dtype,
            drive_floor=c.drive_floor,
        )

    def _optimizer(self, params):
        c = self.config
        opt = (
            torch.optim.Adam(params, lr=c.lr)
            if c.optimizer == "adam"
            else torch.optim.SGD(params, lr=c.lr, momentum=0.9)
        )
        if c.schedule == "exponential":
            return opt, torch.optim.lr_scheduler.ExponentialLR(opt, gamma=c.gamma)
        return opt, torch.optim.lr_scheduler.StepLR(
            opt, step_size=c.step_size, gamma=c.gamma if c.schedule == "step" else 1.0
        )

    # --- one epoch ------------------------------------------------------------------------
    def _loss(self, out: dict, y: torch.Tensor) -> torch.Tensor:
        c = self.config
        return losses.first_spike_cross_entropy(
            out["output"], y, tau_0=c.tau_0, tau_1=c.tau_1, alpha=c.alpha, t_max=c.duration_s
        )

    def _inputs(self, ds, index) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.encoding(ds.x[index]).to(self.dtype)
        return x, torch.as_tensor(ds.y[index], dtype=torch.int64)

    def _train_epoch(
        self, net: DeviceNetwork, opt, average: WeightAverage, epoch: int, limits: dict | None = None
    ) -> dict:
        c, g = self.config, self.group
        order = torch.randperm(len(self.train_set.y), generator=torch.Generator().manual_seed(c.seed * 100_003 + epoch))
        batches = order.split(self.global_batch)
        totals = {"loss": 0.0, "correct": 0, "n": 0, "bytes": 0, "cos": [], "dropped": 0, "clamped": 0}
        clock = {"backward_s": 0.0, "gradcheck_s": 0.0}
        device0, collective0 = net.device.seconds, g.seconds
        with Progress(len(batches), f"epoch {epoch + 1}/{c.epochs}", enabled=self.progress) as bar:
            for b, index in enumerate(batches):
                local = g.shard(index)
                x, y = self._inputs(self.train_set, local)
                opt.zero_grad()
                out = net(x)
                loss = self._loss(out, y)
                t0 = time.perf_counter()
                loss.backward()
                clock["backward_s"] += time.perf_counter() - t0
                if b < c.grad_check_batches:
                    t0 = time.perf_counter()
                    totals["cos"].append(self._gradient_agreement(net, x, y))
                    clock["gradcheck_s"] += time.perf_counter() - t0
                g.average_gradients(net.parameters(), len(local), len(index))
                opt.step()
                net.clip_weights(limits)
                bump_out, bump_y = out, y
                if g.world > 1:
                    bump_out, bump_y = self._gather_outputs(net, out, y, len(index))
                net.bump_silent(bump_out, bump_y, c.bump * opt.param_groups[0]["lr"] / c.lr)
                average.update()
                health = net.last_measurement.health
                totals["bytes"] += bytes_read(net.last_measurement)
                totals["dropped"] += health.events_dropped_input + health.spikes_dropped_output
                totals["clamped"] += sum(net.last_clamped.values())
                totals["loss"] += loss.item() * len(y)
                totals["correct"] += int((predictions(out["output"].detach()) == y).sum())
                totals["n"] += len(y)
                bar.update(1, loss=totals["loss"] / totals["n"], acc=totals["correct"] / totals["n"])
        timing = {"device_s": net.device.seconds - device0, **clock, "allreduce_s": g.seconds - collective0}
        grad_cosine = float(np.mean(totals["cos"])) if totals["cos"] else None
        if g.world > 1:  # sums over ranks (timings: mean over ranks), one all-reduce
            keys = ("loss", "correct", "n", "bytes", "dropped", "clamped")
            cos = [v for v in totals["cos"] if math.isfinite(v)]
            summed = g.sum_(
                torch.tensor(
                    [float(totals[k]) for k in keys] + [sum(cos), len(cos)] + list(timing.values()), dtype=torch.float64
                )
            ).tolist()
            totals.update({k: v for k, v in zip(keys, summed)})
            grad_cosine = summed[len(keys)] / summed[len(keys) + 1] if summed[len(keys) + 1] else None
            timing = {k: v / g.world for k, v in zip(timing, summed[len(keys) + 2 :])}
        return {
            "train_loss": totals["loss"] / totals["n"],
            "train_accuracy": totals["correct"] / totals["n"],
            "grad_cosine": grad_cosine,
            "bytes_per_step": totals["bytes"] / len(batches),
            "dropped": int(totals["dropped"]),
            "clamped_spikes": int(totals["clamped"]),
            **timing,
        }

    def _common_limits(self, net: DeviceNetwork) -> dict:
        """Per projection, the smallest weight limit of all ranks' chips (``DeviceNetwork.weight_limits``), so ranks stay identical."""
        own = net.weight_limits()
        return dict(zip(own, self.group.min_(torch.tensor(list(own.values()), dtype=torch.float64)).tolist()))

    def _gather_outputs(self, net: DeviceNetwork, out: dict, y: torch.Tensor, n: int) -> tuple[dict, torch.Tensor]:
        """First spike times of every population and the labels of the whole global batch (row order as in one process)."""
        names = list(net.weights)
        first = [out[name][..., 0].detach() for name in names]
        local = torch.cat(first + [y.to(first[0].dtype)[:, None]], dim=1)
        full = self.group.gather_rows(local, n)
        result, col = {}, 0
        for name, f in zip(names, first):
            result[name] = full[:, col : col + f.shape[1], None]
            col += f.shape[1]
        return result, full[:, col].to(torch.int64)

    def _gradient_agreement(self, net: DeviceNetwork, x, y) -> float:
        """Cosine similarity of the device gradient (already in ``.grad``) and the ideal model's."""
        params = list(net.weights.values())
        device_grads = [p.grad.detach().clone() for p in params]
        ideal = torch.autograd.grad(self._loss(net.simulate(x), y), params, allow_unused=True)
        ideal = [torch.zeros_like(p) if g is None else g for p, g in zip(params, ideal)]
        return cosine(device_grads, ideal)

    @torch.no_grad()
    def evaluate(self, net: DeviceNetwork, ds=None, batch_size: int = 500, *, gather: bool = True) -> dict:
        """Loss and accuracy on ``ds`` (default: the test set), sharded over the ranks and summed.
        ``output_times`` (first output spike times of every sample) are gathered to every rank when ``gather``."""
        ds = ds or self.test_set
        g = self.group
        loss, correct, outputs = 0.0, 0, []
        for index in g.shard(torch.arange(len(ds.y))).split(batch_size):
            x, y = self._inputs(ds, index)
            out = net(x)
            loss += float(self._loss(out, y)) * len(y)
            correct += int((predictions(out["output"]) == y).sum())
            outputs.append(out["output"][..., 0])
        times = torch.cat(outputs)
        if g.world > 1:
            loss, correct = g.sum_(torch.tensor([loss, correct], dtype=torch.float64)).tolist()
            times = g.gather_rows(times, len(ds.y)) if gather else times
        return {"test_loss": loss / len(ds.y), "test_accuracy": correct / len(ds.y), "output_times": times}

    # --- the run --------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict:
        c, g = self.config, self.group
        ckpt_path = self.out / CHECKPOINT
        if g.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if resume and not ckpt_path.exists():
                raise ConfigError(f"--resume: no checkpoint at {ckpt_path}; start without --resume")
        rerun = f"tools/train --out {self.out} --resume" + (
            f" --nproc {g.world} --device {c.device}" if g.world > 1 else ""
        )
        who = f"rank {g.rank}: device {self.device_url}" if g.world > 1 else f"device {c.device}"
        start = time.perf_counter()
        with hil.open(self.device_url) as raw_device:
            device = TimedDevice(raw_device)
            info = device.info()
            result = self._calibrate(raw_device)
            generator = torch.Generator().manual_seed(c.seed)
            net = self._build(device, result, generator)
            opt, sched = self._optimizer(net.parameters())
            average = WeightAverage(net.parameters(), c.ema_decay)
            limits = None
            if g.world > 1:
                g.broadcast_(net.parameters())  # identical from the seed already; rank 0's to be safe
                limits = self._common_limits(net)
                net.clip_weights(limits)
            ranks = g.gather_objects(
                {"rank": g.rank, "device": self.device_url, "chip_id": info.chip_id, "calibration_id": result.id}
            )
            history, first_epoch = [], 0
            if resume:
                state = g.broadcast_object(checkpoint.load(ckpt_path) if g.is_main else None)
                saved_ids = state.get("calibration_ids") or [state["calibration_id"]]
                if len(saved_ids) != g.world or saved_ids[g.rank] != result.id:
                    raise CalibrationError(
                        f"checkpoint {ckpt_path} was trained with calibration(s) {saved_ids}, "
                        f"this run ({who}) uses {result.id} as rank {g.rank} of {g.world}"
                    )
                net.load_state_dict(state["weights"])
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                average.load_state_dict(state["weight_average"])
                generator.set_state(state["rng"])
                history = json.loads(state["metrics"])
                first_epoch = int(state["epoch"])
                log.info("resume", epoch=first_epoch, checkpoint=str(ckpt_path), rank=g.rank)
            if g.is_main:
                (self.out / METRICS).write_text("".join(json.dumps(m) + "\n" for m in history))
                (self.out / "config.json").write_text(json.dumps(c.to_dict(), indent=2) + "\n")
            final = None  # the last epoch's test evaluation, with every rank's output times
            for epoch in range(first_epoch, c.epochs):
                t0 = time.perf_counter()
                last = epoch + 1 == c.epochs
                try:
                    metrics = self._train_epoch(net, opt, average, epoch, limits)
                    t1, device1 = time.perf_counter(), device.seconds
                    with average.applied():
                        evaluation = self.evaluate(net, gather=last)
                    metrics["eval_s"], metrics["eval_device_s"] = time.perf_counter() - t1, device.seconds - device1
                    if g.world > 1:
                        metrics["ranks_in_sync"] = g.in_sync(net.parameters())
                        if not metrics["ranks_in_sync"]:
                            log.error("ranks diverged; taking rank 0's weights", epoch=epoch + 1, rank=g.rank)
                            g.broadcast_(net.parameters())
                except (DeviceTimeout, DeviceError, ProtocolError, CollectiveError) as exc:
                    raise self._interrupted(
                        exc, f"during epoch {epoch + 1}", who, self._kept(ckpt_path, history, first_epoch), rerun
                    ) from exc
                sched.step()
                final = evaluation if last else None
                metrics.update({k: v for k, v in evaluation.items() if k != "output_times"})
                metrics.update(epoch=epoch + 1, lr=opt.param_groups[0]["lr"], wall_s=time.perf_counter() - t0)
                if g.world > 1:
                    metrics["world_size"] = g.world
                history.append(metrics)
                if g.is_main:
                    with open(self.out / METRICS, "a") as fh:
                        fh.write(json.dumps(metrics) + "\n")
                    checkpoint.save_atomic(
                        {
                            "epoch": epoch + 1,
                            "weights": net.state_dict(),
                            "optimizer": opt.state_dict(),
                            "scheduler": sched.state_dict(),
                            "weight_average": average.state_dict(),
                            "rng": generator.get_state(),
                            "calibration_id": result.id,
                            "calibration_ids": [r["calibration_id"] for r in ranks],
                            "metrics": json.dumps(history),
                            "config": json.dumps(c.to_dict()),
                        },
                        ckpt_path,
                    )
                log.info("epoch", **{k: v for k, v in metrics.items() if v is not None})
                if self.progress:
                    print(
                        f"epoch {epoch + 1}/{c.epochs}: loss {metrics['train_loss']:.4f} train {metrics['train_accuracy']:.3f} "
                        f"test {metrics['test_accuracy']:.3f} grad-cos {metrics['grad_cosine'] if metrics['grad_cosine'] is None else round(metrics['grad_cosine'], 3)}",
                        flush=True,
                    )
            try:
                with average.applied():
                    final = final or self.evaluate(net)  # resumed after the last epoch: evaluate once more
                digests = g.gather_objects(digest(net.parameters())) if g.world > 1 else None
            except (DeviceTimeout, DeviceError, ProtocolError, CollectiveError) as exc:
                raise self._interrupted(
                    exc, "in the final evaluation", who, self._kept(ckpt_path, history, first_epoch), None
                ) from exc
            report = self._report(info, result, history, final, time.perf_counter() - start)
            if g.world > 1:
                report.update(world_size=g.world, ranks=ranks, weight_digests=digests)
            if g.is_main:
                from .plots import write_plots

                with average.applied():  # the weights the test accuracy is for
                    report["plots"] = write_plots(
                        self.out, net, history, final["output_times"], self.test_set, self._inputs
                    )
                checkpoint.write_text_atomic(self.out / REPORT, json.dumps(report, indent=2) + "\n")
            return report

    @staticmethod
    def _interrupted(exc: Exception, when: str, who: str, kept: str, rerun: str | None) -> TrainingInterrupted:
        """The error that ends a run on a device or group failure: what failed, where, what is kept, how to go on."""
        what = (
            f"{exc} ({when}; this rank: {who})" if isinstance(exc, CollectiveError) else f"{who} failed {when}: {exc}"
        )
        return TrainingInterrupted(f"{what}. Kept {kept}" + (f"; rerun with: {rerun}" if rerun else ""))

    def _kept(self, ckpt_path, history, first_epoch) -> str:
        if not self.group.is_main:
            return f"rank 0's last checkpoint in {ckpt_path}"
        if ckpt_path.exists():
            return f"the checkpoint of epoch {first_epoch if not history else history[-1]['epoch']} in {ckpt_path}"
        return "no checkpoint yet"

    def _report(self, info, result, history, final, wall_s) -> dict:
        return {
            "test_accuracy": final["test_accuracy"],
            "test_loss": final["test_loss"],
            "epochs": len(history),
            "metrics": history,
            "config": self.config.to_dict(),
            "chip_id": info.chip_id,
            "calibration_id": result.id,
            "software_version": hil.__version__,
            "wall_time_s": wall_s,
            "bytes_per_step": history[-1]["bytes_per_step"] if history else None,
            "placement": self.placement.summary(),
        }


def bytes_read(measurement: hil.Measurement) -> int:
    """Bytes the host read from the device for a measurement: counted on the link, or its framed wire size in-process."""
    if measurement.health.bytes_received:
        return measurement.health.bytes_received
    return wire.framed_size(wire.RunReply(measurement))
