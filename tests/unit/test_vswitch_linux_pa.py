"""The PA side of the Linux driver without sockets: what reaches the switch, what goes
out of which uplink, which next hops are reported.

``Wire`` stands in for an uplink's packet ring (its MAC, its fd, the frames queued on
it); frames are built and decoded with scapy, never sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, GRE, Dot1Q, Ether
from scapy.layers.vxlan import VXLAN

from openhnv.vfp.emits import Transmit
from openhnv.vswitch.driver import PaConfig
from openhnv.vswitch.linux_pa import PaSide, tunnel_pattern
from openhnv.vswitch.ring import PacketRing
from openhnv.vswitch.team import Placement

MAC0, MAC1 = "02:00:00:00:0a:00", "02:00:00:00:0a:01"
PEER_MAC, ROUTER_MAC = "02:00:00:00:0b:00", "02:00:00:00:00:01"
PA0, PA1, PEER_PA, REMOTE_PA = "192.168.2.20", "192.168.3.20", "192.168.2.30", "10.9.9.9"


class Wire:
    """An uplink ring's stand-in: fd, MAC and what was queued on it."""

    def __init__(self, fd: int, mac: str) -> None:
        self.fd = fd
        self.mac = bytes.fromhex(mac.replace(":", ""))
        self.queued: list[bytes] = []

    def fileno(self) -> int:
        return self.fd

    def queue(self, frame: bytes) -> bool:
        self.queued.append(frame)
        return True

    def queue_many(self, frames: list[bytes]) -> None:
        self.queued += frames


class Sink:
    def __init__(self) -> None:
        self.uplink: list[bytes] = []
        self.neighbors: list[tuple[str, str | None]] = []
        self.placement: dict[str, Placement] = {}
        self.carrier: dict[str, bool] = {}

    def from_port(self, port: str, frames: list[bytes]) -> float:
        raise AssertionError("the PA side never sees port frames")

    def from_uplink(self, frames: list[bytes]) -> None:
        self.uplink += frames

    def round_done(self) -> None: ...
    def port_added(self, port: str, mac: str) -> None: ...
    def port_removed(self, port: str) -> None: ...

    def pa_neighbor(self, address: str, mac: str | None) -> None:
        self.neighbors.append((address, mac))

    def team_changed(self, placement: Mapping[str, Placement], carrier: Mapping[str, bool]) -> None:
        self.placement, self.carrier = dict(placement), dict(carrier)


def side(vlan: int | None = None) -> tuple[PaSide, Sink, Wire, Wire]:
    up0, up1 = Wire(10, MAC0), Wire(11, MAC1)
    pa_side = PaSide(Counter(), set())
    sink = Sink()
    pa_side.sink = sink
    pas = [
        PaConfig(PA0, 24, vlan, "192.168.2.1", "up0"),
        PaConfig(PA1, 24, None, "192.168.3.1", "up1"),
    ]
    pa_side.configure(pas, cast(dict[str, PacketRing], {"up0": up0, "up1": up1}))
    return pa_side, sink, up0, up1


def ring(wire: Wire) -> PacketRing:
    return cast(PacketRing, wire)


def vxlan(dst_pa: str = PA0, mac: str = MAC0, vlan: int | None = None, **ip: Any) -> bytes:
    inner = Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02") / IP() / UDP()
    outer = Ether(src=PEER_MAC, dst=mac)
    if vlan is not None:
        outer = outer / Dot1Q(vlan=vlan)
    packet = outer / IP(src=PEER_PA, dst=dst_pa, **ip) / UDP(sport=50000, dport=4789)
    return bytes(packet / VXLAN(vni=5001) / inner)


def test_configuring_announces_every_pa_and_asks_for_the_gateways() -> None:
    _, _, up0, up1 = side()
    for wire, pa, gateway in ((up0, PA0, "192.168.2.1"), (up1, PA1, "192.168.3.1")):
        arps = [Ether(f)[ARP] for f in wire.queued]
        assert [(a.psrc, a.pdst) for a in arps] == [(pa, pa), (pa, gateway)]


def test_tunnel_frames_to_a_local_pa_reach_the_switch_and_the_rest_do_not() -> None:
    pa_side, sink, up0, _ = side()
    good = vxlan()
    nvgre = bytes(
        Ether(src=PEER_MAC, dst=MAC0) / IP(src=PEER_PA, dst=PA0)
        / GRE(key_present=1, key=5001 << 8, proto=0x6558) / Ether() / IP()
    )  # fmt: skip
    junk = [
        vxlan(dst_pa=PEER_PA),  # not our PA
        vxlan(mac=PEER_MAC),  # not our MAC
        vxlan(flags="MF"),  # a fragment
        vxlan(options=b"\x01\x01\x01\x01"),  # IP options
        vxlan(vlan=7),  # a VLAN this uplink does not carry
        good[:30],  # truncated
    ]
    pa_side.receive(ring(up0), [good, nvgre, *junk])
    assert sink.uplink == [good, nvgre]
    assert pa_side.counters["rx_dropped_vlan"] == 1
    assert pa_side.stack_counters["rx_dropped_not_our_pa"] == 1
    assert pa_side.counters["rx_uplink_frames"] == 8


def test_the_vlan_tag_of_the_pa_subnet_is_taken_off() -> None:
    pa_side, sink, up0, _ = side(vlan=20)
    pa_side.receive(ring(up0), [vxlan(vlan=20), vxlan()])  # untagged: wrong subnet
    assert sink.uplink == [vxlan()]
    assert pa_side.counters["rx_dropped_vlan"] == 1


def test_arp_and_echo_for_a_pa_are_answered_on_its_uplink() -> None:
    pa_side, _, up0, _ = side(vlan=20)
    up0.queued.clear()
    request = (
        Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff")
        / Dot1Q(vlan=20)
        / ARP(op=1, hwsrc=PEER_MAC, psrc=PEER_PA, pdst=PA0)
    )
    echo = Ether(src=PEER_MAC, dst=MAC0) / Dot1Q(vlan=20) / IP(src=PEER_PA, dst=PA0) / ICMP()
    pa_side.receive(ring(up0), [bytes(request), bytes(echo)])
    reply, pong = (Ether(f) for f in up0.queued)
    assert reply[Dot1Q].vlan == 20
    assert reply[ARP].op == 2
    assert reply[ARP].psrc == PA0
    assert pong[Dot1Q].vlan == 20
    assert pong[ICMP].type == 0
    assert pong[IP].dst == PEER_PA


def test_outer_frames_leave_by_the_uplink_of_their_source_pa() -> None:
    pa_side, _, up0, up1 = side()
    up0.queued.clear()
    up1.queued.clear()
    pa_side.transmit(
        [Transmit(b"a", PA0, REMOTE_PA), Transmit(b"b", PA1, REMOTE_PA),
         Transmit(b"c", PA0, REMOTE_PA), Transmit(b"d", "192.0.2.1", REMOTE_PA)]
    )  # fmt: skip
    assert (up0.queued, up1.queued) == ([b"a", b"c"], [b"b"])
    assert pa_side.counters["tx_dropped_no_uplink"] == 1
    assert pa_side.dirty == {ring(up0), ring(up1)}


def test_watched_on_link_pas_and_gateways_are_reported_when_they_answer() -> None:
    pa_side, sink, up0, _ = side()
    up0.queued.clear()
    pa_side.watch([PEER_PA, REMOTE_PA])  # REMOTE_PA is off-link: the gateway serves it
    asked = [Ether(f)[ARP].pdst for f in up0.queued]
    assert asked == [PEER_PA]
    for ip, mac in ((PEER_PA, PEER_MAC), ("192.168.2.1", ROUTER_MAC)):
        answer = Ether(src=mac, dst=MAC0) / ARP(op=2, hwsrc=mac, psrc=ip, hwdst=MAC0, pdst=PA0)
        pa_side.receive(ring(up0), [bytes(answer)])
    assert sink.neighbors == [(PEER_PA, PEER_MAC), ("192.168.2.1", ROUTER_MAC)]
    pa_side.tick(1e9)  # long after: the answers expired
    assert set(sink.neighbors[2:]) == {(PEER_PA, None), ("192.168.2.1", None)}


def reference(frame: bytes, mac: bytes, pas: dict[int, bytes]) -> bool:
    """The tunnel-frame test written out plainly, to check ``tunnel_pattern`` against."""
    vlan = 0
    if frame[12:14] == b"\x81\x00":
        if len(frame) < 16:
            return False
        vlan = int.from_bytes(frame[14:16]) & 0x0FFF
        frame = frame[:12] + frame[16:]
    if vlan not in pas or len(frame) < 34 or frame[:6] != mac:
        return False
    if frame[12:15] != b"\x08\x00\x45" or frame[20] & 0x3F or frame[21]:
        return False
    if frame[30:34] != pas[vlan]:
        return False
    return frame[23] == 47 or (frame[23] == 17 and frame[36:38] == b"\x12\xb5")


@settings(max_examples=400)
@given(
    vlan=st.sampled_from([None, 20, 300]),
    edits=st.lists(st.tuples(st.integers(0, 60), st.integers(0, 255)), max_size=3),
    cut=st.integers(0, 120),
    gre=st.booleans(),
)
def test_the_tunnel_pattern_agrees_with_the_plain_checks(
    vlan: int | None, edits: list[tuple[int, int]], cut: int, gre: bool
) -> None:
    mac = bytes.fromhex(MAC0.replace(":", ""))
    pas = {0: bytes([192, 168, 2, 20]), 300: bytes([192, 168, 9, 20])}
    dst = "192.168.9.20" if vlan == 300 else PA0
    if gre:
        outer = Ether(src=PEER_MAC, dst=MAC0)
        if vlan is not None:
            outer = outer / Dot1Q(vlan=vlan)
        tunnel = IP(src=PEER_PA, dst=dst) / GRE(key_present=1, key=5001 << 8, proto=0x6558)
        frame = bytearray(bytes(outer / tunnel / Ether() / IP()))
    else:
        frame = bytearray(vxlan(dst_pa=dst, vlan=vlan))
    assert reference(bytes(frame), mac, pas) == (vlan != 20)  # unedited: ours unless VLAN 20
    for offset, value in edits:
        if offset < len(frame):
            frame[offset] = value
    data = bytes(frame[: len(frame) - cut // 3])
    assert bool(tunnel_pattern(mac, pas).match(data)) == reference(data, mac, pas)


# -- team failover ------------------------------------------------------------------------

TEAM_PA = "192.168.2.21"  # up1's PA in the team's one subnet


def team_side() -> tuple[PaSide, Sink, Wire, Wire]:
    """Two members of one team on one PA subnet: PA0 on up0, TEAM_PA on up1."""
    up0, up1 = Wire(10, MAC0), Wire(11, MAC1)
    pa_side = PaSide(Counter(), set())
    sink = Sink()
    pa_side.sink = sink
    pas = [
        PaConfig(PA0, 24, None, "192.168.2.1", "up0"),
        PaConfig(TEAM_PA, 24, None, "192.168.2.1", "up1"),
    ]
    pa_side.configure(pas, cast(dict[str, PacketRing], {"up0": up0, "up1": up1}))
    up0.queued.clear()
    up1.queued.clear()
    return pa_side, sink, up0, up1


def test_a_member_without_carrier_hands_its_pa_to_the_survivor() -> None:
    pa_side, sink, up0, up1 = team_side()
    pa_side.set_carrier("up0", False)
    assert sink.placement[PA0] == Placement(PA0, "up0", "up1")
    assert sink.carrier == {"up0": False}
    (garp,) = (Ether(f) for f in up1.queued)  # the fabric learns where MAC0 is now
    assert (garp.src, garp[ARP].psrc, garp[ARP].pdst, garp[ARP].hwsrc) == (MAC0, PA0, PA0, MAC0)
    assert up0.queued == []
    up1.queued.clear()
    pa_side.transmit([Transmit(b"a", PA0, REMOTE_PA), Transmit(b"b", TEAM_PA, REMOTE_PA)])
    assert (up0.queued, up1.queued) == ([], [b"a", b"b"])


def test_the_survivor_receives_and_answers_for_the_moved_pa() -> None:
    pa_side, sink, _, up1 = team_side()
    pa_side.set_carrier("up0", False)
    up1.queued.clear()
    pa_side.receive(ring(up1), [vxlan(PA0, MAC0), vxlan(TEAM_PA, MAC1), vxlan(PA0, MAC1)])
    assert sink.uplink == [vxlan(PA0, MAC0), vxlan(TEAM_PA, MAC1)]  # each PA by its own MAC
    for target, mac in ((PA0, MAC0), (TEAM_PA, MAC1)):
        request = Ether(src=PEER_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
            op=1, hwsrc=PEER_MAC, psrc=PEER_PA, pdst=target
        )
        pa_side.receive(ring(up1), [bytes(request)])
        reply = Ether(up1.queued.pop())
        assert (reply.src, reply[ARP].op, reply[ARP].psrc, reply[ARP].hwsrc) == (
            mac, 2, target, mac,
        )  # fmt: skip


def test_the_pa_goes_home_when_its_member_has_carrier_again() -> None:
    pa_side, sink, up0, up1 = team_side()
    pa_side.set_carrier("up0", False)
    pa_side.set_carrier("up0", True)
    assert not sink.placement[PA0].moved
    (garp,) = (Ether(f) for f in up0.queued)
    assert garp[ARP].psrc == PA0
    up0.queued.clear()
    up1.queued.clear()
    pa_side.transmit([Transmit(b"a", PA0, REMOTE_PA)])
    assert (up0.queued, up1.queued) == ([b"a"], [])
    assert pa_side.counters["pa_moves"] == 2


def test_with_every_member_down_the_pas_stay_home() -> None:
    pa_side, sink, _up0, _up1 = team_side()
    pa_side.set_carrier("up0", False)
    pa_side.set_carrier("up1", False)
    assert {a: p.member for a, p in sink.placement.items()} == {PA0: "up0", TEAM_PA: "up1"}
    pa_side.set_carrier("up0", True)  # up0 is back: it takes its own PA and up1's
    assert {a: p.member for a, p in sink.placement.items()} == {PA0: "up0", TEAM_PA: "up0"}
