"""A live migration's REST change (lab.migration): the NIC's PUT with a new ``server``,
as ``hnv lab migrate`` sends it, moves the NIC's rows on every host's OVSDB.

A real ``hnv controller``; three hosts stood in by their ovsdb-servers; VNet A with one
NIC on each host and a second one on p0. n0 moves p0 -> p2: every host's
``Ucast_Macs_Remote`` row of n0's CA names p2's PA, p2 has n0's ``Physical_Port`` (bound
to the VSID) and p0 has none; a stale etag is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from openhnv.lab.errors import LabError
from openhnv.lab.migration import moved_document
from openhnv.ovsdb.rows import Ref
from openhnv.testing.datacenter import fabric, nic, server, vnet
from openhnv.testing.ovsdb import HostDatabase, host_databases
from openhnv.testing.polling import eventually
from openhnv.testing.processes import ControllerProcess

HOSTS = ("p0", "p1", "p2")
MOVER_CA = "10.1.0.10"


@pytest.fixture
def three() -> Iterator[dict[str, HostDatabase]]:
    with host_databases(*HOSTS) as made:
        yield made


def pa_of(nc: ControllerProcess, host: str) -> str:
    return str(nc.get(f"/servers/{host}")["properties"]["providerAddresses"][0]["address"])


def mapped_pa(host: HostDatabase, ca: str) -> set[str]:
    """The PAs the host's OVSDB maps ``ca`` to (its rows' Physical_Locator ``dst_ip``)."""
    with host.client() as client:
        tables = client.snapshot(["Ucast_Macs_Remote", "Physical_Locator"])
    locators = tables["Physical_Locator"]
    found = set()
    for row in tables["Ucast_Macs_Remote"].values():
        locator = row.get("locator")
        if row.get("ipaddr") == ca and isinstance(locator, Ref) and locator.key in locators:
            found.add(str(locators[locator.key]["dst_ip"]))
    return found


def maps_to(host: HostDatabase, pa: str) -> bool:
    return mapped_pa(host, MOVER_CA) == {pa}


def port_names(host: HostDatabase) -> set[str]:
    return set(host.rows("Physical_Port"))


def test_the_nics_put_with_a_new_server_moves_its_rows_on_every_host(
    tmp_path: Path, three: dict[str, HostDatabase]
) -> None:
    nc = ControllerProcess(tmp_path / "nc.db")
    try:
        fabric(nc)
        for name, host in three.items():
            server(nc, name, host.remote)
        vnet(nc, "A", "10.1.0.0/16", 5001)
        for i, name in enumerate(HOSTS):
            nic(nc, f"n{i}", "A", f"10.1.0.{10 + i}", name)
        nic(nc, "stays", "A", "10.1.0.20", "p0")  # p0 keeps VNet A after n0 left
        pa0, pa2 = pa_of(nc, "p0"), pa_of(nc, "p2")
        for host in three.values():
            eventually(partial(maps_to, host, pa0), f"{host.name} maps n0")
        instance = str(nc.get("/networkInterfaces/n0")["instanceId"])
        eventually(lambda: instance in port_names(three["p0"]), "n0's port row on p0")

        client = nc.client()
        try:
            before = client.get("/networkInterfaces/n0")
            answer = client.put(moved_document(before, "p2"), if_match=str(before["etag"]))
            assert answer["properties"]["server"]["resourceRef"].lower() == "/servers/p2"
            # the etag of before is stale now: a client that read earlier is refused
            with pytest.raises(LabError, match="412"):
                client.put(moved_document(before, "p1"), if_match=str(before["etag"]))
        finally:
            client.close()

        for host in three.values():
            eventually(partial(maps_to, host, pa2), f"{host.name} maps n0 at p2")
        eventually(lambda: instance in port_names(three["p2"]), "n0's port row on p2")
        eventually(lambda: instance not in port_names(three["p0"]), "p0 released n0's port row")
        port = three["p2"].rows("Physical_Port")[instance]
        assert port.get("vlan_bindings"), port  # bound to n0's logical switch
        assert nc.get("/networkInterfaces/n0")["properties"]["server"]["resourceRef"].lower() == (
            "/servers/p2"
        )
    finally:
        nc.kill()
