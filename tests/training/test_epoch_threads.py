import pytest
import torch

from training.config import TrainerConfig
from training.epoch import one_torch_thread
from training.trainer import Trainer


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


def _adam_steps(threads: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    weights = [torch.randn(5, 120, generator=g).requires_grad_(), torch.randn(120, 3, generator=g).requires_grad_()]
    optimizer = torch.optim.Adam(weights, lr=1e-3)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for _ in range(5):
            for w in weights:
                w.grad = torch.randn(w.shape, generator=g)
            optimizer.step()
    finally:
        torch.set_num_threads(before)
    return [w.detach() for w in weights]


def test_adams_step_is_the_same_on_one_thread():
    for one, two in zip(_adam_steps(1), _adam_steps(2), strict=True):
        assert torch.equal(one, two)


def test_the_weight_update_runs_on_one_torch_thread(tmp_path, monkeypatch):
    """Adam's step opens an OpenMP region whose spinning worker would slow the next device run."""
    seen, step = [], torch.optim.Adam.step

    def counting_step(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
    config = TrainerConfig.from_dict(
        dict(train_size=60, test_size=30, n_hidden=20, batch_size=30, epochs=1, device="software")
    )
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        Trainer(config, tmp_path, progress=False).run()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen == [1, 1]
