"""Counter-based random numbers for the mock's numba kernels.

Every number is a hash (the splitmix64 finaliser) of a stream key and a counter, so a value
depends only on (run seed, trial, stream, neuron or event, counter) and never on how trials
are split over threads or in which order a trial's events are processed.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_U30, _U27, _U31, _U32, _LOW32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32), np.uint64(0xFFFFFFFF)
_U16, _U48, _LOW16 = np.uint64(16), np.uint64(48), np.uint64(0xFFFF)
_SQRT3 = math.sqrt(3.0)
GAUSS_SUM_MAX = 2 * _SQRT3  # |gauss_sum| never exceeds this

# stream numbers under a trial's key: host-event jitter; initial membrane and threshold (a pair per
# neuron); each spike's threshold and output jitter (a pair per spike); membrane noise per segment;
# membrane noise over a stretch out of the sweep; ADC noise
HOST_JITTER, START, SPIKE, MEMBRANE, JUMP, MADC_NOISE, CADC_NOISE = 1, 2, 3, 4, 6, 7, 8


@numba.njit(cache=True, inline="always")
def _mix(z):
    """splitmix64 finaliser (a bijection of uint64 with full avalanche)."""
    z = (z ^ (z >> _U30)) * _M1
    z = (z ^ (z >> _U27)) * _M2
    return z ^ (z >> _U31)


@numba.njit(cache=True, inline="always")
def derive(key, a):
    """Key of sub-stream ``a`` (a non-negative integer) of ``key``."""
    return _mix(key + (np.uint64(a) + np.uint64(1)) * _GOLDEN)


@numba.njit(cache=True, inline="always")
def gauss(key, counter):
    """Standard normal number ``counter`` of stream ``key`` (Box-Muller on two 32-bit halves)."""
    h = _mix(key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN)
    u1 = (np.float64(h >> _U32) + 0.5) * 2.0**-32
    u2 = np.float64(h & _LOW32) * 2.0**-32
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@numba.njit(cache=True, inline="always")
def gauss_pair(key, counter):
    """Two independent standard normal numbers ``counter`` of stream ``key`` (both Box-Muller outputs)."""
    h = _mix(key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN)
    u1 = (np.float64(h >> _U32) + 0.5) * 2.0**-32
    u2 = np.float64(h & _LOW32) * 2.0**-32
    r = math.sqrt(-2.0 * math.log(u1))
    return r * math.cos(2.0 * math.pi * u2), r * math.sin(2.0 * math.pi * u2)


@numba.njit(cache=True, inline="always")
def gauss_sum(key, counter):
    """Approximately standard normal number ``counter`` of stream ``key``: the standardised sum
    of four 16-bit uniforms of one hash (Irwin-Hall; exact mean and variance, tails cut at
    3.46 sigma). Cheap enough for the membrane noise, which the membrane averages anyway."""
    h = _mix(key + (np.uint64(counter) + np.uint64(1)) * _GOLDEN)
    s = (h & _LOW16) + ((h >> _U16) & _LOW16) + ((h >> _U32) & _LOW16) + (h >> _U48)
    return (np.float64(s) * 2.0**-16 + (2.0**-15 - 2.0)) * _SQRT3
