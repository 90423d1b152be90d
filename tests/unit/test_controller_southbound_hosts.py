"""The publisher's hosts: one link per server at its management address, re-opened at a
new address, closed when the server goes (its state forgotten), and a duplicate address
explained instead of dialed. The addresses are unix sockets nobody listens on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.controller.southbound.hosts import HostLinks
from openhnv.controller.southbound.loop import SouthboundLoop
from openhnv.ovsdb.mirror import RowEvent


def server(server_id: str, address: str) -> dict[str, Any]:
    connections = [{"managementAddresses": [address]}]
    return {"resourceId": server_id, "properties": {"connections": connections}}


def ignore_status(server_id: str) -> None:
    pass


def ignore_port(server_id: str, event: RowEvent) -> None:
    pass


@pytest.fixture
def hosts() -> Iterator[HostLinks]:
    loop = SouthboundLoop().start()
    links = HostLinks(
        loop, ssl=None, audit_every=None, on_status=ignore_status, on_port=ignore_port
    )
    yield links
    links.close()
    loop.stop()


def test_one_link_per_server_at_its_address(hosts: HostLinks, tmp_path: Path) -> None:
    a, b = f"unix:{tmp_path}/a.sock", f"unix:{tmp_path}/b.sock"
    assert hosts.servers([server("host1", a), server("host2", b)]) == set()
    assert {s: str(link.remote) for s, link in hosts.links.items()} == {"host1": a, "host2": b}
    assert hosts.address_errors == {}


def test_a_new_address_opens_a_new_link(hosts: HostLinks, tmp_path: Path) -> None:
    hosts.servers([server("host1", f"unix:{tmp_path}/a.sock")])
    first = hosts.links["host1"]
    hosts.servers([server("host1", f"unix:{tmp_path}/a.sock")])
    assert hosts.links["host1"] is first  # the same address: the link stays
    hosts.servers([server("host1", f"unix:{tmp_path}/moved.sock")])
    assert hosts.links["host1"] is not first
    assert str(hosts.links["host1"].remote) == f"unix:{tmp_path}/moved.sock"


def test_a_server_that_goes_is_returned_and_its_state_forgotten(
    hosts: HostLinks, tmp_path: Path
) -> None:
    hosts.servers([server("host1", f"unix:{tmp_path}/a.sock")])
    hosts.give("host1", {}, 7, None, "digest")
    assert hosts.sequences() == {"host1": 7}
    assert hosts.has_state("host1")
    assert hosts.servers([]) == {"host1"}
    assert hosts.links == {}
    assert hosts.sequences() == {}
    assert not hosts.has_state("host1")


def test_a_duplicate_address_is_an_error_not_a_second_link(
    hosts: HostLinks, tmp_path: Path
) -> None:
    same = f"unix:{tmp_path}/a.sock"
    hosts.servers([server("host1", same), server("host2", same)])
    assert set(hosts.links) == {"host1"}
    assert set(hosts.address_errors) == {"host2"}
