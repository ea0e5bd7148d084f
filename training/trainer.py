"""``Trainer``: hardware-in-the-loop EventProp training of Yin-Yang on a ``hil.Device``.

One run: open the device, check the network fits (before any device run), load or compute
(cached) the calibration, then per epoch: train on shuffled batches (forward measured on
the device, backward by EventProp replay), compare the device gradient with the ideal
model's on the first batches, evaluate the test set on the device, append a JSON line to
``metrics.jsonl`` and write an atomic checkpoint. At the end: ``report.json`` and plots.
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

from . import checkpoint, data, losses
from .config import TrainerConfig
from .hardware import DeviceNetwork, NeuronModel
from .progress import Progress

log = hil.logging.get_logger(__name__)

N_INPUTS = 5  # x, y, 1-x, 1-y and the bias spike
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
REPORT = "report.json"


class TrainingInterrupted(HilError):
    """Training stopped early (device failure, interrupt); the message says how to resume."""


def predictions(output_times: torch.Tensor) -> torch.Tensor:
    """(batch, n_classes, k) output spike times -> predicted class (batch,); -1 where no output neuron spiked."""
    first = output_times[..., 0]
    pred = first.argmin(dim=1)
    return torch.where(torch.isfinite(first.min(dim=1).values), pred, torch.full_like(pred, -1))


def cosine(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    x = torch.cat([t.flatten() for t in a]).double()
    y = torch.cat([t.flatten() for t in b]).double()
    denom = float(x.norm() * y.norm())
    return float(x @ y) / denom if denom > 0 else float("nan")


class Trainer:
    """Train according to ``config``, writing everything to ``out_dir``."""

    def __init__(self, config: TrainerConfig, out_dir, *, progress: bool = True):
        self.config = config
        self.out = pathlib.Path(out_dir)
        self.progress = progress
        self.dtype = getattr(torch, config.dtype)
        self.encoding = data.SpikeEncoding()
        self.network = hil.Network.feedforward(N_INPUTS, [config.n_hidden], len(data.CLASSES), duplication=config.duplication)
        self.placement = hil.place(self.network)  # ResourceError before any device run
        self.train_set = data.YinYang(config.train_size, data.TRAIN_SEED)
        self.test_set = data.YinYang(config.test_size, data.TEST_SEED)
        for name, ds in (("train", self.train_set), ("test", self.test_set)):
            if not np.all(np.isfinite(ds.x_np)):
                raise ConfigError(f"{name} dataset contains NaN or infinite features; allowed: finite values")

    # --- set-up ------------------------------------------------------------------------
    def _calibrate(self, device) -> "calibration.CalibrationResult":
        info = device.info()
        if self.config.calibration:
            result = calibration.CalibrationResult.load(self.config.calibration)
            if result.chip_id != info.chip_id:
                raise CalibrationError(
                    f"calibration {self.config.calibration} is for chip {result.chip_id!r}, the device is chip {info.chip_id!r}; "
                    "calibrate this chip (tools/calibrate) or drop --calibration to calibrate automatically"
                )
            return result
        return calibration.calibrate(device, calibration.CalibrationTarget(), progress=self.progress, cache=True)

    def _build(self, device, result, generator) -> DeviceNetwork:
        c = self.config
        init = {"hidden0": (c.init_hidden_mean, c.init_hidden_std), "output": (c.init_output_mean, c.init_output_std)}
        return DeviceNetwork(device, self.placement, NeuronModel.from_calibration(result), result.apply(hil.ChipConfig()),
                             duration_s=c.duration_s, max_spikes=1, init=init, generator=generator, dtype=self.dtype)

    def _optimizer(self, params):
        c = self.config
        opt = torch.optim.Adam(params, lr=c.lr) if c.optimizer == "adam" else torch.optim.SGD(params, lr=c.lr, momentum=0.9)
        gamma = c.gamma if c.schedule == "step" else 1.0
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=c.step_size, gamma=gamma)

    # --- one epoch ------------------------------------------------------------------------
    def _loss(self, out: dict, y: torch.Tensor) -> torch.Tensor:
        c = self.config
        return losses.first_spike_cross_entropy(out["output"], y, tau_0=c.tau_0, tau_1=c.tau_1, alpha=c.alpha, t_max=c.duration_s)

    def _inputs(self, ds, index) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.encoding(ds.x[index]).to(self.dtype)
        return x, torch.as_tensor(ds.y[index], dtype=torch.int64)

    def _train_epoch(self, net: DeviceNetwork, opt, epoch: int) -> dict:
        c = self.config
        order = torch.randperm(len(self.train_set.y), generator=torch.Generator().manual_seed(c.seed * 100_003 + epoch))
        batches = order.split(c.batch_size)
        totals = {"loss": 0.0, "correct": 0, "n": 0, "bytes": 0, "cos": [], "dropped": 0, "clamped": 0}
        with Progress(len(batches), f"epoch {epoch + 1}/{c.epochs}", enabled=self.progress) as bar:
            for b, index in enumerate(batches):
                x, y = self._inputs(self.train_set, index)
                opt.zero_grad()
                out = net(x)
                loss = self._loss(out, y)
                loss.backward()
                if b < c.grad_check_batches:
                    totals["cos"].append(self._gradient_agreement(net, x, y))
                opt.step()
                health = net.last_measurement.health
                totals["bytes"] += bytes_read(net.last_measurement)
                totals["dropped"] += health.events_dropped_input + health.spikes_dropped_output
                totals["loss"] += loss.item() * len(y)
                totals["correct"] += int((predictions(out["output"].detach()) == y).sum())
                totals["n"] += len(y)
                bar.update(1, loss=totals["loss"] / totals["n"], acc=totals["correct"] / totals["n"])
        return {
            "train_loss": totals["loss"] / totals["n"],
            "train_accuracy": totals["correct"] / totals["n"],
            "grad_cosine": float(np.mean(totals["cos"])) if totals["cos"] else None,
            "bytes_per_step": totals["bytes"] / len(batches),
            "dropped": totals["dropped"],
        }

    def _gradient_agreement(self, net: DeviceNetwork, x, y) -> float:
        """Cosine similarity of the device gradient (already in ``.grad``) and the ideal model's."""
        params = list(net.weights.values())
        device_grads = [p.grad.detach().clone() for p in params]
        ideal = torch.autograd.grad(self._loss(net.simulate(x), y), params, allow_unused=True)
        ideal = [torch.zeros_like(p) if g is None else g for p, g in zip(params, ideal)]
        return cosine(device_grads, ideal)

    @torch.no_grad()
    def evaluate(self, net: DeviceNetwork, ds=None, batch_size: int = 500) -> dict:
        ds = ds or self.test_set
        loss, correct, outputs = 0.0, 0, []
        for index in torch.arange(len(ds.y)).split(batch_size):
            x, y = self._inputs(ds, index)
            out = net(x)
            loss += float(self._loss(out, y)) * len(y)
            correct += int((predictions(out["output"]) == y).sum())
            outputs.append(out["output"][..., 0])
        return {"test_loss": loss / len(ds.y), "test_accuracy": correct / len(ds.y), "output_times": torch.cat(outputs)}

    # --- the run --------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict:
        c = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        ckpt_path = self.out / CHECKPOINT
        if resume and not ckpt_path.exists():
            raise ConfigError(f"--resume: no checkpoint at {ckpt_path}; start without --resume")
        start = time.perf_counter()
        with hil.open(c.device) as device:
            info = device.info()
            result = self._calibrate(device)
            generator = torch.Generator().manual_seed(c.seed)
            net = self._build(device, result, generator)
            opt, sched = self._optimizer(net.parameters())
            history, first_epoch = [], 0
            if resume:
                state = checkpoint.load(ckpt_path)
                if state["calibration_id"] != result.id:
                    raise CalibrationError(f"checkpoint {ckpt_path} was trained with calibration {state['calibration_id']}, this run uses {result.id}")
                net.load_state_dict(state["weights"])
                opt.load_state_dict(state["optimizer"])
                sched.load_state_dict(state["scheduler"])
                generator.set_state(state["rng"])
                history = json.loads(state["metrics"])
                first_epoch = int(state["epoch"])
                log.info("resume", epoch=first_epoch, checkpoint=str(ckpt_path))
            (self.out / METRICS).write_text("".join(json.dumps(m) + "\n" for m in history))
            (self.out / "config.json").write_text(json.dumps(c.to_dict(), indent=2) + "\n")
            for epoch in range(first_epoch, c.epochs):
                t0 = time.perf_counter()
                try:
                    metrics = self._train_epoch(net, opt, epoch)
                    evaluation = self.evaluate(net)
                except (DeviceTimeout, DeviceError, ProtocolError) as exc:
                    where = f"the checkpoint of epoch {first_epoch if not history else history[-1]['epoch']} in {ckpt_path}" if ckpt_path.exists() else "no checkpoint yet"
                    raise TrainingInterrupted(
                        f"device {c.device} failed during epoch {epoch + 1}: {exc}. Kept {where}; "
                        f"rerun with: tools/train --out {self.out} --resume"
                    ) from exc
                sched.step()
                metrics.update({k: v for k, v in evaluation.items() if k != "output_times"})
                metrics.update(epoch=epoch + 1, lr=opt.param_groups[0]["lr"], wall_s=time.perf_counter() - t0)
                history.append(metrics)
                with open(self.out / METRICS, "a") as fh:
                    fh.write(json.dumps(metrics) + "\n")
                checkpoint.save_atomic({
                    "epoch": epoch + 1, "weights": net.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "rng": generator.get_state(), "calibration_id": result.id,
                    "metrics": json.dumps(history), "config": json.dumps(c.to_dict()),
                }, ckpt_path)
                log.info("epoch", **{k: v for k, v in metrics.items() if v is not None})
                if self.progress:
                    print(f"epoch {epoch + 1}/{c.epochs}: loss {metrics['train_loss']:.4f} train {metrics['train_accuracy']:.3f} "
                          f"test {metrics['test_accuracy']:.3f} grad-cos {metrics['grad_cosine'] if metrics['grad_cosine'] is None else round(metrics['grad_cosine'], 3)}", flush=True)
            final = self.evaluate(net)
            report = self._report(info, result, history, final, time.perf_counter() - start)
            from .plots import write_plots

            report["plots"] = write_plots(self.out, net, history, final["output_times"], self.test_set, self._inputs)
            checkpoint.write_text_atomic(self.out / REPORT, json.dumps(report, indent=2) + "\n")
            return report

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
