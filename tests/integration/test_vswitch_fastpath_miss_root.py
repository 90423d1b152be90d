"""Misses: what the kernel fast path leaves to the Python switch, and hides from the host.

A frame the kernel does not execute (no entry, a stale generation, SYN/FIN/RST, a
shape it never handles, too big for the entry's MTU) must reach the Python switch's
AF_PACKET socket (the socket filter lets it through), must not be forwarded, and
must not reach the host's own IP stack (tc drops it). A frame it executes must not
reach that socket. Namespaces ``hnv-fp…`` from ``openhnv.testing.fastpath_net``, removed afterwards.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator

import pytest

from openhnv.lab import netns
from openhnv.packet.addresses import mac_to_bytes
from openhnv.packet.frames import arp_frame, tcp_frame, udp_frame
from openhnv.testing.fastpath_net import FastpathNet, receive, settle
from openhnv.testing.polling import eventually
from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.fastpath import entries
from openhnv.vswitch.fastpath.fastpath import FastPath

pytestmark = [pytest.mark.root, pytest.mark.fastpath]

HOST_IP = "10.0.0.1"  # the host kernel's own address on the VM port, as a witness
WITNESS_PORT = 9999
SLOT = 5
TCP_ACK, TCP_FIN, TCP_SYN, TCP_RST = 0x10, 0x01, 0x02, 0x04


@pytest.fixture
def net() -> Iterator[FastpathNet]:
    with FastpathNet("mi") as built:
        built.load("h1")
        yield built


@pytest.fixture
def port_socket(net: FastpathNet) -> Iterator[AfPacketSocket]:
    """The Python switch's socket on v1's port, with the port socket filter."""
    sock = net.capture(net.hosts["h1"].namespace, "vm1")
    net.fast_paths["h1"].attach_port_socket(sock)
    yield sock
    sock.close()


def _witness(net: FastpathNet) -> socket.socket:
    """A UDP socket of h1's own kernel on the VM port (what tc must keep frames from)."""
    ns = net.hosts["h1"].namespace
    netns.add_address(ns, "vm1", ipaddress.IPv4Interface(f"{HOST_IP}/24"))

    def bind() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((HOST_IP, WITNESS_PORT))
        s.settimeout(0.5)
        return s

    return netns.run_in(ns, bind)


def _to_host(net: FastpathNet, payload: bytes) -> bytes:
    v1 = net.vms["v1"]
    return udp_frame(src_mac=v1.mac, dst_mac=netns.link_mac(net.hosts["h1"].namespace, "vm1"),
                     src_ip=v1.ip, dst_ip=HOST_IP, src_port=4000, dst_port=WITNESS_PORT,
                     payload=payload)  # fmt: skip


def _host_got(witness: socket.socket) -> bytes | None:
    try:
        return witness.recv(2048)
    except TimeoutError:
        return None


def test_a_bumped_generation_makes_the_entry_miss(
    net: FastpathNet, port_socket: AfPacketSocket
) -> None:
    fp = net.fast_paths["h1"]
    v3 = net.vms["v3"]
    witness = _witness(net)
    frame = _to_host(net, b"generation")
    edit = entries.EntryEdit(mac_to_bytes(v3.mac), mac_to_bytes(net.vms["v1"].mac))
    key = net.port_key("v1", frame)
    fp.generations.set(SLOT, 7)
    fp.port_flows.set(key, entries.deliver_flow(net.ifindex("h1", v3.port), edit=edit,
                                                generations=[(SLOT, 7)]))  # fmt: skip
    vm3 = net.capture(v3.namespace, "eth0")
    try:
        net.inject("v1", [frame])  # current: executed, delivered to v3
        assert len(receive(vm3)) == 1
        assert settle(port_socket) == []
        assert _host_got(witness) is None

        assert fp.generations.bump(SLOT) == 8
        net.inject("v1", [frame])  # stale: up to the switch, away from the host
        assert receive(port_socket) == [frame]
        assert settle(vm3) == []
        assert _host_got(witness) is None
        assert fp.counters.read()["miss_stale"] == 1
        assert fp.port_flows.stats()[key].packets == 1

        netns.run_in(net.hosts["h1"].namespace, fp.detach, "vm1")
        net.inject("v1", [frame])  # without the fast path the host kernel gets it
        assert _host_got(witness) == b"generation"
    finally:
        vm3.close()
        witness.close()


def _tcp(net: FastpathNet, flags: int, payload: bytes = b"") -> bytes:
    a, b = net.vms["v1"], net.vms["v2"]
    return tcp_frame(src_mac=a.mac, dst_mac=b.mac, src_ip=a.ip, dst_ip=b.ip, src_port=43000,
                     dst_port=80, flags=flags, payload=payload)  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "executed"),
    [(TCP_ACK, True), (TCP_SYN, False), (TCP_SYN | TCP_ACK, False), (TCP_FIN | TCP_ACK, False),
     (TCP_RST, False)],
    ids=["ack", "syn", "syn-ack", "fin", "rst"],
)  # fmt: skip
def test_syn_fin_and_rst_go_to_the_slow_path(
    net: FastpathNet, port_socket: AfPacketSocket, flags: int, executed: bool
) -> None:
    fp = net.fast_paths["h1"]
    frame = _tcp(net, flags, b"data")
    fp.port_flows.set(net.port_key("v1", frame), net.encap_entry("h1", 50001))
    net.inject("v1", [frame])
    reason = "hit_encap" if executed else "miss_tcp_flags"
    eventually(lambda: fp.counters.read()[reason] == 1, reason)
    assert settle(port_socket) == ([] if executed else [frame])


@pytest.mark.parametrize(("payload", "executed"), [(900, True), (1000, False)])
def test_too_big_for_the_entry_mtu_misses(
    net: FastpathNet, port_socket: AfPacketSocket, payload: int, executed: bool
) -> None:
    """Entry MTU 1000: a 942-byte frame makes a 978-byte outer packet, a 1042-byte one
    1078 bytes."""
    fp = net.fast_paths["h1"]
    frame = net.udp("v1", "v2", 40000, 7000, payload=bytes(payload))
    fp.port_flows.set(net.port_key("v1", frame), net.encap_entry("h1", 50002, mtu=1000))
    net.inject("v1", [frame])
    reason = "hit_encap" if executed else "miss_mtu"
    eventually(lambda: fp.counters.read()[reason] == 1, reason)
    assert settle(port_socket) == ([] if executed else [frame])


def _shapes(net: FastpathNet) -> dict[str, tuple[bytes, str]]:
    v1, v2 = net.vms["v1"], net.vms["v2"]
    plain = net.udp("v1", "v2", 40000, 7000)
    options = plain[:14] + b"\x46" + plain[15:16] + (len(plain) - 10).to_bytes(2, "big")
    options += plain[18:24] + b"\0\0" + plain[26:34] + b"\x01\x01\x01\x00" + plain[34:]
    fragment = plain[:20] + b"\x20\x00" + plain[22:]  # MF set
    arp = arp_frame(
        op=1,
        src_mac=v1.mac,
        dst_mac="ff:ff:ff:ff:ff:ff",
        sender_mac=v1.mac,
        sender_ip=v1.ip,
        target_mac="00:00:00:00:00:00",
        target_ip=v2.ip,
    )
    broadcast = net.udp("v1", "v2", 40000, 7000, dst_mac="ff:ff:ff:ff:ff:ff")
    icmp_error = plain[:23] + b"\x01" + plain[24:34] + b"\x03\x01" + plain[36:]
    return {
        "arp": (arp, "miss_not_ipv4"),
        "broadcast": (broadcast, "miss_multicast"),
        "ip-options": (options, "miss_ip_options"),
        "fragment": (fragment, "miss_fragment"),
        "icmp-error": (icmp_error, "miss_protocol"),
        "no-entry": (plain, "miss_no_entry"),
    }


@pytest.mark.parametrize(
    "shape", ["arp", "broadcast", "ip-options", "fragment", "icmp-error", "no-entry"]
)
def test_shapes_the_kernel_never_executes_reach_the_switch(
    net: FastpathNet, port_socket: AfPacketSocket, shape: str
) -> None:
    fp: FastPath = net.fast_paths["h1"]
    frame, reason = _shapes(net)[shape]
    assert entries.port_key_of(1, frame) is None or shape == "no-entry"
    net.inject("v1", [frame])
    eventually(lambda: fp.counters.read()[reason] >= 1, reason)
    assert frame in settle(port_socket)
