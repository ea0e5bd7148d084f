"""Exact event-based current-based LIF layers with EventProp gradients (docs/eventprop.md).

Modules, each importing only those below it:
    layer            spike_times, replay_spike_times and their result types
    checks           argument checks and conversion to the kernels' arrays
    autograd         the torch.autograd Functions (simulated and replayed layers)
    replay_kernel    the model's currents at measured spikes (numba)
    adjoint_kernel   the EventProp adjoint as one reverse sweep (numba)
    forward_kernel   the event-driven forward simulation with membrane samples (numba)
    events, threads  sorted input events; running a kernel over chunks of trials on threads
    free_evolution   closed-form evolution of one neuron between events (numba scalars)
    parameters       LIFParameters and the kernels' per-neuron view of it
"""

from .layer import DRIVE_FLOOR, ReplayedTimes, SpikeTimes, replay_spike_times, spike_times
from .parameters import LIFParameters

__all__ = ["DRIVE_FLOOR", "LIFParameters", "ReplayedTimes", "SpikeTimes", "replay_spike_times", "spike_times"]
