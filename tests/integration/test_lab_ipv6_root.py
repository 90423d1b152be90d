"""IPv6 customer addresses in a lab: dual-stack VMs (``ip6``) on two hosts learn their
default route (and their NIC's IPv6 DNS servers, RDNSS) from the distributed router's
Router Advertisement, resolve neighbours and
the router through the host (Neighbor Discovery answered from the mapping store), and
talk ping6 and TCP over IPv6 within a subnet and across subnets, over VXLAN and NVGRE,
through stateful IPv6 ACLs. IPv6 flows stay with the Python switch in both data paths:
with IPv6 TSO on in the VMs (whatever the lab's offloads) the switch takes their GSO
super-frames whole and segments them (vswitch.ring, packet.segment)."""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
from collections.abc import Iterator

import pytest
import yaml
from lab_running import network, running_lab, subnet, two_hosts, vm
from scapy.layers.inet6 import ICMPv6ND_RA, ICMPv6NDOptRDNSS

from openhnv.agent.ndp import DNS_LIFETIME, router_link_local
from openhnv.host.control import call
from openhnv.lab import netns, orchestrator, traffic
from openhnv.lab.builder import VM_INTERFACE
from openhnv.testing.polling import eventually

pytestmark = [pytest.mark.root, pytest.mark.datapath]

ROUTER_MAC = "40:1d:d8:b7:1c:06"
NETWORKS = [
    network(
        "six", "10.6.0.0/16",
        subnet("s1", "10.6.1.0/24", vsid=7301, prefix6="fd00:6:0:1::/64", acl="web6"),
        subnet("s2", "10.6.2.0/24", vsid=7302, prefix6="fd00:6:0:2::/64"),
    )
]  # fmt: skip
ACLS = yaml.safe_load("""
- name: web6
  rules:
    - {name: in-tcp6, protocol: TCP, source_prefix: "fd00:6::/48", destination_prefix: "*",
       destination_ports: "5201-5202", action: Allow, priority: 200, type: Inbound}
    - {name: in-icmp6, protocol: ICMP, source_prefix: "fd00:6::/48", action: Allow,
       priority: 210, type: Inbound}
    - {name: in-v4, protocol: All, source_prefix: "10.6.0.0/16", action: Allow,
       priority: 220, type: Inbound}
    - {name: in-deny, protocol: All, action: Deny, priority: 4000, type: Inbound}
    - {name: out-all, protocol: All, action: Allow, priority: 200, type: Outbound}
""")
VMS = [
    vm("a", "h1", "10.6.1.10", "six", "s1", ip6="fd00:6:0:1::10"),
    vm("b", "h2", "10.6.1.11", "six", "s1", ip6="fd00:6:0:1::11"),
    vm("c", "h2", "10.6.2.12", "six", "s2", ip6="fd00:6:0:2::12",
       dns=["10.6.2.53", "fd00:53::53", "fd00:53::54"]),
]  # fmt: skip
A6, B6, C6 = "fd00:6:0:1::10", "fd00:6:0:1::11", "fd00:6:0:2::12"
BULK = 4 << 20  # bytes: enough for TSO-sized writes with offloads on
RA_WAIT = 10.0  # seconds: the host answers a solicitation at once
# Run in a VM's namespace (stdlib only): a Router Solicitation to all routers on the
# interface, then the first Router Advertisement that arrives, printed in hex (a raw
# ICMPv6 socket gets the message without its IPv6 header; the kernel sums it).
SOLICIT_AND_CAPTURE = """
import socket, sys
ifindex = socket.if_nametoindex(sys.argv[1])
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
s.settimeout(float(sys.argv[2]))
s.sendto(bytes((133, 0, 0, 0, 0, 0, 0, 0)), ("ff02::2", 0, 0, ifindex))
while (message := s.recv(65535))[0] != 134:
    pass
print(message.hex())
"""


# Both wires carry the inner Ethernet frame whole, IPv6 or not (NVGRE's protocol type is
# Transparent Ethernet Bridging): NVGRE repeats the VXLAN run and is a long variant.
@pytest.fixture(scope="module", params=["vxlan", pytest.param("nvgre", marks=pytest.mark.long)])
def lab(request: pytest.FixtureRequest) -> Iterator[orchestrator.RunningLab]:
    topology = two_hosts(NETWORKS, VMS, acls=ACLS, encapsulation=request.param)
    with running_lab(topology) as running:
        yield running


def default_route6(namespace: str) -> str:
    return netns.exec_in(namespace, ["ip", "-6", "route", "show", "default"]).stdout


def test_vms_learn_their_default_route_from_the_router_advertisement(
    lab: orchestrator.RunningLab,
) -> None:
    gateway = router_link_local(ROUTER_MAC)
    for name in ("a", "b", "c"):
        namespace = lab.vm_namespace(name)

        def learnt(ns: str = namespace) -> bool:
            return f"via {gateway} dev {VM_INTERFACE}" in default_route6(ns)

        eventually(learnt, f"VM {name}: a default route via {gateway} learnt from an RA")
    agent = call(lab.host_state_dir("h2"), "status")["agent"]["counters"]
    assert agent.get("ra_unsolicited", 0) + agent.get("nd_replies", 0) >= 1


def router_advertisement(namespace: str) -> ICMPv6ND_RA:
    """The RA a VM's namespace receives after it solicits one, decoded by scapy."""
    argv = [sys.executable, "-c", SOLICIT_AND_CAPTURE, VM_INTERFACE, str(RA_WAIT)]
    out = netns.exec_in(namespace, argv, timeout=RA_WAIT + 5).stdout
    return ICMPv6ND_RA(bytes.fromhex(out.strip()))


@pytest.mark.parametrize("lab", ["vxlan"], indirect=True)  # the host answers, no wire
def test_a_vm_learns_its_nics_ipv6_dns_servers_from_the_router_advertisement(
    lab: orchestrator.RunningLab,
) -> None:
    rdnss = router_advertisement(lab.vm_namespace("c"))[ICMPv6NDOptRDNSS]
    # the NIC's dnsSettings.dnsServers through REST, compiler, OVSDB and agent: IPv6 only
    assert (rdnss.dns, rdnss.lifetime) == (["fd00:53::53", "fd00:53::54"], DNS_LIFETIME)
    assert ICMPv6NDOptRDNSS not in router_advertisement(lab.vm_namespace("a"))  # none set


def test_ping6_within_a_subnet_and_across_subnets_and_hosts(lab: orchestrator.RunningLab) -> None:
    a = lab.vm_namespace("a")
    assert traffic.ping(a, B6) is not None  # s1 -> s1, h1 -> h2: neighbour answered by h1
    hops = traffic.ping(a, C6)  # s1 -> s2 through the distributed router
    assert hops is not None
    assert hops == 63  # one hop: the distributed router decrements the hop limit
    neighbours = netns.exec_in(a, ["ip", "-6", "neigh", "show", B6]).stdout
    assert "lladdr" in neighbours  # resolved through the host's Neighbor Advertisement


def test_stateful_ipv6_acl_lets_replies_in_and_denies_other_ports(
    lab: orchestrator.RunningLab,
) -> None:
    with traffic.TcpResponder(lab.vm_namespace("a"), A6, 5201, b"a6"):
        assert traffic.tcp_answer(lab.vm_namespace("c"), A6, 5201, b"hi") == b"a6"
    with traffic.TcpResponder(lab.vm_namespace("c"), C6, 7000, b"c6"):
        # a's outbound connection: its replies pass a's inbound deny through the state
        assert traffic.tcp_answer(lab.vm_namespace("a"), C6, 7000, b"hi") == b"c6"
    with traffic.TcpResponder(lab.vm_namespace("a"), A6, 7001, b"no"):
        assert traffic.tcp_answer(lab.vm_namespace("b"), A6, 7001, b"hi", attempts=1) is None


def _listen(address: str, port: int) -> socket.socket:
    return socket.create_server((address, port), family=socket.AF_INET6)


def _connect() -> socket.socket:
    return socket.socket(socket.AF_INET6, socket.SOCK_STREAM)


def driver_counters(lab: orchestrator.RunningLab, host: str) -> dict[str, int]:
    counters: dict[str, int] = call(lab.host_state_dir(host), "status")["driver_counters"]
    return counters


def test_a_bulk_ipv6_transfer_with_tso_arrives_whole(lab: orchestrator.RunningLab) -> None:
    """Megabytes across hosts with TSO on in both VMs, with the fast path or without:
    the sender's GSO super-frames come to the Python switch whole and leave as segments
    of the sender's MSS, checksums finished; a dropped or wrong one would stall."""
    for name in ("a", "b"):
        netns.enable_offloads(lab.vm_namespace(name), VM_INTERFACE)
    before = driver_counters(lab, "h1")
    payload = os.urandom(BULK)
    server = netns.run_in(lab.vm_namespace("b"), _listen, B6, 5202)
    got: list[str] = []

    def serve() -> None:
        conn, _ = server.accept()
        digest, total = hashlib.sha256(), 0
        with conn:
            while chunk := conn.recv(1 << 16):
                digest.update(chunk)
                total += len(chunk)
        got.append(f"{total}:{digest.hexdigest()}")

    server.settimeout(30)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client = netns.run_in(lab.vm_namespace("a"), _connect)
        with client:
            client.settimeout(30)
            client.connect((B6, 5202))
            client.sendall(payload)
        thread.join(timeout=60)
    finally:
        server.close()
        if orchestrator.fastpath_of(lab.run_dir) != "on":
            for name in ("a", "b"):  # as the lab built them
                netns.disable_offloads(lab.vm_namespace(name), VM_INTERFACE)
    assert got == [f"{BULK}:{hashlib.sha256(payload).hexdigest()}"]
    after = driver_counters(lab, "h1")  # a's host: a's GSO frames came to its port ring
    assert after.get("rx_gso_frames", 0) > before.get("rx_gso_frames", 0)
    assert after.get("rx_gso_segments", 0) > after.get("rx_gso_frames", 0)
    for host in ("h1", "h2"):
        counters = driver_counters(lab, host)
        dropped = {k: counters.get(k, 0) for k in ("rx_truncated", "rx_copy_refused",
                                                    "rx_gso_unsupported")}  # fmt: skip
        assert dropped == {"rx_truncated": 0, "rx_copy_refused": 0, "rx_gso_unsupported": 0}
