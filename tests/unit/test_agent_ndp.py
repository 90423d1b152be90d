"""Neighbor and Router Solicitations answered from the mapping store: frames built with
scapy (explicit MACs, never sent), answers decoded by scapy as an independent reader."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from openhnv.agent.arp import ArpTable, Ipv6Router, Requester
from openhnv.agent.ndp import (
    DNS_LIFETIME,
    RA_INTERVAL,
    ROUTER_LIFETIME,
    advertisement,
    answer,
    router_link_local,
)

ROUTER_MAC = "40:1d:d8:b7:1c:06"
VM_MAC, PEER_MAC = "00:1d:d8:07:00:11", "00:1d:d8:07:00:12"
VM_IP, PEER_IP, ROUTER_IP = "fd00:7::11", "fd00:7::12", "fd00:7::1"
VM_LL = "fe80::21d:d8ff:fe07:11"
VSID, OTHER_VSID = 5001, 6001
MTU = 1450
TABLE = ArpTable(
    router_mac=ROUTER_MAC,
    customer_macs={
        (VSID, PEER_IP): PEER_MAC,
        (VSID, VM_IP): VM_MAC,
        (OTHER_VSID, "fd00:7::13"): "00:1d:d8:07:00:13",
    },
    gateways={VSID: "10.7.0.1"},
    ipv6_routers={VSID: Ipv6Router("fd00:7::/64", ROUTER_IP)},
)
VM = Requester(VSID, ("10.7.0.11", VM_IP))


def solicited_node(address: str) -> str:
    low = ipaddress.IPv6Address(address).packed[-3:]
    return str(ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + low))


def ns(target: str, src: str = VM_IP, hlim: int = 255, with_option: bool = True) -> bytes:
    group = solicited_node(target)
    mac = "33:33:" + ":".join(f"{b:02x}" for b in ipaddress.IPv6Address(group).packed[-4:])
    packet: Any = (
        Ether(src=VM_MAC, dst=mac) / IPv6(src=src, dst=group, hlim=hlim) / ICMPv6ND_NS(tgt=target)
    )
    if with_option:
        packet = packet / ICMPv6NDOptSrcLLAddr(lladdr=VM_MAC)
    return bytes(packet)


def rs(src: str = VM_LL) -> bytes:
    return bytes(
        Ether(src=VM_MAC, dst="33:33:00:00:00:02")
        / IPv6(src=src, dst="ff02::2", hlim=255)
        / ICMPv6ND_RS()
        / ICMPv6NDOptSrcLLAddr(lladdr=VM_MAC)
    )


def decoded(frame: bytes | None) -> Any:
    assert frame is not None
    packet = Ether(frame)
    # scapy recomputes the checksum of a copy without it: ours must match
    icmp = packet[IPv6].payload
    sent = icmp.cksum
    del icmp.cksum
    assert Ether(bytes(packet))[IPv6].payload.cksum == sent
    return Ether(frame)


def test_a_peer_in_the_subnet_is_answered_with_its_mac() -> None:
    reply = decoded(answer(TABLE, VM, ns(PEER_IP), MTU))
    assert (reply.src, reply.dst) == (PEER_MAC, VM_MAC)
    assert (reply[IPv6].src, reply[IPv6].dst, reply[IPv6].hlim) == (PEER_IP, VM_IP, 255)
    na = reply[ICMPv6ND_NA]
    assert (na.tgt, na.R, na.S, na.O) == (PEER_IP, 0, 1, 1)
    assert reply[ICMPv6NDOptDstLLAddr].lladdr == PEER_MAC


@pytest.mark.parametrize("target", [ROUTER_IP, router_link_local(ROUTER_MAC)])
def test_the_router_answers_for_its_address_and_its_link_local_address(target: str) -> None:
    reply = decoded(answer(TABLE, VM, ns(target, src=VM_LL), MTU))
    assert reply.src == ROUTER_MAC
    na = reply[ICMPv6ND_NA]
    assert (na.tgt, na.R, na.S) == (target, 1, 1)
    assert reply[IPv6].dst == VM_LL
    assert reply[ICMPv6NDOptDstLLAddr].lladdr == ROUTER_MAC


def test_the_router_link_local_address_is_the_modified_eui64_of_its_mac() -> None:
    assert router_link_local(ROUTER_MAC) == "fe80::421d:d8ff:feb7:1c06"


@pytest.mark.parametrize(
    "frame",
    [
        ns("fd00:7::99"),  # unknown CA
        ns("fd00:7::13"),  # a CA of another virtual subnet
        ns(VM_IP),  # its own address
        ns(VM_IP, src="::", with_option=False),  # duplicate address detection
        ns(PEER_IP, hlim=64),  # not from the link itself (RFC 4861 7.1.1)
        ns(PEER_IP)[:-3],  # truncated
        ns(PEER_IP, src="::"),  # a DAD probe with a source link-layer option is malformed
    ],
)
def test_silence_for_unknown_own_and_malformed(frame: bytes) -> None:
    assert answer(TABLE, VM, frame, MTU) is None


def test_a_corrupt_checksum_gets_silence() -> None:
    frame = bytearray(ns(PEER_IP))
    frame[-1] ^= 0xFF
    assert answer(TABLE, VM, bytes(frame), MTU) is None


def test_dad_for_another_vms_address_is_answered_to_all_nodes() -> None:
    reply = decoded(answer(TABLE, VM, ns(PEER_IP, src="::", with_option=False), MTU))
    assert (reply.dst, reply[IPv6].dst) == ("33:33:00:00:00:01", "ff02::1")
    assert reply[ICMPv6ND_NA].S == 0


def test_a_router_solicitation_gets_the_prefix_the_mtu_and_the_router() -> None:
    reply = decoded(answer(TABLE, VM, rs(), MTU))
    assert (reply.src, reply.dst) == (ROUTER_MAC, VM_MAC)
    assert (reply[IPv6].src, reply[IPv6].dst, reply[IPv6].hlim) == (
        router_link_local(ROUTER_MAC),
        VM_LL,
        255,
    )
    ra = reply[ICMPv6ND_RA]
    # the port has an IPv6 address from the controller: its DHCPv6 client asks for it
    assert (ra.chlim, ra.M, ra.O, ra.routerlifetime) == (64, 1, 1, ROUTER_LIFETIME)
    prefix = reply[ICMPv6NDOptPrefixInfo]
    assert (prefix.prefix, prefix.prefixlen, prefix.L, prefix.A) == ("fd00:7::", 64, 1, 0)
    assert reply[ICMPv6NDOptMTU].mtu == MTU
    assert reply[ICMPv6NDOptSrcLLAddr].lladdr == ROUTER_MAC


def test_a_solicited_advertisement_carries_the_nics_ipv6_dns_servers_in_order() -> None:
    servers = ["10.7.0.53", "fd00:53::53", "192.0.2.53", "2001:db8::35", "fd00:53::54"]
    reply = decoded(answer(TABLE, VM, rs(), MTU, servers))
    rdnss = reply[ICMPv6NDOptRDNSS]
    # the IPv4 ones cannot go in RDNSS and are left out; one option holds all the rest
    assert (rdnss.dns, rdnss.len) == (["fd00:53::53", "2001:db8::35", "fd00:53::54"], 7)
    assert rdnss.lifetime == DNS_LIFETIME >= 3 * RA_INTERVAL  # RFC 8106 §5.1's floor
    assert ICMPv6NDOptRDNSS not in rdnss.payload  # only one
    assert reply[ICMPv6NDOptPrefixInfo].prefix == "fd00:7::"  # the other options stay


@pytest.mark.parametrize("servers", [[], ["10.7.0.53", "192.0.2.53"]], ids=["none", "ipv4"])
def test_no_rdnss_option_without_ipv6_dns_servers(servers: list[str]) -> None:
    for frame in (
        answer(TABLE, VM, rs(), MTU, servers),
        advertisement(TABLE, VSID, mtu=MTU, dns_servers=servers),
    ):
        reply = decoded(frame)
        assert ICMPv6NDOptRDNSS not in reply
        assert reply[ICMPv6NDOptMTU].mtu == MTU


def test_an_unsolicited_advertisement_carries_the_dns_servers_too() -> None:
    reply = decoded(advertisement(TABLE, VSID, dns_servers=["fd00:53::53"]))
    assert (reply[IPv6].dst, reply[ICMPv6NDOptRDNSS].dns) == ("ff02::1", ["fd00:53::53"])


def test_a_solicitation_from_the_unspecified_address_is_answered_to_all_nodes() -> None:
    reply = decoded(answer(TABLE, VM, rs(src="::"), MTU))
    assert (reply.dst, reply[IPv6].dst) == ("33:33:00:00:00:01", "ff02::1")


def test_a_port_without_an_ipv6_address_gets_m_and_o_clear() -> None:
    ra = decoded(answer(TABLE, Requester(VSID, ("10.7.0.11",)), rs(), MTU))[ICMPv6ND_RA]
    assert (ra.M, ra.O) == (0, 0)
    assert decoded(advertisement(TABLE, VSID, managed=True))[ICMPv6ND_RA].M == 1
    assert decoded(advertisement(TABLE, VSID))[ICMPv6ND_RA].O == 0


def test_no_advertisement_for_a_subnet_without_ipv6() -> None:
    other = Requester(OTHER_VSID, ("fd00:7::13",))
    assert answer(TABLE, other, rs(), MTU) is None
    assert advertisement(TABLE, OTHER_VSID) is None
    assert advertisement(ArpTable(ipv6_routers=TABLE.ipv6_routers), VSID) is None  # no MAC


def test_an_unsolicited_advertisement_goes_to_all_nodes() -> None:
    reply = decoded(advertisement(TABLE, VSID, mtu=MTU))
    assert (reply.dst, reply[IPv6].dst) == ("33:33:00:00:00:01", "ff02::1")
    assert reply[ICMPv6NDOptPrefixInfo].prefix == "fd00:7::"


def test_other_messages_get_silence() -> None:
    arp_like = bytes(Ether(src=VM_MAC, dst="ff:ff:ff:ff:ff:ff") / IPv6(src=VM_IP, dst="ff02::1"))
    assert answer(TABLE, VM, arp_like, MTU) is None
    ra = bytes(
        Ether(src=VM_MAC, dst="33:33:00:00:00:01")
        / IPv6(src=VM_LL, dst="ff02::1", hlim=255)
        / ICMPv6ND_RA()
    )
    assert answer(TABLE, VM, ra, MTU) is None
