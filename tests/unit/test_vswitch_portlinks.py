"""Which links are VM ports and uplinks: ifalias parsing and the port table."""

from __future__ import annotations

import pytest

from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.portlinks import (
    LinkInfo,
    PortLink,
    parse_port_alias,
    port_links,
    uplink_names,
)


def test_a_port_alias_names_the_port_and_its_mac() -> None:
    expected = ("nic-1", "aa:bb:cc:dd:ee:f0")
    assert parse_port_alias("openhnv-port nic-1 AA:BB:cc:dd:ee:f0") == expected
    assert parse_port_alias("openhnv-port nic-1 aa-bb-cc-dd-ee-f0") == expected


@pytest.mark.parametrize("alias", [None, "", "uplink to tor", "openhnv-portx a b"])
def test_other_aliases_are_not_ports(alias: str | None) -> None:
    assert parse_port_alias(alias) is None


@pytest.mark.parametrize(
    ("alias", "reason"),
    [
        ("openhnv-port nic-1", "expected"),
        ("openhnv-port nic-1 aa:bb:cc:dd:ee:f0 extra", "expected"),
        ("openhnv-port nic-1 aa:bb:cc:dd:ee", "not a MAC"),
        ("openhnv-port nic-1 01:00:5e:00:00:01", "multicast"),
    ],
)
def test_malformed_port_aliases_are_refused_by_name(alias: str, reason: str) -> None:
    with pytest.raises(VSwitchError, match=reason):
        parse_port_alias(alias)


def test_the_port_table_skips_bad_links_and_keeps_the_first_of_a_duplicate() -> None:
    links = [
        LinkInfo(7, "vm-b", "openhnv-port nic-1 02:00:00:00:00:02"),
        LinkInfo(5, "vm-a", "openhnv-port nic-1 02:00:00:00:00:01"),
        LinkInfo(6, "vm-c", "openhnv-port nic-3"),
        LinkInfo(8, "vm-d", "openhnv-port nic-4 02:00:00:00:00:04", deleted=True),
        LinkInfo(1, "lo", None),
        LinkInfo(9, "vm-e", "openhnv-port nic-5 02:00:00:00:00:05"),
    ]
    ports, problems = port_links(links)
    assert ports == {
        "nic-1": PortLink(5, "vm-a", "nic-1", "02:00:00:00:00:01"),
        "nic-5": PortLink(9, "vm-e", "nic-5", "02:00:00:00:00:05"),
    }
    assert len(problems) == 2
    assert any("vm-c" in p for p in problems)
    assert any("vm-b" in p and "already" in p for p in problems)


def test_uplinks_are_up_n_in_numeric_order() -> None:
    links = [LinkInfo(i, n, None) for i, n in enumerate(["up10", "up2", "upx", "eth0", "up0"])]
    assert uplink_names(links) == ["up0", "up2", "up10"]
