"""Every parser, fed truncations, bit flips and random bytes, raises only PacketError.

DESIGN.md §3: malformed input raises one typed error and never crashes a caller, so no
IndexError, struct.error, TypeError or any other exception may escape a parser.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest
from scapy.layers.inet6 import IPv6 as ScapyIPv6
from scapy.layers.l2 import ARP, GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from openhnv.packet.addresses import ip_to_bytes, mac_to_bytes
from openhnv.packet.arp import Arp
from openhnv.packet.decode import decode, describe
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import Ethernet
from openhnv.packet.frames import decapsulate, nvgre_encapsulate, vxlan_encapsulate
from openhnv.packet.gre import Gre
from openhnv.packet.icmp import Icmp
from openhnv.packet.icmpv6 import Icmpv6
from openhnv.packet.ipv4 import IPv4, parse_options
from openhnv.packet.ipv6 import IPv6
from openhnv.packet.tcp import Tcp
from openhnv.packet.udp import Udp
from openhnv.packet.vxlan import Vxlan

A, B = "00:1d:d8:07:00:02", "00:1d:d8:07:00:01"
SRC4, DST4 = ip_to_bytes("10.1.1.12"), ip_to_bytes("10.1.1.11")
SRC6, DST6 = ip_to_bytes("fd00::12"), ip_to_bytes("fd00::11")
_INNER = Ether(dst=B, src=A) / IP(src="10.1.1.12", dst="10.1.1.11") / TCP(flags="S")
_OUTER = Ether(dst=B, src=A) / Dot1Q(vlan=3) / IP(src="192.168.1.10", dst="192.168.2.20")
VALID_FRAMES = [
    bytes(_OUTER / UDP(sport=49152, dport=4789) / VXLAN(vni=5001) / _INNER),
    bytes(_OUTER / GRE(key_present=1, key=5001 << 8, proto=0x6558) / _INNER),
    bytes(_OUTER / GRE(chksum_present=1, seqnum_present=1, proto=0x6558) / _INNER),
    bytes(Ether(dst=B, src=A) / ARP(hwsrc=A, psrc="10.1.1.12", pdst="10.1.1.11")),
    bytes(Ether(dst=B, src=A) / IP(src="1.1.1.1", dst="2.2.2.2", options=b"\x01" * 4) / ICMP()),
    bytes(Ether(dst=B, src=A) / ScapyIPv6(src="fd00::1", dst="fd00::2") / UDP() / b"x"),
    bytes(Ether(dst=B, src=A) / ScapyIPv6(src="fd00::1", dst="fd00::2") / TCP() / b"x"),
    bytes(_INNER / b"payload"),
    bytes(Ether(dst=B, src=A) / ScapyIPv6(src="fd00::1", dst="fd00::2") / ICMPv6EchoRequest()),
]

Parser = Callable[[bytes, int], object]
PARSERS: list[Parser] = [
    lambda b, o: Ethernet.parse(b, o),
    lambda b, o: Arp.parse(b, o),
    lambda b, o: IPv4.parse(b, o),
    lambda b, o: IPv4.parse(b, o, verify_checksum=False),
    lambda b, o: IPv6.parse(b, o),
    lambda b, o: Icmp.parse(b, o),
    lambda b, o: Icmp.parse(b, o, len(b) - o - 1, verify_checksum=False),
    lambda b, o: Icmpv6.parse(b, o),
    lambda b, o: Icmpv6.parse(b, o, SRC6, DST6),
    lambda b, o: Tcp.parse(b, o),
    lambda b, o: Tcp.parse(b, o, SRC4, DST4),
    lambda b, o: Tcp.parse(b, o, SRC6, DST6, len(b) - o - 2),
    lambda b, o: Udp.parse(b, o),
    lambda b, o: Udp.parse(b, o, SRC4, DST4),
    lambda b, o: Udp.parse(b, o, SRC6, DST6, len(b) - o - 3),
    lambda b, o: Udp.parse(b, o, fragment=True),
    lambda b, o: Vxlan.parse(b, o),
    lambda b, o: Gre.parse(b, o),
    lambda b, o: Gre.parse(b, o, len(b) - o - 1),
    lambda b, o: parse_options(b[o:], o),
    lambda b, o: decode(b[o:]),
    lambda b, o: decapsulate(b[o:]),
]


def packet_error(call: Callable[[], object]) -> PacketError | None:
    """The PacketError ``call`` raised, or None when it returned (anything else escapes)."""
    try:
        call()
    except PacketError as err:
        return err
    return None


def only_packet_errors(buf: bytes, offset: int) -> None:
    for parse in PARSERS:
        err = packet_error(partial(parse, buf, offset))
        if err is not None:
            assert err.header
            assert err.reason
    assert isinstance(describe(buf[max(offset, 0) :]), str)


@settings(max_examples=300)
@given(st.binary(max_size=120), st.integers(-3, 130))
def test_random_bytes(buf: bytes, offset: int) -> None:
    only_packet_errors(buf, offset)
    only_packet_errors(memoryview(buf), offset)  # type: ignore[arg-type]


@given(st.sampled_from(VALID_FRAMES), st.data())
def test_truncations(frame: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(frame)))
    for offset in (0, 14, 18, 34, 38, 42, 50, 54, 62):
        only_packet_errors(frame[:cut], offset)


@settings(max_examples=300)
@given(st.sampled_from(VALID_FRAMES), st.data())
def test_bit_flips(frame: bytes, data: st.DataObject) -> None:
    flips = data.draw(st.lists(st.integers(0, len(frame) * 8 - 1), min_size=1, max_size=4))
    mutated = bytearray(frame)
    for bit in flips:
        mutated[bit // 8] ^= 1 << (bit % 8)
    for offset in (0, 14, 18, 38, 46):
        only_packet_errors(bytes(mutated), offset)
    only_packet_errors(memoryview(bytes(mutated)), 0)  # type: ignore[arg-type]


def test_the_valid_frames_decode() -> None:
    for frame in VALID_FRAMES:
        assert decode(frame)
        assert "malformed" not in describe(frame)


@given(st.text(max_size=40) | st.binary(max_size=20))
def test_address_text_raises_only_packet_error(text: str | bytes) -> None:
    for convert in (mac_to_bytes, ip_to_bytes):
        err = packet_error(partial(convert, text))
        assert err is None or err.header == "address"


def test_non_bytes_addresses_raise_packet_error() -> None:
    for value in (None, 5, ["00"]):
        for convert in (mac_to_bytes, ip_to_bytes):
            with pytest.raises(PacketError) as raised:
                convert(value)  # type: ignore[arg-type]
            assert raised.value.header == "address"


@settings(max_examples=300)
@given(st.binary(max_size=100), st.booleans())
def test_random_inner_frames_behind_valid_tunnels(inner: bytes, use_vxlan: bool) -> None:
    """Valid outer headers let random inner bytes reach the inner parsers."""
    if use_vxlan:
        frame = vxlan_encapsulate(
            inner, outer_src_mac=A, outer_dst_mac=B, src_pa=SRC4, dst_pa=DST4, vni=1, src_port=2
        )
    else:
        frame = nvgre_encapsulate(
            inner, outer_src_mac=A, outer_dst_mac=B, src_pa=SRC4, dst_pa=DST4, vsid=1, flow_id=2
        )
    assert decapsulate(frame).inner == inner
    only_packet_errors(frame, 0)
