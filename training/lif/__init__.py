"""Exact event-based current-based LIF layers with EventProp gradients (docs/eventprop.md).

Modules, each importing only those below it:
    layer            spike_times, replay_spike_times, their result types and input checks
    autograd         the torch.autograd Functions (simulated and replayed spikes)
    forward_kernel   the event-driven forward simulation (numba)
    adjoint_kernel   the closed-form EventProp adjoint (numba)
    events, threads  sorted input events; running a kernel over batch slices on threads
    free_evolution   closed-form evolution of one neuron between events (numba scalars)
    parameters       LIFParameters and the kernels' per-neuron view
"""

from .layer import DRIVE_FLOOR, ReplayedTimes, SpikeTimes, replay_spike_times, spike_times
from .parameters import LIFParameters

__all__ = ["DRIVE_FLOOR", "LIFParameters", "ReplayedTimes", "SpikeTimes", "replay_spike_times", "spike_times"]
