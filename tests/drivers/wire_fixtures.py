"""Fixtures of the wire-driver tests (imported by those test modules; tests/drivers/conftest.py
belongs to the mock chip's tests)."""

from __future__ import annotations

import pytest

from drivers.server import Server

from .fakes import FakeDevice


def mock_chip_class():
    """``drivers.mock.MockChip`` if importable and usable, else skip the test saying why."""
    try:
        from drivers.mock import MockChip

        MockChip(seed=7, noise=False).info()
    except Exception as exc:  # the mock is written in parallel; it may not be ready
        pytest.skip(f"drivers.mock.MockChip is not usable yet: {type(exc).__name__}: {exc}")
    return MockChip


@pytest.fixture(name="fake")
def fake_fixture():
    return FakeDevice()


@pytest.fixture(name="server")
def server_fixture(fake):
    srv = Server(fake, ack_timeout=0.05).start()
    yield srv
    srv.stop()
