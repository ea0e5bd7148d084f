"""``Trainer``: EventProp training of a layered spiking network on a chip or on the ideal model.

``Trainer(config, out_dir).run()``: check everything that can be checked without a device
(data shapes, the loss, placement, a checkpoint to resume), open the backend (device +
calibration, or software), then per epoch: train (``training.epoch``), evaluate the moving
average of the weights, write ``metrics.jsonl`` and an atomic checkpoint. At the end:
``report.json``, the network files (``training.run_files``: ``network.json``/``.npz`` and the
NIR graph ``network.nir``) and plots.

Data-parallel (``group`` of several ranks, see ``training.distributed``): every rank opens
its own device, calibrates it and trains on its strided share of every global batch;
gradients are averaged and metrics summed over ranks, weight bumping uses the gathered
global batch and the weight clip the tightest limit of all chips, so the ranks' weights stay
bit-identical (checked every epoch). Rank 0 writes the files.
"""

from __future__ import annotations

import json
import math
import pathlib
import time

import torch

import hil
from hil.errors import CalibrationError, ConfigError, DeviceError, DeviceTimeout, HilError, ProtocolError, ResourceError
from hil.files import write_atomic

from . import checkpoint, datasets, epoch, losses, run_files
from .averaging import WeightAverage
from .backends import Backend, open_backend
from .checkpoint import RunState
from .config import TrainerConfig
from .distributed import CollectiveError, Group, device_for_rank, digest
from .network import hil_network, layers

log = hil.logging.get_logger(__name__)

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
REPORT = "report.json"
CONFIG = "config.json"
DEVICE_FAILURES = (DeviceTimeout, DeviceError, ProtocolError, CollectiveError)


class TrainingInterrupted(HilError):
    """Training stopped early (device failure, interrupt); the message says how to resume."""


class Trainer:
    """Train according to ``config``, writing everything to ``out_dir``.

    data:     None (the built-in ``config.dataset``) or ``(train, test)``, each a ``SpikeData``, an
              ``(input times, targets)`` tensor pair or a torch ``Dataset`` of such pairs
              (``config.dataset`` must be ``"custom"``)
    loss:     None (the built-in ``config.loss``) or a callable ``loss(Outputs, targets) -> 0-d tensor``
              (``config.loss`` must be ``"custom"``); its ``predict(Outputs)``, if any, gives the class
    group:    the ``training.distributed.Group`` of a data-parallel run (default: one process)
    """

    def __init__(self, config: TrainerConfig, out_dir, *, data=None, loss=None, progress=True, group=None):
        self.config = config
        self.out = pathlib.Path(out_dir)
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"--out {self.out}: is a file; expected a directory (new or of an earlier run)")
        self.group = group if group is not None else Group.single()
        self.progress = progress and self.group.is_main
        self.ranks: list[dict] = []  # every rank's device, chip and calibration, once the backend is open
        self.train_data, self.test_data = self._data(data)
        n_classes = self.train_data.n_classes
        self.n_outputs = n_classes * config.output_copies  # output neurons, class-major
        self.chain = layers(config.hidden_sizes, self.n_outputs, config.spikes_per_layer)
        n_in = self.train_data.n_inputs
        for name, ds in (("train data", self.train_data), ("test data", self.test_data)):
            ds.check_fits(n_in, n_classes, config.duration_s, name)
        self.network = hil_network(n_in, config.duplication, self.chain)
        self.placement = None if config.software else self._place()
        self.loss = self._loss(loss)
        self.init_weights = run_files.weights_from_nir(config, n_in, self.n_outputs)
        self.predict = losses.prediction_rule(self.loss)
        world = self.group.world
        self.global_batch = config.batch_size * (world if config.batch_scope == "per_rank" else 1)
        n_train = len(self.train_data)
        smallest = min(self.global_batch, n_train % self.global_batch or self.global_batch)
        if world > 1 and (smallest < world or len(self.test_data) < world):
            raise ConfigError(
                f"{world} ranks need at least one sample each: smallest training batch {smallest}, "
                f"test samples {len(self.test_data)}; allowed: the step's batch, the last batch, test set >= {world}"
            )
        self.device_url = device_for_rank(config.device, self.group.rank, world)

    # --- checks before any device ---------------------------------------------------------
    def _data(self, data):
        c = self.config
        if data is None:
            if c.dataset == "custom":
                raise ConfigError(
                    "TrainerConfig.dataset = 'custom' needs data: Trainer(config, out, data=(train, test))"
                )
            return datasets.builtin(c.dataset, c.train_size, c.test_size)
        if c.dataset != "custom":
            raise ConfigError(f"data was passed but TrainerConfig.dataset = {c.dataset!r}; set dataset='custom'")
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ConfigError("data: expected (train, test); each a SpikeData, an (inputs, targets) pair or a Dataset")
        train = datasets.SpikeData.of(data[0], name="train data")
        test = datasets.SpikeData.of(data[1], n_classes=train.n_classes, name="test data")
        return train, test

    def _place(self) -> hil.Placement:
        try:
            return hil.place(self.network)
        except ResourceError as exc:
            names = ", ".join(f"{layer.name} = {layer.title}" for layer in self.chain)
            raise ResourceError(f"the network does not fit on one chip: {exc} ({names})") from None

    def _loss(self, loss):
        c = self.config
        if loss is None:
            return losses.loss_from_config(c)  # built-ins are tested; membrane losses need samples to probe
        if c.loss != "custom":
            raise ConfigError(f"a loss was passed but TrainerConfig.loss = {c.loss!r}; set loss='custom'")
        n = min(4, len(self.train_data))
        shape = (n, self.n_outputs, self.chain[-1].max_spikes)
        times = torch.linspace(0.1, 0.9, shape[0] * shape[1] * shape[2], dtype=torch.float64).reshape(shape)
        times = (times * c.duration_s).to(getattr(torch, c.dtype))
        outputs = losses.Outputs(times, {"output": times}, c.duration_s)
        targets = datasets.batch_targets(self.train_data.targets[:n], times.dtype)
        try:
            value = loss(outputs, targets)
        except Exception as exc:
            raise ConfigError(
                f"the loss fails on output times of shape {shape} and targets of shape "
                f"{tuple(targets.shape)}: {type(exc).__name__}: {exc}"
            ) from None
        losses.checked(value)
        return loss

    def _saved_state(self) -> dict:
        """Rank 0 reads and validates the checkpoint (before any device); every rank gets it or the same error."""
        g = self.group
        shapes = dict(zip((layer.name for layer in self.chain), self._weight_shapes(), strict=True))
        state, error = None, None
        if g.is_main:
            try:
                state = checkpoint.read(self.out / CHECKPOINT, shapes)
            except ConfigError as exc:
                error = str(exc)
        state, error = g.broadcast_object((state, error))
        if error:
            raise ConfigError(error)
        return state

    def _weight_shapes(self) -> list[tuple[int, int]]:
        return [self.network.weight_shape(p) for p in self.network.projections]

    # --- the run --------------------------------------------------------------------------
    def run(self, *, resume: bool = False) -> dict:
        start = time.perf_counter()
        saved = self._saved_state() if resume else None
        if self.group.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
        generator = torch.Generator().manual_seed(self.config.seed)
        with self.open_backend(generator) as backend:
            self._announce(backend)
            if self.init_weights is not None:  # before _setup: the weight average starts from them
                run_files.load_weights(backend.network, self.init_weights, clip=True)
            state, loop = self._setup(backend, generator)
            if saved is not None:
                self._resume(state, saved, backend)
            if self.group.is_main:
                write_atomic(self.out / CONFIG, json.dumps(self.config.to_dict(), indent=2) + "\n")
                self._write_metrics(state.history)
            final = self._epochs(state, loop)
            return self._finish(state, loop, backend, final, time.perf_counter() - start)

    def open_backend(self, generator: torch.Generator) -> Backend:
        """The run's backend (this rank's device, calibrated, or software) as ``run`` opens it; a context
        manager. ``generator`` draws the initial weights."""
        return open_backend(
            self.config,
            self.chain,
            self.train_data.n_inputs,
            self.placement,
            url=self.device_url,
            calibration_file=self._calibration_file(),
            generator=generator,
            progress=self.progress,
        )

    def _calibration_file(self) -> str | None:
        c = self.config
        return device_for_rank(c.calibration, self.group.rank, self.group.world) if c.calibration else None

    def _announce(self, backend: Backend) -> None:
        log.info("backend", description=backend.describe(), rank=self.group.rank)
        if self.progress:
            print(backend.describe(), flush=True)

    def _setup(self, backend: Backend, generator) -> tuple[RunState, epoch.Loop]:
        c, g, net = self.config, self.group, backend.network
        self.placement = backend.placement or self.placement
        opt = (
            torch.optim.Adam(net.parameters(), lr=c.lr)
            if c.optimizer == "adam"
            else torch.optim.SGD(net.parameters(), lr=c.lr, momentum=0.9)
        )
        if c.schedule == "exponential":
            sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=c.gamma)
        elif c.schedule == "cosine":  # closed form of this run's epochs, so a resume with more epochs follows it
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: (1 + math.cos(math.pi * e / c.epochs)) / 2)
        else:
            sched = torch.optim.lr_scheduler.StepLR(opt, c.step_size, gamma=c.gamma if c.schedule == "step" else 1.0)
        average = WeightAverage(net.parameters(), c.ema_decay)
        limits = None
        if g.world > 1:
            g.broadcast_(net.parameters())  # identical from the seed already; rank 0's to be safe
            own = net.weight_limits()
            limits = dict(zip(own, g.min_(torch.tensor(list(own.values()), dtype=torch.float64)).tolist(), strict=True))
            net.clip_weights(limits)
        self.ranks = g.gather_objects(
            {
                "rank": g.rank,
                "device": self.device_url,
                "chip_id": backend.chip_id,
                "calibration_id": backend.calibration_id,
            }
        )
        ids = [r["calibration_id"] for r in self.ranks]
        state = RunState(net, opt, sched, average, generator, json.dumps(c.to_dict()), ids)
        loop = epoch.Loop(
            c,
            g,
            net,
            opt,
            average,
            self.loss,
            self.predict,
            self.train_data,
            self.test_data,
            self.global_batch,
            limits,
            self.progress,
            backend.device,
        )
        return state, loop

    def _resume(self, state: RunState, saved: dict, backend: Backend) -> None:
        g = self.group
        ids = saved["calibration_ids"]
        if len(ids) != g.world or ids[g.rank] != backend.calibration_id:
            who = f"rank {g.rank} of {g.world}, device {self.device_url}"
            raise CalibrationError(
                f"checkpoint {self.out / CHECKPOINT} was trained with calibration(s) {ids}; this run ({who}) "
                f"uses {backend.calibration_id}"
            )
        state.load_state_dict(saved)
        if isinstance(state.scheduler, torch.optim.lr_scheduler.LambdaLR):  # this run's schedule at the saved epoch
            factor = state.scheduler.lr_lambdas[0](state.scheduler.last_epoch)
            for group, base in zip(state.optimizer.param_groups, state.scheduler.base_lrs, strict=True):
                group["lr"] = base * factor
        log.info("resume", epoch=state.epoch, checkpoint=str(self.out / CHECKPOINT), rank=g.rank)

    def _epochs(self, state: RunState, loop: epoch.Loop) -> dict | None:
        """Train the remaining epochs; returns the last epoch's evaluation (None if none was left)."""
        c, g = self.config, self.group
        final = None
        for index in range(state.epoch, c.epochs):
            t0 = time.perf_counter()
            last = index + 1 == c.epochs
            try:
                metrics = epoch.train_epoch(loop, index)
                t1, device1 = time.perf_counter(), loop.device_seconds()
                with state.average.applied():
                    evaluation = epoch.evaluate(loop, gather=last)
                metrics["eval_s"], metrics["eval_device_s"] = time.perf_counter() - t1, loop.device_seconds() - device1
                if g.world > 1:
                    metrics["ranks_in_sync"] = g.in_sync(state.network.parameters())
                    if not metrics["ranks_in_sync"]:
                        log.error("ranks diverged; taking rank 0's weights", epoch=index + 1, rank=g.rank)
                        g.broadcast_(state.network.parameters())
            except DEVICE_FAILURES as exc:
                raise self._interrupted(exc, f"during epoch {index + 1}", state, resumable=True) from exc
            state.scheduler.step()
            final = evaluation if last else None
            metrics.update({k: v for k, v in evaluation.items() if k != "output_times"})
            metrics.update(epoch=index + 1, lr=state.optimizer.param_groups[0]["lr"], wall_s=time.perf_counter() - t0)
            if g.world > 1:
                metrics["world_size"] = g.world
            state.history.append(metrics)
            state.epoch = index + 1
            self._checkpoint(state)
            log.info("epoch", **{k: v for k, v in metrics.items() if v is not None})
            if self.progress:
                print(epoch_line(metrics, c.epochs), flush=True)
        return final

    def _checkpoint(self, state: RunState) -> None:
        if self.group.is_main:
            self._write_metrics(state.history)
            checkpoint.save(state.state_dict(), self.out / CHECKPOINT)

    def _write_metrics(self, history: list) -> None:
        write_atomic(self.out / METRICS, "".join(json.dumps(m) + "\n" for m in history))

    def _finish(self, state: RunState, loop: epoch.Loop, backend: Backend, final, wall_s: float) -> dict:
        g = self.group
        try:
            with state.average.applied():
                final = final or epoch.evaluate(loop)  # resumed after the last epoch: evaluate once more
            digests = g.gather_objects(digest(state.network.parameters())) if g.world > 1 else None
        except DEVICE_FAILURES as exc:
            raise self._interrupted(exc, "in the final evaluation", state, resumable=False) from exc
        report = self._report(backend, state.history, final, wall_s)
        if g.world > 1:
            report.update(world_size=g.world, ranks=self.ranks, weight_digests=digests)
        if g.is_main:
            from .plots import write_plots

            with state.average.applied():  # the weights the test accuracy is for
                files = run_files.write_network(
                    self.out, backend, self.config, run_files.spikes_per_input(self.train_data, self.test_data)
                )
                report["network_files"] = {**files, **run_files.write_nir(self.out)}
                report["plots"] = write_plots(self.out, loop, state.history, self._class_times(final["output_times"]))
            write_atomic(self.out / REPORT, json.dumps(report, indent=2) + "\n")
        return report

    def _class_times(self, first: torch.Tensor) -> torch.Tensor:
        """(n, n_classes) first spike per class from the output layer's (n, n_outputs) first spikes."""
        c = self.config
        if c.output_copies == 1:
            return first
        return losses.class_first_spikes(first, c.output_copies, c.output_copies_time, c.duration_s)

    def _interrupted(self, exc: Exception, when: str, state: RunState, *, resumable: bool) -> TrainingInterrupted:
        """The error that ends a run on a device or group failure: what failed, where, what is kept, how to go on."""
        g, c = self.group, self.config
        who = f"rank {g.rank}: device {self.device_url}" if g.world > 1 else f"device {c.device}"
        what = (
            f"{exc} ({when}; this rank: {who})" if isinstance(exc, CollectiveError) else f"{who} failed {when}: {exc}"
        )
        ckpt = self.out / CHECKPOINT
        if not g.is_main:
            kept = f"rank 0's last checkpoint in {ckpt}"
        else:
            kept = f"the checkpoint of epoch {state.epoch} in {ckpt}" if ckpt.exists() else "no checkpoint yet"
        rerun = f"tools/train --out {self.out} --resume" + (
            f" --nproc {g.world} --device {c.device}" if g.world > 1 else ""
        )
        return TrainingInterrupted(f"{what}. Kept {kept}" + (f"; rerun with: {rerun}" if resumable else ""))

    def _report(self, backend: Backend, history: list, final: dict, wall_s: float) -> dict:
        return {
            "test_accuracy": final["test_accuracy"],
            "test_loss": final["test_loss"],
            "silent_trials": final["silent_trials"],
            "epochs": len(history),
            "metrics": history,
            "config": self.config.to_dict(),
            "backend": "software" if backend.device is None else "device",
            "chip_id": backend.chip_id,
            "calibration_id": backend.calibration_id,
            "calibration": backend.calibration_source,
            "layers": [
                {"name": layer.name, "title": layer.title, "size": layer.size, "max_spikes": layer.max_spikes}
                for layer in self.chain
            ],
            "software_version": hil.__version__,
            "wall_time_s": wall_s,
            "bytes_per_step": history[-1]["bytes_per_step"] if history else None,
            "device_totals": backend.device.totals.as_dict() if backend.device is not None else None,
            "placement": self.placement.summary() if self.placement is not None else None,
        }


def epoch_line(metrics: dict, epochs: int) -> str:
    """The console line of a finished epoch."""
    cos = metrics["grad_cosine"]
    return (
        f"epoch {metrics['epoch']}/{epochs}: loss {metrics['train_loss']:.4f} train {metrics['train_accuracy']:.3f} "
        f"test {metrics['test_accuracy']:.3f}" + ("" if cos is None else f" grad-cos {cos:.3f}")
    )
