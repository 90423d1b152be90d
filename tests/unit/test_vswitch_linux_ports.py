"""The Linux driver's VM ports as link dumps and events show them (``PortScan``): which
went, which came, which events call for a rescan, alias problems told once."""

from __future__ import annotations

import logging
from collections import Counter
from typing import cast

import pytest

from openhnv.vswitch.linux_ports import Port, PortScan
from openhnv.vswitch.portlinks import LinkInfo, PortLink, port_alias
from openhnv.vswitch.ring import PacketRing

MAC1, MAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


def _link(index: int, ifname: str, alias: str | None, deleted: bool = False) -> LinkInfo:
    return LinkInfo(index, ifname, alias, deleted)


def _ports(*links: PortLink) -> dict[str, Port]:
    """The driver's table of found ports (their rings play no part in a scan)."""
    return {link.port: Port(link, cast(PacketRing, None)) for link in links}


def test_a_dump_names_the_ports_that_went_and_came() -> None:
    scan = PortScan(Counter())
    known = _ports(PortLink(5, "p1", "nic-1", MAC1), PortLink(6, "p2", "nic-2", MAC2))
    dump = [
        _link(1, "up0", None),
        _link(7, "p1new", port_alias("nic-1", MAC1)),  # nic-1 on another link now
        _link(8, "p3", port_alias("nic-3", "02:00:00:00:00:03")),
    ]  # nic-2's link is gone
    gone, came = scan.changes(dump, known)
    assert gone == ["nic-1", "nic-2"]
    assert came == [
        PortLink(7, "p1new", "nic-1", MAC1),
        PortLink(8, "p3", "nic-3", "02:00:00:00:00:03"),
    ]
    same = [_link(5, "p1", port_alias("nic-1", MAC1)), _link(6, "p2", port_alias("nic-2", MAC2))]
    assert scan.changes(same, known) == ([], [])


def test_an_alias_problem_is_counted_and_logged_once_until_it_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counters: Counter[str] = Counter()
    scan = PortScan(counters)
    bad = [_link(9, "p9", "openhnv-port nic-9")]  # no MAC
    with caplog.at_level(logging.WARNING, logger="openhnv.vswitch.linux_ports"):
        assert scan.changes(bad, {}) == ([], [])
        scan.changes(bad, {})  # the same problem: told already
        scan.changes([], {})  # gone
        scan.changes(bad, {})  # back: told again
    assert counters["port_alias_problems"] == 2
    assert [r.getMessage() for r in caplog.records] == [
        "linux driver: link p9: ifalias 'openhnv-port nic-9': expected"
        " 'openhnv-port <port-id> <mac>'"
    ] * 2


def test_only_events_that_may_change_a_port_call_for_a_rescan() -> None:
    touches = PortScan.touches_ports
    uplinks = {"up0"}
    known = _ports(PortLink(5, "p1", "nic-1", MAC1))
    assert not touches(_link(1, "up0", None), uplinks, known)  # an uplink's carrier
    assert touches(_link(1, "up0", port_alias("nic-7", MAC2)), uplinks, known)  # made a port
    assert touches(_link(5, "p1", None, deleted=True), uplinks, known)
    assert not touches(_link(6, "x", None, deleted=True), uplinks, known)  # never a port
    assert touches(_link(6, "x", None), uplinks, known)  # a new link: its alias may follow
    assert touches(_link(5, "renamed", None), uplinks, known)
    assert touches(_link(5, "p1", port_alias("nic-1", MAC1)), uplinks, known)
