"""Record a session with ``record=`` and play it back with ``replay://``."""

from __future__ import annotations

import attrs
import numpy as np
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


def mock_session(dev):
    """Configure, run with every readout, reset, run again; the measurements."""
    placement = hil.place(hil.Network.feedforward(5, [20], 3))
    rng = np.random.default_rng(2)
    net = placement.network
    cfg = placement.config({p.key: rng.normal(1.0, 0.8, net.weight_shape(p)) for p in net.projections}, 40.0)
    cfg.enable_readout[:] = True
    stim = placement.encode(rng.uniform(0, 20e-6, (6, 5)), 40e-6)
    rec = hil.Recording(spike_counts=True, madc_neuron=21, madc_samples=300, cadc_period_s=4e-6)
    dev.configure(cfg)
    out = [dev.run(stim, rec), dev.run(stim)]
    with pytest.raises(hil.ConfigError, match="enable_readout"):  # a failing call is recorded too
        dev.configure(hil.ChipConfig())
        dev.run(stim, rec)
    dev.reset()
    dev.configure(cfg)
    out.append(dev.run(stim, rec))
    return out


def identical(a: hil.Measurement, b: hil.Measurement) -> bool:
    """Bit-identical: every array, the health counters and the provenance but the driver name."""
    return (
        same_measurement(a, b)
        and a.health == b.health
        and attrs.evolve(a.provenance, driver="") == attrs.evolve(b.provenance, driver="")
        and (a.madc is None or (a.madc.period_s, a.madc.start_s) == (b.madc.period_s, b.madc.start_s))
        and (a.cadc is None or np.array_equal(a.cadc.ticks, b.cadc.ticks))
    )


@pytest.mark.parametrize("how", ["keyword", "query"])
def test_a_recorded_mock_session_replays_bit_identical(tmp_path, how):
    path = tmp_path / "mock.hilrec"
    url = "mock://?seed=5&noise_seed=9"
    dev = hil.open(url, record=str(path)) if how == "keyword" else hil.open(f"{url}&record={path}")
    with dev:
        live = mock_session(dev)
        chip_id = dev.info().chip_id
    assert live[0].spikes.size > 0 and live[0].madc is not None and live[0].cadc is not None
    with hil.open(f"replay://{path}") as rep:
        assert rep.info().chip_id == chip_id and rep.info().driver == "replay:mock"
        again = mock_session(rep)
    assert all(identical(a, b) for a, b in zip(live, again, strict=True))
    assert again[0].provenance.driver == "replay:mock"


def test_recording_a_path_that_cannot_be_written_is_a_config_error(tmp_path):
    with pytest.raises(hil.ConfigError, match="cannot write the session recording"):
        hil.open("mock://", record=str(tmp_path / "no" / "such" / "dir" / "s.hilrec"))
