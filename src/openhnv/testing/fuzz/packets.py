"""Fuzz targets of the packet layer: each codec, the decoder, tunnels and flow keys.

Only ``PacketError`` may escape a parser; ``describe`` never raises; what a codec parsed
it builds again to the same header; ``parse_flow_key`` accepts exactly what ``flow_key``
accepts and carries the same key; ``parse_outer`` finds the inner frame where
``outer_key`` put it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from openhnv.packet.arp import Arp
from openhnv.packet.decode import decode, describe
from openhnv.packet.dhcp import Dhcp
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import Ethernet
from openhnv.packet.flowkey import flow_key, outer_key, parse_flow_key, parse_outer
from openhnv.packet.frames import (
    arp_frame,
    decapsulate,
    icmp_echo_frame,
    nvgre_encapsulate,
    tcp_frame,
    udp_frame,
    vxlan_encapsulate,
)
from openhnv.packet.gre import Gre
from openhnv.packet.icmp import Icmp
from openhnv.packet.icmpv6 import Icmpv6
from openhnv.packet.ipv4 import IPv4
from openhnv.packet.ipv6 import IPv6
from openhnv.packet.tcp import Tcp
from openhnv.packet.udp import Udp
from openhnv.packet.vxlan import Vxlan
from openhnv.testing.fuzz import FuzzFailure, Target

A, B = "00:1d:d8:07:00:11", "00:1d:d8:07:00:12"
PA1, PA2 = "192.168.1.10", "192.168.2.20"


def _same(what: str, data: bytes, first: object, again: object) -> None:
    if first != again:
        raise FuzzFailure(f"{what}: parse(build(x)) != x for {data.hex()}: {first} / {again}")


def _ethernet(data: bytes) -> None:
    header, _ = Ethernet.parse(data)
    _same("ethernet", data, header, Ethernet.parse(header.pack())[0])


def _arp(data: bytes) -> None:
    header, _ = Arp.parse(data)
    _same("arp", data, header, Arp.parse(header.pack())[0])


def _dhcp(data: bytes) -> None:
    header, _ = Dhcp.parse(data)
    _same("dhcp", data, header, Dhcp.parse(header.pack())[0])


def _ipv4(data: bytes) -> None:
    header, at = IPv4.parse(data)
    payload = data[at : at + header.payload_length]
    _same("ipv4", data, header, IPv4.parse(header.pack(len(payload)) + payload)[0])


def _ipv6(data: bytes) -> None:
    header, at = IPv6.parse(data)
    payload = data[at : at + header.payload_length]
    _same("ipv6", data, header, IPv6.parse(header.pack(len(payload)) + payload)[0])


def _icmp(data: bytes) -> None:
    header, _ = Icmp.parse(data)
    _same("icmp", data, header, Icmp.parse(header.pack())[0])


def _vxlan(data: bytes) -> None:
    header, _ = Vxlan.parse(data)
    _same("vxlan", data, header, Vxlan.parse(header.pack())[0])


def _gre(data: bytes) -> None:
    header, at = Gre.parse(data)
    payload = data[at:]
    _same("gre", data, header, Gre.parse(header.pack(payload) + payload)[0])


def _checked_only(parse: Callable[[bytes], object]) -> Callable[[bytes], None]:
    def one(data: bytes) -> None:
        parse(data)

    return one


_SRC4, _DST4 = bytes((10, 1, 1, 11)), bytes((10, 1, 1, 12))
CODECS: tuple[Callable[[bytes], None], ...] = (
    _ethernet,
    _arp,
    _ipv4,
    _ipv6,
    _icmp,
    _vxlan,
    _gre,
    _checked_only(lambda d: IPv4.parse(d, verify_checksum=False)),
    _checked_only(lambda d: Icmpv6.parse(d, 0, _SRC4 * 4, _DST4 * 4)),
    _checked_only(lambda d: Tcp.parse(d, 0, _SRC4, _DST4)),
    _checked_only(lambda d: Udp.parse(d, 0, _SRC4, _DST4)),
    _checked_only(Tcp.parse),  # no addresses: the checksum is not verified
    _checked_only(lambda d: Udp.parse(d, fragment=True)),
    _dhcp,
)


def codecs(data: bytes) -> None:
    """The first byte picks a codec; the rest is its input."""
    if not data:
        return
    with contextlib.suppress(PacketError):
        CODECS[data[0] % len(CODECS)](data[1:])


def decoder(data: bytes) -> None:
    """``decode``, ``decapsulate`` refuse with PacketError only; ``describe`` never fails."""
    if not isinstance(describe(data), str):
        raise FuzzFailure("describe did not return a line")
    for parse in (decode, decapsulate):
        with contextlib.suppress(PacketError):
            parse(data)


def flow_keys(data: bytes) -> None:
    """What ``flow_key`` accepts ``parse_flow_key`` reads, with the same key."""
    try:
        key = flow_key(data)
    except PacketError:
        key = None
    if key is not None:
        if parse_flow_key(data).key != key:
            raise FuzzFailure(f"parse_flow_key's key differs from flow_key's for {data.hex()}")
    else:
        try:
            parse_flow_key(data)
        except PacketError:
            pass
        else:
            raise FuzzFailure(f"parse_flow_key accepted what flow_key refused: {data.hex()}")
    try:
        outer, inner_at = outer_key(data)  # a shape, not a check: parse_outer checks
        parsed = parse_outer(data, outer)
    except PacketError:
        return
    if inner_at >= 0 and parsed.inner_offset != inner_at:
        raise FuzzFailure(f"parse_outer disagrees with outer_key on {data.hex()}")


def frame_seeds() -> tuple[bytes, ...]:
    """Valid frames of every kind the data plane meets."""
    inner = udp_frame(src_mac=A, dst_mac=B, src_ip="10.1.1.11", dst_ip="10.1.1.12",
                      src_port=5000, dst_port=53, payload=b"hello")  # fmt: skip
    tcp = tcp_frame(src_mac=A, dst_mac=B, src_ip="10.1.1.11", dst_ip="10.1.1.12",
                    src_port=5000, dst_port=80, flags=0x02)  # fmt: skip
    six = udp_frame(src_mac=A, dst_mac=B, src_ip="fd00::11", dst_ip="fd00::12",
                    src_port=5000, dst_port=53, payload=b"six")  # fmt: skip
    ping = icmp_echo_frame(src_mac=A, dst_mac=B, src_ip="10.1.1.11", dst_ip="10.1.1.12",
                           identifier=7, sequence=1, payload=b"p")  # fmt: skip
    arp = arp_frame(op=1, src_mac=A, dst_mac="ff:ff:ff:ff:ff:ff", sender_mac=A,
                    sender_ip="10.1.1.11", target_mac="00:00:00:00:00:00",
                    target_ip="10.1.1.12")  # fmt: skip
    vx = vxlan_encapsulate(inner, outer_src_mac=A, outer_dst_mac=B, src_pa=PA2, dst_pa=PA1,
                           vni=5001, src_port=49152)  # fmt: skip
    gre = nvgre_encapsulate(inner, outer_src_mac=A, outer_dst_mac=B, src_pa=PA2, dst_pa=PA1,
                            vsid=5001, flow_id=3)  # fmt: skip
    return (inner, tcp, six, ping, arp, vx, gre)


def codec_seeds() -> tuple[bytes, ...]:
    """Each frame seed behind each codec's selector byte, at each header's start."""
    out = []
    for frame in frame_seeds():
        for selector in range(len(CODECS)):
            for start in (0, 14, 34, 42, 50):
                out.append(bytes((selector,)) + frame[start:])
    return tuple(out)


TARGETS = (
    Target("packet-codecs", codecs, codec_seeds),
    Target("packet-decode", decoder, frame_seeds),
    Target("packet-flowkey", flow_keys, frame_seeds),
)
