"""A real host agent reports VM ports; the publisher binds the NICs; the VMs ping.

Two NICs are created through the controller service **without** a server. A host
namespace runs ``hnv host --driver linux``; two VM namespaces join it by veths whose
host ends carry ``openhnv-port <NIC instanceId> <MAC>``. The agent writes their
``Physical_Port`` rows (``attached=true``); the publisher, dialing the host's unix
socket from the root namespace (a file, no traffic), binds each NIC to the host,
recompiles and publishes; the agent programs the ports and one VM pings the other.
Needs root; everything is named ``hnv-pb<pid>...`` and removed at the end.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore
from openhnv.controller.southbound.publisher import Publisher
from openhnv.lab import traffic
from openhnv.testing.datacenter import fabric, mac_text, nic, provisioning, server, vnet
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.namespaces import VmPort, host_with_vms
from openhnv.testing.polling import eventually
from openhnv.testing.processes import HostProcess

pytestmark = [pytest.mark.root, pytest.mark.datapath]

VMS = (("vm1", "10.1.1.11"), ("vm2", "10.1.1.13"))


@dataclass(frozen=True, slots=True)
class Lab:
    state: Path  # the host's state directory
    vm_namespaces: dict[str, str]


@pytest.fixture
def service() -> ControllerService:
    return ControllerService(SqliteStore(":memory:"))


@pytest.fixture
def lab(service: ControllerService, tmp_path: Path) -> Iterator[Lab]:
    """The NICs (unplaced), the namespaces and veths, and the running host process."""
    fabric(service)
    vnet(service, "Contoso", "10.1.1.0/24", 5001)
    ports = []
    for name, ip in VMS:
        doc = nic(service, name, "Contoso", ip, None)
        ports.append(VmPort(name, doc["instanceId"], mac_text(doc), f"{ip}/24"))
    state = tmp_path / "host1"
    with (
        host_with_vms("pb", ports, vm_offloads=fastpath_mode() == "on") as namespaces,
        HostProcess(
            state, "--fastpath", fastpath_mode(), driver="linux", namespace=namespaces.host
        ),
    ):
        yield Lab(state, namespaces.vms)


def placed_on(service: ControllerService, nic_name: str, server_name: str) -> bool:
    server_ref = service.get(f"/networkInterfaces/{nic_name}")["properties"].get("server")
    return bool(server_ref == {"resourceRef": f"/servers/{server_name}"})


def succeeded(service: ControllerService, nic_name: str) -> bool:
    return provisioning(service, f"/networkInterfaces/{nic_name}") == "Succeeded"


def test_reported_ports_bind_nics_and_the_vms_ping(service: ControllerService, lab: Lab) -> None:
    publisher = Publisher(service).start()
    try:
        server(service, "host1", f"unix:{lab.state}/ovsdb.sock")
        for name, _ in VMS:
            eventually(
                partial(placed_on, service, name, "host1"),
                f"{name} bound to host1 from the agent's report",
            )
        for name, _ in VMS:
            eventually(partial(succeeded, service, name), f"{name} Succeeded")
        vm1 = lab.vm_namespaces["vm1"]
        eventually(
            lambda: traffic.ping(vm1, VMS[1][1], count=1, wait=1.0) is not None,
            "vm1 pings vm2 through the agent's programming",
        )
    finally:
        publisher.stop()
