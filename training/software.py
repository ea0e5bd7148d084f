"""Software EventProp training of a 5-hidden-3 LIF network on Yin-Yang.

Run ``python -m training.software --seed 0`` (see ``--help``). Prints one plain line per epoch.
"""

from __future__ import annotations

import argparse
import sys
import time

import attrs
import torch

from training import bumping
from training.averaging import WeightAverage
from training.data import SpikeEncoding, YinYang
from training.lif import LIFParameters, spike_times
from training.losses import first_spike_cross_entropy, predict


@attrs.frozen
class TrainConfig:
    """Hyper-parameters; times in seconds."""

    seed: int = 0
    epochs: int = 40
    batch_size: int = 32
    lr: float = 2e-3
    lr_decay: float = 0.97  # per epoch
    hidden: int = 120
    max_spikes: int = 1
    tau_mem: float = 12e-6
    tau_syn: float = 6e-6
    t_max: float = 60e-6
    tau_0: float = 0.5e-6
    tau_1: float = 60e-6
    alpha: float = 3e-3
    w_hidden: tuple[float, float] = (1.5, 1.5)  # mean, std
    w_out: tuple[float, float] = (0.1, 0.1)
    bump: float = 2e-2  # weight bump for silent neurons, see bump_silent()
    ema_decay: float = 0.995  # evaluate a moving average of the weights (0: off), see training.averaging
    dtype: torch.dtype = torch.float32


class Network(torch.nn.Module):
    """Two LIF layers (hidden, output) with shared parameters; weights drawn from ``generator``."""

    def __init__(self, config: TrainConfig, generator: torch.Generator):
        super().__init__()
        self.config = config
        self.params = LIFParameters(tau_mem=config.tau_mem, tau_syn=config.tau_syn)
        draw = lambda shape, mean, std: torch.randn(shape, generator=generator, dtype=config.dtype) * std + mean  # noqa: E731
        self.w_hidden = torch.nn.Parameter(draw((5, config.hidden), *config.w_hidden))
        self.w_out = torch.nn.Parameter(draw((config.hidden, 3), *config.w_out))

    def forward(self, input_times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Input times (batch, 5) -> hidden (batch, hidden, M) and output (batch, 3, M) times."""
        c = self.config
        hidden = spike_times(input_times, self.w_hidden, self.params, t_max=c.t_max, max_spikes=c.max_spikes).times
        out = spike_times(hidden, self.w_out, self.params, t_max=c.t_max, max_spikes=c.max_spikes).times
        return hidden, out


def bump_silent(
    net: Network, hidden: torch.Tensor, out: torch.Tensor, labels: torch.Tensor, scale: float = 1.0
) -> None:
    """Weight bumping (``training.bumping.bump_silent``) with ``net.config.bump`` times ``scale``
    (the learning-rate decay so far, so the bumps anneal with the steps)."""
    bumping.bump_silent([(net.w_hidden, hidden), (net.w_out, out)], labels, net.config.bump * scale)


def accuracy(net: Network, encode: SpikeEncoding, data: YinYang) -> float:
    """Fraction of samples whose earliest output spike is on the label's neuron."""
    with torch.no_grad():
        _, out = net(encode(data.x.to(net.config.dtype)))
    return float((predict(out, net.config.t_max) == data.y).double().mean())


def train(config: TrainConfig, *, log=print) -> list[dict]:
    """Train with Adam; returns one record per epoch (loss, train and test accuracy, seconds)."""
    generator = torch.Generator().manual_seed(config.seed)
    encode = SpikeEncoding()
    train_set, test_set = YinYang.train(), YinYang.test()
    net = Network(config, generator)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimiser, config.lr_decay)
    average = WeightAverage(net.parameters(), config.ema_decay)
    inputs = encode(train_set.x.to(config.dtype))
    history = []
    for epoch in range(1, config.epochs + 1):
        start, total = time.perf_counter(), 0.0
        order = torch.randperm(len(train_set), generator=generator)
        for batch in order.split(config.batch_size):
            hidden, out = net(inputs[batch])
            loss = first_spike_cross_entropy(
                out, train_set.y[batch], tau_0=config.tau_0, t_max=config.t_max, alpha=config.alpha, tau_1=config.tau_1
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            bump_silent(net, hidden, out, train_set.y[batch])
            average.update()
            total += float(loss.detach()) * len(batch)
        schedule.step()
        with average.applied():
            record = {
                "epoch": epoch,
                "loss": total / len(train_set),
                "train_accuracy": accuracy(net, encode, train_set),
                "test_accuracy": accuracy(net, encode, test_set),
                "seconds": time.perf_counter() - start,
            }
        history.append(record)
        log(
            f"epoch {epoch:3d} loss {record['loss']:.4f} train {record['train_accuracy']:.4f} test {record['test_accuracy']:.4f} ({record['seconds']:.1f} s)"
        )
    return history


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=attrs.fields(TrainConfig).epochs.default)
    parser.add_argument("--max-spikes", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    history = train(
        TrainConfig(seed=args.seed, epochs=args.epochs, max_spikes=args.max_spikes),
        log=lambda line: print(line, flush=True),
    )
    print(f"final test accuracy {history[-1]['test_accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
