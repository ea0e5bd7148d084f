"""Every calibrated parameter of a configuration measured at once: the public measurement API
that the routine's final step and the drift check (:func:`calibration.verify`) share.

``measure_parameters(session, config, settings, target, options)`` runs a rest run, a
firing run (with its drive-level run), optionally a firing run at the target refractory time,
and one PSP run, and returns :class:`ParameterValues` keyed by parameter name.
"""

from __future__ import annotations

import attrs
import numpy as np

from hil.config import ChipConfig

from ..options import POTENTIALS, CalibrationOptions
from ..target import CalibrationTarget
from .psp import PspResult, measure_psp
from .rest import measure_drive, measure_rest
from .setups import SynapseSetup, psp_config, rest_config, spiking_config, spiking_measurement_config
from .spiking import SpikingResult, measure_spiking


@attrs.frozen(eq=False)
class MeasurementSettings:
    """What a re-measurement needs from a calibration: ``drive_codes`` (512,) the
    ``i_mem_offset`` of firing runs, ``input_latency_s`` the measured input latency,
    ``psp_weight`` the synapse weight of the PSP rows, and ``leak_step`` (512,) the ``v_leak``
    codes by which a drive level above a neuron's highest threshold is measured lower down
    (see :func:`~calibration.measure.measure_drive`; None: not measured)."""

    drive_codes: np.ndarray
    input_latency_s: float
    psp_weight: int
    leak_step: np.ndarray | None = None

    @classmethod
    def from_result(cls, result) -> MeasurementSettings:
        """The settings recorded in a ``CalibrationResult`` (its ``aux``)."""
        aux = result.aux
        return cls(
            drive_codes=np.asarray(aux["drive_codes"]),
            input_latency_s=float(aux["input_latency_s"]),
            psp_weight=int(aux["psp_weight"]),
            leak_step=aux.get("drive_leak_step"),
        )


@attrs.frozen(eq=False)
class Drive:
    """How firing runs are driven: ``codes`` (512,) their ``i_mem_offset``; ``rest`` (512,)
    the resting potential without offset (LSB, as read) and ``leak_step`` (512,) codes, for
    drive levels above a neuron's highest threshold (see :func:`~calibration.measure.measure_drive`)."""

    codes: np.ndarray
    rest: np.ndarray | None = None
    leak_step: np.ndarray | None = None


@attrs.frozen(eq=False)
class ParameterValues:
    """parameter name -> (512,) ``values``, standard ``errors`` and ``reasons`` ("" if fine)."""

    values: dict
    errors: dict
    reasons: dict

    def add(self, name: str, value, error, reasons) -> None:
        self.values[name], self.errors[name], self.reasons[name] = value, error, reasons


def measure_refractory(
    session, config: ChipConfig, drive: Drive, target: CalibrationTarget, options: CalibrationOptions, what: str
) -> SpikingResult:
    """Firing run at ``config``'s refractory settings (long refractory: few, widely spaced spikes)."""
    ref = float(np.nanmax(target.per_neuron("refractory")))
    duration = max(3.3 * (ref + 2.5 * float(np.nanmax(target.per_neuron("tau_mem")))), 60e-6)
    cfg = spiking_config(config, drive.codes)
    return _firing(
        session, cfg, drive, options, what, n_trials=options.spiking_trials, duration_s=duration, min_intervals=2
    )


def measure_synapses(
    session,
    config: ChipConfig,
    setup: SynapseSetup,
    tau_mem,
    latency_s: float,
    options: CalibrationOptions,
    what: str,
    guess: dict | None = None,
    trials: int | None = None,
) -> dict[str, PspResult]:
    """One PSP run (excitatory and inhibitory trials) on ``config`` with ``setup``'s rows."""
    return measure_psp(
        session,
        psp_config(config, setup),
        setup,
        tau_mem,
        latency_s=latency_s,
        tau_syn_guess=guess,
        n_trials=trials or options.psp_trials,
        n_bursts=options.psp_bursts,
        interval_s=options.psp_interval_s,
        what=what,
    )


def measure_membrane(
    session, config: ChipConfig, drive: Drive, options: CalibrationOptions, *, n_trials: int, what: str
) -> SpikingResult:
    """Drive level and one firing run with the short measurement refractory time."""
    cfg = spiking_measurement_config(config, drive.codes, options.measurement_refractory_s)
    return _firing(session, cfg, drive, options, what, n_trials=n_trials, duration_s=options.spiking_duration_s)


def _firing(session, cfg: ChipConfig, drive: Drive, options: CalibrationOptions, what: str, **spiking) -> SpikingResult:
    """The drive level of firing configuration ``cfg``, then the firing run itself."""
    level = measure_drive(
        session,
        cfg,
        n_trials=2,
        duration_s=options.rest_duration_s,
        what=what + ".drive",
        rest=drive.rest,
        leak_step=drive.leak_step,
    )
    return measure_spiking(session, cfg, level.mean, what=what, **spiking)


def _add_synapses(out, session, config, settings, target, options, tau_mem, psp_trials) -> None:
    """The PSP run of :func:`measure_parameters`: time constants and gains of both signs."""
    setup = SynapseSetup(n_drivers=options.psp_drivers, weight=int(settings.psp_weight))
    tau = out.values.get("tau_mem", tau_mem)
    guess = {sign: target.per_neuron(f"tau_syn_{sign}") for sign in ("exc", "inh")}
    psp = measure_synapses(
        session, config, setup, tau, settings.input_latency_s, options, "final.synapse", guess, psp_trials
    )
    for sign, p in psp.items():
        out.add(f"tau_syn_{sign}", p.tau_syn, p.tau_syn_err, p.reasons)
        out.add(f"weight_gain_{sign}", p.gain, p.gain_err, p.reasons)


def measure_parameters(
    session,
    config: ChipConfig,
    settings: MeasurementSettings,
    target: CalibrationTarget,
    options: CalibrationOptions,
    *,
    tau_mem=None,
    membrane: bool = True,
    refractory: bool = True,
    synapse: bool = True,
    spiking_trials: int | None = None,
    psp_trials: int | None = None,
    cadc_offset=None,
) -> ParameterValues:
    """Measure every parameter of ``config`` (a calibrated configuration).

    ``tau_mem`` (512,): the membrane time constant for the PSP fits when ``membrane`` is off.
    ``spiking_trials``/``psp_trials`` default to the options' final counts. ``cadc_offset``
    (512,): subtracted from the potentials (``v_leak``, ``v_reset``, ``v_threshold``), which
    are otherwise "as the CADC reads them".
    """
    out = ParameterValues({}, {}, {})
    r = measure_rest(
        session,
        rest_config(config),
        n_trials=options.rest_trials,
        duration_s=options.rest_duration_s,
        what="final.rest",
    )
    out.add("v_leak", r.mean, r.sem, r.reasons)
    drive = Drive(settings.drive_codes, r.mean, settings.leak_step)
    if membrane:
        sp = measure_membrane(
            session,
            config,
            drive,
            options,
            n_trials=spiking_trials or options.final_spiking_trials,
            what="final.membrane",
        )
        out.add("v_reset", sp.v_reset, sp.v_reset_err, sp.reasons)
        out.add("v_threshold", sp.v_threshold, np.full(sp.v_threshold.shape, np.nan), sp.reasons)
        out.add("tau_mem", sp.tau_mem, sp.tau_mem_err, sp.reasons)
    if refractory:
        sp = measure_refractory(session, config, drive, target, options, "final.refractory")
        out.add("refractory", sp.refractory, sp.refractory_err, sp.reasons)
    if synapse:
        _add_synapses(out, session, config, settings, target, options, tau_mem, psp_trials)
    if cadc_offset is not None:
        for name in POTENTIALS:
            if name in out.values:
                out.values[name] = out.values[name] - cadc_offset
    return out
