"""The PA side of the Linux driver: PAs on uplink rings, classification, next hops.

``PaSide`` holds the ``ProviderStack`` built from the host's ``PaConfig``s and the
uplink ring of each PA. ``receive`` classifies a batch read from an uplink with one
regular expression per frame (``tunnel_pattern``): to our MAC, the PA's VLAN, IPv4
without options, VXLAN (UDP 4789) or GRE, not a fragment, to the PA ->
``sink.from_uplink`` with the 802.1Q tag popped; anything else (ARP, ICMP echo to a
PA, junk) goes to the stack, which answers and counts.
Frames tagged with an access port's VLAN (``access_vlans``, no PA's VLAN) go to
``sink.from_uplink`` as they are. ``transmit`` queues the engine's outer frames (and an
access port's tagged frames) on the ring of their source PA. The
gateways and the watched on-link PAs are resolved with ARP, refreshed every
``REFRESH_SECONDS`` and reported with ``sink.pa_neighbor`` when they resolve, change or
are lost. Everything runs on the driver's loop thread; rings written are added to
``dirty`` and flushed by the loop.

Team failover (``vswitch.team``): ``set_carrier`` takes a member's carrier as netlink
reports it; when the placement changes, a moved PA's frames leave by its new member
with the PA's own MAC, the member's ring accepts the PA's tunnel frames and answers ARP
for it, and a gratuitous ARP from there teaches the fabric where the PA's MAC is now
(again when it goes home). ``sink.team_changed`` then tells the switch.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from openhnv.packet.addresses import MAC_LEN, mac_to_str
from openhnv.packet.ethernet import (
    ETHERTYPE_ARP_BYTES,
    ETHERTYPE_AT,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_ID_MAX,
    VLAN_TAG_LEN,
    VLAN_TCI_AT,
)
from openhnv.packet.ipv4 import (
    IPV4_DST_AT,
    IPV4_FLAGS_AT,
    IPV4_FRAGMENT_BITS,
    IPV4_NO_OPTIONS,
    IPV4_PROTOCOL_AT,
    PROTO_GRE,
    PROTO_UDP,
)
from openhnv.packet.udp import UDP_DST_PORT_AT
from openhnv.packet.vxlan import VXLAN_PORT
from openhnv.vfp.emits import Transmit
from openhnv.vswitch.driver import FrameSink, PaConfig
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.ring import PacketRing
from openhnv.vswitch.team import Placement, moves, place
from openhnv.vswitch.uplink import ProviderStack, TunnelFrame, UplinkConfig, UplinkSend

REFRESH_SECONDS = 60.0
_TAG_END = VLAN_TCI_AT + VLAN_TAG_LEN - len(ETHERTYPE_VLAN_BYTES)  # 16
_TCI_HIGH_VID = VLAN_ID_MAX >> 8  # the VLAN ID's bits in the first byte of the TCI
_PCP_DEI = 16  # the values of PCP and DEI, the high nibble of the first TCI byte
_FRAGMENT_HIGH = IPV4_FRAGMENT_BITS >> 8  # MF and the high offset bits, in the flags byte
_VLAN_HI = ETHERTYPE_VLAN_BYTES[0]
_SHORT_SKIP = 3  # skip one or two bytes with dots: the regex engine matches them faster
_ARP_TARGET_IP = slice(24, 28)  # in the ARP message (RFC 826): after op, sender, target MAC

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _UplinkIf:
    """One uplink interface and the PAs (stack indices) it carries now, by VLAN (0 =
    none): its own, and those moved to it from a member without carrier."""

    ring: PacketRing
    by_vlan: dict[int, list[int]]
    macs: dict[int, bytes]  # stack index -> the PA's MAC
    addresses: dict[int, bytes]  # stack index -> the PA
    pattern: re.Pattern[bytes] | None = None

    def index_of(self, vlan: int, frame: bytes, l3: int) -> int | None:
        """The PA (stack index) a non-tunnel frame on ``vlan`` is for: the only one, or
        the one with the frame's destination MAC, or the target of an ARP message."""
        found = self.by_vlan.get(vlan)
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        for index in found:
            if frame.startswith(self.macs[index]):
                return index
        target = frame[l3 + _ARP_TARGET_IP.start : l3 + _ARP_TARGET_IP.stop]
        for index in found:
            if self.addresses[index] == target:
                return index
        return found[0]


def tunnel_pattern(mac: bytes, pas: Mapping[int, bytes]) -> re.Pattern[bytes]:
    """A regular expression that matches exactly the frames to hand to the switch:

    to ``mac``, tagged with the VLAN of a PA (for VLAN 0: untagged or priority-tagged with
    VID 0), IPv4 without options, not a fragment (flags byte has neither MF nor offset
    bits, offset low byte 0), and UDP to port 4789 or GRE, to that PA. One ``match`` per
    frame costs a third of the same checks written out in Python.
    """
    return team_pattern({mac: pas})


def team_pattern(by_mac: Mapping[bytes, Mapping[int, bytes]]) -> re.Pattern[bytes]:
    """``tunnel_pattern`` for a ring that carries the PAs of several MACs (its own and
    those moved to it): MAC -> (VLAN -> PA)."""
    return re.compile(
        b"|".join(re.escape(mac) + _skip(MAC_LEN) + _to_pas(pas) for mac, pas in by_mac.items()),
        re.DOTALL,
    )


def _to_pas(pas: Mapping[int, bytes]) -> bytes:
    """The part of ``tunnel_pattern`` after the MACs."""
    ipv4 = re.escape(ETHERTYPE_IPV4_BYTES + bytes((IPV4_NO_OPTIONS,)))
    not_fragment = _one_of(b for b in range(256) if not b & _FRAGMENT_HIGH) + b"\x00"
    to_flags = _skip(IPV4_FLAGS_AT - 1)  # TOS, total length, identification
    to_dst = _skip(IPV4_DST_AT - IPV4_PROTOCOL_AT - 1)  # checksum, source PA
    udp = re.escape(bytes((PROTO_UDP,)))
    gre = re.escape(bytes((PROTO_GRE,)))
    vxlan = _skip(UDP_DST_PORT_AT) + re.escape(VXLAN_PORT.to_bytes(2, "big"))
    alternatives = []
    for vlan, pa in sorted(pas.items()):
        high = _one_of(pcp_dei << 4 | vlan >> 8 for pcp_dei in range(_PCP_DEI))
        tag = re.escape(ETHERTYPE_VLAN_BYTES) + high + re.escape(bytes([vlan & 0xFF]))
        if not vlan:  # untagged, or priority-tagged (VID 0: the untagged VLAN, 802.1Q)
            tag = b"(?:" + tag + b")?"
        to_pa = re.escape(pa)
        alternatives.append(
            tag + ipv4 + to_flags + not_fragment + _skip(1)  # the TTL
            + b"(?:" + udp + to_dst + to_pa + vxlan + b"|" + gre + to_dst + to_pa + b")"
        )  # fmt: skip
    return b"(?:" + b"|".join(alternatives) + b")"


def _skip(n: int) -> bytes:
    """Any ``n`` bytes."""
    return b"." * n if n < _SHORT_SKIP else b".{%d}" % n


def _one_of(values: Iterable[int]) -> bytes:
    """One byte among ``values``."""
    return b"[" + b"".join(re.escape(bytes((v,))) for v in values) + b"]"


class PaSide:
    """The PAs of one host on its uplink rings (see the module docstring)."""

    def __init__(self, counters: Counter[str], dirty: set[PacketRing]) -> None:
        self.counters = counters
        self.dirty = dirty
        self.sink: FrameSink | None = None
        self._uplinks: dict[int, _UplinkIf] = {}  # by ring fd
        self._stack: ProviderStack | None = None
        self._pa_rings: dict[str, PacketRing] = {}  # source PA -> ring
        self._stack_rings: list[PacketRing] = []  # stack index -> ring
        self._pas: list[PaConfig] = []
        self._watched: list[str] = []
        self._wanted: set[tuple[int, bytes]] = set()  # (stack index, next hop)
        self._reported: dict[str, str] = {}
        self._next_refresh = 0.0
        self.access_vlans: frozenset[int] = frozenset()  # of the access ports, as tagged
        self._rings: Mapping[str, PacketRing] = {}  # every uplink by name
        self._macs: list[bytes] = []  # stack index -> the PA's MAC (its home member's)
        self.carrier: dict[str, bool] = {}  # member -> has carrier (as netlink said)
        self.placement: dict[str, Placement] = {}  # PA -> where it lives

    @property
    def stack_counters(self) -> dict[str, int]:
        stack = self._stack
        return {} if stack is None else dict(stack.counters)

    def transmit(self, frames: Sequence[Transmit], priority: int = 0) -> None:
        """Queue the engine's outer frames on the uplink of their source PA; with a
        ``priority`` (a port's uplink class, vswitch.htb) they are sent at once with it,
        the frames queued before them first without."""
        rings = self._pa_rings
        if priority:
            self._transmit_classed(frames, priority)
            return
        if len(rings) == 1:  # one PA: every frame leaves by its uplink
            ((pa, ring),) = rings.items()
            outer = [t[0] for t in frames if t[1] == pa]
            ring.queue_many(outer)
            self.dirty.add(ring)
            if len(outer) != len(frames):
                self.counters["tx_dropped_no_uplink"] += len(frames) - len(outer)
            return
        by_ring: dict[PacketRing, list[bytes]] = {}
        for frame, source_pa, _destination in frames:
            ring_of_pa = rings.get(source_pa)
            if ring_of_pa is None:
                self.counters["tx_dropped_no_uplink"] += 1
            else:
                by_ring.setdefault(ring_of_pa, []).append(frame)
        for ring_of_pa, outer in by_ring.items():
            ring_of_pa.queue_many(outer)
            self.dirty.add(ring_of_pa)

    def _transmit_classed(self, frames: Sequence[Transmit], priority: int) -> None:
        by_ring: dict[PacketRing, list[bytes]] = {}
        for frame, source_pa, _destination in frames:
            ring_of_pa = self._pa_rings.get(source_pa)
            if ring_of_pa is None:
                self.counters["tx_dropped_no_uplink"] += 1
            else:
                by_ring.setdefault(ring_of_pa, []).append(frame)
        for ring_of_pa, outer in by_ring.items():
            ring_of_pa.flush()  # the default class's frames are not to leave in this one
            ring_of_pa.queue_many(outer)
            ring_of_pa.flush(priority)
            self.dirty.add(ring_of_pa)  # what a full socket kept goes with the next flush

    def configure(self, pas: list[PaConfig], rings: Mapping[str, PacketRing]) -> None:
        """Rebuild the PA stack for ``pas``; announce them; resolve the gateways."""
        self._pas = pas
        self._rings = rings
        self._uplinks.clear()
        self._pa_rings.clear()
        self._stack_rings = []
        self._macs = []
        self._stack = None
        self._wanted = set()  # a new stack knows no next hop yet: ask for all of them again
        if pas:
            configs = []
            for pa in pas:
                ring = rings[pa.interface]
                configs.append(
                    UplinkConfig(
                        pa.interface,
                        ring.mac,
                        ipaddress.IPv4Interface(f"{pa.address}/{pa.prefix_length}"),
                        pa.vlan_id or 0,
                        None if pa.gateway is None else ipaddress.IPv4Address(pa.gateway),
                    )
                )
                self._macs.append(ring.mac)
                self._stack_rings.append(ring)
            try:
                self._stack = ProviderStack(configs)
            except VSwitchError as exc:
                log.error("linux driver: provider addresses refused: %s", exc)
                self.counters["pa_config_refused"] += 1
                return
            self.placement = {}
            self._place(announce=False)
            self.apply(self._stack.announce())
        else:
            self.placement = {}
            self._notify()
        self.watch(self._watched)

    def set_carrier(self, member: str, carrier: bool) -> None:
        """Member ``member`` has carrier or lost it (a netlink link event or dump)."""
        if self.carrier.get(member) == carrier:
            return
        self.carrier[member] = carrier
        self.counters["member_carrier_up" if carrier else "member_carrier_down"] += 1
        log.info("linux driver: team member %s %s carrier", member, "has" if carrier else "lost")
        if self._stack is not None:
            self._place(announce=True)
        else:
            self._notify()

    def _place(self, announce: bool) -> None:
        """Place the PAs on the members (``team.place``); route their frames and demux
        accordingly; a gratuitous ARP for each PA that moved (``announce``)."""
        stack = self._stack
        if stack is None:
            return
        homes = {pa.address: pa.interface for pa in self._pas}
        before = self.placement
        self.placement = place(homes, self.carrier, {a: p.member for a, p in before.items()},
                               self._rings)  # fmt: skip
        self._uplinks.clear()
        self._pa_rings.clear()
        for index, pa in enumerate(self._pas):
            ring = self._rings[self.placement[pa.address].member]
            self._stack_rings[index] = ring
            self._pa_rings[pa.address] = ring
            entry = self._uplinks.setdefault(ring.fileno(), _UplinkIf(ring, {}, {}, {}))
            entry.by_vlan.setdefault(pa.vlan_id or 0, []).append(index)
            entry.macs[index] = self._macs[index]
            entry.addresses[index] = ipaddress.IPv4Address(pa.address).packed
        for entry in self._uplinks.values():
            by_mac: dict[bytes, dict[int, bytes]] = {}
            for vlan, indices in entry.by_vlan.items():
                for index in indices:
                    by_mac.setdefault(entry.macs[index], {})[vlan] = entry.addresses[index]
            entry.pattern = team_pattern(by_mac)
        moved = moves(before, self.placement)
        if announce and moved:
            index_of = {pa.address: i for i, pa in enumerate(self._pas)}
            for address in moved:
                self.apply(stack.announce_one(index_of[address]))
            self.counters["pa_moves"] += len(moved)
            log.info("linux driver: provider addresses placed: %s",
                     {a: self.placement[a].member for a in moved})  # fmt: skip
        self._notify()

    def _notify(self) -> None:
        if self.sink is not None:
            self.sink.team_changed(dict(self.placement), dict(self.carrier))

    def watch(self, addresses: list[str]) -> None:
        """Resolve the gateways and the on-link PAs among ``addresses``."""
        self._watched = addresses
        wanted: set[tuple[int, bytes]] = set()
        for index, pa in enumerate(self._pas):
            if pa.gateway is not None:
                wanted.add((index, ipaddress.IPv4Address(pa.gateway).packed))
            for address in addresses:
                if address != pa.address and pa.on_link(address):
                    wanted.add((index, ipaddress.IPv4Address(address).packed))
        new = wanted - self._wanted
        self._wanted = wanted
        stack = self._stack
        if stack is None:
            return
        now = time.monotonic()
        for index, hop in sorted(new):
            self.apply(stack.resolve(index, hop, now))
        self.report(now)

    def receive(self, ring: PacketRing, frames: list[bytes]) -> None:
        """Frames read from uplink ``ring``: tunnel frames for a local PA to the sink
        (802.1Q tag popped), the rest to the PA stack."""
        entry = self._uplinks.get(ring.fileno())
        stack = self._stack
        if not frames or entry is None or stack is None:
            return
        self.counters["rx_uplink_frames"] += len(frames)
        if entry.pattern is None:
            return
        match = entry.pattern.match
        tunnel: list[bytes] = []
        other: list[bytes] = []
        tpid_at, tag_end, vlan_hi = ETHERTYPE_AT, _TAG_END, _VLAN_HI  # locals: the loop's
        for frame in frames:  # the hot path: one regular expression per frame
            if match(frame):  # IPv4 (0x08..) or a tag (0x81..) follows the MACs
                tunnel.append(
                    frame[:tpid_at] + frame[tag_end:] if frame[tpid_at] == vlan_hi else frame
                )
            else:
                other.append(frame)
        if tunnel and self.sink is not None:
            self.sink.from_uplink(tunnel)
        if other:
            self._receive_other(entry, stack, other)

    def _receive_other(self, entry: _UplinkIf, stack: ProviderStack, frames: list[bytes]) -> None:
        """Not a tunnel frame for us: the PA stack of the frame's VLAN answers or counts."""
        now = time.monotonic()
        bridged: list[bytes] = []
        for frame in frames:
            tagged = frame.startswith(ETHERTYPE_VLAN_BYTES, ETHERTYPE_AT) and len(frame) >= _TAG_END
            vid = (frame[VLAN_TCI_AT] & _TCI_HIGH_VID) << 8 | frame[VLAN_TCI_AT + 1]
            l3 = _TAG_END + len(ETHERTYPE_VLAN_BYTES) if tagged else ETHERTYPE_AT + 2
            index = entry.index_of(vid if tagged else 0, frame, l3)
            if index is None:
                if tagged and vid in self.access_vlans:
                    bridged.append(frame)  # an access port's VLAN: the switch decides
                else:
                    self.counters["rx_dropped_vlan"] += 1
                continue
            self.apply(stack.receive(index, frame, now))
            if frame.startswith(ETHERTYPE_ARP_BYTES, _TAG_END if tagged else ETHERTYPE_AT):
                self.report(now)
        if bridged and self.sink is not None:
            self.counters["rx_bridged"] += len(bridged)
            self.sink.from_uplink(bridged)

    def apply(self, operations: Sequence[UplinkSend | TunnelFrame]) -> None:
        for op in operations:
            if isinstance(op, UplinkSend):
                ring = self._stack_rings[op.uplink]
                ring.queue(op.frame)
                self.dirty.add(ring)
            else:  # a tunnel frame the fast check passed on (IP options ...): not ours
                self.counters["rx_dropped_tunnel_shape"] += 1

    def tick(self, now: float) -> None:
        stack = self._stack
        if stack is None:
            return
        self.apply(stack.tick(now))
        if now >= self._next_refresh:
            self._next_refresh = now + REFRESH_SECONDS
            for index, hop in sorted(self._wanted):
                self.apply(stack.resolve(index, hop, now))
        self.report(now)

    def report(self, now: float) -> None:
        """Tell the sink about wanted next hops that resolved, changed or were lost."""
        stack = self._stack
        sink = self.sink
        if stack is None or sink is None:
            return
        current: dict[str, str] = {}
        for index, hop in self._wanted:
            found = stack.neighbours(index, now).get(hop)
            if found is not None:
                current[str(ipaddress.IPv4Address(hop))] = mac_to_str(found)
        for address in [a for a in self._reported if a not in current]:
            del self._reported[address]
            sink.pa_neighbor(address, None)
        for address, mac in current.items():
            if self._reported.get(address) != mac:
                self._reported[address] = mac
                sink.pa_neighbor(address, mac)
