"""Fixtures shared by the functional tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from openhnv.ovsdb.server import OvsdbServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OvsdbServer]:
    """A running ovsdb-server with the host's databases, in a temp dir (a test may override)."""
    srv = OvsdbServer(tmp_path / "host1")
    srv.start()
    yield srv
    srv.stop()
