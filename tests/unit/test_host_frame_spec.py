"""hnv trace frame descriptions: defaults, every token, and errors that name the token."""

from __future__ import annotations

import pytest

from openhnv.host.errors import FrameSpecError
from openhnv.host.frame_spec import FrameSpec, parse_description


def test_the_example_of_the_brief() -> None:
    spec = parse_description(["src=10.1.1.12", "dst=10.1.1.11", "proto=tcp", "dport=1433"])
    assert spec == FrameSpec(
        src="10.1.1.12", dst="10.1.1.11", protocol=6, src_port=49152, dst_port=1433, tcp_flags=2
    )
    assert spec.describe() == "tcp 10.1.1.12:49152 -> 10.1.1.11:1433"


def test_protocol_defaults_to_tcp_with_a_port_else_icmp() -> None:
    assert parse_description(["src=10.0.0.1", "dst=10.0.0.2", "dport=53"]).protocol == 6
    icmp = parse_description(["src=10.0.0.1", "dst=10.0.0.2"])
    assert icmp.protocol == 1
    assert icmp.src_port is None
    assert icmp.dst_port is None
    assert icmp.describe() == "icmp 10.0.0.1 -> 10.0.0.2"


def test_every_token() -> None:
    spec = parse_description(
        [
            "src=10.1.1.12",
            "dst=10.1.1.11",
            "proto=UDP",
            "sport=5000",
            "dport=53",
            "smac=00-1D-D8-07-00-01",
            "dmac=001dd8070002",
            "ttl=3",
            "dir=in",
            "vsid=5001",
            "rdid=contoso",
            "outer_src=192.168.1.20",
            "outer_dst=192.168.1.10",
            "encap=NVGRE",
        ]
    )
    assert spec == FrameSpec(
        src="10.1.1.12",
        dst="10.1.1.11",
        protocol=17,
        src_port=5000,
        dst_port=53,
        src_mac="00:1d:d8:07:00:01",
        dst_mac="00:1d:d8:07:00:02",
        ttl=3,
        direction="in",
        vsid=5001,
        rdid="contoso",
        outer_src="192.168.1.20",
        outer_dst="192.168.1.10",
        encapsulation="nvgre",
    )


def test_tcp_flags_by_letters_or_number() -> None:
    base = ["src=10.0.0.1", "dst=10.0.0.2", "proto=tcp"]
    assert parse_description([*base, "flags=SA"]).tcp_flags == 0x12
    assert parse_description([*base, "flags=0x11"]).tcp_flags == 0x11
    assert parse_description([*base, "flags=4"]).tcp_flags == 4


def test_ipv6_addresses() -> None:
    spec = parse_description(["src=fd00::1", "dst=FD00::0002", "proto=udp"])
    assert (spec.src, spec.dst, spec.dst_port) == ("fd00::1", "fd00::2", 80)


@pytest.mark.parametrize(
    ("tokens", "says"),
    [
        ("dst=10.0.0.2", "missing src=IP"),
        ("src=10.0.0.1", "missing dst=IP"),
        ("src=10.0.0.1 dst=10.0.0.2 sport", "bad token 'sport': expected name=value"),
        ("src=10.0.0.1 dst=10.0.0.2 port=80", "unknown token 'port'"),
        ("src=10.0.0.1 src=10.0.0.3 dst=10.0.0.2", "token 'src' given twice"),
        ("src=10.0.0.300 dst=10.0.0.2", "src='10.0.0.300': not an IPv4 or IPv6 address"),
        ("src=10.0.0.1 dst=fd00::2", "different IP families"),
        ("src=10.0.0.1 dst=10.0.0.2 proto=sctp", "proto='sctp': expected tcp, udp or icmp"),
        ("src=10.0.0.1 dst=10.0.0.2 dport=70000", "dport='70000': must be within 0..65535"),
        ("src=10.0.0.1 dst=10.0.0.2 dport=http", "dport='http': not a number"),
        ("src=10.0.0.1 dst=10.0.0.2 proto=icmp dport=1", "proto=icmp has no ports"),
        ("src=10.0.0.1 dst=10.0.0.2 proto=udp flags=S", "flags= applies to proto=tcp only"),
        ("src=10.0.0.1 dst=10.0.0.2 proto=tcp flags=SX", "unknown flag 'X'"),
        ("src=10.0.0.1 dst=10.0.0.2 smac=00:11", "smac='00:11': not a MAC address"),
        ("src=10.0.0.1 dst=10.0.0.2 ttl=256", "ttl='256': must be within 0..255"),
        ("src=10.0.0.1 dst=10.0.0.2 dir=up", "dir='up': expected out or in"),
        ("src=10.0.0.1 dst=10.0.0.2 vsid=12", "vsid='12': must be within 4096..16777214"),
        ("src=10.0.0.1 dst=10.0.0.2 encap=gre", "encap='gre': expected vxlan or nvgre"),
        ("src=10.0.0.1 dst=10.0.0.2 outer_src=fd00::1", "provider addresses are IPv4"),
    ],
)
def test_errors_name_the_token(tokens: str, says: str) -> None:
    with pytest.raises(FrameSpecError, match=None) as caught:
        parse_description(tokens.split())
    assert says in str(caught.value)
