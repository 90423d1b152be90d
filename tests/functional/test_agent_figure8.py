"""The seed's figure 8 through two host agents: each host's own ovsdb-server holds the
compiler's rows, each agent programs a HostSwitch on the emulated PA network, and
Contoso and Fabrikam, both 10.1.1.0/24, reach their own VMs only (ARP answered by the
host, L2 over VXLAN across the PA router)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openhnv.agent.agent import HostAgent
from openhnv.ovsdb.client import OvsdbClient
from openhnv.ovsdb.rows import diff
from openhnv.ovsdb.server import OvsdbServer
from openhnv.packet.arp import Arp
from openhnv.packet.frames import arp_frame, udp_frame
from openhnv.testing import snapshots as nb
from openhnv.testing.southbound import host_rows, port_of
from openhnv.vfp.engine import VfpEngine
from openhnv.vswitch.emulated import EmulatedDriver, EmulatedNetwork
from openhnv.vswitch.switch import HostSwitch

WAIT = 15.0
VMS = {  # NIC resourceId -> (host, MAC, CA)
    "contoso-sql": ("host1", "00:1d:d8:07:00:11", "10.1.1.11"),
    "contoso-web": ("host2", "00:1d:d8:07:00:12", "10.1.1.12"),
    "fabrikam-sql": ("host1", "00:1d:d8:07:00:21", "10.1.1.11"),
    "fabrikam-web": ("host2", "00:1d:d8:07:00:22", "10.1.1.12"),
}


Vms = dict[str, tuple[str, str, str]]


class Datacenter:
    def __init__(self, root: Path, snapshot: dict[str, list[Any]], vms: Vms) -> None:
        self.vms = vms
        self.protocol = "Vxlan"
        self.network = EmulatedNetwork(capture=True)
        self.network.add_subnet("pa1", "192.168.1.0/24", gateway="192.168.1.1")
        self.network.add_subnet("pa2", "192.168.2.0/24", gateway="192.168.2.1")
        self.network.add_host("host1", {"up0": "pa1"})
        self.network.add_host("host2", {"up0": "pa2"})
        self.servers: dict[str, OvsdbServer] = {}
        self.switches: dict[str, HostSwitch] = {}
        self.agents: dict[str, HostAgent] = {}
        self.ports: dict[str, str] = {}
        try:
            for host in ("host1", "host2"):
                self._start(host, snapshot, root)
        except BaseException:
            self.close()  # leave no ovsdb-server behind
            raise

    def _start(self, host: str, snapshot: dict[str, list[Any]], root: Path) -> None:
        server = self.servers[host] = OvsdbServer(root / host)
        server.start()
        rows = host_rows(snapshot, host)
        with OvsdbClient(server.unix_remote) as controller:
            controller.wait_synced(WAIT)
            controller.apply(diff({}, rows))
        for nic, (where, mac, _) in self.vms.items():
            if where == host:
                self.ports[nic] = port_of(rows, nic)
                self.network.add_vm_port(host, self.ports[nic], mac)
        switch = self.switches[host] = HostSwitch(
            VfpEngine(), EmulatedDriver(self.network, host), expire_interval=None
        )
        switch.start()
        self.agents[host] = HostAgent(switch, server.unix_remote, host_name=host)
        self.agents[host].start(timeout=WAIT)

    def close(self) -> None:
        for agent in self.agents.values():
            agent.stop()
        for switch in self.switches.values():
            switch.stop()
        for server in self.servers.values():
            server.stop()

    def send(self, nic: str, frame: bytes) -> None:
        host = self.vms[nic][0]
        self.network.send_from_vm(host, self.ports[nic], frame)

    def received(self, nic: str) -> list[bytes]:
        return self.network.received(self.vms[nic][0], self.ports[nic])


@pytest.fixture(params=["Vxlan", "Nvgre"])
def dc(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Datacenter]:
    snapshot = nb.figure8()
    snapshot["virtualNetworkManager"] = [nb.configuration(request.param)]
    made = Datacenter(tmp_path, snapshot, VMS)
    made.protocol = request.param
    yield made
    made.close()


def hello(src: str, dst_mac: str, dst_ip: str, vms: Vms = VMS) -> bytes:
    _, mac, ip = vms[src]
    return udp_frame(
        src_mac=mac,
        dst_mac=dst_mac,
        src_ip=ip,
        dst_ip=dst_ip,
        src_port=5000,
        dst_port=6000,
        payload=src.encode(),
    )


@pytest.mark.parametrize(("tenant"), ["contoso", "fabrikam"])
def test_each_tenant_reaches_its_own_web_server_only(dc: Datacenter, tenant: str) -> None:
    sql, web = f"{tenant}-sql", f"{tenant}-web"
    _, sql_mac, _ = VMS[sql]
    request = arp_frame(
        op=1,
        src_mac=sql_mac,
        dst_mac="ff:ff:ff:ff:ff:ff",
        sender_mac=sql_mac,
        sender_ip="10.1.1.11",
        target_mac="00:00:00:00:00:00",
        target_ip="10.1.1.12",
    )
    dc.send(sql, request)
    (reply,) = dc.received(sql)
    answer, _ = Arp.parse(reply, 14)
    web_mac = answer.sender_mac.hex(":")
    assert web_mac == VMS[web][1]
    dc.send(sql, hello(sql, web_mac, "10.1.1.12"))
    (got,) = dc.received(web)
    assert got.endswith(sql.encode())
    tunnel = [frame for _, frame in dc.network.wire() if frame[12:14] == b"\x08\x00"]
    assert tunnel, "the frame crossed the PA network"
    protocol = {"Vxlan": 17, "Nvgre": 47}[dc.protocol]  # UDP 4789 or GRE
    assert all(frame[14 + 9] == protocol for frame in tunnel)
    for other in VMS:
        if other != web:
            assert dc.received(other) == []


ROUTED_VMS = {
    "a": ("host1", "00:1d:d8:07:00:31", "10.1.1.11"),
    "b": ("host2", "00:1d:d8:07:00:32", "10.1.2.12"),
}


def test_the_distributed_router_carries_traffic_between_subnets(tmp_path: Path) -> None:
    subnets = [nb.subnet("S1", "10.1.1.0/24", 5101), nb.subnet("S2", "10.1.2.0/24", 5102)]
    snapshot = nb.snapshot(
        servers=[
            nb.server("host1", [nb.HOST1_PA], ["10.0.0.11"]),
            nb.server("host2", [nb.HOST2_PA], ["10.0.0.12"]),
        ],
        vnets=[nb.vnet("Contoso", ["10.1.0.0/16"], subnets, nb.CONTOSO_RDID)],
        nics=[
            nb.nic("a", "001DD8070031", [("10.1.1.11", "Contoso/S1")], "host1"),
            nb.nic("b", "001DD8070032", [("10.1.2.12", "Contoso/S2")], "host2"),
        ],
        config=nb.configuration(),
    )
    dc = Datacenter(tmp_path, snapshot, ROUTED_VMS)
    try:
        _, a_mac, _ = ROUTED_VMS["a"]
        request = arp_frame(
            op=1,
            src_mac=a_mac,
            dst_mac="ff:ff:ff:ff:ff:ff",
            sender_mac=a_mac,
            sender_ip="10.1.1.11",
            target_mac="00:00:00:00:00:00",
            target_ip="10.1.1.1",
        )
        dc.send("a", request)
        (reply,) = dc.received("a")
        router_mac = Arp.parse(reply, 14)[0].sender_mac.hex(":")
        assert router_mac == "40:1d:d8:b7:1c:06"
        dc.send("a", hello("a", router_mac, "10.1.2.12", ROUTED_VMS))
        (got,) = dc.received("b")
        assert got[0:6].hex(":") == ROUTED_VMS["b"][1]
        assert got[6:12].hex(":") == router_mac
        assert got[14 + 8] == 63  # TTL decremented once by the router
    finally:
        dc.close()
