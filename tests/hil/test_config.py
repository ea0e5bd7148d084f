import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil import BlockKey, ChipConfig, ConfigError
from hil.config import FIELDS


def test_default_config_is_valid_and_hash_is_stable():
    a, b = ChipConfig(), ChipConfig()
    a.validate()
    assert a.content_hash() == b.content_hash()
    assert a == b
    b.v_leak[3] += 1
    assert a.content_hash() != b.content_hash()
    assert a != b


def test_every_field_has_its_schema_shape_and_dtype():
    cfg = ChipConfig()
    for name, spec in FIELDS.items():
        arr = getattr(cfg, name)
        assert arr.shape == spec.shape and arr.dtype == spec.dtype, name


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("v_leak", 1023, "v_leak[0] = 1023 is out of range; allowed: 0..1022"),
        ("synapse_weights", 64, "allowed: 0..63"),
        ("synapse_labels", -1, "allowed: 0..63"),
        ("row_modes", 3, "allowed: 0..2"),
        ("refractory_clock_scale", 8, "allowed: 0..7"),
        ("v_threshold", 1.5, "integers"),
        ("v_reset", np.nan, "integers"),
    ],
)
def test_out_of_range_values_name_field_value_and_range(field, value, fragment):
    with pytest.raises(ConfigError, match=field) as err:
        ChipConfig(**{field: value})
    assert fragment in str(err.value)


def test_in_place_edits_are_caught_by_validate():
    cfg = ChipConfig()
    cfg.synapse_weights[1, 7, 9] = 200  # uint8 fits, but not 6 bit
    with pytest.raises(ConfigError, match=r"synapse_weights\[1, 7, 9\] = 200"):
        cfg.validate()


def test_unknown_field_and_wrong_shape_are_rejected():
    with pytest.raises(ConfigError, match="unknown field"):
        ChipConfig(v_leek=1)
    with pytest.raises(ConfigError, match=r"shape \(3,\), expected \(512,\)"):
        ChipConfig(v_leak=[1, 2, 3])
    with pytest.raises(AttributeError):
        ChipConfig().nonsense = 1


def test_diff_lists_changed_blocks_only():
    a = ChipConfig()
    b = a.copy()
    assert a.diff(b) == []
    b.v_threshold[10] = 5
    b.synapse_weights[1, 200, 3] = 7
    b.synapse_labels[0, 4, 0] = 9
    b.crossbar_enable[8, 0] = True
    assert a.diff(b) == [
        BlockKey("field", "v_threshold"),
        BlockKey("crossbar"),
        BlockKey("synapse_row", hemisphere=0, row=4),
        BlockKey("synapse_row", hemisphere=1, row=200),
    ]


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_applying_the_diff_blocks_reproduces_the_target(data):
    a, b = ChipConfig(), ChipConfig()
    for _ in range(data.draw(st.integers(1, 6))):
        name = data.draw(st.sampled_from(sorted(FIELDS)))
        spec = FIELDS[name]
        index = tuple(data.draw(st.integers(0, n - 1)) for n in spec.shape)
        getattr(b, name)[index] = data.draw(st.integers(spec.low, spec.high))
    for key in a.diff(b):
        a.set_block(key, {k: v.copy() for k, v in b.get_block(key).items()})
    assert a == b and a.content_hash() == b.content_hash()


def test_set_block_validates():
    cfg = ChipConfig()
    key = BlockKey("synapse_row", hemisphere=0, row=0)
    with pytest.raises(ConfigError, match="allowed: 0..63"):
        cfg.set_block(key, {"synapse_weights": np.full(256, 64), "synapse_labels": np.zeros(256)})
    with pytest.raises(ConfigError, match="expected"):
        cfg.set_block(key, {"synapse_weights": np.zeros(256)})


def test_save_load_round_trip(tmp_path):
    cfg = ChipConfig()
    cfg.synapse_weights[0, 1, 2] = 33
    cfg.save(tmp_path / "c.npz")
    assert ChipConfig.load(tmp_path / "c.npz") == cfg


def test_changed_fields_validate_of_some_fields_and_updated_copies_only_what_changed():
    base, new = ChipConfig(), ChipConfig()
    new.v_leak[3] = 500
    new.synapse_weights[1, 7, 9] = 12
    assert base.changed_fields(new) == ["v_leak", "synapse_weights"]
    new.v_reset[0] = 5000  # out of range, in a field the check below leaves out, then includes
    new.validate(["v_leak", "synapse_weights"])
    with pytest.raises(ConfigError, match=r"v_reset\[0\] = 5000"):
        new.validate(["v_leak", "v_reset"])
    new.v_reset[0] = base.v_reset[0]
    merged = base.updated(new, ["v_leak", "synapse_weights"])
    assert merged == new and merged.changed_fields(new) == []
    assert merged.v_reset is base.v_reset  # unchanged fields are shared with self
    new.v_leak[3] = 1
    new.synapse_weights[1, 7, 9] = 2
    assert merged.v_leak[3] == 500 and merged.synapse_weights[1, 7, 9] == 12  # changed ones are copies
    bad = ChipConfig()
    bad.synapse_weights[0, 0, 0] = 64
    copy = bad.copy()  # a copy takes the arrays as they are; validate() reports them
    assert copy.synapse_weights[0, 0, 0] == 64 and copy.synapse_weights is not bad.synapse_weights
    with pytest.raises(ConfigError, match="synapse_weights"):
        copy.validate()
