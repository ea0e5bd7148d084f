"""Losses on output spike times (seconds), mean over the batch, and the class a network predicts.

A loss is any callable ``loss(outputs: Outputs, targets) -> 0-d tensor``. ``Outputs`` holds the
output layer's spike times, every layer's times, the trial length and the membrane samples
(``training.membrane.MembraneSamples``) when the run reads them. Built-ins: ``FirstSpikeCrossEntropy``,
``SpikeTimeMSE`` and ``SpikeCountCrossEntropy`` on spikes; ``OutputCopies`` (several output
neurons per class, one time per class); ``MaxMembraneCrossEntropy`` (non-spiking
readout) and ``SilentMembraneLoss`` (a peak-membrane signal for silent neurons) on membrane
samples; ``loss_from_config`` builds one from a ``TrainerConfig``.

Silent neurons (time inf, or any time >= t_max) are clamped to t_max inside the time losses,
so they contribute a finite value and zero gradient to their spike time.
"""

from __future__ import annotations

import attrs
import torch

from hil.errors import ConfigError


@attrs.frozen(eq=False)
class Outputs:
    """A forward pass as a loss sees it.

    times:  output layer (batch, n_out, M) spike times in seconds, ascending, inf where none
    layers: layer name -> (batch, n, M) times of every layer (hidden layers too), in order
    t_max:  trial duration (s); spikes at or after it do not count
    samples: ``training.membrane.MembraneSamples`` (sample times, layer -> (batch, n, S) model
            units), or None when the run reads no membrane
    """

    times: torch.Tensor
    layers: dict
    t_max: float
    samples: object = None

    def membrane(self, layer: str, what: str) -> torch.Tensor:
        """(batch, n, S) membrane samples of ``layer``; ``ConfigError`` naming ``what`` needs them if absent."""
        if self.samples is None:
            raise ConfigError(
                f"{what} needs membrane samples of layer {layer!r}, but the forward pass read none "
                "(the trainer requests them for readout = 'max_membrane' or silent_loss > 0)"
            )
        return self.samples.of(layer, what)


def _first_spike(times: torch.Tensor, t_max: float) -> torch.Tensor:
    """(batch, n) or (batch, n, M) -> first spike (batch, n), clamped to t_max."""
    first = times[..., 0] if times.dim() == 3 else times
    return torch.where(first < t_max, first, torch.full_like(first, t_max))


def first_spike_cross_entropy(
    times: torch.Tensor,
    labels: torch.Tensor,
    *,
    tau_0: float,
    t_max: float,
    alpha: float = 0.0,
    tau_1: float | None = None,
) -> torch.Tensor:
    """Time-to-first-spike cross-entropy (Wunderlich & Pehle 2021).

    mean_b [ -log softmax(-t_b / tau_0)[label_b] + alpha (exp(t_b,label / tau_1) - 1) ]
    with t the first spike per output neuron; times (batch, n_out[, M]), labels (batch,) int64.
    """
    if alpha and tau_1 is None:
        raise ValueError(f"alpha = {alpha!r} needs tau_1 (seconds); got tau_1 = None")
    if not tau_0 > 0 or (tau_1 is not None and not tau_1 > 0):
        raise ValueError(f"tau_0 = {tau_0!r}, tau_1 = {tau_1!r}; allowed range: > 0 seconds")
    first = _first_spike(times, t_max)
    loss = torch.nn.functional.cross_entropy(-first / tau_0, labels)
    if alpha:
        t_label = first.gather(1, labels.view(-1, 1)).squeeze(1)
        loss = loss + alpha * torch.expm1(t_label / tau_1).mean()
    return loss


def spike_time_mse(times: torch.Tensor, targets: torch.Tensor, *, t_max: float) -> torch.Tensor:
    """Spike-time MSE (Goltz et al. 2021): mean_b sum_n (t_bn - target_bn)^2 / 2.

    times (batch, n_out[, M]) (first spike used), targets (batch, n_out) in seconds.
    """
    first = _first_spike(times, t_max)
    if targets.shape != first.shape:
        raise ValueError(f"targets has shape {tuple(targets.shape)}; allowed: {tuple(first.shape)}")
    return 0.5 * ((first - targets.to(first.dtype)) ** 2).sum(dim=1).mean()


def soft_spike_count(times: torch.Tensor, t_max: float) -> torch.Tensor:
    """(batch, n, M) -> (batch, n): every spike before t_max counts 1 - t / t_max.

    A plain count has zero gradient almost everywhere (spikes move, counts jump); weighting
    each spike by how early it comes gives the count a gradient through every spike time and
    keeps it continuous when a spike crosses t_max (its weight is 0 there).
    """
    counted = times < t_max
    weight = 1 - torch.where(counted, times, torch.full_like(times, t_max)) / t_max
    return weight.sum(dim=-1)


def predict(times: torch.Tensor, t_max: float) -> torch.Tensor:
    """Class prediction (batch,) int64: the output neuron with the earliest first spike."""
    return _first_spike(times, t_max).argmin(dim=1)


def first_spike_prediction(outputs: Outputs) -> torch.Tensor:
    """Earliest first spike; -1 where no output neuron spiked before t_max (a silent trial counts as wrong)."""
    pred = predict(outputs.times, outputs.t_max)
    spiked = (outputs.times[..., 0] < outputs.t_max).any(dim=1)
    return torch.where(spiked, pred, torch.full_like(pred, -1))


def class_of(targets: torch.Tensor) -> torch.Tensor:
    """Class of each sample: the label itself (batch,), or the neuron with the earliest target time (batch, n_out)."""
    return targets if targets.dim() == 1 else targets.argmin(dim=1)


@attrs.frozen
class FirstSpikeCrossEntropy:
    """``first_spike_cross_entropy`` on the output layer; targets are labels."""

    tau_0: float
    tau_1: float
    alpha: float

    def __call__(self, outputs: Outputs, labels: torch.Tensor) -> torch.Tensor:
        return first_spike_cross_entropy(
            outputs.times, labels, tau_0=self.tau_0, t_max=outputs.t_max, alpha=self.alpha, tau_1=self.tau_1
        )

    @staticmethod
    def predict(outputs: Outputs) -> torch.Tensor:
        return first_spike_prediction(outputs)


@attrs.frozen
class SpikeTimeMSE:
    """``spike_time_mse`` to target times (batch, n_out) in seconds, or for labels (batch,): the
    label's neuron aims at ``label_s``, the others at ``other_s``."""

    label_s: float
    other_s: float

    def __call__(self, outputs: Outputs, targets: torch.Tensor) -> torch.Tensor:
        if targets.dim() == 1:
            hot = torch.nn.functional.one_hot(targets, outputs.times.shape[1]).bool()
            targets = torch.where(hot, self.label_s, self.other_s).to(outputs.times.dtype)
        return spike_time_mse(outputs.times, targets, t_max=outputs.t_max)

    @staticmethod
    def predict(outputs: Outputs) -> torch.Tensor:
        return first_spike_prediction(outputs)


@attrs.frozen
class SpikeCountCrossEntropy:
    """Cross-entropy of ``scale`` times the soft spike counts (``soft_spike_count``) of the
    output neurons; targets are labels. Suits multi-spike outputs (``max_spikes > 1``)."""

    scale: float

    def __call__(self, outputs: Outputs, labels: torch.Tensor) -> torch.Tensor:
        counts = soft_spike_count(outputs.times, outputs.t_max)
        return torch.nn.functional.cross_entropy(self.scale * counts, labels)

    @staticmethod
    def predict(outputs: Outputs) -> torch.Tensor:
        """Most (soft-counted) spikes; -1 where no output neuron spiked."""
        counts = soft_spike_count(outputs.times, outputs.t_max)
        pred = counts.argmax(dim=1)
        return torch.where(counts.amax(dim=1) > 0, pred, torch.full_like(pred, -1))


def silent_labels(first: torch.Tensor, labels: torch.Tensor, t_max: float) -> torch.Tensor:
    """(batch, n_out) bool: the label's output neuron of each sample where it did not spike before t_max
    (``first``: (batch, n_out) first spike times in seconds)."""
    label = torch.nn.functional.one_hot(labels, first.shape[1]).bool()
    return label & ~(first.detach() < t_max)


def silent_membrane_penalty(outputs: Outputs, labels: torch.Tensor, *, output: bool = True) -> torch.Tensor:
    """Peak-membrane signal of neurons that should have spiked and did not (0-d tensor).

    Output layer: mean over the batch of ``relu(1 - V_peak)`` of the label's neuron where it
    did not spike before t_max. Hidden layers: sum over neurons silent in every trial of the
    batch of ``relu(1 - V_peak)``, the peak over trials and samples. V in model units (threshold 1).
    ``output=False`` leaves the output layer out (a non-spiking readout).
    """
    total = outputs.times.new_zeros(())
    for name, times in outputs.layers.items():
        if name == "output" and not output:
            continue
        silent = ~(times[..., 0].detach() < outputs.t_max)  # (batch, n)
        peak = outputs.membrane(name, "silent_loss").amax(dim=-1)  # (batch, n)
        if name == "output":
            pick = silent_labels(times[..., 0], labels, outputs.t_max)
            total = total + torch.relu(1 - peak[pick]).sum() / len(labels)
        else:
            dead = silent.all(dim=0)
            total = total + torch.relu(1 - peak[:, dead].amax(dim=0)).sum()
    return total


def peak_membrane_prediction(outputs: Outputs) -> torch.Tensor:
    """The output neuron with the highest sampled membrane (batch,) int64."""
    return outputs.membrane("output", "the max-membrane readout").amax(dim=-1).argmax(dim=1)


@attrs.frozen
class MaxMembraneCrossEntropy:
    """Non-spiking readout: cross-entropy of ``scale`` times each output's peak sampled membrane
    (model units); targets are labels. The output layer's threshold is out of reach."""

    scale: float

    def __call__(self, outputs: Outputs, labels: torch.Tensor) -> torch.Tensor:
        peak = outputs.membrane("output", "the max-membrane readout").amax(dim=-1)
        return torch.nn.functional.cross_entropy(self.scale * peak, labels)

    @staticmethod
    def predict(outputs: Outputs) -> torch.Tensor:
        return peak_membrane_prediction(outputs)


@attrs.frozen
class SilentMembraneLoss:
    """``base`` plus ``weight`` times ``silent_membrane_penalty``; predicts as ``base`` does."""

    base: object
    weight: float

    def __call__(self, outputs: Outputs, targets: torch.Tensor) -> torch.Tensor:
        spiking = not isinstance(self.base, MaxMembraneCrossEntropy)
        penalty = silent_membrane_penalty(outputs, class_of(targets), output=spiking)
        return self.base(outputs, targets) + self.weight * penalty

    def predict(self, outputs: Outputs) -> torch.Tensor:
        return prediction_rule(self.base)(outputs)


def continued_label_times(outputs: Outputs, labels: torch.Tensor, tau_mem: float) -> torch.Tensor:
    """The output times (batch, n_out, M) with the first spike of each label neuron that stayed silent
    replaced by its membrane continuation ``t_peak + tau_mem (1 - V_peak)`` (at most t_max): V_peak the
    highest sample of its membrane (model units, threshold 1), t_peak that sample's time (s). As a
    spike vanishes its peak reaches threshold at the spike's time, so a label time continued this way
    does not jump to t_max there, and its gradient (through V_peak) says how far below threshold it stayed.
    """
    v = outputs.membrane("output", "silent_label_time = 'membrane'")
    peak, at = v.max(dim=-1)
    t_peak = outputs.samples.times.to(v.dtype).gather(1, at)
    continued = torch.clamp(t_peak + tau_mem * (1 - peak), max=outputs.t_max)
    first = outputs.times[..., 0]
    replace = silent_labels(first, labels, outputs.t_max)
    return torch.cat([torch.where(replace, continued, first).unsqueeze(-1), outputs.times[..., 1:]], dim=-1)


@attrs.frozen
class ContinuedLabelTime:
    """``base`` loss on the output times with silent label neurons' times continued from their
    membranes (``continued_label_times``); predicts as ``base`` does, on the spikes alone."""

    base: object
    tau_mem: float

    def __call__(self, outputs: Outputs, targets: torch.Tensor) -> torch.Tensor:
        times = continued_label_times(outputs, class_of(targets), self.tau_mem)
        return self.base(attrs.evolve(outputs, times=times), targets)

    def predict(self, outputs: Outputs) -> torch.Tensor:
        return prediction_rule(self.base)(outputs)


def class_first_spikes(times: torch.Tensor, copies: int, how: str, t_max: float) -> torch.Tensor:
    """First spike of each class (batch, n_classes) from ``copies`` output neurons per class.

    times (batch, n_classes * copies[, M]) in seconds, class-major (neuron j reads class
    j // copies). ``how``: 'mean' of the copies' first spikes, a silent copy counting as t_max
    (each spiking copy gets 1 / copies of the class time's gradient), or 'earliest' (all of it
    to the earliest copy). A class whose copies are all silent is inf.
    """
    first = times[..., 0] if times.dim() == 3 else times
    if first.shape[1] % copies:
        raise ValueError(f"{first.shape[1]} output neurons; allowed: a multiple of copies = {copies}")
    grouped = first.reshape(first.shape[0], -1, copies)
    if how == "earliest":
        return grouped.amin(dim=2)
    if how != "mean":
        raise ValueError(f"how = {how!r}; allowed: 'mean' or 'earliest'")
    spiked = grouped < t_max
    mean = torch.where(spiked, grouped, torch.full_like(grouped, t_max)).mean(dim=2)
    return torch.where(spiked.any(dim=2), mean, torch.full_like(mean, torch.inf))


@attrs.frozen
class OutputCopies:
    """``base`` loss and prediction on the class times (``class_first_spikes``) of an output
    layer with ``copies`` neurons per class."""

    base: object
    copies: int
    how: str

    def grouped(self, outputs: Outputs) -> Outputs:
        """``outputs`` with the output layer's times replaced by the class times (batch, n_classes, 1)."""
        first = class_first_spikes(outputs.times, self.copies, self.how, outputs.t_max)
        return attrs.evolve(outputs, times=first.unsqueeze(-1))

    def __call__(self, outputs: Outputs, targets: torch.Tensor) -> torch.Tensor:
        return self.base(self.grouped(outputs), targets)

    def predict(self, outputs: Outputs) -> torch.Tensor:
        return prediction_rule(self.base)(self.grouped(outputs))


def loss_from_config(config):
    """The built-in loss a ``TrainerConfig`` names, with its membrane options and output copies
    (``ConfigError`` for 'custom': pass it in Python)."""
    if config.readout == "max_membrane":
        base = MaxMembraneCrossEntropy(config.readout_scale)
    else:
        base = _spike_loss(config)
    if config.output_copies > 1:
        base = OutputCopies(base, config.output_copies, config.output_copies_time)
    if config.silent_label_time == "membrane":
        base = ContinuedLabelTime(base, config.tau_mem)
    return SilentMembraneLoss(base, config.silent_loss) if config.silent_loss > 0 else base


def _spike_loss(config):
    if config.loss == "first_spike_ce":
        return FirstSpikeCrossEntropy(config.tau_0, config.tau_1, config.alpha)
    if config.loss == "spike_time_mse":
        return SpikeTimeMSE(config.target_label_s, config.target_other_s)
    if config.loss == "spike_count_ce":
        return SpikeCountCrossEntropy(config.count_scale)
    raise ConfigError("TrainerConfig.loss = 'custom' needs a loss callable: Trainer(config, out, loss=...)")


def prediction_rule(loss):
    """The loss's own ``predict(outputs)`` if it has one, else the earliest first spike."""
    rule = getattr(loss, "predict", None)
    return rule if callable(rule) else first_spike_prediction


def checked(value, what: str = "loss") -> torch.Tensor:
    """``value`` if it is a 0-d floating tensor, else ``ConfigError`` saying what it is."""
    if not isinstance(value, torch.Tensor):
        raise ConfigError(f"{what} returned a {type(value).__name__}; allowed: a 0-d (scalar) torch tensor")
    if value.dim() != 0 or not value.is_floating_point():
        raise ConfigError(
            f"{what} returned a tensor of shape {tuple(value.shape)} and dtype {value.dtype}; "
            "allowed: a 0-d (scalar) floating tensor, e.g. the batch mean"
        )
    return value
