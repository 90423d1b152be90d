"""Shared by the root integration tests: a whole lab up (controller, hosts, REST), removed after.

``running_lab(topology)`` brings a lab up with ``orchestrator.up`` and always removes it,
then asserts that nothing of it is left (namespaces, links, run directory, daemons by
pid). ``topology_of(text_or_path, encapsulation=...)`` gives a topology a unique name
(``e`` + 6 hex digits). ``two_hosts(networks, vms, ...)`` is the lab most root tests
need: hosts h1 and h2 on one PA subnet, with the tenants' networks and VMs given by
``network``, ``subnet`` and ``vm``. ``settled(arrived, what)`` waits for what must
arrive, then a moment for what would come with it and must not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from openhnv.lab import builder, daemons, orchestrator
from openhnv.lab.topology import Topology, from_document, load, parse
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.polling import eventually

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# Every lab has a fabric of its own: all two-host labs may use the same PA subnet.
PA_PREFIX = "192.168.60.0/24"
HOSTS = ("h1", "h2")
Document = dict[str, Any]
# After an awaited frame or count: what the switch sent in the same batch, or before it on
# the same path, has arrived by then (a test that sent a must-not-arrive frame first).
SETTLE_SECONDS = 0.3


def unique_name() -> str:
    return f"e{secrets.token_hex(3)}"


def topology_of(source: str | Path, encapsulation: str | None = None) -> Topology:
    """The topology of a file or a text under a unique name, its encapsulation changed."""
    base = load(source) if isinstance(source, Path) else parse(source)
    topology = dataclasses.replace(base, name=unique_name())
    if encapsulation is None:
        return topology
    return dataclasses.replace(topology, encapsulation=encapsulation)


@contextlib.contextmanager
def running_lab(topology: Topology) -> Iterator[orchestrator.RunningLab]:
    pids: list[int] = []
    try:
        running = orchestrator.up(topology, progress=print, fastpath=fastpath_mode())
        pids = list(daemons.recorded(running.run_dir).values())
        yield running
    finally:
        orchestrator.down(topology.name)
    assert orchestrator.leftovers(topology.name) == []
    assert [p for p in pids if builder.alive(p)] == []
    assert not builder.run_dir_of(topology.name).exists()


def subnet(name: str, prefix: str, vsid: int | None = None, **more: Any) -> Document:
    """A virtual subnet of the lab YAML (``more``: ``prefix6``, ``acl``)."""
    found: Document = {"name": name, "prefix": prefix, **more}
    if vsid is not None:
        found["vsid"] = vsid
    return found


def network(name: str, address_space: str, *subnets: Document) -> Document:
    """A virtual network of the lab YAML with its subnets."""
    return {"name": name, "address_space": address_space, "subnets": list(subnets)}


def vm(
    name: str, host: str, ip: str, virtual_network: str, subnet: str = "s", **more: Any
) -> Document:
    """A VM of the lab YAML (``more``: ``ip6``, ``dhcp``, ``dns``, ``qos``, ``mac``, ``acl``)."""
    return {"name": name, "host": host, "virtual_network": virtual_network, "subnet": subnet,
            "ip": ip, **more}  # fmt: skip


def two_hosts(
    networks: Sequence[Document],
    vms: Sequence[Document],
    *,
    acls: Sequence[Document] = (),
    uplinks: int = 1,
    pa_prefix: str = PA_PREFIX,
    encapsulation: str | None = None,
) -> Topology:
    """Hosts h1 and h2 (``uplinks`` team members each) on one PA subnet, with these
    virtual networks, VMs and ACLs, under a unique name."""
    gateway = next(ipaddress.ip_network(pa_prefix).hosts())
    document: Document = {
        "name": unique_name(),
        "pa_subnets": [{"name": "pa", "prefix": pa_prefix, "gateway": str(gateway)}],
        "hosts": [{"name": h, "pa_subnet": "pa", "uplinks": uplinks} for h in HOSTS],
        "virtual_networks": list(networks),
        "acls": list(acls),
        "vms": list(vms),
    }
    if encapsulation is not None:
        document["encapsulation"] = encapsulation
    return from_document(document)


def settled(arrived: Callable[[], object], what: str) -> None:
    """Wait until ``arrived()`` (AssertionError naming ``what``), then SETTLE_SECONDS more,
    so that a check that nothing else came follows a proof that the path was taken."""
    eventually(arrived, what)
    time.sleep(SETTLE_SECONDS)
