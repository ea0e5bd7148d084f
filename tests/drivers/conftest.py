"""Helpers for the mock-chip tests: small hand-routed configurations."""

import numpy as np
import pytest

import hil
from drivers.mock import MockChip
from hil import chip


def route_host(cfg: hil.ChipConfig, channel: int, hemisphere: int, bus: int) -> None:
    """Let host channel ``channel`` pass to PADI bus ``bus`` of ``hemisphere`` (match on the channel bits)."""
    i, o = chip.CROSSBAR_HOST_INPUT_OFFSET + channel, hemisphere * chip.PADI_BUSES + bus
    cfg.crossbar_enable[i, o] = True
    cfg.crossbar_mask[i, o] = chip.LABEL_CHANNEL_MASK
    cfg.crossbar_target[i, o] = channel << chip.LABEL_CHANNEL_SHIFT


def quiet_config(**capmem) -> hil.ChipConfig:
    """Default CapMem (overridable), no spike output, no synapses, no routing."""
    cfg = hil.ChipConfig(**{k: np.full(512, v) for k, v in capmem.items()})
    cfg.enable_spike_out = False
    return cfg


def one_event(label: int, tick: int = 100, duration: int = 2500) -> hil.Stimulus:
    return hil.Stimulus.from_trials([np.array([[tick, label]])], duration)


@pytest.fixture
def quiet_chip():
    return MockChip(seed=3, noise=False)
