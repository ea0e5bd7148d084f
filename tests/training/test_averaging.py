"""WeightAverage: bias-corrected moving average of weights, swapped in for evaluation."""

import pytest
import torch

from training.averaging import WeightAverage


def test_average_is_bias_corrected_and_swapped_in_only_inside_the_block():
    w = torch.nn.Parameter(torch.tensor([3.0, -1.0]))
    avg = WeightAverage([w], decay=0.5)
    with avg.applied():
        assert torch.equal(w, torch.tensor([3.0, -1.0]))  # no update yet: the weights themselves
    first, second = torch.tensor([3.0, -1.0]), torch.tensor([6.0, 2.0])
    avg.update()
    with torch.no_grad():
        w.copy_(second)
    avg.update()
    expected = (0.25 * first + 0.5 * second) / (1 - 0.25)  # = first / 3 + 2 second / 3
    with avg.applied():
        assert torch.allclose(w, expected)
    assert torch.equal(w, second)
    with pytest.raises(RuntimeError), avg.applied():
        raise RuntimeError("evaluation failed")
    assert torch.equal(w, second)


def test_constant_weights_average_to_themselves_and_decay_zero_is_off():
    w = torch.nn.Parameter(torch.randn(4, 3))
    avg = WeightAverage([w], decay=0.99)
    for _ in range(3):
        avg.update()
    assert torch.allclose(avg.averaged()[0], w)
    off = WeightAverage([w], decay=0.0)
    off.update()
    with torch.no_grad(), off.applied():
        w.add_(1.0)  # off: the block works on the raw weights
    assert off.steps == 0 and not off.enabled


def test_state_round_trips_and_refuses_another_decay():
    w = torch.nn.Parameter(torch.randn(5))
    avg = WeightAverage([w], decay=0.9)
    avg.update()
    with torch.no_grad():
        w.mul_(2)
    avg.update()
    again = WeightAverage([w], decay=0.9)
    again.load_state_dict(avg.state_dict())
    assert torch.equal(again.averaged()[0], avg.averaged()[0])
    with pytest.raises(ValueError, match="decay 0.9 over 1"):
        WeightAverage([w], decay=0.5).load_state_dict(avg.state_dict())
    with pytest.raises(ValueError, match="0 <= decay < 1"):
        WeightAverage([w], decay=1.0)
