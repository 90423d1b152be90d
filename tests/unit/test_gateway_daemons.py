"""strongSwan missing: a clear error naming what is missing, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhnv.gateway.daemons import check_strongswan, start_charon
from openhnv.gateway.errors import GatewayError
from openhnv.gateway.ipsec import IpsecFiles


def test_a_missing_charon_is_named_with_its_package(tmp_path: Path) -> None:
    missing = str(tmp_path / "charon")
    with pytest.raises(GatewayError) as info:
        check_strongswan(missing)
    assert missing in str(info.value)
    assert "strongswan-charon" in str(info.value)


def test_a_missing_swanctl_is_named(tmp_path: Path) -> None:
    with pytest.raises(GatewayError) as info:
        check_strongswan(swanctl=str(tmp_path / "no-swanctl"))
    assert "no-swanctl" in str(info.value)


def test_start_charon_refuses_before_writing_or_spawning(tmp_path: Path) -> None:
    files = IpsecFiles("charon {}\n", "connections {}\n")
    with pytest.raises(GatewayError, match="strongSwan is not installed"):
        start_charon("hnv-nowhere", tmp_path / "ipsec", files, binary=str(tmp_path / "charon"))
    assert not (tmp_path / "ipsec").exists()
