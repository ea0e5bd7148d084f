"""``CalibrationResult``: what a calibration found and achieved, saved as JSON + ``.npz``.

Files: ``save("cal.json")`` writes ``cal.json`` (metadata, target, figures, schema version,
content id) and ``cal.npz`` (arrays: CapMem codes, measured values, uncertainties,
success masks, reasons as a string array), both atomically (``hil.files.write_atomic``, mode 0644).
No pickle anywhere: ``np.load(allow_pickle=False)``.
"""

from __future__ import annotations

import hashlib
import json
import pathlib

import attrs
import numpy as np

from hil import chip
from hil.config import ChipConfig
from hil.errors import CalibrationError
from hil.files import write_atomic

from .target import PARAMETERS, CalibrationTarget

RESULT_SCHEMA_VERSION = 1

# Configuration fields a calibration writes (per neuron, and the per-quadrant refractory clock).
NEURON_FIELDS = (
    "v_leak",
    "v_reset",
    "v_threshold",
    "i_bias_leak",
    "i_bias_synin_exc_tau",
    "i_bias_synin_inh_tau",
    "i_bias_synin_exc_gm",
    "i_bias_synin_inh_gm",
    "i_mem_offset",
    "refractory_counter",
)
QUADRANT_FIELDS = ("refractory_clock_scale", "syn_i_bias_dac")


@attrs.frozen(eq=False)
class ModelParameters:
    """Per-neuron (512,) parameters in the model's units, for the trainer.

    Potentials are normalised so that ``v_leak = 0`` and ``v_th = 1`` in units of the
    threshold distance ``unit_lsb`` (``v_threshold - v_leak`` in CADC LSB, per neuron by
    default). A model weight ``w`` is a current jump of ``w`` threshold distances; the chip
    realises it with ``w * weight_scale_exc`` (or ``_inh``) weight LSB, where
    ``weight_scale = unit_lsb / weight_gain``.
    """

    tau_mem: np.ndarray
    tau_syn_exc: np.ndarray
    tau_syn_inh: np.ndarray
    v_th: np.ndarray
    v_reset: np.ndarray
    t_refrac: np.ndarray
    weight_scale_exc: np.ndarray
    weight_scale_inh: np.ndarray
    unit_lsb: np.ndarray
    success: np.ndarray

    @property
    def tau_syn(self) -> np.ndarray:
        """Synaptic time constant of the (single-tau_syn) model: the mean of exc and inh."""
        return 0.5 * (self.tau_syn_exc + self.tau_syn_inh)

    @property
    def weight_scale(self) -> float:
        """One hardware-LSB-per-model-unit scale for all neurons (median over calibrated
        neurons of exc and inh), for ``hil.quantize``/``Placement.config``."""
        ok = self.success
        vals = np.concatenate([self.weight_scale_exc[ok], self.weight_scale_inh[ok]])
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            raise CalibrationError("model_parameters: no calibrated neuron has a finite weight scale")
        return float(np.median(vals))

    def as_dict(self) -> dict:
        d = {k: v for k, v in attrs.asdict(self, recurse=False).items()}
        d["tau_syn"] = self.tau_syn
        d["weight_scale"] = self.weight_scale
        return d


@attrs.frozen(eq=False)
class CalibrationResult:
    """Outcome of :func:`calibration.calibrate`.

    codes:      field name -> array: per-neuron CapMem values and refractory counters (512,),
                per-quadrant refractory clock scale and synapse DAC bias (4,)
    measured:   parameter name -> (512,) measured value after calibration (``nan`` where the
                measurement failed), same units as the target
    errors:     parameter name -> (512,) standard error of ``measured`` (fit uncertainty)
    before:     parameter name -> (512,) values measured at the uncalibrated start codes
    success:    parameter name -> (512,) bool; ``success_mask`` combines them
    reasons:    (512,) str, why a neuron failed ("" when it succeeded)
    target:     the ``CalibrationTarget``
    chip_id, software_version, timestamp (ISO, UTC), wall_time_s
    figures:    device runs, trials, chip time, bytes sent/received, estimate for a real chip...
    aux:        name -> array, measurement settings needed to re-measure (drive codes, latency)
    neurons:    indices of the neurons that were calibrated
    from_cache: True when ``calibrate`` found this result in the cache (no device runs);
                not stored in files, not part of ``id``
    """

    codes: dict
    measured: dict
    errors: dict
    before: dict
    success: dict
    reasons: np.ndarray
    target: CalibrationTarget
    chip_id: str
    software_version: str
    timestamp: str
    wall_time_s: float
    figures: dict
    aux: dict = attrs.field(factory=dict)
    neurons: np.ndarray = attrs.field(factory=lambda: np.arange(chip.N_NEURONS))
    from_cache: bool = attrs.field(default=False, kw_only=True)

    # --- identity ------------------------------------------------------------------------------
    @property
    def id(self) -> str:
        """Content hash (SHA-256 hex, first 16) of codes, measured values, target and chip id."""
        h = hashlib.sha256()
        h.update(self.chip_id.encode())
        h.update(self.target.key().encode())
        for group in (self.codes, self.measured):
            for k in sorted(group):
                h.update(k.encode())
                h.update(np.ascontiguousarray(group[k]).astype("<f8").tobytes())
        return h.hexdigest()[:16]

    @property
    def success_mask(self) -> np.ndarray:
        """(512,) bool: the neuron is calibrated in every parameter."""
        out = np.zeros(chip.N_NEURONS, bool)
        out[self.neurons] = True
        for v in self.success.values():
            out &= v
        return out

    @property
    def device_runs(self) -> int:
        return int(self.figures.get("device_runs", 0))

    @property
    def bytes_used(self) -> int:
        return int(self.figures.get("bytes_sent", 0)) + int(self.figures.get("bytes_received", 0))

    def residuals(self) -> dict:
        """parameter -> (512,) measured minus target."""
        return {p: self.measured[p] - self.target.per_neuron(p) for p in PARAMETERS if p in self.measured}

    def spread(self, which: str = "measured") -> dict:
        """parameter -> dict(mean, std, rel_std) over calibrated neurons (``measured``) or all
        neurons measured at the start codes (``before``)."""
        src = self.measured if which == "measured" else self.before
        mask = self.success_mask if which == "measured" else np.ones(chip.N_NEURONS, bool)
        out = {}
        for p in PARAMETERS:
            if p not in src:
                continue
            x = np.asarray(src[p])[mask]
            x = x[np.isfinite(x)]
            if x.size == 0:
                out[p] = {"mean": float("nan"), "std": float("nan"), "rel_std": float("nan"), "n": 0}
                continue
            m, s = float(x.mean()), float(x.std())
            out[p] = {"mean": m, "std": s, "rel_std": s / abs(m) if m else float("nan"), "n": int(x.size)}
        return out

    # --- use -----------------------------------------------------------------------------------
    def check(self, chip_id_or_device) -> None:
        """Raise ``CalibrationError`` unless this result belongs to the given chip (an id
        string or an open ``hil.Device``)."""
        cid = chip_id_or_device if isinstance(chip_id_or_device, str) else chip_id_or_device.info().chip_id
        if cid != self.chip_id:
            raise CalibrationError(
                f"calibration {self.id} is for chip {self.chip_id!r}, not for chip {cid!r}; "
                "calibrate this chip (tools/calibrate)"
            )

    def apply(self, config: ChipConfig | None = None, *, chip_id: str | None = None) -> ChipConfig:
        """A copy of ``config`` (default ``ChipConfig()``) with the calibrated CapMem values,
        refractory counters and clock scales, and synapse DAC biases. ``i_mem_offset`` is set to
        the calibration's value (0: the model has no offset current). With ``chip_id``, checks
        the chip first."""
        if chip_id is not None:
            self.check(chip_id)
        cfg = (config or ChipConfig()).copy()
        for name in NEURON_FIELDS + QUADRANT_FIELDS:
            if name in self.codes:
                setattr(cfg, name, self.codes[name])
        return cfg

    def model_parameters(self, normalization: str = "neuron") -> ModelParameters:
        """Per-neuron parameters in model units (see :class:`ModelParameters`).

        ``normalization="neuron"``: each neuron's own threshold distance is its unit (so
        ``v_th`` is exactly 1 and differences go into ``weight_scale``); ``"target"``: the
        target's threshold distance is the unit for all (``v_th`` ~ 1 per neuron).
        """
        m = self.measured
        if normalization == "neuron":
            unit = m["v_threshold"] - m["v_leak"]
        elif normalization == "target":
            unit = self.target.per_neuron("v_threshold") - self.target.per_neuron("v_leak")
        else:
            raise CalibrationError(f"model_parameters: normalization = {normalization!r}; allowed: 'neuron', 'target'")
        with np.errstate(invalid="ignore", divide="ignore"):
            return ModelParameters(
                tau_mem=m["tau_mem"].copy(),
                tau_syn_exc=m["tau_syn_exc"].copy(),
                tau_syn_inh=m["tau_syn_inh"].copy(),
                v_th=(m["v_threshold"] - m["v_leak"]) / unit,
                v_reset=(m["v_reset"] - m["v_leak"]) / unit,
                t_refrac=m["refractory"].copy(),
                weight_scale_exc=unit / m["weight_gain_exc"],
                weight_scale_inh=unit / m["weight_gain_inh"],
                unit_lsb=np.asarray(unit, np.float64).copy(),
                success=self.success_mask,
            )

    # --- files ---------------------------------------------------------------------------------
    def save(self, path) -> pathlib.Path:
        """Write ``path`` (JSON, suffix ``.json`` added if missing) and the arrays next to it
        (same stem, ``.npz``), atomically. Returns the JSON path."""
        path = pathlib.Path(path)
        if path.suffix != ".json":
            path = path.with_name(path.name + ".json")
        npz = path.with_suffix(".npz")
        arrays = {}
        for group, d in (
            ("codes", self.codes),
            ("measured", self.measured),
            ("errors", self.errors),
            ("before", self.before),
            ("success", self.success),
            ("aux", self.aux),
        ):
            for k, v in d.items():
                arrays[f"{group}/{k}"] = np.asarray(v)
        arrays["reasons"] = np.asarray([str(r) for r in self.reasons], dtype=np.str_)
        arrays["neurons"] = np.asarray(self.neurons, np.int64)
        meta = {
            "schema": RESULT_SCHEMA_VERSION,
            "kind": "bss2-hil calibration",
            "id": self.id,
            "chip_id": self.chip_id,
            "software_version": self.software_version,
            "timestamp": self.timestamp,
            "wall_time_s": self.wall_time_s,
            "figures": self.figures,
            "target": self.target.to_dict(),
            "arrays": npz.name,
            "arrays_sha256": None,
            "n_success": int(self.success_mask.sum()),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _atomic_npz(npz, arrays)
        meta["arrays_sha256"] = hashlib.sha256(data).hexdigest()
        write_atomic(path, (json.dumps(meta, indent=2, sort_keys=True, default=_json_default) + "\n").encode())
        return path

    @classmethod
    def load(cls, path, *, chip_id: str | None = None) -> CalibrationResult:
        """Read a result written by :meth:`save`. ``chip_id``: raise ``CalibrationError`` if
        the result belongs to another chip. Corrupt or foreign files raise ``CalibrationError``."""
        path = pathlib.Path(path)
        if path.suffix != ".json":
            path = (
                path.with_name(path.name + ".json")
                if not path.with_suffix(".json").exists()
                else path.with_suffix(".json")
            )
        try:
            meta = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise CalibrationError(f"{path}: cannot read calibration metadata ({exc})") from None
        if not isinstance(meta, dict) or meta.get("kind") != "bss2-hil calibration":
            raise CalibrationError(f"{path}: not a calibration result file")
        if meta.get("schema") != RESULT_SCHEMA_VERSION:
            raise CalibrationError(
                f"{path}: calibration schema version {meta.get('schema')!r}; "
                f"this software reads {RESULT_SCHEMA_VERSION}"
            )
        npz = path.with_name(meta["arrays"])
        try:
            raw = npz.read_bytes()
        except OSError as exc:
            raise CalibrationError(f"{path}: its arrays file {npz.name} cannot be read ({exc})") from None
        if hashlib.sha256(raw).hexdigest() != meta.get("arrays_sha256"):
            raise CalibrationError(
                f"{path}: arrays file {npz.name} does not match its checksum (corrupt or from another result)"
            )
        import io

        groups = {g: {} for g in ("codes", "measured", "errors", "before", "success", "aux")}
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            for key in data.files:
                if "/" in key:
                    g, k = key.split("/", 1)
                    groups[g][k] = data[key]
            reasons = np.array([str(x) for x in data["reasons"]], dtype=object)
            neurons = data["neurons"]
        result = cls(
            codes=groups["codes"],
            measured=groups["measured"],
            errors=groups["errors"],
            before=groups["before"],
            success={k: v.astype(bool) for k, v in groups["success"].items()},
            reasons=reasons,
            target=CalibrationTarget.from_dict(meta["target"]),
            chip_id=meta["chip_id"],
            software_version=meta["software_version"],
            timestamp=meta["timestamp"],
            wall_time_s=float(meta["wall_time_s"]),
            figures=meta["figures"],
            aux=groups["aux"],
            neurons=neurons,
        )
        if result.id != meta.get("id"):
            raise CalibrationError(f"{path}: content id {result.id} does not match the recorded id {meta.get('id')}")
        if chip_id is not None:
            result.check(chip_id)
        return result


def _json_default(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _atomic_npz(path: pathlib.Path, arrays: dict) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    write_atomic(path, data)
    return data
