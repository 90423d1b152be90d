"""``hnv host --driver linux`` in a host namespace: two VMs of one subnet ping each other.

One host namespace with an uplink ``up0`` (its peer stays in the same namespace, nothing
is sent there) and two VM namespaces joined to it by veths whose host ends carry the
``openhnv-port <NIC instanceId> <MAC>`` alias. The host process runs inside the host
namespace (``ip netns exec``); the compiler's rows for the two NICs go into its OVSDB;
then the agent answers the VMs' ARP and the switch delivers the pings locally. Needs
root; everything is named ``hnv-hp<pid>...`` and removed at the end.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.controller.compiler.compile import compile_host
from openhnv.host.control import call
from openhnv.lab import traffic
from openhnv.ovsdb.client import OvsdbClient
from openhnv.testing.datapath_mode import fastpath_mode
from openhnv.testing.namespaces import HostNamespaces, VmPort, host_with_vms
from openhnv.testing.polling import WAIT, eventually
from openhnv.testing.processes import HostProcess
from openhnv.testing.snapshots import instance_id, nic, server, snapshot, subnet, vnet
from openhnv.vswitch.ring import RECEIVE_COUNTERS

pytestmark = [pytest.mark.root, pytest.mark.datapath]

VMS = (("vm1", "001DD8070011", "10.1.1.11"), ("vm2", "001DD8070013", "10.1.1.13"))


def mac_text(compact: str) -> str:
    return ":".join(compact[i : i + 2] for i in range(0, 12, 2)).lower()


def datacenter() -> dict[str, Any]:
    return snapshot(
        servers=[server("host1", [("192.168.1.10", 24, 0, "192.168.1.1")])],
        vnets=[vnet("Contoso", ["10.1.1.0/24"], [subnet("Subnet1", "10.1.1.0/24", 5001)])],
        nics=[nic(name, mac, [(ip, "Contoso/Subnet1")], "host1") for name, mac, ip in VMS],
    )


@pytest.fixture
def namespaces() -> Iterator[HostNamespaces]:
    ports = [
        VmPort(name, instance_id(f"/networkInterfaces/{name}"), mac_text(mac), f"{ip}/24")
        for name, mac, ip in VMS
    ]
    with host_with_vms("hp", ports, vm_offloads=fastpath_mode() == "on") as made:
        yield made


@pytest.fixture
def host(namespaces: HostNamespaces, tmp_path: Path) -> Iterator[HostProcess]:
    with HostProcess(
        tmp_path / "h1", "--fastpath", fastpath_mode(), driver="linux", namespace=namespaces.host
    ) as running:
        yield running


def test_two_vms_ping_through_the_host_process(
    host: HostProcess, namespaces: HostNamespaces
) -> None:
    state = host.state_dir
    with OvsdbClient(host.remote) as client:
        client.wait_synced(WAIT)
        client.replace_all(compile_host(datacenter(), "host1"))
    ports = [instance_id(f"/networkInterfaces/{name}") for name, *_ in VMS]

    def programmed() -> bool:
        rows = {p["name"]: p for p in call(state, "list-ports")}
        return all(rows.get(p, {}).get("programmed") and rows[p].get("attached") for p in ports)

    eventually(programmed, "both VM ports reported by the driver and programmed")
    assert traffic.ping(namespaces.vms["vm1"], "10.1.1.13", count=3) is not None
    counters = call(state, "counters", port=ports[0])
    # the first echoes cross the Python switch; with the kernel fast path the pair goes
    # down after the first reply and the kernel counts the rest
    assert counters["packets_out"] + counters.get("kernel_packets", 0) >= 3
    status = call(state, "status")
    assert status["fastpath"]["state"] == fastpath_mode()
    assert counters.get("punt:arp", 0) >= 1  # the agent answered the ARP
    ring = counters["ring"]  # what the port's packet ring received: the ARP, the first echo
    assert ring["rx_frames"] >= 2
    assert ring["rx_truncated"] == ring["rx_gso_unsupported"] == 0
    uplinks = call(state, "counters", port="uplink")["rings"]  # up0's, of the host's PA
    assert set(uplinks) == {"up0"}
    assert set(uplinks["up0"]) == set(RECEIVE_COUNTERS)
    assert host.process.poll() is None
    assert host.stop(signal.SIGTERM) == 0
    assert not (state / "control.sock").exists()
