"""``calibrate(device, target)``: the calibration routine, step by step.

Order (each step: *configure* a measurement config from the working configuration,
*measure* all neurons at once, *search* the CapMem codes; see docs/calibration.md):

1. ``leak``      resting potential (CADC, no input)            -> ``v_leak``
2. ``drive``     level under a constant current (CADC)         -> ``i_mem_offset`` (measurement only)
3. ``membrane``  regular firing (CADC folded on spike times)    -> ``v_reset``, ``v_threshold``, ``i_bias_leak``
4. ``refractory`` clock scale per quadrant, counter per neuron, checked by a firing run
5. ``synapse``   input latency (MADC), PSPs (CADC folded on input times)
                                                                 -> ``i_bias_synin_{exc,inh}_{tau,gm}``
6. ``final``     the calibrated configuration measured again; the leak refined last
                 (the synaptic and offset settings are final only now)

Threshold and reset come before anything that needs the neuron to fire, the membrane time
constant before the PSP fits that use it, and the potentials are refined at the end.
"""

from __future__ import annotations

import datetime as _dt
import time

import attrs
import numpy as np

import hil
from hil import chip
from hil.config import ChipConfig
from hil.errors import CalibrationError, ConfigError
from hil.logging import get_logger
from hil.progress import Progress

from . import measure as M
from .result import NEURON_FIELDS, QUADRANT_FIELDS, CalibrationResult
from .search import ModelSearch
from .session import Session
from .target import CalibrationTarget

log = get_logger("calibration")
N = chip.N_NEURONS
_Q = chip.quadrant_of(np.arange(N))

ALGORITHM_VERSION = 1  # part of the cache key: bump when the routine changes its results


def _nanmedian(x) -> float:
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else float("nan")


def _inv_sqrt(x):
    return 1.0 / np.sqrt(x)


@attrs.frozen
class CalibrationOptions:
    """Tuning knobs of the routine (defaults are what docs/calibration.md reports)."""

    max_iterations: int = 6
    rest_trials: int = 4
    rest_duration_s: float = 40e-6
    spiking_trials: int = 6
    spiking_duration_s: float = 100e-6
    final_spiking_trials: int = 8
    measurement_refractory_s: float = 4e-6
    drive_margin: float = 50.0  # drive level above the threshold target, LSB
    psp_trials: int = 3
    final_psp_trials: int = 6
    psp_bursts: int = 4
    psp_interval_s: float = 60e-6
    psp_drivers: int = 8
    psp_current: float = 128.0  # target current jump per burst, LSB
    latency_neurons: tuple = (0, 128, 256, 384)
    # success tolerances on the final measurement
    tol_potential: float = 1.5  # LSB
    tol_tau: float = 0.03  # relative
    tol_gain: float = 0.04  # relative
    tol_refractory: float = 0.03  # relative
    seed: int = 0


class _Context:
    """Working state shared by the steps."""

    def __init__(
        self,
        session: Session,
        target: CalibrationTarget,
        base: ChipConfig,
        selected: np.ndarray,
        options: CalibrationOptions,
    ):
        self.session = session
        self.target = target
        self.cfg = base.copy()
        self.selected = selected
        self.opt = options
        self.measured: dict[str, np.ndarray] = {}
        self.errors: dict[str, np.ndarray] = {}
        self.before: dict[str, np.ndarray] = {}
        self.reasons: dict[str, np.ndarray] = {}
        self.aux: dict[str, np.ndarray] = {}
        self.leak_slope = np.full(N, np.nan)
        self.leak_intercept = np.full(N, np.nan)

    def t(self, name):
        return self.target.per_neuron(name)

    def fail(self, param: str, mask, reason: str):
        r = self.reasons.setdefault(param, np.full(N, "", dtype=object))
        for i in np.flatnonzero(mask):
            if not r[i]:
                r[i] = reason

    def note_reasons(self, param: str, reasons):
        r = self.reasons.setdefault(param, np.full(N, "", dtype=object))
        for i in np.flatnonzero(reasons != ""):
            r[i] = reasons[i]


def _summary(values, target, relative=False):
    x = np.asarray(values)
    ok = np.isfinite(x)
    if not ok.any():
        return {"n": 0}
    r = (x[ok] / target[ok] - 1) if relative else (x[ok] - target[ok])
    return {"n": int(ok.sum()), "res_mean": round(float(r.mean()), 4), "res_std": round(float(r.std()), 4)}


# --- step 1: leak ------------------------------------------------------------------------------
def step_leak(ctx: _Context) -> None:
    """Search ``v_leak`` so the resting potential (no input, threshold out of reach) hits the target."""
    opt = ctx.opt
    target = ctx.t("v_leak")
    search = ModelSearch(target, np.full(N, 250), probes=[np.full(N, 550)], settle=0.25, max_step=400)
    for it in range(opt.max_iterations + 1):
        ctx.cfg.v_leak = np.where(ctx.selected, search.codes, ctx.cfg.v_leak)
        r = M.measure_rest(
            ctx.session, M.rest_config(ctx.cfg), n_trials=opt.rest_trials, duration_s=opt.rest_duration_s, what="leak"
        )
        if it == 0:
            ctx.before["v_leak"] = r.mean.copy()
        search.update(ctx.cfg.v_leak, r.mean, active=ctx.selected)
        if it >= 1 and np.all(search.converged[ctx.selected]):
            break
    res = search.result(opt.tol_potential)
    ctx.cfg.v_leak = np.where(ctx.selected, res.codes, ctx.cfg.v_leak)
    if not np.any(np.isfinite(search.slope)):
        raise CalibrationError(
            f"leak: the resting potential did not change with the v_leak CapMem value for any neuron "
            f"(readings {np.nanmin(res.values) if np.any(np.isfinite(res.values)) else 'none'}); is the device configured and read out?"
        )
    ctx.leak_slope = np.where(np.isfinite(search.slope), search.slope, _nanmedian(search.slope))
    ctx.leak_intercept = res.values - ctx.leak_slope * res.codes
    ctx.aux["rest_at_zero_offset"] = res.values
    ctx.note_reasons("v_leak", np.where(ctx.selected, res.reasons, ""))
    log.info("calibration.leak", iterations=res.steps, **_summary(res.values, target))


def _codes_from_leak_line(ctx: _Context, potential) -> np.ndarray:
    """Start codes for another potential cell, assuming it maps like ``v_leak`` (uniform: the median)."""
    med_slope = _nanmedian(ctx.leak_slope)
    med_icpt = _nanmedian(ctx.leak_intercept)
    if not np.isfinite(med_slope) or med_slope <= 0:
        return np.full(N, 500)
    return np.full(N, int(np.clip(np.rint((np.median(potential) - med_icpt) / med_slope), 0, chip.CAPMEM_MAX)))


# --- step 2: drive -----------------------------------------------------------------------------
def step_drive(ctx: _Context) -> None:
    """Search ``i_mem_offset`` (used only while measuring) so the membrane charges towards
    ``v_threshold target + drive_margin`` (capped below the CADC's top)."""
    opt = ctx.opt
    rest0 = ctx.aux["rest_at_zero_offset"]
    goal = np.minimum(ctx.t("v_threshold") + opt.drive_margin, chip.CADC_MAX - 12.0)
    search = ModelSearch(
        goal - rest0, np.full(N, 200), transform=lambda v: v, through_origin=True, settle=3.0, max_step=600
    )
    for it in range(4):
        cfg = ctx.cfg.copy()
        cfg.i_mem_offset = search.codes
        r = M.measure_drive(ctx.session, cfg, n_trials=2, duration_s=opt.rest_duration_s, what="drive")
        lifted = r.mean - rest0
        search.update(search.codes, lifted)
        # saturated (too strong): halve
        sat = ~r.valid
        search.codes = np.where(sat, search.codes // 2, search.codes)
        if np.all(search.converged | ~np.isfinite(rest0)):
            break
    res = search.result(6.0)
    ctx.aux["drive_codes"] = res.codes.astype(np.int64)
    log.info("calibration.drive", iterations=res.steps, reached=int(res.success.sum()))


def _measurement_refractory(cfg: ChipConfig, seconds: float) -> None:
    scale = 2
    cfg.refractory_clock_scale = scale
    cfg.refractory_counter = int(
        np.clip(np.rint(seconds * chip.REFRACTORY_CLOCK_BASE_HZ / 2**scale), 1, chip.REFRACTORY_COUNTER_MAX)
    )


def spiking_measurement_config(cfg: ChipConfig, drive_codes, refractory_s: float) -> ChipConfig:
    """Configure step of the membrane measurement: constant drive, short refractory time."""
    out = M.spiking_config(cfg, drive_codes)
    _measurement_refractory(out, refractory_s)
    return out


# --- step 3: membrane --------------------------------------------------------------------------
def step_membrane(ctx: _Context) -> None:
    """Joint search of ``v_reset``, ``v_threshold`` and ``i_bias_leak`` from firing runs:
    each run measures all three for every neuron; every cell gets its own model update."""
    opt = ctx.opt
    t_reset, t_thr, t_tau = ctx.t("v_reset"), ctx.t("v_threshold"), ctx.t("tau_mem")
    slope = ctx.leak_slope
    s_reset = ModelSearch(
        t_reset, _codes_from_leak_line(ctx, t_reset), slope_guess=slope, settle=0.3, max_step=300, prior_band=(0.5, 2.0)
    )
    s_thr = ModelSearch(
        t_thr, _codes_from_leak_line(ctx, t_thr), slope_guess=slope, settle=0.3, max_step=300, prior_band=(0.5, 2.0)
    )
    s_tau = ModelSearch(
        t_tau,
        np.full(N, int(ctx.cfg.i_bias_leak[0])),
        transform=_inv_sqrt,
        through_origin=True,
        settle=0.004 * t_tau,
        max_step=400,
        uniform_until=0.3,
    )
    sel = ctx.selected
    for it in range(opt.max_iterations):
        ctx.cfg.v_reset = np.where(sel, s_reset.codes, ctx.cfg.v_reset)
        ctx.cfg.v_threshold = np.where(sel, s_thr.codes, ctx.cfg.v_threshold)
        ctx.cfg.i_bias_leak = np.where(sel, s_tau.codes, ctx.cfg.i_bias_leak)
        cfg = spiking_measurement_config(ctx.cfg, ctx.aux["drive_codes"], opt.measurement_refractory_s)
        drive = M.measure_drive(ctx.session, cfg, n_trials=2, duration_s=opt.rest_duration_s, what="membrane.drive")
        sp = M.measure_spiking(
            ctx.session,
            cfg,
            drive.mean,
            n_trials=opt.spiking_trials,
            duration_s=opt.spiking_duration_s,
            what="membrane",
        )
        if it == 0:
            ctx.before["tau_mem"] = sp.tau_mem.copy()
        # with tau_mem far off (few, fast charging samples) reset and threshold are measured
        # poorly: their searches start once the median tau_mem is within 30 % of the target
        tau_far = not (_nanmedian(np.abs(sp.tau_mem / t_tau - 1)[sel]) <= 0.3)
        if not tau_far:
            if "v_reset" not in ctx.before:
                ctx.before["v_reset"], ctx.before["v_threshold"] = sp.v_reset.copy(), sp.v_threshold.copy()
            s_reset.update(ctx.cfg.v_reset, sp.v_reset, active=sel)
            s_thr.update(ctx.cfg.v_threshold, sp.v_threshold, active=sel)
        s_tau.update(ctx.cfg.i_bias_leak, sp.tau_mem, active=sel)
        # neurons that did not fire: the threshold is above the drive level -> lower it
        silent = sel & (sp.n_spikes == 0)
        if silent.any():
            s_thr.codes = np.where(silent, np.maximum(s_thr.codes - 60, 0), s_thr.codes)
        if it >= 1 and not np.any(sp.valid[sel]) and not np.any(np.isfinite(s_tau.best_values[sel])):
            common = max(set(sp.reasons[sel]), key=list(sp.reasons[sel]).count)
            raise CalibrationError(
                f"membrane: no neuron gave a usable firing measurement in {it + 1} runs; most common reason: {common}"
            )
        log.info(
            "calibration.membrane.iteration",
            iteration=it,
            valid=int(sp.valid[sel].sum()),
            v_reset=_summary(sp.v_reset, t_reset),
            v_threshold=_summary(sp.v_threshold, t_thr),
            tau_mem=_summary(sp.tau_mem, t_tau, relative=True),
        )
        if it >= 2 and np.all((s_reset.converged & s_thr.converged & s_tau.converged)[sel]):
            break
    for name, s in (("v_reset", s_reset), ("v_threshold", s_thr), ("i_bias_leak", s_tau)):
        r = s.result(np.inf)
        setattr(ctx.cfg, name, np.where(sel, r.codes, getattr(ctx.cfg, name)))
        param = {"i_bias_leak": "tau_mem"}.get(name, name)
        ctx.note_reasons(param, np.where(sel & ~np.isfinite(r.values), sp.reasons, ""))
        ctx.measured[param] = r.values


# --- step 4: refractory ------------------------------------------------------------------------
def refractory_settings(target_s: np.ndarray):
    """Clock scale per quadrant (the finest whose counter range holds the quadrant's
    longest target with 10% headroom) and the nominal counter per neuron."""
    scale = np.zeros(chip.N_QUADRANTS, np.int64)
    for q in range(chip.N_QUADRANTS):
        longest = float(np.max(target_s[_Q == q]))
        for s in range(chip.REFRACTORY_CLOCK_SCALE_MAX + 1):
            scale[q] = s
            if longest * 1.1 <= chip.REFRACTORY_COUNTER_MAX * 2**s / chip.REFRACTORY_CLOCK_BASE_HZ:
                break
    period = 2.0 ** scale[_Q] / chip.REFRACTORY_CLOCK_BASE_HZ
    counter = np.clip(np.rint(target_s / period), 1, chip.REFRACTORY_COUNTER_MAX).astype(np.int64)
    return scale, counter, period


def _refractory_run(ctx: _Context, cfg_final: ChipConfig, what: str):
    """Firing run at the final refractory settings (long refractory: few, widely spaced spikes)."""
    opt = ctx.opt
    cfg = M.spiking_config(cfg_final, ctx.aux["drive_codes"])
    ref = float(np.nanmax(ctx.t("refractory")))
    duration = max(3.3 * (ref + 2.5 * float(np.nanmax(ctx.t("tau_mem")))), 60e-6)
    drive = M.measure_drive(ctx.session, cfg, n_trials=2, duration_s=opt.rest_duration_s, what=what + ".drive")
    return M.measure_spiking(
        ctx.session, cfg, drive.mean, n_trials=opt.spiking_trials, duration_s=duration, min_intervals=2, what=what
    )


def step_refractory(ctx: _Context) -> None:
    """Set the refractory clock and counters; one firing run checks them and corrects
    neurons whose refractory time is off by more than the tolerance."""
    target = ctx.t("refractory")
    scale, counter, period = refractory_settings(target)
    sel = ctx.selected
    ctx.cfg.refractory_clock_scale = scale
    ctx.cfg.refractory_counter = np.where(sel, counter, ctx.cfg.refractory_counter)
    sp = _refractory_run(ctx, ctx.cfg, "refractory")
    ctx.before["refractory"] = sp.refractory.copy()
    off = sel & np.isfinite(sp.refractory) & (np.abs(sp.refractory / target - 1) > ctx.opt.tol_refractory)
    if off.any():
        fix = np.rint((target - sp.refractory) / period).astype(np.int64)
        ctx.cfg.refractory_counter = np.where(
            off, np.clip(ctx.cfg.refractory_counter + fix, 1, chip.REFRACTORY_COUNTER_MAX), ctx.cfg.refractory_counter
        )
    ctx.measured["refractory"] = sp.refractory
    ctx.errors["refractory"] = sp.refractory_err
    ctx.refractory_checked = None if off.any() else sp  # reused by the final step when nothing changed
    ctx.note_reasons("refractory", np.where(sel, sp.reasons, ""))
    log.info(
        "calibration.refractory",
        clock_scale=scale.tolist(),
        corrected=int(off.sum()),
        **_summary(sp.refractory, target, relative=True),
    )


# --- step 5: synapse ---------------------------------------------------------------------------
def synapse_setup(target: CalibrationTarget, opt: CalibrationOptions) -> M.SynapseSetup:
    gain = float(
        np.median(np.concatenate([target.per_neuron("weight_gain_exc"), target.per_neuron("weight_gain_inh")]))
    )
    w = int(np.clip(np.rint(opt.psp_current / gain / opt.psp_drivers), 1, chip.WEIGHT_MAX))
    return M.SynapseSetup(n_drivers=opt.psp_drivers, weight=w)


def _psp_measurement(ctx: _Context, cfg_base: ChipConfig, setup, tau_mem, latency, what, guess=None, trials=None):
    opt = ctx.opt
    cfg = M.psp_config(cfg_base, setup)
    return M.measure_psp(
        ctx.session,
        cfg,
        setup,
        tau_mem,
        latency_s=latency,
        tau_syn_guess=guess,
        n_trials=trials or opt.psp_trials,
        n_bursts=opt.psp_bursts,
        interval_s=opt.psp_interval_s,
        what=what,
    )


def step_synapse(ctx: _Context) -> None:
    """Input latency from MADC traces, then a joint search of the four synaptic cells from
    PSP runs (excitatory and inhibitory trials in one run)."""
    opt = ctx.opt
    sel = ctx.selected
    setup = synapse_setup(ctx.target, opt)
    tau_mem = ctx.measured["tau_mem"]
    ctx.aux["psp_weight"] = np.array(setup.weight)
    latency = 0.0

    def measure_latency():
        lat_cfg = M.psp_config(ctx.cfg, setup)
        lat_cfg.enable_readout[list(opt.latency_neurons)] = True
        try:
            lat = M.measure_latency(ctx.session, lat_cfg, setup, tau_mem, opt.latency_neurons)
        except CalibrationError as exc:
            log.warning("calibration.latency_unavailable", error=str(exc))
            return 0.0
        log.info(
            "calibration.latency", latency_ns=round(lat["latency_s"] * 1e9, 1), spread_ns=round(lat["err_s"] * 1e9, 1)
        )
        return lat["latency_s"]

    searches = {
        ("exc", "tau"): ModelSearch(
            ctx.t("tau_syn_exc"),
            np.full(N, int(ctx.cfg.i_bias_synin_exc_tau[0])),
            transform=_inv_sqrt,
            through_origin=True,
            settle=0.004 * ctx.t("tau_syn_exc"),
            max_step=400,
            uniform_until=0.3,
        ),
        ("inh", "tau"): ModelSearch(
            ctx.t("tau_syn_inh"),
            np.full(N, int(ctx.cfg.i_bias_synin_inh_tau[0])),
            transform=_inv_sqrt,
            through_origin=True,
            settle=0.004 * ctx.t("tau_syn_inh"),
            max_step=400,
            uniform_until=0.3,
        ),
        ("exc", "gm"): ModelSearch(
            ctx.t("weight_gain_exc"),
            np.full(N, int(ctx.cfg.i_bias_synin_exc_gm[0])),
            through_origin=True,
            settle=0.006 * ctx.t("weight_gain_exc"),
            max_step=500,
            uniform_until=0.3,
        ),
        ("inh", "gm"): ModelSearch(
            ctx.t("weight_gain_inh"),
            np.full(N, int(ctx.cfg.i_bias_synin_inh_gm[0])),
            through_origin=True,
            settle=0.006 * ctx.t("weight_gain_inh"),
            max_step=500,
            uniform_until=0.3,
        ),
    }
    field = {
        ("exc", "tau"): "i_bias_synin_exc_tau",
        ("inh", "tau"): "i_bias_synin_inh_tau",
        ("exc", "gm"): "i_bias_synin_exc_gm",
        ("inh", "gm"): "i_bias_synin_inh_gm",
    }
    guess = None
    measured_latency = False
    for it in range(opt.max_iterations + 1):
        for key, s in searches.items():
            setattr(ctx.cfg, field[key], np.where(sel, s.codes, getattr(ctx.cfg, field[key])))
        if it == 2:  # synaptic time constants are near their targets now: PSPs show the latency well
            latency = measure_latency()
            measured_latency = True
        psp = _psp_measurement(ctx, ctx.cfg, setup, tau_mem, latency, "synapse", guess)
        guess = {sign: psp[sign].tau_syn for sign in ("exc", "inh")}
        if it == 0:
            for sign in ("exc", "inh"):
                ctx.before[f"tau_syn_{sign}"] = psp[sign].tau_syn.copy()
                ctx.before[f"weight_gain_{sign}"] = psp[sign].gain.copy()
        far = {
            sign: not (_nanmedian(np.abs(psp[sign].tau_syn / ctx.t(f"tau_syn_{sign}") - 1)[sel]) <= 0.3)
            for sign in ("exc", "inh")
        }
        for (sign, kind), s in searches.items():
            p = psp[sign]
            if kind == "gm" and far[sign]:
                continue  # gains measured with a synaptic time constant far off are poor; wait
            s.update(getattr(ctx.cfg, field[(sign, kind)]), p.tau_syn if kind == "tau" else p.gain, active=sel)
            if kind == "gm":  # PSPs leaving the CADC range: halve the gain cell
                sat = sel & np.array(["CADC range" in r for r in p.reasons])
                s.codes = np.where(sat, s.codes // 2, s.codes)
        log.info(
            "calibration.synapse.iteration",
            iteration=it,
            **{
                f"{k}_{sign}": _summary(
                    getattr(psp[sign], k),
                    ctx.t(f"{'tau_syn' if k == 'tau_syn' else 'weight_gain'}_{sign}"),
                    relative=True,
                )
                for sign in ("exc", "inh")
                for k in ("tau_syn", "gain")
            },
        )
        if it >= 1 and all(np.all(s.converged[sel]) for s in searches.values()):
            break
    for key, s in searches.items():
        r = s.result(np.inf)
        setattr(ctx.cfg, field[key], np.where(sel, r.codes, getattr(ctx.cfg, field[key])))
    if not measured_latency:
        latency = measure_latency()
    ctx.aux["input_latency_s"] = np.array(latency)
    for sign in ("exc", "inh"):
        reasons = np.where(sel, psp[sign].reasons, "")
        ctx.note_reasons(f"tau_syn_{sign}", reasons)
        ctx.note_reasons(f"weight_gain_{sign}", reasons)


# --- step 6: final -----------------------------------------------------------------------------
def measure_all(
    ctx: _Context,
    cfg: ChipConfig,
    *,
    membrane=True,
    refractory=True,
    synapse=True,
    spiking_trials=None,
    psp_trials=None,
):
    """Measure every parameter of configuration ``cfg`` (the calibrated one): returns
    (values, errors, reasons) dicts keyed by parameter."""
    opt = ctx.opt
    values, errors, reasons = {}, {}, {}
    r = M.measure_rest(
        ctx.session, M.rest_config(cfg), n_trials=opt.rest_trials, duration_s=opt.rest_duration_s, what="final.rest"
    )
    values["v_leak"], errors["v_leak"], reasons["v_leak"] = r.mean, r.sem, r.reasons
    if membrane:
        mcfg = spiking_measurement_config(cfg, ctx.aux["drive_codes"], opt.measurement_refractory_s)
        drive = M.measure_drive(ctx.session, mcfg, n_trials=2, duration_s=opt.rest_duration_s, what="final.drive")
        sp = M.measure_spiking(
            ctx.session,
            mcfg,
            drive.mean,
            n_trials=spiking_trials or opt.final_spiking_trials,
            duration_s=opt.spiking_duration_s,
            what="final.membrane",
        )
        for k, e in (("v_reset", sp.v_reset_err), ("v_threshold", None), ("tau_mem", sp.tau_mem_err)):
            values[k] = getattr(sp, k)
            errors[k] = e if e is not None else np.full(N, np.nan)
            reasons[k] = sp.reasons
    if refractory:
        sp = _refractory_run(ctx, cfg, "final.refractory")
        values["refractory"], errors["refractory"], reasons["refractory"] = sp.refractory, sp.refractory_err, sp.reasons
    if synapse:
        setup = M.SynapseSetup(n_drivers=opt.psp_drivers, weight=int(ctx.aux["psp_weight"]))
        tau_mem = values.get("tau_mem", ctx.measured.get("tau_mem"))
        guess = {sign: ctx.t(f"tau_syn_{sign}") for sign in ("exc", "inh")}
        psp = _psp_measurement(
            ctx, cfg, setup, tau_mem, float(ctx.aux["input_latency_s"]), "final.synapse", guess, trials=psp_trials
        )
        for sign in ("exc", "inh"):
            p = psp[sign]
            values[f"tau_syn_{sign}"], errors[f"tau_syn_{sign}"], reasons[f"tau_syn_{sign}"] = (
                p.tau_syn,
                p.tau_syn_err,
                p.reasons,
            )
            values[f"weight_gain_{sign}"], errors[f"weight_gain_{sign}"], reasons[f"weight_gain_{sign}"] = (
                p.gain,
                p.gain_err,
                p.reasons,
            )
    return values, errors, reasons


def step_final(ctx: _Context) -> None:
    """Refine the leak at the final configuration (offset current off, synapses as set),
    then measure everything once more: these are the reported values."""
    opt = ctx.opt
    sel = ctx.selected
    ctx.cfg.i_mem_offset = np.where(sel, 0, ctx.cfg.i_mem_offset)
    target = ctx.t("v_leak")
    for _ in range(2):
        r = M.measure_rest(
            ctx.session,
            M.rest_config(ctx.cfg),
            n_trials=opt.rest_trials,
            duration_s=opt.rest_duration_s,
            what="final.leak",
        )
        res = r.mean - target
        move = sel & np.isfinite(res) & (np.abs(res) > 0.5) & (ctx.leak_slope > 0)
        if not move.any():
            break
        step = np.rint(-res / ctx.leak_slope)
        ctx.cfg.v_leak = np.where(
            move, np.clip(ctx.cfg.v_leak + np.nan_to_num(step), 0, chip.CAPMEM_MAX), ctx.cfg.v_leak
        )
    checked = getattr(ctx, "refractory_checked", None)
    values, errors, reasons = measure_all(ctx, ctx.cfg, refractory=checked is None, psp_trials=opt.final_psp_trials)
    if checked is not None:
        values["refractory"], errors["refractory"], reasons["refractory"] = (
            checked.refractory,
            checked.refractory_err,
            checked.reasons,
        )
    ctx.measured.update(values)
    ctx.errors.update(errors)
    for k, r in reasons.items():
        ctx.note_reasons(k, np.where(sel, r, ""))


# ---------------------------------------------------------------------------------------------
STEPS = (
    ("leak", step_leak),
    ("drive", step_drive),
    ("membrane", step_membrane),
    ("refractory", step_refractory),
    ("synapse", step_synapse),
    ("final", step_final),
)


def _judge(ctx: _Context) -> dict:
    """Per-parameter success masks from the final measurement and the tolerances."""
    opt = ctx.opt
    success = {}
    for p in (
        "v_leak",
        "v_reset",
        "v_threshold",
        "tau_mem",
        "tau_syn_exc",
        "tau_syn_inh",
        "refractory",
        "weight_gain_exc",
        "weight_gain_inh",
    ):
        v = ctx.measured.get(p, np.full(N, np.nan))
        t = ctx.t(p)
        sem = np.nan_to_num(ctx.errors.get(p, np.zeros(N)), nan=0.0)
        if p.startswith("v_"):
            err, tol, unit = np.abs(v - t), opt.tol_potential, "LSB"
            bound = tol + 2 * sem
        else:
            tol = {"refractory": opt.tol_refractory}.get(p, opt.tol_gain if p.startswith("weight") else opt.tol_tau)
            err, unit = np.abs(v / t - 1), "relative"
            bound = tol + 2 * sem / t
        # a neuron fails only if it is off by more than the tolerance plus twice its measurement error
        ok = np.isfinite(v) & (err <= bound)
        success[p] = ok & ctx.selected
        for i in np.flatnonzero(ctx.selected & ~ok & np.isfinite(v)):
            ctx.fail(
                p,
                np.arange(N) == i,
                f"measured {v[i]:.4g} vs target {t[i]:.4g}: off by more than {tol:g} {unit} (out of reach or not converged)",
            )
        ctx.fail(p, ctx.selected & ~np.isfinite(v), "measurement failed")
        ctx.fail(p, ~ctx.selected, "not calibrated (not in `neurons`)")
    return success


def _combine_reasons(ctx: _Context, success: dict) -> np.ndarray:
    out = np.full(N, "", dtype=object)
    for i in range(N):
        parts = [
            f"{p}: {ctx.reasons[p][i]}" for p in success if not success[p][i] and p in ctx.reasons and ctx.reasons[p][i]
        ]
        out[i] = "; ".join(parts)
    return out


def _selected(neurons) -> np.ndarray:
    sel = np.zeros(N, bool)
    if neurons is None:
        sel[:] = True
        return sel
    idx = np.asarray(neurons)
    if idx.dtype == bool:
        if idx.shape != (N,):
            raise ConfigError(f"calibrate: neurons mask has shape {idx.shape}; expected ({N},)")
        return idx.copy()
    idx = idx.astype(np.int64).ravel()
    if idx.size == 0 or idx.min() < 0 or idx.max() >= N:
        raise ConfigError(f"calibrate: neurons = {idx[:5]}...: expected neuron indices 0..{N - 1}")
    sel[idx] = True
    return sel


def calibrate(
    device: hil.Device,
    target: CalibrationTarget | None = None,
    *,
    neurons=None,
    progress: bool = True,
    cache: bool = True,
    base: ChipConfig | None = None,
    options: CalibrationOptions | None = None,
) -> CalibrationResult:
    """Calibrate ``device`` (any ``hil.Device``) to ``target`` (default ``CalibrationTarget()``).

    ``neurons``: indices or a (512,) mask of the neurons to calibrate (default all); the
    others keep ``base``'s values and are reported as not calibrated. ``progress``: tqdm bar
    on a terminal, plain lines otherwise. ``cache``: reuse (and store) a result with the same
    target, chip id, software version, base configuration and neurons from the user cache
    (``BSS2_HIL_CACHE`` overrides the directory); a cache hit costs no device runs.
    ``base``: configuration to start from and whose non-neuron fields are kept (default
    ``ChipConfig()``). Raises ``CalibrationError`` when the device gives no usable data.
    """
    from . import cache as _cache

    target = target if target is not None else CalibrationTarget()
    if not isinstance(target, CalibrationTarget):
        raise ConfigError(f"calibrate: target must be a CalibrationTarget, got {type(target).__name__}")
    base = (base or ChipConfig()).copy()
    base.validate()
    options = options or CalibrationOptions()
    sel = _selected(neurons)
    session = Session(device)
    key = _cache.cache_key(target, session.chip_id, base, sel, options)
    if cache:
        hit = _cache.lookup(key)
        if hit is not None:
            log.info("calibration.cache_hit", chip_id=session.chip_id, id=hit.id, key=key[:16])
            return hit
    start = time.perf_counter()
    ctx = _Context(session, target, base, sel, options)
    bar = Progress(len(STEPS), "calibrate", enabled=progress, every=1 / len(STEPS), unit="step", leave=True)
    try:
        for name, fn in STEPS:
            t0 = time.perf_counter()
            runs0 = session.runs
            fn(ctx)
            figures = {"runs": session.runs - runs0, "wall_s": round(time.perf_counter() - t0, 2)}
            log.info("calibration.step", step=name, **figures)
            bar.update(1, step=name, **figures)
    finally:
        bar.close()
    success = _judge(ctx)
    reasons = _combine_reasons(ctx, success)
    figures = session.figures()
    wall = time.perf_counter() - start
    codes = {name: np.asarray(getattr(ctx.cfg, name)).copy() for name in NEURON_FIELDS + QUADRANT_FIELDS}
    result = CalibrationResult(
        codes=codes,
        measured={k: np.asarray(v, np.float64) for k, v in ctx.measured.items()},
        errors={k: np.asarray(v, np.float64) for k, v in ctx.errors.items()},
        before={k: np.asarray(v, np.float64) for k, v in ctx.before.items()},
        success=success,
        reasons=reasons,
        target=target,
        chip_id=session.chip_id,
        software_version=hil.__version__,
        timestamp=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        wall_time_s=wall,
        figures=figures,
        aux={k: np.asarray(v) for k, v in ctx.aux.items()},
        neurons=np.flatnonzero(sel),
    )
    n_ok = int(result.success_mask.sum())
    log.info(
        "calibration.done",
        chip_id=session.chip_id,
        id=result.id,
        success=n_ok,
        selected=int(sel.sum()),
        wall_s=round(wall, 2),
        **{k: v for k, v in figures.items() if k in ("device_runs", "chip_time_s", "bytes_sent", "bytes_received")},
    )
    if n_ok == 0:
        raise CalibrationError(
            f"calibration of chip {session.chip_id} failed for every neuron; first reasons: {sorted(set(r for r in reasons if r))[:3]}"
        )
    if cache:
        _cache.store(key, result)
    return result
