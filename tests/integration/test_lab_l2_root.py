"""Inside one VSID: broadcast replication, ARP answered from the mapping store, spoofing.

Two tenants share 10.7.1.0/24 on two hosts: blue (VSID 7001: a and b on h1, c on h2)
and red (VSID 7002: a on h1, b on h2); the whole module runs over VXLAN, then NVGRE.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from lab_running import SETTLE_SECONDS, network, running_lab, settled, subnet, two_hosts, vm

from openhnv.host.control import call
from openhnv.lab import capture, netns, orchestrator, traffic
from openhnv.lab.builder import VM_INTERFACE, LabNames
from openhnv.lab.rest import ControllerClient
from openhnv.packet.addresses import ip_to_str, mac_to_str
from openhnv.packet.arp import ARP_REPLY, ARP_REQUEST, Arp
from openhnv.packet.decode import decode
from openhnv.packet.frames import arp_frame, nvgre_encapsulate, udp_frame, vxlan_encapsulate
from openhnv.vswitch.afpacket import AfPacketSocket

pytestmark = [pytest.mark.root, pytest.mark.datapath]

NETWORKS = [
    network("blue", "10.7.0.0/16", subnet("s", "10.7.1.0/24", vsid=7001)),
    network("red", "10.7.0.0/16", subnet("s", "10.7.1.0/24", vsid=7002)),
]
VMS = [
    vm("blue-a", "h1", "10.7.1.10", "blue"),
    vm("blue-b", "h1", "10.7.1.11", "blue"),
    vm("blue-c", "h2", "10.7.1.12", "blue"),
    vm("red-a", "h1", "10.7.1.20", "red"),
    vm("red-b", "h2", "10.7.1.11", "red"),
]
UNKNOWN_PA = "192.168.60.77"  # in the lab's PA subnet, no host's
PORT = 5353
WAIT_SECONDS = 10.0  # for what must arrive
# ARP answers and the source-MAC check stay on the VM's host: their NVGRE runs repeat the
# VXLAN ones (long variants); broadcast copies and tunnelled frames are checked on both.
HOST_LOCAL = pytest.mark.parametrize(
    "lab", ["vxlan", pytest.param("nvgre", marks=pytest.mark.long)], indirect=True
)


@pytest.fixture(scope="module", params=["vxlan", "nvgre"])
def lab(request: pytest.FixtureRequest) -> Iterator[orchestrator.RunningLab]:
    with running_lab(two_hosts(NETWORKS, VMS, encapsulation=request.param)) as running:
        yield running


def _collect(sock: AfPacketSocket, done: Callable[[list[bytes]], bool]) -> list[bytes]:
    """Frames received until ``done(frames)`` (then SETTLE_SECONDS more) or WAIT_SECONDS."""
    frames: list[bytes] = []
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline and not done(frames):
        frames += sock.recv_batch()
        time.sleep(0.02)
    time.sleep(SETTLE_SECONDS)
    while batch := sock.recv_batch():
        frames += batch
    return frames


def test_broadcast_reaches_exactly_the_other_vms_of_the_vsid(lab: orchestrator.RunningLab) -> None:
    others = ["blue-b", "blue-c", "red-a", "red-b"]
    collectors = {vm: traffic.UdpCollector(lab.vm_namespace(vm), PORT) for vm in others}
    for collector in collectors.values():
        collector.__enter__()
    try:
        with capture.PaCapture(lab.topology) as pa:
            traffic.udp_send(lab.vm_namespace("blue-a"), "10.7.1.255", PORT, b"hello blue")
            settled(
                lambda: collectors["blue-b"].datagrams and collectors["blue-c"].datagrams,
                "the broadcast at blue-b and blue-c",
            )  # a copy to another VSID's VM would go out with theirs
            records = capture.tunnels(pa.snapshot())
    finally:
        for collector in collectors.values():
            collector.__exit__(None, None, None)
    got = {vm: [d for d, _ in c.datagrams] for vm, c in collectors.items()}
    assert got == {"blue-b": [b"hello blue"], "blue-c": [b"hello blue"], "red-a": [], "red-b": []}
    # One unicast copy crossed the PA network, to blue-c, rewritten to its addresses.
    copies = [r for r in records if r.inner_dport == PORT]
    assert [(r.encapsulation, r.vsid, r.inner_dst, r.inner_dst_mac) for r in copies] == [
        (lab.topology.encapsulation, 7001, "10.7.1.12", lab.nic_mac("blue-c"))
    ]


def _arp_unanswered(lab: orchestrator.RunningLab, host: str) -> int:
    """The requests the host's agent left unanswered (no such CA in the VSID)."""
    counters = call(lab.host_state_dir(host), "status")["agent"]["counters"]
    return int(counters.get("arp_unanswered", 0))


def _arp_replies(lab: orchestrator.RunningLab, vm: str, target: str) -> list[Arp]:
    """The replies to ``vm``'s request for ``target``, collected until the host's agent
    has answered (the reply is in) or counted the request unanswered."""
    namespace = lab.vm_namespace(vm)
    host = lab.topology.vm(vm).host
    unanswered = _arp_unanswered(lab, host)
    mac = lab.nic_mac(vm)
    ip = str(lab.topology.vm(vm).ip)
    request = arp_frame(
        op=ARP_REQUEST,
        src_mac=mac,
        dst_mac="ff:ff:ff:ff:ff:ff",
        sender_mac=mac,
        sender_ip=ip,
        target_mac="00:00:00:00:00:00",
        target_ip=target,
    )

    def replies(frames: list[bytes]) -> list[Arp]:
        found = []
        for frame in frames:
            arp = next((h for h in decode(frame) if isinstance(h, Arp)), None)
            if arp is not None and arp.op == ARP_REPLY and ip_to_str(arp.sender_ip) == target:
                found.append(arp)
        return found

    with netns.run_in(namespace, AfPacketSocket, VM_INTERFACE) as sock:
        sock.send(request)
        frames = _collect(
            sock, lambda got: bool(replies(got)) or _arp_unanswered(lab, host) > unanswered
        )
    return replies(frames)


@HOST_LOCAL
def test_arp_is_answered_only_for_cas_of_the_vsid(lab: orchestrator.RunningLab) -> None:
    known = _arp_replies(lab, "blue-a", "10.7.1.12")
    assert [mac_to_str(a.sender_mac) for a in known] == [lab.nic_mac("blue-c")]
    assert _arp_replies(lab, "blue-a", "10.7.1.99") == []  # nobody has it
    assert _arp_replies(lab, "blue-a", "10.7.1.20") == []  # red-a's, another VSID


def _send_raw(namespace: str, interface: str, frame: bytes) -> None:
    with netns.run_in(namespace, AfPacketSocket, interface) as sock:
        assert sock.send(frame) == len(frame)


@HOST_LOCAL
def test_a_forged_source_mac_from_a_vm_is_dropped(lab: orchestrator.RunningLab) -> None:
    a, b = lab.topology.vm("blue-a"), lab.topology.vm("blue-b")

    def frame(src_mac: str) -> bytes:
        return udp_frame(
            src_mac=src_mac,
            dst_mac=lab.nic_mac("blue-b"),
            src_ip=str(a.ip),
            dst_ip=str(b.ip),
            src_port=40000,
            dst_port=PORT,
            payload=src_mac.encode(),
        )

    with traffic.UdpCollector(lab.vm_namespace("blue-b"), PORT) as collector:
        _send_raw(lab.vm_namespace("blue-a"), VM_INTERFACE, frame("02:00:00:00:00:99"))
        _send_raw(lab.vm_namespace("blue-a"), VM_INTERFACE, frame(lab.nic_mac("blue-a")))
        settled(lambda: collector.datagrams, "the genuine frame at blue-b")
    assert [d for d, _ in collector.datagrams] == [lab.nic_mac("blue-a").encode()]


def _provider_address(lab: orchestrator.RunningLab, host: str) -> str:
    client = ControllerClient.connect(lab.controller_url, access=lab.access)
    try:
        pas = client.get(f"/servers/{host}")["properties"]["providerAddresses"]
    finally:
        client.close()
    return str(pas[0]["address"])


def test_a_packet_from_an_unknown_pa_is_dropped(lab: orchestrator.RunningLab) -> None:
    names = LabNames(lab.name)
    c, a = lab.topology.vm("blue-c"), lab.topology.vm("blue-a")
    h1_mac = netns.link_mac(names.host("h1"), "up0")
    h2_mac = netns.link_mac(names.host("h2"), "up0")

    def tunnelled(src_pa: str) -> bytes:
        inner = udp_frame(
            src_mac=lab.nic_mac("blue-c"),
            dst_mac=lab.nic_mac("blue-a"),
            src_ip=str(c.ip),
            dst_ip=str(a.ip),
            src_port=40000,
            dst_port=PORT,
            payload=src_pa.encode(),
        )
        dst_pa = _provider_address(lab, "h1")
        if lab.topology.encapsulation == "nvgre":
            return nvgre_encapsulate(
                inner,
                outer_src_mac=h2_mac,
                outer_dst_mac=h1_mac,
                src_pa=src_pa,
                dst_pa=dst_pa,
                vsid=7001,
                flow_id=1,
            )
        return vxlan_encapsulate(
            inner,
            outer_src_mac=h2_mac,
            outer_dst_mac=h1_mac,
            src_pa=src_pa,
            dst_pa=dst_pa,
            vni=7001,
            src_port=50000,
        )

    real = _provider_address(lab, "h2")
    with traffic.UdpCollector(lab.vm_namespace("blue-a"), PORT) as collector:
        peer = names.uplink_peer("h1", 0)
        _send_raw(names.fabric, peer, tunnelled(UNKNOWN_PA))
        _send_raw(names.fabric, peer, tunnelled(real))
        settled(lambda: collector.datagrams, "the frame from h2's PA at blue-a")
    assert [d for d, _ in collector.datagrams] == [real.encode()]
