"""Step ``synapse``: the input latency from MADC traces, and a joint search of the four
synaptic cells ``i_bias_synin_{exc,inh}_{tau,gm}`` from PSP runs (excitatory and inhibitory
trials in one run), in three phases:

1. ``tau``: the synaptic time constants (gains measured with a time constant far off are
   poor), until the median ``tau_syn`` of both signs is within 30 % of the target;
2. ``dac``: every ``gm`` cell at ``options.gm_reference``, the quadrant DACs
   (:mod:`.synapse_dac`), at most ``options.dac_iterations`` runs;
3. ``gain``: the per-neuron ``gm`` searches (a sign waits while its ``tau_syn`` is far off).
"""

from __future__ import annotations

import numpy as np

from hil import chip
from hil.errors import CalibrationError

from ..loop import Step, inv_sqrt, log, nanmedian, residual_summary
from ..measure import SynapseSetup, measure_latency, measure_synapses, psp_config
from ..model_search import ModelSearch, halve
from ..state import N
from .synapse_dac import DacSearch

SIGNS = ("exc", "inh")
LATENCY_ITERATION = 2  # synaptic time constants are near their targets by now: PSPs show the latency well


def synapse_setup(target, options) -> SynapseSetup:
    """PSP rows whose weight gives about ``options.psp_current`` LSB of current per burst at the target gain."""
    gain = float(np.median(np.concatenate([target.per_neuron(f"weight_gain_{s}") for s in SIGNS])))
    w = int(np.clip(np.rint(options.psp_current / gain / options.psp_drivers), 1, chip.WEIGHT_MAX))
    return SynapseSetup(n_drivers=options.psp_drivers, weight=w)


def _field(sign: str, kind: str) -> str:
    return f"i_bias_synin_{sign}_{kind}"


def _parameter(sign: str, kind: str) -> str:
    return f"tau_syn_{sign}" if kind == "tau" else f"weight_gain_{sign}"


class SynapseStep(Step):
    name = "synapse"
    min_iterations = 1

    def __init__(self):
        self.setup: SynapseSetup | None = None
        self.tau_mem: np.ndarray | None = None
        self.latency_s: float | None = None
        self.guess: dict | None = None
        self.phase = "tau"  # -> "dac" -> "gain"
        self.dac: DacSearch | None = None

    def iterations(self, state):
        return state.options.max_iterations + 1 + state.options.dac_iterations

    def prelude(self, state):
        self.setup = synapse_setup(state.target, state.options)
        self.tau_mem = state.measured["tau_mem"]
        state.psp_weight = self.setup.weight
        searches = {}
        for sign in SIGNS:
            t = state.target_of(f"tau_syn_{sign}")
            searches[_field(sign, "tau")] = ModelSearch(
                t,
                np.full(N, int(getattr(state.config, _field(sign, "tau"))[0])),
                transform=inv_sqrt,
                through_origin=True,
                settle=0.004 * t,
                max_step=400,
                uniform_until=0.3,
            )
        for sign in SIGNS:
            searches[_field(sign, "gm")] = self.gain_search(
                state, sign, int(getattr(state.config, _field(sign, "gm"))[0])
            )
        return searches

    @staticmethod
    def gain_search(state, sign: str, start: int) -> ModelSearch:
        g = state.target_of(f"weight_gain_{sign}")
        return ModelSearch(
            g,
            np.full(N, start),
            through_origin=True,
            settle=0.006 * g,
            max_step=500,
            uniform_until=0.3,
            retreat=halve,  # PSPs leaving the CADC range
        )

    def configure(self, state, codes):
        config, applied = super().configure(state, codes)
        if self.phase == "dac":
            dac = np.where(self.dac.active, self.dac.codes, state.config.syn_i_bias_dac)
            state.config.syn_i_bias_dac = dac
            applied["syn_i_bias_dac"] = dac
        return config, applied

    def measure_latency(self, state) -> float:
        """Input latency from MADC traces (0 if the device has no usable MADC data)."""
        cfg = psp_config(state.config, self.setup)
        cfg.enable_readout[list(state.options.latency_neurons)] = True
        try:
            lat = measure_latency(state.session, cfg, self.setup, self.tau_mem, state.options.latency_neurons)
        except CalibrationError as exc:
            log.warning("calibration.latency_unavailable", error=str(exc))
            return 0.0
        log.info(
            "calibration.latency", latency_ns=round(lat["latency_s"] * 1e9, 1), spread_ns=round(lat["err_s"] * 1e9, 1)
        )
        return lat["latency_s"]

    def measure(self, state, config, iteration):
        if iteration == LATENCY_ITERATION:
            self.latency_s = self.measure_latency(state)
        latency = 0.0 if self.latency_s is None else self.latency_s
        psp = measure_synapses(
            state.session, config, self.setup, self.tau_mem, latency, state.options, "synapse", self.guess
        )
        self.guess = {sign: psp[sign].tau_syn for sign in SIGNS}
        if iteration == 0:
            for sign in SIGNS:
                state.before[f"tau_syn_{sign}"] = psp[sign].tau_syn.copy()
                state.before[f"weight_gain_{sign}"] = psp[sign].gain.copy()
        return psp

    def search(self, state, searches, codes, psp, iteration):
        sel = state.selected
        far = {}
        for sign in SIGNS:
            p = psp[sign]
            searches[_field(sign, "tau")].update(
                codes[_field(sign, "tau")], p.tau_syn, active=sel, errors=p.tau_syn_err
            )
            far[sign] = not nanmedian(np.abs(p.tau_syn / state.target_of(f"tau_syn_{sign}") - 1)[sel]) <= 0.3
        if self.phase == "tau" and not any(far.values()):
            self.start_dac(state, searches)
        elif self.phase == "dac":
            self.dac.update(codes["syn_i_bias_dac"], state, psp)
            if self.dac.converged or self.dac.measurements >= state.options.dac_iterations:
                self.phase = "gain"
                state.config.syn_i_bias_dac = np.where(self.dac.active, self.dac.codes, state.config.syn_i_bias_dac)
                if np.array_equal(state.config.syn_i_bias_dac, codes["syn_i_bias_dac"]):
                    self.update_gains(state, searches, codes, psp, far)  # measured at the final DACs: use it
        elif self.phase == "gain":
            self.update_gains(state, searches, codes, psp, far)
        log.info(
            "calibration.synapse.iteration",
            iteration=iteration,
            phase=self.phase,
            **{
                f"{k}_{sign}": residual_summary(
                    getattr(psp[sign], k), state.target_of(_parameter(sign, kind)), relative=True
                )
                for sign in SIGNS
                for k, kind in (("tau_syn", "tau"), ("gain", "gm"))
            },
        )

    def start_dac(self, state, searches) -> None:
        """Enter the DAC phase (or, without DAC runs, the gain phase): every gm cell at the reference."""
        if state.options.dac_iterations <= 0:
            self.phase = "gain"
            return
        self.phase = "dac"
        self.dac = DacSearch(state)
        for sign in SIGNS:
            searches[_field(sign, "gm")] = self.gain_search(state, sign, state.options.gm_reference)

    @staticmethod
    def update_gains(state, searches, codes, psp, far) -> None:
        """Per-neuron gm updates of the signs whose synaptic time constant is near its target."""
        sel = state.selected
        for sign in SIGNS:
            if far[sign]:
                continue  # gains measured with a synaptic time constant far off are poor; wait
            p, field = psp[sign], _field(sign, "gm")
            searches[field].update(codes[field], p.gain, active=sel, errors=p.gain_err)
            searches[field].retreat(sel & np.array(["CADC range" in r for r in p.reasons]), codes[field])

    def postlude(self, state, searches, psp):
        for field, s in searches.items():
            state.set_codes(field, s.result(np.inf).codes)
        if self.latency_s is None:
            self.latency_s = self.measure_latency(state)
        state.input_latency_s = self.latency_s
        for sign in SIGNS:
            reasons = np.where(state.selected, psp[sign].reasons, "")
            state.note_reasons(f"tau_syn_{sign}", reasons)
            state.note_reasons(f"weight_gain_{sign}", reasons)
