import os
import stat

import pytest

from hil.files import write_atomic


def test_write_atomic_replaces_whole_file_with_shared_mode(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old")
    write_atomic(path, "new contents")
    assert path.read_text() == "new contents"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_write_atomic_keeps_old_file_when_writing_fails(tmp_path, mocker):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"old")
    mocker.patch("os.replace", side_effect=OSError("disk full"))
    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))
