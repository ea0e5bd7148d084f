"""Where a run's forward pass happens: a chip behind a device URL, or the ideal model in software.

``open_backend`` is a context manager that yields a ``Backend``: the built network and what
the run reports about where it ran (chip id, calibration id, whether the calibration came
from the cache, device totals). On a chip it opens the device (wrapped in
``hil.MeteredDevice``), loads or computes the calibration for the run's neuron model,
moves the placement off neurons that failed calibration and builds a ``DeviceNetwork``.
In software it builds an ``IdealNetwork`` with the same neuron model (the calibration
target's values).
"""

from __future__ import annotations

import contextlib

import attrs
import numpy as np
import torch

import calibration
import hil
from hil.errors import CalibrationError
from hil.metered import MeteredDevice

from .hardware import DeviceNetwork
from .lif import LIFParameters
from .membrane import nonspiking_lif, request_for
from .network import IdealNetwork, Layer, SpikingNetwork

log = hil.logging.get_logger(__name__)


@attrs.define(eq=False)
class Backend:
    """A built network and where it runs.

    calibration_source: "cache" (found in the calibration cache), "calibrated" (calibrated now),
    "file" (--calibration) or None (software)
    """

    network: SpikingNetwork
    placement: hil.Placement | None = None
    device: MeteredDevice | None = None
    chip_id: str | None = None
    calibration: calibration.CalibrationResult | None = None
    calibration_source: str | None = None

    @property
    def calibration_id(self) -> str | None:
        return self.calibration.id if self.calibration is not None else None

    def describe(self) -> str:
        """One line for the console: where the run trains and which calibration it uses."""
        if self.device is None:
            return "backend: software (the ideal model)"
        how = {"cache": "from the cache", "calibrated": "calibrated now", "file": "from the file given"}
        return f"chip {self.chip_id}: calibration {self.calibration_id} ({how[self.calibration_source]})"


def calibration_target(config) -> calibration.CalibrationTarget:
    """The calibration target of the run's neuron model (tau_mem, tau_syn, t_refrac) at its operating
    point (v_threshold, weight_gain)."""
    return calibration.CalibrationTarget(
        tau_mem=config.tau_mem,
        tau_syn_exc=config.tau_syn,
        tau_syn_inh=config.tau_syn,
        refractory=config.t_refrac,
        v_threshold=config.v_threshold,
        weight_gain_exc=config.weight_gain,
        weight_gain_inh=config.weight_gain,
    )


def ideal_lif(config) -> LIFParameters:
    """The neuron model the calibration aims at, in model units (leak 0, threshold 1, reset at the leak)."""
    return LIFParameters(tau_mem=config.tau_mem, tau_syn=config.tau_syn, t_refrac=config.t_refrac)


def calibrate(device: MeteredDevice, config, calibration_file: str | None, *, progress: bool):
    """(``CalibrationResult``, source) for the open device: the file given, else the cache, else a calibration."""
    chip_id = device.info().chip_id
    if calibration_file:
        result = calibration.CalibrationResult.load(calibration_file)
        if result.chip_id != chip_id:
            raise CalibrationError(
                f"calibration {calibration_file} is for chip {result.chip_id!r}, the device is chip {chip_id!r}; "
                "calibrate this chip (tools/calibrate) or drop --calibration to calibrate automatically"
            )
        return result, "file"
    result = calibration.calibrate(device, calibration_target(config), progress=progress, cache=True)
    return result, "cache" if result.from_cache else "calibrated"


def place_on_calibrated(network: hil.Network, placement: hil.Placement, result) -> hil.Placement:
    """The placement, moved off neuron circuits that failed calibration (their model parameters are unknown)."""
    failed = np.flatnonzero(~result.success_mask)
    if not np.intersect1d(failed, placement.used_neurons()).size:
        return placement
    log.warning("placement avoids neurons that failed calibration", neurons=failed.tolist(), calibration=result.id)
    return hil.place(network, exclude=failed)  # ResourceError if too few calibrated circuits remain


def initial_weights(config, chain: list[Layer]) -> dict:
    """Layer -> (mean, std) of the initial weights: ``init_output_*`` for the output layer, ``init_hidden_*`` else."""
    return {
        layer.name: (config.init_output_mean, config.init_output_std)
        if layer.name == "output"
        else (config.init_hidden_mean, config.init_hidden_std)
        for layer in chain
    }


def with_membrane_options(net: SpikingNetwork, config, chain: list[Layer]) -> SpikingNetwork:
    """``net`` with the membrane samples the config's losses need and its output bumping."""
    net.sample_request = request_for(config, chain)
    net.bump_output = config.bump_output and config.readout == "first_spike"
    return net


@contextlib.contextmanager
def open_backend(config, chain: list[Layer], n_inputs: int, placement, *, url, calibration_file, generator, progress):
    """Yield the ``Backend`` of ``config.device`` (``url``: this rank's device URL)."""
    dtype, init = getattr(torch, config.dtype), initial_weights(config, chain)
    nonspiking = ("output",) if config.readout == "max_membrane" else ()
    if config.software:
        lif = {layer.name: ideal_lif(config) for layer in chain}
        lif.update({name: nonspiking_lif(lif[name]) for name in nonspiking})
        net = IdealNetwork(
            chain,
            n_inputs,
            config.duplication,
            lif,
            duration_s=config.duration_s,
            init=init,
            generator=generator,
            dtype=dtype,
        )
        yield Backend(with_membrane_options(net, config, chain))
        return
    with MeteredDevice(hil.open(url)) as device:
        result, source = calibrate(device, config, calibration_file, progress=progress)
        placement = place_on_calibrated(placement.network, placement, result)
        net = DeviceNetwork(
            device,
            placement,
            result,
            chain,
            duration_s=config.duration_s,
            init=init,
            generator=generator,
            dtype=dtype,
            drive_floor=config.drive_floor,
            nonspiking=nonspiking,
        )
        yield Backend(
            with_membrane_options(net, config, chain), placement, device, device.info().chip_id, result, source
        )
