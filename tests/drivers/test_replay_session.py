"""Record a session with ``record=`` and play it back with ``replay://``."""

from __future__ import annotations

import pytest

import hil

from .fakes import config, same_measurement, stimulus
from .wire_fixtures import fake_fixture, server_fixture  # noqa: F401 - fixtures "fake" and "server"

pytestmark = pytest.mark.timeout(30)


def test_record_and_replay(server, tmp_path):
    path = tmp_path / "s.hilrec"
    with hil.open(server.address + f"?record={path}", timeout=0.5) as dev:
        dev.configure(config(1))
        live = dev.run(stimulus(5))
        cfg = config(1)
        cfg.v_leak[0] = 3
        dev.configure(cfg)
        dev.reset()
    with hil.open(f"replay://{path}") as rep:
        assert rep.info().chip_id == "fake-0"
        rep.configure(config(1))
        again = rep.run(stimulus(5))
        assert same_measurement(live, again) and again.provenance.driver.startswith("replay:")
        rep.configure(cfg)
        rep.reset()
        with pytest.raises(hil.ProtocolError, match="recording ends"):
            rep.run(stimulus(5))


def test_replay_mismatch_names_the_first_difference(server, tmp_path):
    path = tmp_path / "s.hilrec"
    with hil.open(server.address, timeout=0.5, record=str(path)) as dev:
        dev.configure(config(1))
        dev.run(stimulus(5))
    with hil.open(f"replay://{path}") as rep:
        with pytest.raises(hil.ProtocolError, match=r"request 1 is RUN, the recording has CONFIGURE"):
            rep.run(stimulus(5))
    with hil.open(f"replay://{path}") as rep:
        rep.configure(config(1))
        with pytest.raises(
            hil.ProtocolError, match=r"request 2 \(run\) differs from the recording at payload byte \d+"
        ):
            rep.run(stimulus(6))


def test_damaged_recording_is_refused(tmp_path):
    bad = tmp_path / "bad.hilrec"
    bad.write_bytes(b"HILREC\x00\x01" + b"\x01" * 30)
    with pytest.raises(hil.ProtocolError, match="bad.hilrec"):
        hil.open(f"replay://{bad}")
