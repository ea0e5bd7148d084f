"""The calibration steps, in the order the routine runs them (see docs/calibration.md, "Order").

The CADC offsets are learnt once every neuron rests at its calibrated leak (before the other
potentials are searched); threshold and reset come before anything that needs the neuron to
fire, the membrane time constant before the PSP fits that use it, and the leak is refined at
the very end.
"""

from .drive import DriveStep
from .final import FinalStep
from .leak import LeakStep
from .membrane import MembraneStep
from .offsets import OffsetsStep
from .refractory import RefractoryStep
from .synapse import SynapseStep

STEPS = (LeakStep, OffsetsStep, DriveStep, MembraneStep, RefractoryStep, SynapseStep, FinalStep)

__all__ = [
    "STEPS",
    "DriveStep",
    "FinalStep",
    "LeakStep",
    "MembraneStep",
    "OffsetsStep",
    "RefractoryStep",
    "SynapseStep",
]
