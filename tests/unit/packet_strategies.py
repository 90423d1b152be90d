"""Hypothesis strategies for the packet codec tests (shared by tests/unit/test_packet_*)."""

from __future__ import annotations

from hypothesis import strategies as st

from openhnv.packet.arp import Arp
from openhnv.packet.ethernet import Ethernet
from openhnv.packet.gre import Gre
from openhnv.packet.icmp import Icmp
from openhnv.packet.ipv4 import IPv4
from openhnv.packet.ipv6 import IPv6
from openhnv.packet.tcp import Tcp
from openhnv.packet.udp import Udp
from openhnv.packet.vxlan import Vxlan

macs = st.binary(min_size=6, max_size=6)
ipv4s = st.binary(min_size=4, max_size=4)
ipv6s = st.binary(min_size=16, max_size=16)
ports = st.integers(0, 0xFFFF)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
payloads = st.binary(max_size=64)


def _nop_padded(max_words: int) -> st.SearchStrategy[bytes]:
    """Options of whole 32-bit words, made of NOPs and well-formed TLVs."""

    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        words = draw(st.integers(0, max_words))
        out = b""
        while len(out) < words * 4:
            room = words * 4 - len(out)
            if room >= 2 and draw(st.booleans()):
                size = draw(st.integers(2, room))
                out += bytes([draw(st.integers(2, 255)), size]) + draw(
                    st.binary(min_size=size - 2, max_size=size - 2)
                )
            else:
                out += b"\x01"
        return out

    return build()


ipv4_options = _nop_padded(10)
tcp_options = _nop_padded(10)

ethernets = st.builds(Ethernet, dst=macs, src=macs, ethertype=u16.filter(lambda t: t != 0x8100)) | (
    st.builds(
        Ethernet,
        dst=macs,
        src=macs,
        ethertype=u16,
        vlan_id=st.integers(0, 4095),
        vlan_pcp=st.integers(0, 7),
        vlan_dei=st.booleans(),
    )
)
arps = st.builds(
    Arp,
    op=st.sampled_from([1, 2]),
    sender_mac=macs,
    sender_ip=ipv4s,
    target_mac=macs,
    target_ip=ipv4s,
)
ipv4_headers = st.builds(
    IPv4,
    src=ipv4s,
    dst=ipv4s,
    protocol=u8,
    ttl=u8,
    tos=u8,
    identification=u16,
    flags=st.integers(0, 7),
    fragment_offset=st.integers(0, 0x1FFF),
    options=ipv4_options,
)
ipv6_headers = st.builds(
    IPv6,
    src=ipv6s,
    dst=ipv6s,
    next_header=u8,
    hop_limit=u8,
    traffic_class=u8,
    flow_label=st.integers(0, 0xFFFFF),
)
icmps = st.builds(Icmp, type=u8, code=u8, identifier=u16, sequence=u16, payload=payloads)
tcps = st.builds(
    Tcp,
    src_port=ports,
    dst_port=ports,
    seq=u32,
    ack=u32,
    flags=st.integers(0, 0xFFF),
    window=u16,
    urgent=u16,
    options=tcp_options,
)
udps = st.builds(Udp, src_port=ports, dst_port=ports)
vxlans = st.builds(Vxlan, vni=st.integers(0, 0xFFFFFF))
gres = st.builds(
    Gre,
    protocol=u16,
    key=st.none() | u32,
    checksum=st.booleans(),
    sequence=st.none() | u32,
)
ip_pairs = st.tuples(ipv4s, ipv4s) | st.tuples(ipv6s, ipv6s)
