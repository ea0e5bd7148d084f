"""``CalibrationResult`` files: ``<name>.json`` (metadata, target, figures, ADC scale, schema
version, content id, checksum of the arrays) and ``<name>.npz`` (arrays), each written
atomically with mode 0644 (``hil.files.write_atomic``). No pickle: ``allow_pickle=False``.

Loading checks everything before a result is built; every problem (missing or unreadable
file, truncated or corrupt JSON or ``.npz``, another schema, a missing key, a wrong type or
shape) raises ``CalibrationError`` naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pathlib
import zipfile

import numpy as np

from hil import chip
from hil.config import FIELDS
from hil.errors import CalibrationError, ConfigError
from hil.files import write_atomic

from .measure import AdcScale
from .target import PARAMETERS, CalibrationTarget

SCHEMA_VERSION = 2  # 2: CADC channel offsets and MADC scale; potentials offset-free
KIND = "bss2-hil calibration"
GROUPS = ("codes", "measured", "errors", "before", "success", "aux")
META_TYPES = {
    "schema": int,
    "kind": str,
    "id": str,
    "chip_id": str,
    "software_version": str,
    "timestamp": str,
    "wall_time_s": (int, float),
    "figures": dict,
    "target": dict,
    "arrays": str,
    "arrays_sha256": str,
    "adc": dict,
}
N = chip.N_NEURONS


def json_path(path) -> pathlib.Path:
    """``path`` with the suffix ``.json`` (added if missing)."""
    path = pathlib.Path(path)
    return path if path.suffix == ".json" else path.with_name(path.name + ".json")


def _number(x):
    """JSON-ready float (``None`` for nan/inf)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _json_default(x):
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return _number(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def save(result, path) -> pathlib.Path:
    """Write ``result`` to ``path`` (.json) and its arrays next to it (.npz); returns the JSON path."""
    path = json_path(path)
    npz = path.with_suffix(".npz")
    arrays = {f"{group}/{k}": np.asarray(v) for group in GROUPS for k, v in getattr(result, group).items()}
    arrays["reasons"] = np.asarray([str(r) for r in result.reasons], dtype=np.str_)
    arrays["neurons"] = np.asarray(result.neurons, np.int64)
    arrays["adc/cadc_offset"] = np.asarray(result.adc.cadc_offset, np.float64)
    arrays["adc/cadc_offset_err"] = np.asarray(result.adc.cadc_offset_err, np.float64)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    data = buf.getvalue()
    meta = {
        "schema": SCHEMA_VERSION,
        "kind": KIND,
        "id": result.id,
        "chip_id": result.chip_id,
        "software_version": result.software_version,
        "timestamp": result.timestamp,
        "wall_time_s": result.wall_time_s,
        "figures": result.figures,
        "target": result.target.to_dict(),
        "arrays": npz.name,
        "arrays_sha256": hashlib.sha256(data).hexdigest(),
        "adc": {"madc_offset": _number(result.adc.madc_offset), "madc_gain": _number(result.adc.madc_gain)},
        "n_success": int(result.success_mask.sum()),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(npz, data)
    write_atomic(path, json.dumps(meta, indent=2, sort_keys=True, default=_json_default) + "\n")
    return path


def _read_meta(path: pathlib.Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read the calibration file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise CalibrationError(f"{path}: not a calibration result (not UTF-8 text)") from None
    try:
        meta = json.loads(text)
    except ValueError as exc:
        raise CalibrationError(f"{path}: not valid JSON, truncated or corrupt ({exc})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise CalibrationError(f'{path}: not a calibration result file (no "kind": {KIND!r})')
    if meta.get("schema") != SCHEMA_VERSION:
        old = " (written before the CADC offsets were calibrated)" if meta.get("schema") == 1 else ""
        raise CalibrationError(
            f"{path}: calibration schema version {meta.get('schema')!r}{old}; this software reads "
            f"{SCHEMA_VERSION}: recalibrate (tools/calibrate)"
        )
    for key, kind in META_TYPES.items():
        if key not in meta:
            raise CalibrationError(f"{path}: missing key {key!r}")
        if not isinstance(meta[key], kind) or isinstance(meta[key], bool):
            raise CalibrationError(f"{path}: key {key!r} has type {type(meta[key]).__name__}; expected {kind}")
    if pathlib.PurePath(meta["arrays"]).name != meta["arrays"]:
        raise CalibrationError(f"{path}: key 'arrays' = {meta['arrays']!r} must be a file name next to it")
    return meta


def _read_arrays(path: pathlib.Path, meta: dict) -> dict:
    npz = path.with_name(meta["arrays"])
    try:
        raw = npz.read_bytes()
    except OSError as exc:
        raise CalibrationError(f"{path}: its arrays file {npz.name} cannot be read ({exc.strerror or exc})") from None
    if hashlib.sha256(raw).hexdigest() != meta["arrays_sha256"]:
        raise CalibrationError(
            f"{path}: arrays file {npz.name} does not match its checksum (corrupt, truncated or from another result)"
        )
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CalibrationError(f"{path}: arrays file {npz.name} is not a readable .npz ({exc})") from None


def _array(path, arrays, key, shape, kinds) -> np.ndarray:
    """The array ``key``, checked for its shape (None: any 1-D) and dtype kind."""
    if key not in arrays:
        raise CalibrationError(f"{path}: arrays file has no {key!r}")
    a = arrays[key]
    ok_shape = a.ndim == 1 if shape is None else a.shape == shape
    if not ok_shape or a.dtype.kind not in kinds:
        want = "1-D" if shape is None else str(shape)
        raise CalibrationError(
            f"{path}: array {key!r} has shape {a.shape} and dtype {a.dtype}; expected {want}, {kinds}"
        )
    return a


def _groups(path, arrays) -> dict:
    out = {g: {} for g in GROUPS}
    for key in arrays:
        group, _, name = key.partition("/")
        if group in out:
            out[group][name] = arrays[key]
    for name in out["codes"]:
        spec = FIELDS.get(name)
        if spec is None:
            raise CalibrationError(f"{path}: codes for {name!r}, which is not a ChipConfig field")
        _array(path, out["codes"], name, spec.shape, "iu")
    for group, kinds in (("measured", "f"), ("errors", "f"), ("before", "f"), ("success", "b")):
        for name in out[group]:
            if name not in PARAMETERS:
                raise CalibrationError(f"{path}: {group} holds {name!r}, which is not a calibrated parameter")
            _array(path, out[group], name, (N,), kinds)
    for group in ("measured", "success"):
        missing = [p for p in PARAMETERS if p not in out[group]]
        if missing:
            raise CalibrationError(f"{path}: {group} lacks {missing}")
    return out


def _adc(path, meta, arrays) -> AdcScale:
    madc = meta["adc"]
    for key in ("madc_offset", "madc_gain"):
        if key not in madc or not (madc[key] is None or isinstance(madc[key], int | float)):
            raise CalibrationError(f"{path}: key 'adc' needs a number (or null) {key!r}")
    return AdcScale(
        cadc_offset=_array(path, arrays, "adc/cadc_offset", (N,), "f"),
        cadc_offset_err=_array(path, arrays, "adc/cadc_offset_err", (N,), "f"),
        madc_offset=float("nan") if madc["madc_offset"] is None else float(madc["madc_offset"]),
        madc_gain=float("nan") if madc["madc_gain"] is None else float(madc["madc_gain"]),
    )


def load(cls, path):
    """Read, check and build a ``cls`` (``CalibrationResult``) from ``path``."""
    path = json_path(path)
    meta = _read_meta(path)
    arrays = _read_arrays(path, meta)
    groups = _groups(path, arrays)
    neurons = _array(path, arrays, "neurons", None, "iu")
    if neurons.size and (neurons.min() < 0 or neurons.max() >= N):
        raise CalibrationError(f"{path}: array 'neurons' holds indices outside 0..{N - 1}")
    try:
        target = CalibrationTarget.from_dict(meta["target"])
    except (ConfigError, TypeError, ValueError) as exc:
        raise CalibrationError(f"{path}: key 'target' is not a valid calibration target ({exc})") from None
    result = cls(
        codes=groups["codes"],
        measured=groups["measured"],
        errors=groups["errors"],
        before=groups["before"],
        success={k: v.astype(bool) for k, v in groups["success"].items()},
        reasons=np.array([str(x) for x in _array(path, arrays, "reasons", (N,), "U")], dtype=object),
        target=target,
        chip_id=meta["chip_id"],
        software_version=meta["software_version"],
        timestamp=meta["timestamp"],
        wall_time_s=float(meta["wall_time_s"]),
        figures=meta["figures"],
        aux=groups["aux"],
        neurons=neurons,
        adc=_adc(path, meta, arrays),
    )
    if result.id != meta["id"]:
        raise CalibrationError(f"{path}: content id {result.id} does not match the recorded id {meta['id']}")
    return result
