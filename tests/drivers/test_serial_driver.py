"""SerialDevice against a server around the fake device: diffs, errors, retries, resets, timeouts."""

from __future__ import annotations

import socket
import time

import pytest

import hil
from drivers.serial import Link, SerialDevice, split_url
from drivers.server import Server

from .fakes import FakeDevice, config, same_measurement, stimulus
from .wire_fixtures import fake_fixture, server_fixture  # noqa: F401 - fixtures "fake" and "server"

pytestmark = pytest.mark.timeout(60)


def open_fast(address, **kw):
    return hil.open(address, timeout=kw.pop("timeout", 2.0), retries=kw.pop("retries", 3), backoff=0.01, **kw)


def test_run_matches_in_process_and_counts_bytes(server, fake):
    ref = FakeDevice()
    ref.configure(config(1))
    with open_fast(server.address) as dev:
        assert dev.info().chip_id == "fake-0"
        dev.configure(config(1))
        m = dev.run(stimulus(30), hil.Recording(madc_neuron=4, madc_samples=50))
    assert same_measurement(m, ref.run(stimulus(30), hil.Recording(madc_neuron=4, madc_samples=50)))
    assert m.health.events_dropped_input == 1 and m.health.bytes_sent > 0 and m.health.bytes_received > 1000
    assert m.provenance.driver == "serial:fake"


def test_configure_sends_only_changed_blocks(server, fake, mocker):
    with open_fast(server.address) as dev:
        spy = mocker.spy(dev.link, "exchange")
        cfg = config(2)
        dev.configure(cfg)
        first = spy.call_args.args[1]
        assert len(first.blocks) == hil.wire.MAX_BLOCKS  # the device's state was unknown: everything
        cfg.v_leak[7] = 1
        cfg.synapse_weights[1, 9, 3] = 5
        dev.configure(cfg)
        keys = [k for k, _ in spy.call_args.args[1].blocks]
        assert keys == [hil.BlockKey("field", "v_leak"), hil.BlockKey("synapse_row", hemisphere=1, row=9)]
        dev.configure(cfg)
        assert spy.call_args.args[1].blocks == []
    assert fake.config == cfg


def test_device_errors_are_reraised_with_the_device_message(server, fake, mocker):
    mocker.patch.object(fake, "run", side_effect=hil.ResourceError("crossbar full: 9 of 8 buses"))
    with open_fast(server.address) as dev:
        with pytest.raises(hil.ResourceError, match="crossbar full: 9 of 8 buses"):
            dev.run(stimulus(2))
        mocker.patch.object(fake, "run", side_effect=ZeroDivisionError("boom"))
        with pytest.raises(hil.DeviceError, match="ZeroDivisionError: boom"):
            dev.run(stimulus(2))


def test_validation_happens_before_sending(server, fake):
    fake.limits = hil.DeviceLimits(max_trials=5)
    with open_fast(server.address) as dev:
        before = server.requests
        with pytest.raises(
            hil.ConfigError, match="Stimulus.n_trials = 6 exceeds the device limit DeviceLimits.max_trials = 5 per run"
        ):
            dev.run(stimulus(6))
        cfg = hil.ChipConfig()
        cfg.arrays()["v_leak"][0] = 1023  # bypasses assignment checks; validate() catches it
        with pytest.raises(hil.ConfigError, match="v_leak"):
            dev.configure(cfg)
        assert server.requests == before


def test_lost_reply_is_retried_without_running_twice(server, fake, mocker):
    with open_fast(server.address, timeout=0.3) as dev:
        dev.configure(config(0))
        real_send = server._send
        dropped = []

        def drop_first_run_reply(ch, seq, reply):
            if reply[0] == hil.wire.MsgType.RUN_REPLY and not dropped:
                dropped.append(seq)
                return None
            return real_send(ch, seq, reply)

        mocker.patch.object(server, "_send", side_effect=drop_first_run_reply)
        m = dev.run(stimulus(10))
    assert dropped and fake.runs == 1 and m.health.retries >= 1
    ref = FakeDevice()
    ref.configure(config(0))
    assert same_measurement(m, ref.run(stimulus(10)))


def test_device_reset_is_detected_and_configuration_replayed(server, fake):
    with open_fast(server.address) as dev:
        dev.configure(config(3))
        fake.reset()  # behind the host's back: configuration lost, boot id changed
        m = dev.run(stimulus(5))
        assert fake.config == config(3) and dev.info().boot_id == fake.boot_id
        fake.reset_during_run = fake.runs + 1
        m2 = dev.run(stimulus(5))
    assert fake.config == config(3)
    ref = FakeDevice()
    ref.configure(config(3))
    ref.runs = 2  # runs before the repeat: the first run and the one the reset interrupted
    assert same_measurement(m2, ref.run(stimulus(5)))
    assert m.spikes.size == m2.spikes.size


def test_explicit_reset_clears_the_shadow(server, fake):
    with open_fast(server.address) as dev:
        dev.configure(config(4))
        boot = dev.info().boot_id
        dev.reset()
        assert dev.info().boot_id == boot + 1 and fake.config == hil.ChipConfig()
        dev.configure(config(4))
        assert fake.config == config(4)


def test_device_gone_raises_device_timeout_naming_url_operation_and_wait(server):
    dev = open_fast(server.address, timeout=0.2, retries=2)
    server.stop()
    start = time.monotonic()
    with pytest.raises(
        hil.DeviceTimeout, match=r"socket://127\.0\.0\.1:\d+: run got no answer after 3 attempts in [\d.]+ s"
    ):
        dev.run(stimulus(2))
    assert time.monotonic() - start < 5
    dev.close()


def test_silent_device_times_out():
    listener = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    url = f"socket://127.0.0.1:{listener.getsockname()[1]}"
    with pytest.raises(hil.DeviceTimeout, match="hello got no answer after 2 attempts"):
        open_fast(url, timeout=0.2, retries=1)
    listener.close()


def test_second_client_gets_busy(server):
    with open_fast(server.address):
        with pytest.raises(hil.DeviceError, match="device busy"):
            open_fast(server.address)


def test_loop_url_explains_itself():
    with pytest.raises(hil.ProtocolError, match="loop"):
        hil.open("loop://", timeout=0.3, retries=0)


def test_url_options_are_split_from_pyserial_options():
    assert split_url("socket://h:1?timeout=0.5&logging=debug&busy_wait=3") == (
        "socket://h:1?logging=debug",
        {"timeout": 0.5, "busy_wait": 3.0},
    )
    assert split_url("serial:///dev/ttyUSB0") == ("/dev/ttyUSB0", {})
    with pytest.raises(hil.ConfigError, match="retries"):
        split_url("socket://h:1?retries=many")


@pytest.mark.timeout(30)
def test_large_messages_are_chunked_both_ways(fake):
    srv = Server(fake, chunk_size=4096, window=4, ack_timeout=0.05).start()
    try:
        with open_fast(srv.address, chunk_size=4096, window=4) as dev:
            dev.configure(config(5))
            stim = stimulus(300, 40)
            m = dev.run(stim, hil.Recording(madc_neuron=1, madc_samples=2000))
        ref = FakeDevice()
        ref.configure(config(5))
        assert same_measurement(m, ref.run(stim, hil.Recording(madc_neuron=1, madc_samples=2000)))
        assert m.madc.samples.shape == (300, 2000) and m.health.bytes_received > 300 * 2000 * 2
    finally:
        srv.stop()


def test_constructing_the_driver_does_no_io_and_open_connects(server, fake):
    link = Link(server.address, timeout=1.0)
    dev = SerialDevice(link)
    assert server.requests == 0 and link.hello is None
    with pytest.raises(hil.DeviceError, match="not open; call open"):
        dev.run(stimulus(2))
    with dev.open() as dev:
        assert server.requests == 1 and link.hello.chip_id == "fake-0"
        dev.configure(config(1))
    unreachable = SerialDevice(Link("socket://127.0.0.1:9", timeout=0.2, retries=0))  # nothing listens there
    with pytest.raises(hil.DeviceTimeout, match="hello got no answer after 1 attempts"):
        unreachable.open()
