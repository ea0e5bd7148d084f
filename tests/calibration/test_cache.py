import json

import numpy as np

import hil
from calibration import CalibrationOptions, CalibrationTarget
from calibration import cache as C
from calibration.routine import cache_key


def test_cache_dir_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("BSS2_HIL_CACHE", str(tmp_path))
    assert C.cache_dir() == tmp_path / "calibration"
    monkeypatch.delenv("BSS2_HIL_CACHE")
    assert "bss2-hil" in str(C.cache_dir())


def test_key_depends_on_target_chip_base_neurons_and_options():
    sel = np.ones(512, bool)
    base = hil.ChipConfig()
    k = cache_key(CalibrationTarget(), "chip-a", base, sel, CalibrationOptions())
    assert k == cache_key(CalibrationTarget(), "chip-a", base.copy(), sel.copy(), CalibrationOptions())
    other = base.copy()
    other.syn_i_bias_dac = 700
    sub = sel.copy()
    sub[3] = False
    for variant in (
        cache_key(CalibrationTarget(tau_mem=10e-6), "chip-a", base, sel, CalibrationOptions()),
        cache_key(CalibrationTarget(), "chip-b", base, sel, CalibrationOptions()),
        cache_key(CalibrationTarget(), "chip-a", other, sel, CalibrationOptions()),
        cache_key(CalibrationTarget(), "chip-a", base, sub, CalibrationOptions()),
        cache_key(CalibrationTarget(), "chip-a", base, sel, CalibrationOptions(spiking_trials=9)),
    ):
        assert variant != k


def test_unreadable_entry_is_moved_aside_and_logged(monkeypatch, tmp_path, synthetic_result, caplog):
    monkeypatch.setenv("BSS2_HIL_CACHE", str(tmp_path))
    key = "ab" * 32
    path = C.store(key, synthetic_result)
    assert C.lookup(key).id == synthetic_result.id
    meta = json.loads(path.read_text())
    del meta["target"]  # valid JSON with a missing key: the case that crashed the tools
    path.write_text(json.dumps(meta))
    with caplog.at_level("WARNING", logger="calibration"):
        assert C.lookup(key) is None
    assert not path.exists() and not path.with_suffix(".npz").exists()
    moved = sorted(p.name for p in path.parent.iterdir())
    assert len(moved) == 2 and all(".corrupt-" in name for name in moved)
    event = next(r.fields for r in caplog.records if getattr(r, "event", None) == "calibration.cache_unreadable")
    assert "missing key 'target'" in event["error"] and ".corrupt-" in event["moved_to"]
    assert C.lookup(key) is None  # nothing left to trip over
