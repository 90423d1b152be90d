"""Whole-frame builders and VXLAN/NVGRE encapsulation, checked by scapy."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packet_strategies import macs, payloads, ports
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6PacketTooBig,
    IPv6,
)
from scapy.layers.l2 import ARP, GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from openhnv.packet.addresses import ip_to_bytes
from openhnv.packet.arp import ARP_REPLY, ARP_REQUEST
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_IPV4, Ethernet
from openhnv.packet.frames import (
    Tunnel,
    arp_frame,
    decapsulate,
    frag_needed_frame,
    icmp_echo_frame,
    nvgre_encapsulate,
    packet_too_big_frame,
    tcp_frame,
    udp_frame,
    vxlan_encapsulate,
)
from openhnv.packet.ipv4 import PROTO_GRE, PROTO_UDP, IPv4
from openhnv.packet.tcp import TCP_ACK, TCP_SYN

VM_A = "00:1d:d8:07:00:02"
VM_B = "00:1d:d8:07:00:01"
HOST_1 = "02:00:c0:a8:01:0a"
ROUTER = "02:00:c0:a8:02:14"
INNER = bytes.fromhex(
    "001dd8070001"  # inner destination MAC
    "001dd8070002"  # inner source MAC
    "08aa"  # inner EtherType (any)
)
VXLAN_FRAME = (
    bytes.fromhex(
        "0200c0a80214"  # outer destination MAC (next hop)
        "0200c0a8010a"  # outer source MAC (host 1)
        "0800"  # EtherType IPv4
        "45"  # version 4, IHL 5
        "00"  # TOS
        "0032"  # total length 50
        "0000"  # identification
        "0000"  # flags, fragment offset
        "40"  # TTL 64
        "11"  # protocol UDP
        "f64c"  # header checksum
        "c0a8010a"  # source PA 192.168.1.10
        "c0a80214"  # destination PA 192.168.2.20
        "c822"  # UDP source port 51234 (inner flow hash)
        "12b5"  # UDP destination port 4789
        "001e"  # UDP length 30
        "0000"  # UDP checksum: none (RFC 7348 §5)
        "08000000"  # VXLAN flags I, reserved
        "00138900"  # VNI 5001, reserved
    )
    + INNER
)
NVGRE_FRAME = (
    bytes.fromhex(
        "0200c0a80214"  # outer destination MAC
        "0200c0a8010a"  # outer source MAC
        "8100"  # 802.1Q
        "0064"  # PCP 0, VLAN 100 (the PA subnet's)
        "0800"  # EtherType IPv4
        "45"  # version 4, IHL 5
        "00"  # TOS
        "002a"  # total length 42
        "0000"  # identification
        "0000"  # flags, fragment offset
        "40"  # TTL 64
        "2f"  # protocol GRE
        "f636"  # header checksum
        "c0a8010a"  # source PA 192.168.1.10
        "c0a80214"  # destination PA 192.168.2.20
        "2000"  # GRE flags: K
        "6558"  # protocol: Transparent Ethernet Bridging
        "001389"  # VSID 5001
        "2a"  # FlowID 42
    )
    + INNER
)


def vxlan(inner: bytes = INNER, **kwargs: object) -> bytes:
    fields: dict[str, object] = {
        "outer_src_mac": HOST_1,
        "outer_dst_mac": ROUTER,
        "src_pa": "192.168.1.10",
        "dst_pa": "192.168.2.20",
        "vni": 5001,
        "src_port": 51234,
    }
    fields.update(kwargs)
    return vxlan_encapsulate(inner, **fields)  # type: ignore[arg-type]


def nvgre(inner: bytes = INNER, **kwargs: object) -> bytes:
    fields: dict[str, object] = {
        "outer_src_mac": HOST_1,
        "outer_dst_mac": ROUTER,
        "src_pa": "192.168.1.10",
        "dst_pa": "192.168.2.20",
        "vsid": 5001,
        "flow_id": 42,
        "vlan_id": 100,
    }
    fields.update(kwargs)
    return nvgre_encapsulate(inner, **fields)  # type: ignore[arg-type]


def checksums_hold(packet: Ether, *layers: type) -> None:
    """scapy recomputes each layer's checksum to the value we wrote."""
    for layer in layers:
        field = "cksum" if layer.__name__.startswith("ICMPv6") else "chksum"
        written = getattr(packet[layer], field)
        copy = packet.copy()
        delattr(copy[layer], field)
        assert getattr(Ether(bytes(copy))[layer], field) == written, layer.__name__


def test_vxlan_known_answer_and_decapsulation() -> None:
    assert vxlan() == VXLAN_FRAME
    assert decapsulate(VXLAN_FRAME) == Tunnel(
        outer=Ethernet(bytes.fromhex("0200c0a80214"), bytes.fromhex("0200c0a8010a"), 0x0800),
        outer_ip=IPv4(
            ip_to_bytes("192.168.1.10"), ip_to_bytes("192.168.2.20"), PROTO_UDP, total_length=50
        ),
        encapsulation="vxlan",
        vsid=5001,
        flow_id=0,
        udp_src_port=51234,
        inner=INNER,
    )


def test_nvgre_known_answer_and_decapsulation() -> None:
    assert nvgre() == NVGRE_FRAME
    tunnel = decapsulate(NVGRE_FRAME)
    assert (tunnel.encapsulation, tunnel.vsid, tunnel.flow_id, tunnel.udp_src_port) == (
        "nvgre",
        5001,
        42,
        0,
    )
    assert tunnel.outer.vlan_id == 100
    assert tunnel.outer_ip.protocol == PROTO_GRE
    assert tunnel.inner == INNER


def test_scapy_reads_our_vxlan() -> None:
    inner = udp_frame(
        src_mac=VM_A,
        dst_mac=VM_B,
        src_ip="10.1.1.12",
        dst_ip="10.1.1.11",
        src_port=1,
        dst_port=2,
        payload=b"hello",
    )
    packet = Ether(vxlan(inner, ttl=9, vlan_id=7))
    assert packet[Dot1Q].vlan == 7
    assert (packet[IP].src, packet[IP].dst, packet[IP].ttl) == ("192.168.1.10", "192.168.2.20", 9)
    assert (packet[UDP].sport, packet[UDP].dport, packet[UDP].chksum) == (51234, 4789, 0)
    assert packet[VXLAN].vni == 5001
    inner_packet = packet[VXLAN].payload
    assert (inner_packet.src, inner_packet.dst) == (VM_A, VM_B)
    assert bytes(inner_packet[UDP].payload) == b"hello"
    checksums_hold(packet, IP)


def test_scapy_reads_our_nvgre() -> None:
    packet = Ether(nvgre(INNER + b"rest"))
    gre = packet[GRE]
    assert (gre.key_present, gre.chksum_present, gre.proto) == (1, 0, 0x6558)
    assert (gre.key >> 8, gre.key & 0xFF) == (5001, 42)
    assert packet[IP].proto == 47
    checksums_hold(packet, IP)


def test_we_decapsulate_scapys() -> None:
    inner = Ether(dst=VM_B, src=VM_A) / IP(src="10.1.1.12", dst="10.1.1.11") / ICMP()
    outer = Ether(dst=ROUTER, src=HOST_1) / IP(src="192.168.1.10", dst="192.168.2.20")
    tunnel = decapsulate(bytes(outer / UDP(sport=50000, dport=4789) / VXLAN(vni=7) / inner))
    assert (tunnel.encapsulation, tunnel.vsid, tunnel.udp_src_port) == ("vxlan", 7, 50000)
    assert tunnel.inner == bytes(inner)  # scapy fills the UDP checksum: we verify it
    gre = GRE(key_present=1, key=nvgre_key_of(4096, 3), proto=0x6558)
    tunnel = decapsulate(bytes(outer / gre / inner))
    assert (tunnel.encapsulation, tunnel.vsid, tunnel.flow_id) == ("nvgre", 4096, 3)
    assert tunnel.inner == bytes(inner)


def nvgre_key_of(vsid: int, flow_id: int) -> int:
    return vsid << 8 | flow_id


@given(st.binary(min_size=14, max_size=80), st.integers(0, 0xFFFFFF), ports, macs, macs)
def test_vxlan_round_trip(inner: bytes, vni: int, port: int, src: bytes, dst: bytes) -> None:
    frame = vxlan(inner, vni=vni, src_port=port, outer_src_mac=src, outer_dst_mac=dst)
    tunnel = decapsulate(frame)
    assert (tunnel.vsid, tunnel.udp_src_port, tunnel.inner) == (vni, port, inner)
    assert (tunnel.outer.src, tunnel.outer.dst) == (src, dst)


@given(st.binary(min_size=14, max_size=80), st.integers(0, 0xFFFFFF), st.integers(0, 255))
def test_nvgre_round_trip(inner: bytes, vsid: int, flow_id: int) -> None:
    tunnel = decapsulate(nvgre(inner, vsid=vsid, flow_id=flow_id, vlan_id=None))
    assert (tunnel.vsid, tunnel.flow_id, tunnel.inner) == (vsid, flow_id, inner)


def test_decapsulate_trims_ethernet_padding() -> None:
    assert decapsulate(VXLAN_FRAME + bytes(10)).inner == INNER


def test_nvgre_needs_a_key() -> None:
    frame = bytes(
        Ether(dst=ROUTER, src=HOST_1) / IP(src="1.1.1.1", dst="2.2.2.2") / GRE(proto=0x6558)
    )
    with pytest.raises(PacketError, match=r"^tunnel at offset 34: GRE is not NVGRE: no key"):
        decapsulate(frame)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (
            tcp_frame(
                src_mac=VM_A,
                dst_mac=VM_B,
                src_ip="10.1.1.12",
                dst_ip="10.1.1.11",
                src_port=1,
                dst_port=2,
                flags=TCP_SYN,
            ),
            "IP protocol 6 is not UDP or GRE",
        ),
        (
            udp_frame(
                src_mac=VM_A,
                dst_mac=VM_B,
                src_ip="10.1.1.12",
                dst_ip="10.1.1.11",
                src_port=4789,
                dst_port=53,
            ),
            "UDP port 53 is not VXLAN (4789)",
        ),
        (
            arp_frame(
                op=ARP_REQUEST,
                src_mac=VM_A,
                dst_mac="ff:ff:ff:ff:ff:ff",
                sender_mac=VM_A,
                sender_ip="10.1.1.12",
                target_mac=bytes(6),
                target_ip="10.1.1.11",
            ),
            "ethertype 0x0806 is not IPv4: not VXLAN or NVGRE",
        ),
        (
            bytes(Ether(dst=ROUTER, src=HOST_1) / IP(src="1.1.1.1", dst="2.2.2.2") / GRE()),
            "GRE is not NVGRE: protocol 0x0000 is not 0x6558",
        ),
        (
            bytes(
                Ether(dst=ROUTER, src=HOST_1)
                / IP(src="1.1.1.1", dst="2.2.2.2")
                / GRE(key_present=1, seqnum_present=1, proto=0x6558)
            ),
            "GRE is not NVGRE: checksum or sequence number present",
        ),
        (
            bytes(
                Ether(dst=ROUTER, src=HOST_1)
                / IP(src="1.1.1.1", dst="2.2.2.2", flags="MF")
                / UDP(dport=4789)
            ),
            "IPv4 fragment: reassemble before decapsulating",
        ),
    ],
)
def test_not_a_tunnel(frame: bytes, reason: str) -> None:
    with pytest.raises(PacketError) as err:
        decapsulate(frame)
    assert (err.value.header, err.value.reason) == ("tunnel", reason)


def test_decapsulate_checks_the_layers_on_the_way() -> None:
    with pytest.raises(PacketError, match=r"^ipv4 at offset 14: header checksum"):
        decapsulate(VXLAN_FRAME[:24] + b"\x00" + VXLAN_FRAME[25:])
    with pytest.raises(PacketError, match=r"^vxlan at offset 42: flags 0x00 lack the I flag"):
        decapsulate(VXLAN_FRAME[:42] + b"\x00" + VXLAN_FRAME[43:])
    with pytest.raises(PacketError, match=r"^ipv4 at offset 14: total length 50 runs past"):
        decapsulate(VXLAN_FRAME[:-1])


def test_tunnels_need_ipv4_provider_addresses() -> None:
    with pytest.raises(PacketError, match=r"^tunnel at offset 0: src_pa 'fd00::1' is not an IPv4"):
        vxlan(src_pa="fd00::1")
    with pytest.raises(PacketError, match=r"^nvgre at offset 0: vsid"):
        nvgre(vsid=-1)


@given(payloads, ports, ports, st.booleans(), st.none() | st.integers(0, 4094))
def test_udp_frame_by_scapy(
    payload: bytes, sport: int, dport: int, v6: bool, vlan_id: int | None
) -> None:
    src, dst = ("fd00::12", "fd00::11") if v6 else ("10.1.1.12", "10.1.1.11")
    frame = udp_frame(
        src_mac=VM_A,
        dst_mac=VM_B,
        src_ip=src,
        dst_ip=dst,
        src_port=sport,
        dst_port=dport,
        payload=payload,
        ttl=33,
        vlan_id=vlan_id,
    )
    packet = Ether(frame)
    ip_layer = IPv6 if v6 else IP
    assert (packet.src, packet.dst) == (VM_A, VM_B)
    assert (packet[ip_layer].src, packet[ip_layer].dst) == (src, dst)
    assert (packet[UDP].sport, packet[UDP].dport) == (sport, dport)
    assert bytes(packet[UDP].payload) == payload
    assert (Dot1Q in packet) == (vlan_id is not None)
    checksums_hold(packet, UDP) if v6 else checksums_hold(packet, IP, UDP)


def test_tcp_frame_by_scapy() -> None:
    frame = tcp_frame(
        src_mac=VM_A,
        dst_mac=VM_B,
        src_ip="10.1.1.12",
        dst_ip="10.1.1.11",
        src_port=40000,
        dst_port=1433,
        flags=TCP_SYN | TCP_ACK,
        seq=100,
        ack=200,
        payload=b"q",
        vlan_id=5,
    )
    packet = Ether(frame)
    tcp = packet[TCP]
    assert (tcp.sport, tcp.dport, tcp.seq, tcp.ack, str(tcp.flags)) == (40000, 1433, 100, 200, "SA")
    assert packet[IP].ttl == 64
    checksums_hold(packet, IP, TCP)
    v6 = Ether(
        tcp_frame(
            src_mac=VM_A,
            dst_mac=VM_B,
            src_ip="fd00::12",
            dst_ip="fd00::11",
            src_port=1,
            dst_port=2,
            flags=TCP_SYN,
            ttl=5,
        )
    )
    assert v6[IPv6].hlim == 5
    checksums_hold(v6, TCP)


@pytest.mark.parametrize("reply", [False, True])
def test_icmp_echo_frame_by_scapy(reply: bool) -> None:
    frame = icmp_echo_frame(
        src_mac=VM_A,
        dst_mac=VM_B,
        src_ip="10.1.1.12",
        dst_ip="10.1.1.11",
        identifier=9,
        sequence=10,
        payload=b"ping",
        reply=reply,
    )
    packet = Ether(frame)
    assert (packet[ICMP].type, packet[ICMP].id, packet[ICMP].seq) == (0 if reply else 8, 9, 10)
    assert bytes(packet[ICMP].payload) == b"ping"
    checksums_hold(packet, IP, ICMP)


@pytest.mark.parametrize("reply", [False, True])
def test_icmpv6_echo_frame_by_scapy(reply: bool) -> None:
    frame = icmp_echo_frame(
        src_mac=VM_A,
        dst_mac=VM_B,
        src_ip="fd00::1",
        dst_ip="fd00::2",
        identifier=3,
        sequence=4,
        payload=b"ping6",
        reply=reply,
        ttl=2,
    )
    packet = Ether(frame)
    layer = ICMPv6EchoReply if reply else ICMPv6EchoRequest
    assert (packet[IPv6].nh, packet[IPv6].hlim) == (58, 2)
    assert (packet[layer].id, packet[layer].seq, packet[layer].data) == (3, 4, b"ping6")
    checksums_hold(packet, layer)


def test_arp_frame_by_scapy() -> None:
    frame = arp_frame(
        op=ARP_REPLY,
        src_mac="40:1d:d8:b7:1c:06",
        dst_mac=VM_A,
        sender_mac="401DD8B71C06",
        sender_ip="10.1.1.1",
        target_mac=VM_A,
        target_ip=ip_to_bytes("10.1.1.12"),
    )
    packet = Ether(frame)
    assert packet.type == 0x0806
    assert (packet[ARP].op, packet[ARP].hwsrc, packet[ARP].psrc) == (
        2,
        "40:1d:d8:b7:1c:06",
        "10.1.1.1",
    )
    assert (packet[ARP].hwdst, packet[ARP].pdst) == (VM_A, "10.1.1.12")


def test_builders_reject_bad_addresses() -> None:
    with pytest.raises(PacketError, match=r"^address at offset 0: MAC 'nope'"):
        udp_frame(
            src_mac="nope",
            dst_mac=VM_B,
            src_ip="10.1.1.1",
            dst_ip="10.1.1.2",
            src_port=1,
            dst_port=2,
        )
    with pytest.raises(
        PacketError,
        match=r"^address at offset 0: source 10.1.1.1 and destination fd00::2 are",
    ):
        udp_frame(
            src_mac=VM_A, dst_mac=VM_B, src_ip="10.1.1.1", dst_ip="fd00::2", src_port=1, dst_port=2
        )


def test_ethertype_constant_is_what_scapy_sees() -> None:
    assert Ether(VXLAN_FRAME).type == ETHERTYPE_IPV4


def test_fragmentation_needed_answers_a_df_datagram_from_its_destination() -> None:
    segment = tcp_frame(src_mac=VM_A, dst_mac=VM_B, src_ip="10.0.0.1", dst_ip="10.0.0.2",
                        src_port=40000, dst_port=80, flags=TCP_ACK,
                        payload=b"d" * 1460)  # fmt: skip
    with_df = bytes(
        Ether(src=VM_A, dst=VM_B) / IP(src="10.0.0.1", dst="10.0.0.2", flags="DF")
        / TCP(sport=40000, dport=80, flags="A") / (b"d" * 1460)
    )  # fmt: skip
    answer = frag_needed_frame(with_df, 1450)
    assert answer is not None
    packet = Ether(answer)
    assert (packet.src, packet.dst) == (VM_B, VM_A)
    assert (packet[IP].src, packet[IP].dst) == ("10.0.0.2", "10.0.0.1")
    icmp = packet[ICMP]
    assert (icmp.type, icmp.code, icmp.nexthopmtu) == (3, 4, 1450)
    assert bytes(icmp.payload)[:20] == with_df[14:34]  # quotes the original header
    assert len(answer) <= 14 + 576
    assert frag_needed_frame(segment, 1450) is None  # no DF: may be fragmented, no answer


def test_packet_too_big_answers_any_ipv6_packet_from_its_destination() -> None:
    big = bytes(
        Ether(src=VM_A, dst=VM_B) / IPv6(src="fd00::1", dst="fd00::2")
        / TCP(sport=40000, dport=80, flags="A") / (b"d" * 1440)
    )  # fmt: skip
    answer = packet_too_big_frame(big, 1450)
    assert answer is not None
    packet = Ether(answer)
    assert (packet.src, packet.dst) == (VM_B, VM_A)
    assert (packet[IPv6].src, packet[IPv6].dst) == ("fd00::2", "fd00::1")
    too_big = packet[ICMPv6PacketTooBig]
    assert (too_big.type, too_big.code, too_big.mtu) == (2, 0, 1450)
    assert len(answer) - 14 == 1280  # quotes as much as fits the IPv6 minimum MTU
    assert bytes(too_big.payload)[:40] == big[14:54]
    scapy_sum = too_big.cksum
    del too_big.cksum
    assert Ether(bytes(packet))[ICMPv6PacketTooBig].cksum == scapy_sum
    error = bytes(Ether(src=VM_A, dst=VM_B) / IPv6(src="fd00::1", dst="fd00::2")
                  / ICMPv6DestUnreach() / (b"e" * 1400))  # fmt: skip
    assert packet_too_big_frame(error, 1450) is None  # no error answers an error
    assert packet_too_big_frame(answer[:13], 1450) is None
