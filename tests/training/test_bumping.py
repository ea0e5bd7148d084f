import torch

from training.bumping import bump_silent

INF = float("inf")


def test_only_silent_neurons_get_bumped():
    w_hidden, w_out = torch.zeros(2, 3), torch.zeros(3, 2)
    hidden = torch.tensor([[1.0, INF, INF], [2.0, INF, 1.0]])[..., None]  # neuron 1 silent on the whole batch
    out = torch.tensor([[INF, 1.0], [INF, INF]])[..., None]  # output 0 silent; label of sample 0 only
    bump_silent([(w_hidden, hidden), (w_out, out)], torch.tensor([0, 1]), 0.5)
    torch.testing.assert_close(w_hidden, torch.tensor([[0.0, 0.5, 0.0]] * 2))
    # output 0 is the silent label in 1 of 2 samples, output 1 in 1 of 2 (sample 1)
    torch.testing.assert_close(w_out, torch.tensor([[0.25, 0.25]] * 3))
