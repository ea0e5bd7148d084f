import pytest
import torch

from training.epoch import one_torch_thread


def test_one_torch_thread_scopes_the_count_and_restores_it_after_an_error():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with one_torch_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError, match="inside"), one_torch_thread():
            raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_loss_gradient_is_the_same_on_one_thread():
    x = torch.linspace(-3.0, 5.0, 32 * 3, dtype=torch.float32).reshape(32, 3).requires_grad_()
    labels = torch.arange(32) % 3
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.nn.functional.cross_entropy(x, labels).backward()
        two = x.grad.clone()
        x.grad = None
        with one_torch_thread():
            torch.nn.functional.cross_entropy(x, labels).backward()
    finally:
        torch.set_num_threads(before)
    assert torch.equal(x.grad, two)
