"""The publisher against real ``hnv host --driver none`` processes: NB -> OVSDB -> agent."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.publisher import Publisher
from openhnv.host.control import call
from openhnv.host.errors import ControlError
from openhnv.testing.datacenter import fabric, nic, provisioning, server, vnet
from openhnv.testing.polling import eventually
from openhnv.testing.processes import HostProcess, start_hosts

Mapping = tuple[str, str, str]  # CA, VSID, PA


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[dict[str, HostProcess]]:
    """hp1 and hp2 running; the test may replace one (a restart), each is stopped after."""
    made = {host.name: host for host in start_hosts(tmp_path, ("hp1", "hp2"))}
    try:
        yield made
    finally:
        for host in made.values():
            host.close()


def mappings(host: HostProcess) -> set[Mapping]:
    """(CA, VSID, PA) of the agent's programmed mapping space (``hnv host pa-ca-mapping``)."""
    try:
        rows = call(host.state_dir, "pa-ca-mapping")
    except ControlError:
        return set()  # not serving (yet, or any more)
    return {
        (str(r["ca_ip_address"]), str(r["virtual_subnet_id"]), str(r["pa_ip_address"]))
        for r in rows
    }


def pa_of(service: ControllerService, name: str) -> str:
    return str(service.get(f"/servers/{name}")["properties"]["providerAddresses"][0]["address"])


def holds(host: HostProcess, wanted: set[Mapping]) -> bool:
    return wanted <= mappings(host)


def test_mappings_reach_the_agents_of_real_hosts(hosts: dict[str, HostProcess]) -> None:
    service = ControllerService(SqliteStore(":memory:"))
    publisher = Publisher(service).start()
    try:
        fabric(service)
        for name, host in hosts.items():
            server(service, name, host.remote)
        vnet(service, "A", "10.1.0.0/16", 5001)
        nic(service, "n1", "A", "10.1.0.11", "hp1")
        nic(service, "n2", "A", "10.1.0.12", "hp2")
        eventually(
            lambda: all(
                provisioning(service, f"/networkInterfaces/{n}") == "Succeeded"
                for n in ("n1", "n2")
            ),
            "NICs Succeeded",
        )
        pa1, pa2 = pa_of(service, "hp1"), pa_of(service, "hp2")
        want = {("10.1.0.11", "5001", pa1), ("10.1.0.12", "5001", pa2)}
        for host in hosts.values():
            eventually(partial(holds, host, want), f"{host.name}'s agent programmed")
        # hp2 restarts (same state dir) while n1 moves to hp2: both agents follow.
        hosts["hp2"].close()
        nic(service, "n1", "A", "10.1.0.11", "hp2")
        hosts["hp2"] = HostProcess(hosts["hp2"].state_dir, name="hp2").require_ready()
        moved = {("10.1.0.11", "5001", pa2), ("10.1.0.12", "5001", pa2)}
        eventually(lambda: moved <= mappings(hosts["hp2"]), "hp2 holds n1 and n2")
        # hp1 has no NIC in A any more: its agent drops A's mappings.
        eventually(lambda: not mappings(hosts["hp1"]), "hp1 forgets A")
        assert provisioning(service, "/networkInterfaces/n1") == "Succeeded"
    finally:
        publisher.stop()
