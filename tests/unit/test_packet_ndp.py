"""Neighbor Discovery options and addresses (RFC 4861, RFC 4291): known answers, scapy as
the independent decoder, round trips."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet6 import (
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptRDNSS,
    ICMPv6NDOptSrcLLAddr,
)
from scapy.utils6 import in6_getnsma

from openhnv.packet.errors import PacketError
from openhnv.packet.ndp import (
    OPTION_SOURCE_LINK_LAYER,
    RDNSS_MAX_SERVERS,
    PrefixInformation,
    RecursiveDnsServers,
    link_layer_option,
    link_local_of,
    mtu_option,
    multicast_mac,
    parse_options,
    solicited_node,
    target_and_options,
)

MAC = bytes.fromhex("401dd8b71c06")
PREFIX = ipaddress.IPv6Address("fd00:7::").packed
DNS1, DNS2 = (ipaddress.IPv6Address(a).packed for a in ("fd00:53::53", "2001:db8::35"))


def test_a_prefix_information_option_field_by_field() -> None:
    option = PrefixInformation(PREFIX, 64, on_link=True, autonomous=False).pack()
    assert option == (
        b"\x03"  # type: prefix information
        + b"\x04"  # length: 4 units of 8 bytes
        + b"\x40"  # prefix length 64
        + b"\x80"  # L set, A clear
        + b"\xff\xff\xff\xff"  # valid lifetime: infinite
        + b"\xff\xff\xff\xff"  # preferred lifetime: infinite
        + b"\x00\x00\x00\x00"  # reserved
        + PREFIX
    )
    decoded = ICMPv6NDOptPrefixInfo(option)
    assert (decoded.prefixlen, decoded.L, decoded.A, decoded.prefix) == (64, 1, 0, "fd00:7::")


def test_link_layer_and_mtu_options_as_scapy_reads_them() -> None:
    assert ICMPv6NDOptSrcLLAddr(link_layer_option(OPTION_SOURCE_LINK_LAYER, MAC)).lladdr == (
        "40:1d:d8:b7:1c:06"
    )
    assert ICMPv6NDOptMTU(mtu_option(1450)).mtu == 1450


def test_options_round_trip() -> None:
    prefix = PrefixInformation(PREFIX, 64, on_link=True, autonomous=True, valid_lifetime=7)
    options = parse_options(
        link_layer_option(OPTION_SOURCE_LINK_LAYER, MAC) + mtu_option(1450) + prefix.pack()
    )
    assert (options.source_mac, options.target_mac, options.mtu) == (MAC, None, 1450)
    assert options.prefixes == (prefix,)


def test_a_recursive_dns_server_option_field_by_field() -> None:
    option = RecursiveDnsServers((DNS1, DNS2), 1800).pack()
    assert option == (
        b"\x19"  # type 25: Recursive DNS Server (RFC 8106)
        + b"\x05"  # length: 5 units of 8 bytes (header and two servers)
        + b"\x00\x00"  # reserved
        + b"\x00\x00\x07\x08"  # lifetime: 1800 seconds
        + DNS1
        + DNS2
    )
    decoded = ICMPv6NDOptRDNSS(option)
    assert (decoded.len, decoded.lifetime, decoded.dns) == (
        5,
        1800,
        ["fd00:53::53", "2001:db8::35"],
    )
    assert parse_options(mtu_option(1450) + option).dns_servers == (
        RecursiveDnsServers((DNS1, DNS2), 1800),
    )


def test_an_rdnss_option_scapy_builds_is_read() -> None:
    option = bytes(ICMPv6NDOptRDNSS(lifetime=600, dns=["fd00:53::53"]))
    assert parse_options(option).dns_servers == (RecursiveDnsServers((DNS1,), 600),)


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        (b"\x19\x01" + bytes(6), "RDNSS length 1 units is below 3"),  # header only
        (b"\x19\x02" + bytes(14), "RDNSS length 2 units is below 3"),  # half a server
        (b"\x19\x04" + bytes(30), "RDNSS length 4 units holds half a server"),  # even: 1.5
    ],
)
def test_a_malformed_rdnss_option_is_refused_naming_its_length(option: bytes, reason: str) -> None:
    with pytest.raises(PacketError, match=reason):
        parse_options(option)


@pytest.mark.parametrize(
    ("option", "field"),
    [
        (RecursiveDnsServers((), 1800), "RDNSS servers"),
        (RecursiveDnsServers((DNS1,) * (RDNSS_MAX_SERVERS + 1), 1800), "RDNSS servers"),
        (RecursiveDnsServers((DNS1[:4],), 1800), "RDNSS server"),
        (RecursiveDnsServers((DNS1,), 1 << 32), "RDNSS lifetime"),
    ],
)
def test_an_rdnss_option_that_cannot_be_built_names_the_field(
    option: RecursiveDnsServers, field: str
) -> None:
    with pytest.raises(PacketError, match=field):
        option.pack()


@given(st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=RDNSS_MAX_SERVERS),
       st.integers(0, 0xFFFFFFFF))  # fmt: skip
def test_rdnss_options_round_trip(servers: list[bytes], lifetime: int) -> None:
    option = RecursiveDnsServers(tuple(servers), lifetime)
    assert parse_options(option.pack()).dns_servers == (option,)


@pytest.mark.parametrize(
    "options",
    [b"\x01\x00" + bytes(6), b"\x01\x02" + bytes(6), b"\x01"],  # zero length, past the end
)
def test_malformed_options_are_refused(options: bytes) -> None:
    with pytest.raises(PacketError):
        parse_options(options)


def test_a_target_needs_sixteen_bytes() -> None:
    with pytest.raises(PacketError):
        target_and_options(bytes(15))


@given(st.ip_addresses(v=6))
def test_solicited_node_address_as_scapy_makes_it(address: ipaddress.IPv6Address) -> None:
    group = solicited_node(address.packed)
    assert str(ipaddress.IPv6Address(group)) == str(
        ipaddress.IPv6Address(in6_getnsma(address.packed))
    )
    assert multicast_mac(group) == b"\x33\x33\xff" + address.packed[-3:]


def test_the_link_local_address_of_a_mac_is_its_modified_eui64() -> None:
    assert str(ipaddress.IPv6Address(link_local_of(MAC))) == "fe80::421d:d8ff:feb7:1c06"
