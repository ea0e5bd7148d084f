"""CalibrationResult files: round trip, file modes, and a CalibrationError naming the file for
every kind of damage (issue 16 item 3)."""

import hashlib
import json
import stat

import numpy as np
import pytest

from calibration import CalibrationResult
from hil.errors import CalibrationError


def saved(result, tmp_path):
    path = result.save(tmp_path / "cal")
    return path, path.with_suffix(".npz")


def test_round_trip_keeps_everything_and_files_are_shared_readable(synthetic_result, tmp_path):
    path, npz = saved(synthetic_result, tmp_path)
    for p in (path, npz):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644
    loaded = CalibrationResult.load(path, chip_id="synthetic-chip")
    assert loaded.id == synthetic_result.id and not loaded.from_cache
    np.testing.assert_array_equal(loaded.adc.cadc_offset, synthetic_result.adc.cadc_offset)
    assert (loaded.adc.madc_offset, loaded.adc.madc_gain) == (-3.0, 4.1)
    for k, v in synthetic_result.measured.items():
        np.testing.assert_array_equal(loaded.measured[k], v)
    assert list(loaded.reasons) == list(synthetic_result.reasons)
    np.testing.assert_array_equal(loaded.codes["syn_i_bias_dac"], synthetic_result.codes["syn_i_bias_dac"])


def rewrite_meta(path, change):
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def rewrite_arrays(path, npz, change):
    """Change the arrays and record the new checksum (a consistent but wrong file)."""
    with np.load(npz) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(npz, **arrays)
    rewrite_meta(path, lambda m: m.update(arrays_sha256=hashlib.sha256(npz.read_bytes()).hexdigest()))


META_DAMAGE = {
    "missing key 'chip_id'": lambda m: m.pop("chip_id"),
    "key 'wall_time_s' has type str": lambda m: m.update(wall_time_s="x"),
    "key 'figures' has type list": lambda m: m.update(figures=[1]),
    "schema version 1 (written before the CADC offsets": lambda m: m.update(schema=1),
    "schema version 99": lambda m: m.update(schema=99),
    "not a calibration result file": lambda m: m.update(kind="something else"),
    "must be a file name": lambda m: m.update(arrays="../elsewhere.npz"),
    "not a valid calibration target": lambda m: m["target"].update(tau_mem=5.0),
    "content id": lambda m: m.update(id="0123456789abcdef"),
    "'adc' needs a number": lambda m: m["adc"].update(madc_gain="four"),
}


@pytest.mark.parametrize("what", list(META_DAMAGE))
def test_damaged_metadata_is_a_calibration_error_naming_the_file(synthetic_result, tmp_path, what):
    path, _ = saved(synthetic_result, tmp_path)
    rewrite_meta(path, META_DAMAGE[what])
    with pytest.raises(CalibrationError, match=str(path).replace(".", r"\.")) as info:
        CalibrationResult.load(path)
    assert what in str(info.value)


ARRAY_DAMAGE = {
    "has no 'neurons'": lambda a: a.pop("neurons"),
    "array 'adc/cadc_offset' has shape (3,)": lambda a: a.update({"adc/cadc_offset": np.zeros(3)}),
    "measured lacks ['tau_mem']": lambda a: a.pop("measured/tau_mem"),
    "codes for 'bogus'": lambda a: a.update({"codes/bogus": np.zeros(512, np.int64)}),
    "array 'v_leak' has shape (512,) and dtype float64": lambda a: a.update({"codes/v_leak": np.zeros(512)}),
    "indices outside": lambda a: a.update(neurons=np.array([0, 600])),
}


@pytest.mark.parametrize("what", list(ARRAY_DAMAGE))
def test_damaged_arrays_are_a_calibration_error(synthetic_result, tmp_path, what):
    path, npz = saved(synthetic_result, tmp_path)
    rewrite_arrays(path, npz, ARRAY_DAMAGE[what])
    with pytest.raises(CalibrationError) as info:
        CalibrationResult.load(path)
    assert what in str(info.value) and str(path) in str(info.value)


def test_truncated_unreadable_and_missing_files(synthetic_result, tmp_path):
    path, npz = saved(synthetic_result, tmp_path)
    text = path.read_bytes()
    path.write_bytes(text[: len(text) // 2])
    with pytest.raises(CalibrationError, match="not valid JSON"):
        CalibrationResult.load(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CalibrationError, match="not UTF-8"):
        CalibrationResult.load(path)
    path.write_bytes(text)
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])
    with pytest.raises(CalibrationError, match="checksum"):
        CalibrationResult.load(path)
    npz.write_bytes(b"not a zip file")
    rewrite_meta(path, lambda m: m.update(arrays_sha256=hashlib.sha256(b"not a zip file").hexdigest()))
    with pytest.raises(CalibrationError, match="not a readable .npz"):
        CalibrationResult.load(path)
    npz.unlink()
    with pytest.raises(CalibrationError, match="cannot be read"):
        CalibrationResult.load(path)
    with pytest.raises(CalibrationError, match="cannot read"):
        CalibrationResult.load(tmp_path / "missing.json")
    with pytest.raises(CalibrationError, match="cannot read"):
        CalibrationResult.load(tmp_path)  # a directory
