"""Lab naming (pure) and the guards of clean; the build itself is in tests/integration."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhnv.lab.builder import LabNames, clean
from openhnv.lab.errors import LabError
from openhnv.lab.netns import IFNAMSIZ, interface_name


def test_every_name_carries_the_lab_prefix() -> None:
    names = LabNames("fig8")
    for namespace in (names.fabric, names.router, names.host("host1"), names.vm("contoso-sql")):
        assert namespace.startswith("hnv-fig8-")


def test_interface_names_fit_in_ifnamsiz_and_stay_distinct() -> None:
    long_a, long_b = "a-very-long-vm-name-one", "a-very-long-vm-name-two"
    names = [
        LabNames.vm_port(long_a),
        LabNames.vm_port(long_b),
        LabNames.uplink_peer("hypervisor-number-1", 0),
        LabNames.uplink_peer("hypervisor-number-1", 1),
        LabNames.bridge("provider-subnet-one"),
        LabNames.router_leg("provider-subnet-one"),
        LabNames.trunk_port("provider-subnet-one"),
        LabNames.trunk_peer("provider-subnet-one"),
    ]
    assert all(len(n) <= IFNAMSIZ for n in names)
    assert len(set(names)) == len(names)
    assert LabNames.vm_port("web") == "vm-web"
    assert interface_name(long_a) == interface_name(long_a)


def test_clean_refuses_a_foreign_prefix(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="must start with 'hnv-'"):
        clean("eth", run_root=tmp_path)
