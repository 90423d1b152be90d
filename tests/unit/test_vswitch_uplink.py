"""The PA side of a host: what goes out, what is handed up, what is dropped and counted.

Frames are built with explicit MACs and decoded with scapy as an independent decoder;
nothing is ever sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from openhnv.vswitch.arp_resolver import ArpTimers
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.uplink import ProviderStack, TunnelFrame, UplinkConfig, UplinkSend

MAC0 = bytes.fromhex("020000000a00")
MAC1 = bytes.fromhex("020000000a01")
PEER_MAC = "02:00:00:00:0b:00"
ROUTER_MAC = "02:00:00:00:00:01"
PA0 = "192.168.2.20"
PA1 = "192.168.2.21"
PEER_PA = "192.168.2.30"
REMOTE_PA = "192.168.1.10"
GATEWAY = "192.168.2.1"
VLAN = 20


def stack(vlan: int = VLAN, gateway: str | None = GATEWAY) -> ProviderStack:
    gw = None if gateway is None else ipaddress.IPv4Address(gateway)
    return ProviderStack(
        [
            UplinkConfig("up0", MAC0, ipaddress.IPv4Interface(f"{PA0}/24"), vlan, gw),
            UplinkConfig("up1", MAC1, ipaddress.IPv4Interface(f"{PA1}/24"), vlan, gw),
        ],
        timers=ArpTimers(reachable=300.0, retry=1.0, attempts=3, queue_limit=4),
    )


def tagged(frame: Ether, vlan: int = VLAN) -> bytes:
    """``frame`` with an 802.1Q tag inserted after the MACs."""
    if not vlan:
        return bytes(frame)
    payload = frame.payload
    return bytes(Ether(dst=frame.dst, src=frame.src) / Dot1Q(vlan=vlan) / payload)


def arp_request(target: str, sender: str = PEER_PA, mac: str = PEER_MAC, vlan: int = VLAN) -> bytes:
    return tagged(
        Ether(dst="ff:ff:ff:ff:ff:ff", src=mac)
        / ARP(op=1, hwsrc=mac, psrc=sender, hwdst="00:00:00:00:00:00", pdst=target),
        vlan,
    )


def arp_reply(sender: str, mac: str, target: str = PA0, target_mac: bytes = MAC0) -> bytes:
    dst = ":".join(f"{b:02x}" for b in target_mac)
    return tagged(
        Ether(dst=dst, src=mac) / ARP(op=2, hwsrc=mac, psrc=sender, hwdst=dst, pdst=target)
    )


def vxlan_frame(dst: str = PA0, dport: int = 4789, mac: bytes = MAC0) -> bytes:
    dst_mac = ":".join(f"{b:02x}" for b in mac)
    payload = bytes.fromhex("0800000000138900") + b"inner-frame"
    return tagged(
        Ether(dst=dst_mac, src=ROUTER_MAC)
        / IP(src=REMOTE_PA, dst=dst)
        / UDP(sport=50000, dport=dport)
        / Raw(payload)
    )


def outer_packet(dst: str = PEER_PA, src: str = PA0) -> bytes:
    return bytes(IP(src=src, dst=dst) / UDP(sport=51000, dport=4789) / Raw(b"x" * 20))


def only_transmit(ops: Sequence[object]) -> UplinkSend:
    assert len(ops) == 1, ops
    assert isinstance(ops[0], UplinkSend), ops
    return ops[0]


# ---------------------------------------------------------------- ARP for our PAs


def test_arp_request_for_a_pa_gets_a_tagged_reply() -> None:
    s = stack()
    out = only_transmit(s.receive(0, arp_request(PA0), now=0.0))
    reply = Ether(out.frame)
    assert out.uplink == 0
    assert reply[Dot1Q].vlan == VLAN
    assert reply.dst == PEER_MAC
    assert reply.src == "02:00:00:00:0a:00"
    assert reply[ARP].op == 2
    assert (reply[ARP].psrc, reply[ARP].hwsrc) == (PA0, "02:00:00:00:0a:00")
    assert (reply[ARP].pdst, reply[ARP].hwdst) == (PEER_PA, PEER_MAC)
    assert s.counters["arp_replies_sent"] == 1


def test_untagged_uplink_replies_untagged() -> None:
    s = stack(vlan=0)
    out = only_transmit(s.receive(1, arp_request(PA1, vlan=0), now=0.0))
    assert Dot1Q not in Ether(out.frame)
    assert Ether(out.frame)[ARP].psrc == PA1


def test_arp_for_another_address_gets_no_reply() -> None:
    s = stack()
    assert s.receive(0, arp_request("192.168.2.99"), now=0.0) == []
    assert s.counters["arp_not_for_us"] == 1


def test_wrong_vlan_or_missing_tag_is_dropped() -> None:
    s = stack()
    frame = Ether(arp_request(PA0))
    assert s.receive(0, tagged(Ether(dst=frame.dst, src=frame.src) / frame[ARP], 30), 0.0) == []
    assert s.receive(0, bytes(Ether(dst=frame.dst, src=frame.src) / frame[ARP]), 0.0) == []
    assert s.counters["rx_dropped_vlan"] == 2


def test_someone_else_claiming_our_pa_is_counted() -> None:
    s = stack()
    assert s.receive(0, arp_request(PA0, sender=PA0, mac=PEER_MAC), 0.0) == []
    assert s.counters["arp_address_conflict"] == 1


def test_gratuitous_arp_announces_each_pa() -> None:
    ops = stack().announce()
    assert [op.uplink for op in ops if isinstance(op, UplinkSend)] == [0, 1]
    first = Ether(ops[0].frame)  # type: ignore[union-attr]
    assert first.dst == "ff:ff:ff:ff:ff:ff"
    assert first[Dot1Q].vlan == VLAN
    assert first[ARP].psrc == first[ARP].pdst == PA0


# ---------------------------------------------------------------- resolution


def test_first_packet_asks_arp_and_waits_then_all_go_in_order() -> None:
    s = stack()
    request = only_transmit(s.send_ip(0, outer_packet(), now=0.0))
    asked = Ether(request.frame)
    assert asked.dst == "ff:ff:ff:ff:ff:ff"
    assert asked[Dot1Q].vlan == VLAN
    assert (asked[ARP].op, asked[ARP].pdst, asked[ARP].psrc) == (1, PEER_PA, PA0)
    # A second packet while waiting: queued, no second request.
    second = outer_packet(dst=PEER_PA, src=PA0)[:-1] + b"y"
    assert s.send_ip(0, second, now=0.1) == []
    released = s.receive(0, arp_reply(PEER_PA, PEER_MAC), now=0.2)
    assert [type(op) for op in released] == [UplinkSend, UplinkSend]
    frames = [Ether(op.frame) for op in released if isinstance(op, UplinkSend)]
    assert [f.dst for f in frames] == [PEER_MAC, PEER_MAC]
    assert all(f.src == "02:00:00:00:0a:00" and f[Dot1Q].vlan == VLAN for f in frames)
    assert [bytes(f[Raw].load)[-1:] for f in frames] == [b"x", b"y"]
    # Resolved: the next packet goes straight out.
    direct = only_transmit(s.send_ip(0, outer_packet(), now=1.0))
    assert Ether(direct.frame)[IP].dst == PEER_PA


def test_off_subnet_pa_resolves_the_gateway() -> None:
    s = stack()
    asked = Ether(only_transmit(s.send_ip(0, outer_packet(dst=REMOTE_PA), now=0.0)).frame)
    assert asked[ARP].pdst == GATEWAY
    sent = s.receive(0, arp_reply(GATEWAY, ROUTER_MAC), now=0.1)
    frame = Ether(only_transmit(sent).frame)
    assert frame.dst == ROUTER_MAC
    assert frame[IP].dst == REMOTE_PA


def test_off_subnet_without_gateway_is_dropped() -> None:
    s = stack(gateway=None)
    assert s.send_ip(0, outer_packet(dst=REMOTE_PA), now=0.0) == []
    assert s.counters["tx_no_route"] == 1


def test_unanswered_requests_are_retried_then_the_queue_is_dropped() -> None:
    s = stack()
    s.send_ip(0, outer_packet(), now=0.0)
    s.send_ip(0, outer_packet(), now=0.0)
    assert s.tick(now=0.5) == []
    assert Ether(only_transmit(s.tick(now=1.0)).frame)[ARP].pdst == PEER_PA
    assert Ether(only_transmit(s.tick(now=2.0)).frame)[ARP].pdst == PEER_PA
    assert s.tick(now=3.0) == []
    assert s.counters["tx_dropped_unresolved"] == 2
    assert s.counters["arp_requests_sent"] == 3
    # A late answer releases nothing; a new packet asks again from scratch.
    assert s.receive(0, arp_reply(PEER_PA, PEER_MAC), now=3.5) == []
    assert s.counters["arp_not_for_us"] == 0


def test_queue_is_bounded_and_drops_the_oldest() -> None:
    s = stack()
    for k in range(6):
        s.send_ip(0, outer_packet()[:-1] + bytes([k]), now=0.0)
    released = s.receive(0, arp_reply(PEER_PA, PEER_MAC), now=0.1)
    assert [op.frame[-1] for op in released if isinstance(op, UplinkSend)] == [2, 3, 4, 5]


def test_answers_expire_and_are_asked_again() -> None:
    s = stack()
    s.send_ip(0, outer_packet(), now=0.0)
    s.receive(0, arp_reply(PEER_PA, PEER_MAC), now=0.0)
    assert s.neighbours(0, now=299.0) == {
        ipaddress.IPv4Address(PEER_PA).packed: bytes.fromhex("020000000b00")
    }
    assert Ether(only_transmit(s.send_ip(0, outer_packet(), now=299.0)).frame).dst == PEER_MAC
    again = Ether(only_transmit(s.send_ip(0, outer_packet(), now=301.0)).frame)
    assert again[ARP].op == 1


def test_a_request_from_a_peer_teaches_us_its_mac() -> None:
    s = stack()
    s.receive(0, arp_request(PA0), now=0.0)
    frame = Ether(only_transmit(s.send_ip(0, outer_packet(), now=0.1)).frame)
    assert frame.dst == PEER_MAC


def test_send_frame_fills_macs_and_tag() -> None:
    s = stack()
    s.receive(1, arp_request(PA1), now=0.0)
    blank = bytes(
        Ether(dst="00:00:00:00:00:00", src="00:00:00:00:00:00") / IP(outer_packet(src=PA1))
    )
    frame = Ether(only_transmit(s.send_frame(1, blank, now=0.0)).frame)
    assert (frame.dst, frame.src, frame[Dot1Q].vlan) == (PEER_MAC, "02:00:00:00:0a:01", VLAN)
    assert frame[IP].src == PA1
    with pytest.raises(VSwitchError, match="not an Ethernet/IPv4 frame"):
        s.send_frame(0, b"\x00" * 20, now=0.0)
    with pytest.raises(VSwitchError, match="not an IPv4 packet"):
        s.send_ip(0, b"\x45" * 19, now=0.0)


def test_flows_spread_over_uplinks_by_hash() -> None:
    s = stack()
    assert {s.select_uplink(h) for h in range(16)} == {0, 1}
    assert s.select_uplink(7) == s.select_uplink(7)
    assert s.source_address(s.select_uplink(1)) == ipaddress.IPv4Address(PA1).packed


# ---------------------------------------------------------------- receiving IP


def test_vxlan_to_a_local_pa_is_handed_up() -> None:
    s = stack()
    [op] = s.receive(0, vxlan_frame(), now=0.0)
    assert isinstance(op, TunnelFrame)
    assert op.encapsulation == "vxlan"
    assert op.source_port == 50000
    assert op.outer_source == ipaddress.IPv4Address(REMOTE_PA).packed
    assert op.outer_destination == ipaddress.IPv4Address(PA0).packed
    assert op.payload == bytes.fromhex("0800000000138900") + b"inner-frame"
    # The other uplink's PA is local too.
    [op] = s.receive(1, vxlan_frame(dst=PA1, mac=MAC1), now=0.0)
    assert isinstance(op, TunnelFrame)
    assert op.uplink == 1


def test_nvgre_to_a_local_pa_is_handed_up() -> None:
    s = stack()
    gre = bytes.fromhex("2000655800138901") + b"inner"
    frame = tagged(
        Ether(dst="02:00:00:00:0a:00", src=ROUTER_MAC)
        / IP(src=REMOTE_PA, dst=PA0, proto=47)
        / Raw(gre)
    )
    [op] = s.receive(0, frame, now=0.0)
    assert isinstance(op, TunnelFrame)
    assert (op.encapsulation, op.payload, op.source_port) == ("nvgre", gre, 0)


@pytest.mark.parametrize(
    ("frame", "counter"),
    [
        (vxlan_frame(dport=53), "rx_dropped_udp_port"),
        (vxlan_frame(dst="192.168.2.99"), "rx_dropped_not_our_pa"),
        (vxlan_frame(mac=MAC1), "rx_dropped_not_our_mac"),
        (
            tagged(
                Ether(dst="02:00:00:00:0a:00", src=ROUTER_MAC)
                / IP(src=REMOTE_PA, dst=PA0, proto=6)
                / Raw(b"t" * 20)
            ),
            "rx_dropped_protocol",
        ),
        (
            tagged(
                Ether(dst="02:00:00:00:0a:00", src=ROUTER_MAC)
                / IP(src=REMOTE_PA, dst=PA0, flags="MF")
                / UDP(dport=4789)
            ),
            "rx_dropped_fragment",
        ),
        (
            tagged(Ether(dst="02:00:00:00:0a:00", src=ROUTER_MAC, type=0x86DD) / Raw(b"v6" * 20)),
            "rx_dropped_ethertype",
        ),
        (
            bytes(
                Ether(dst="02:00:00:00:0a:00", src=ROUTER_MAC)
                / Dot1Q(vlan=VLAN, type=0x0800)
                / Raw(b"\x45\x00")
            ),
            "rx_dropped_malformed",
        ),
        (b"\x00" * 10, "rx_dropped_malformed"),
    ],
)
def test_everything_else_is_dropped_and_counted(frame: bytes, counter: str) -> None:
    s = stack()
    assert s.receive(0, frame, now=0.0) == []
    assert s.counters[counter] == 1


def test_ping_to_a_pa_is_answered() -> None:
    s = stack()
    request = tagged(
        Ether(dst="02:00:00:00:0a:00", src=ROUTER_MAC)
        / IP(src=REMOTE_PA, dst=PA0)
        / ICMP(type=8, id=7, seq=3)
        / Raw(b"ping-data")
    )
    reply = Ether(only_transmit(s.receive(0, request, now=0.0)).frame)
    assert reply.dst == ROUTER_MAC
    assert reply[Dot1Q].vlan == VLAN
    assert (reply[IP].src, reply[IP].dst) == (PA0, REMOTE_PA)
    assert (reply[ICMP].type, reply[ICMP].id, reply[ICMP].seq) == (0, 7, 3)
    assert bytes(reply[Raw].load) == b"ping-data"
    # Checksums as an independent encoder computes them.
    rebuilt = Ether(bytes(reply))
    del rebuilt[IP].chksum, rebuilt[ICMP].chksum
    rebuilt = Ether(bytes(rebuilt))
    assert rebuilt[IP].chksum == reply[IP].chksum
    assert rebuilt[ICMP].chksum == reply[ICMP].chksum


# ---------------------------------------------------------------- configuration


def test_bad_configuration_is_rejected() -> None:
    with pytest.raises(VSwitchError, match=r"default_gateway 10\.0\.0\.1 is outside"):
        UplinkConfig(
            "up0", MAC0, ipaddress.IPv4Interface(f"{PA0}/24"), 0, ipaddress.IPv4Address("10.0.0.1")
        )
    with pytest.raises(VSwitchError, match="vlan 4095"):
        UplinkConfig("up0", MAC0, ipaddress.IPv4Interface(f"{PA0}/24"), 4095)
    with pytest.raises(VSwitchError, match="not unicast"):
        UplinkConfig("up0", b"\x01" * 6, ipaddress.IPv4Interface(f"{PA0}/24"))
    config = UplinkConfig("up0", MAC0, ipaddress.IPv4Interface(f"{PA0}/24"))
    with pytest.raises(VSwitchError, match="same provider address"):
        ProviderStack([config, config])
    with pytest.raises(VSwitchError, match="at least one uplink"):
        ProviderStack([])


# ---------------------------------------------------------------- robustness


@given(body=st.binary(max_size=120), tag=st.booleans(), ethertype=st.sampled_from([0x0800, 0x0806]))
def test_any_received_bytes_are_handled_without_raising(
    body: bytes, tag: bool, ethertype: int
) -> None:
    s = stack(vlan=VLAN if tag else 0)
    header = MAC0 + bytes.fromhex("020000000b00")
    if tag:
        header += bytes.fromhex("8100") + VLAN.to_bytes(2)
    frame = header + ethertype.to_bytes(2) + body
    for candidate in (frame, frame[: len(frame) // 2], body):
        ops = s.receive(0, candidate, now=0.0)
        assert all(isinstance(op, UplinkSend | TunnelFrame) for op in ops)


def test_resolve_asks_once_and_learns_the_answer() -> None:
    s = stack(vlan=0)
    hop = ipaddress.IPv4Address(PEER_PA).packed
    ops = s.resolve(0, hop, 0.0)
    assert len(ops) == 1
    assert isinstance(ops[0], UplinkSend)
    request = Ether(ops[0].frame)
    assert request[ARP].op == 1
    assert request[ARP].pdst == PEER_PA
    assert request[ARP].psrc == PA0
    assert s.resolve(0, hop, 0.1) == []  # already asking
    reply = Ether(dst=MAC0, src=PEER_MAC) / ARP(
        op=2, hwsrc=PEER_MAC, psrc=PEER_PA, hwdst=MAC0, pdst=PA0
    )
    assert s.receive(0, bytes(reply), 0.2) == []  # nothing was waiting for it
    assert s.neighbours(0, 0.3) == {hop: bytes.fromhex(PEER_MAC.replace(":", ""))}
