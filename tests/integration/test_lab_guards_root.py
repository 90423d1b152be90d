"""Port guards in a lab: a VM with arpGuard / dhcpGuard on cannot answer for others.

blue-a (h1) is the would-be impostor; blue-b (h2) the VM whose address it claims; blue-c
(h2) the VM that must not learn the spoof nor receive a DHCP OFFER. Each test runs with
the guards off (what the frames do without them: the test can fail) and on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import pytest
from lab_running import SETTLE_SECONDS, network, running_lab, subnet, two_hosts, vm

from openhnv.host.control import call
from openhnv.lab import netns, orchestrator, traffic
from openhnv.lab.builder import VM_INTERFACE
from openhnv.lab.resources import nic_resource
from openhnv.lab.rest import ControllerClient, instance_id
from openhnv.packet.addresses import ip_to_bytes, ip_to_str, mac_to_bytes
from openhnv.packet.arp import ARP_REPLY, ARP_REQUEST, Arp
from openhnv.packet.decode import decode
from openhnv.packet.dhcp import (
    BOOTREPLY,
    DHCP_CLIENT_PORT,
    DHCP_SERVER_PORT,
    OFFER,
    OPTION_MESSAGE_TYPE,
    Dhcp,
)
from openhnv.packet.frames import arp_frame, udp_frame
from openhnv.testing.polling import eventually
from openhnv.vfp.guards import GUARD
from openhnv.vswitch.afpacket import AfPacketSocket

pytestmark = [pytest.mark.root, pytest.mark.datapath]

NETWORKS = [network("blue", "10.8.0.0/16", subnet("s", "10.8.1.0/24", vsid=7101))]
VMS = [
    vm("blue-a", "h1", "10.8.1.10", "blue"),
    vm("blue-b", "h2", "10.8.1.11", "blue"),
    vm("blue-c", "h2", "10.8.1.12", "blue"),
]
ROUTER_IP = "10.8.1.1"
WAIT_SECONDS = 10.0  # for what must arrive or be counted
BROADCAST = "ff:ff:ff:ff:ff:ff"


@pytest.fixture(scope="module")
def lab() -> Iterator[orchestrator.RunningLab]:
    with running_lab(two_hosts(NETWORKS, VMS)) as running:
        yield running


def _set_guards(lab: orchestrator.RunningLab, on: bool) -> None:
    """PUT blue-a's NIC with both guards on or off and wait for h1 to program it."""
    resource = nic_resource(lab.topology.vm("blue-a"))
    flag = "Enabled" if on else "Disabled"
    resource.body["properties"]["portSettings"].update(arpGuardEnabled=flag, dhcpGuardEnabled=flag)
    resource.body["properties"]["privateMacAddress"] = lab.nic_mac("blue-a").replace(":", "")
    resource.body["properties"]["privateMacAllocationMethod"] = "Static"
    client = ControllerClient.connect(lab.controller_url, access=lab.access)
    try:
        client.put(resource)
    finally:
        client.close()
    state, port = lab.host_state_dir("h1"), _port(lab, "blue-a")

    def programmed() -> bool:
        layers = {row["name"] for row in call(state, "list-layers", port=port)}
        return (GUARD in layers) == on

    eventually(programmed, f"h1 programs blue-a with the guards {'on' if on else 'off'}")


def _port(lab: orchestrator.RunningLab, vm: str) -> str:
    return instance_id(lab.nics[vm])


def _counters(lab: orchestrator.RunningLab) -> dict[str, int]:
    counters: dict[str, int] = call(lab.host_state_dir("h1"), "counters", port=_port(lab, "blue-a"))
    return counters


def _moved(lab: orchestrator.RunningLab, before: dict[str, int], keys: Sequence[str]) -> int:
    after = _counters(lab)
    return sum(after.get(k, 0) - before.get(k, 0) for k in keys)


def _send_and_collect(
    lab: orchestrator.RunningLab, frames: list[bytes], done: Callable[[list[bytes]], bool]
) -> list[bytes]:
    """What comes back to blue-a for ``frames``, collected until ``done(got)`` (the port
    counted every frame, an expected answer is in), then SETTLE_SECONDS more."""
    with netns.run_in(lab.vm_namespace("blue-a"), AfPacketSocket, VM_INTERFACE) as sock:
        for frame in frames:
            sock.send(frame)
        got: list[bytes] = []
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and not done(got):
            got += sock.recv_batch()
            time.sleep(0.02)
        time.sleep(SETTLE_SECONDS)
        while batch := sock.recv_batch():
            got += batch
    return got


def _neighbour_macs(lab: orchestrator.RunningLab, vm: str, address: str) -> str:
    return netns.exec_in(lab.vm_namespace(vm), ["ip", "neigh", "show", address]).stdout


@pytest.mark.parametrize("guarded", [False, True], ids=["guards-off", "guards-on"])
def test_arp_for_another_vms_address(lab: orchestrator.RunningLab, guarded: bool) -> None:
    _set_guards(lab, guarded)
    mac, victim = lab.nic_mac("blue-a"), str(lab.topology.vm("blue-b").ip)
    c_mac = lab.nic_mac("blue-c")

    def arp(op: int, dst: str, target_mac: str, target_ip: str) -> bytes:
        return arp_frame(op=op, src_mac=mac, dst_mac=dst, sender_mac=mac, sender_ip=victim,
                         target_mac=target_mac, target_ip=target_ip)  # fmt: skip

    gratuitous = arp(ARP_REQUEST, BROADCAST, "00:00:00:00:00:00", victim)
    reply = arp(ARP_REPLY, c_mac, c_mac, str(lab.topology.vm("blue-c").ip))
    asking = arp(ARP_REQUEST, BROADCAST, "00:00:00:00:00:00", ROUTER_IP)  # "tell 10.8.1.11"
    before = _counters(lab)
    keys = ("drop:arp_guard", "punt:arp")

    def answers_in(got: list[bytes]) -> list[Arp]:
        return [
            h for f in got for h in decode(f)
            if isinstance(h, Arp) and h.op == ARP_REPLY and ip_to_str(h.sender_ip) == ROUTER_IP
        ]  # fmt: skip

    got = _send_and_collect(
        lab, [gratuitous, reply, asking],
        lambda got: _moved(lab, before, keys) >= 3 and (guarded or bool(answers_in(got))),
    )  # fmt: skip
    after = _counters(lab)
    answers = answers_in(got)
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in ("drop:arp_guard", "punt:arp")}
    if guarded:
        assert moved == {"drop:arp_guard": 3, "punt:arp": 0}
        assert answers == []  # the host does not answer a VM that lies about its address
    else:
        assert moved == {"drop:arp_guard": 0, "punt:arp": 3}
        assert len(answers) == 1  # the host answers it: the guard is what stops it
    # Either way the spoof never reaches another host's VM: ARP stays on its host in HNV.
    assert mac not in _neighbour_macs(lab, "blue-c", victim)


@pytest.mark.parametrize("guarded", [False, True], ids=["guards-off", "guards-on"])
def test_a_dhcp_offer_from_a_vm(lab: orchestrator.RunningLab, guarded: bool) -> None:
    _set_guards(lab, guarded)
    a, c = lab.topology.vm("blue-a"), lab.topology.vm("blue-c")
    offer = Dhcp(
        BOOTREPLY, 0x5EED, mac_to_bytes(lab.nic_mac("blue-c")),
        ((OPTION_MESSAGE_TYPE, bytes((OFFER,))),), yiaddr=ip_to_bytes(str(c.ip)),
    )  # fmt: skip
    frame = udp_frame(src_mac=lab.nic_mac("blue-a"), dst_mac=BROADCAST, src_ip=str(a.ip),
                      dst_ip="255.255.255.255", src_port=DHCP_SERVER_PORT,
                      dst_port=DHCP_CLIENT_PORT, payload=offer.pack())  # fmt: skip
    counters = _counters(lab)
    before = counters.get("drop:dhcp_guard", 0)
    with traffic.UdpCollector(lab.vm_namespace("blue-c"), DHCP_CLIENT_PORT) as collector:
        # guards on: the drop counted; off: the OFFER at blue-c (on another host)
        _send_and_collect(
            lab, [frame],
            lambda _: _moved(lab, counters, ["drop:dhcp_guard"]) > 0 or bool(collector.datagrams),
        )  # fmt: skip
    received = [d for d, _ in collector.datagrams]
    dropped = _counters(lab).get("drop:dhcp_guard", 0) - before
    if guarded:
        assert (received, dropped) == ([], 1)
    else:
        assert (received, dropped) == ([offer.pack()], 0)
