"""The PA side of a host: provider addresses on uplinks, owned by the switch.

A host's PAs are not given to the kernel. Per uplink (team member) the switch holds
one PA with its prefix, VLAN and default gateway, and this module does what the
host's IP stack would do for it:

- answers ARP for its PAs (tagged with the PA subnet's VLAN when there is one) and
  answers ICMP echo to a PA, so an operator can ping a PA;
- resolves next hops (the PA itself when on-link, else the gateway) with ARP, holding
  frames in a bounded queue until the answer comes (``ArpResolver``);
- pushes and pops the 802.1Q tag;
- classifies received frames addressed to a local PA: VXLAN (UDP 4789) and NVGRE
  (IP protocol 47) become ``TunnelFrame`` operations; everything else is dropped and
  counted by reason;
- picks the uplink of a flow by its hash.

``ProviderStack`` is the pure core: every method takes the clock ``now`` and returns
a list of operations (``UplinkSend`` or ``TunnelFrame``). ``UplinkDriver`` is the thin
socket edge that applies them. Frames are read and built with the ``openhnv.packet``
codecs; the receive path, which every tunnel frame crosses, reads the few fields it
needs at the offsets ``openhnv.packet`` exports.
"""

from __future__ import annotations

import ipaddress
import selectors
import struct
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from openhnv.packet.addresses import BROADCAST_MAC, MAC_LEN, ZERO_MAC, is_multicast_mac
from openhnv.packet.arp import ARP_REPLY, ARP_REQUEST, Arp
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_ARP,
    ETHERTYPE_ARP_BYTES,
    ETHERTYPE_AT,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_ID_MAX,
    VLAN_TAG_LEN,
    VLAN_TCI_AT,
    Ethernet,
)
from openhnv.packet.icmp import ICMP_ECHO_REQUEST, Icmp
from openhnv.packet.ipv4 import (
    IPV4,
    IPV4_DST_AT,
    IPV4_FLAG_DF,
    IPV4_FRAGMENT_BITS,
    IPV4_HEADER_LEN,
    IPV4_IHL_MASK,
    IPV4_IHL_UNIT,
    IPV4_VERSION,
    IPV4_VERSION_SHIFT,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_UDP,
    IPv4,
)
from openhnv.packet.udp import UDP, UDP_HEADER_LEN
from openhnv.packet.vxlan import VXLAN_PORT
from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.arp_resolver import ArpResolver, ArpTimers
from openhnv.vswitch.errors import VSwitchError

ENCAPSULATION_VXLAN = "vxlan"
ENCAPSULATION_NVGRE = "nvgre"
TICK_SECONDS = 0.25
_IPV4_DESTINATION = slice(IPV4_DST_AT, IPV4_HEADER_LEN)
_ipv4 = IPV4.struct.unpack_from  # the raw items of the fixed IPv4 header
_udp = UDP.struct.unpack_from
_VLAN_HI, _VLAN_LO = ETHERTYPE_VLAN_BYTES
_TCI_HIGH_VID = VLAN_ID_MAX >> 8  # the VLAN ID's bits in the first byte of the TCI
_BATCH = 64


@dataclass(frozen=True, slots=True)
class UplinkConfig:
    """One uplink: its interface, MAC, PA with prefix, VLAN (0 = untagged) and gateway."""

    interface: str
    mac: bytes
    provider_address: ipaddress.IPv4Interface
    vlan: int = 0
    default_gateway: ipaddress.IPv4Address | None = None

    def __post_init__(self) -> None:
        if len(self.mac) != MAC_LEN or is_multicast_mac(self.mac):
            raise VSwitchError(f"uplink {self.interface}: mac {self.mac.hex()} is not unicast")
        if not 0 <= self.vlan < VLAN_ID_MAX:
            raise VSwitchError(
                f"uplink {self.interface}: vlan {self.vlan} is not in 0..{VLAN_ID_MAX - 1}"
            )
        gateway = self.default_gateway
        if gateway is not None and gateway not in self.provider_address.network:
            raise VSwitchError(
                f"uplink {self.interface}: default_gateway {gateway} is outside"
                f" {self.provider_address.network}"
            )


class UplinkSend(NamedTuple):
    """Send ``frame`` on uplink ``uplink``.

    Operations are immutable named tuples rather than frozen dataclasses: one is made
    per packet, and a frozen dataclass costs about four times as much to create.
    """

    uplink: int
    frame: bytes


class TunnelFrame(NamedTuple):
    """An encapsulated packet for a local PA, handed to the switch (a named tuple: see
    ``UplinkSend``).

    ``payload`` starts at the VXLAN header (after UDP) or at the GRE header (NVGRE).
    """

    uplink: int
    encapsulation: str
    outer_source: bytes
    outer_destination: bytes
    source_port: int
    payload: bytes


Operation = UplinkSend | TunnelFrame


@dataclass(slots=True)
class _PaUplink:
    """One uplink of the stack: its PA as bytes and ints, its resolver, its header bytes."""

    config: UplinkConfig
    address: bytes
    network: int
    mask: int
    gateway: bytes | None
    resolver: ArpResolver
    # Everything of an outgoing IPv4 frame's header after the destination MAC.
    header_tail: bytes
    mac: bytes
    vlan: int


def _as_int(address: bytes) -> int:
    return int.from_bytes(address)


@dataclass(slots=True)
class ProviderStack:
    """The PAs of one host on its uplinks; pure logic, the clock is an argument."""

    configs: Sequence[UplinkConfig]
    timers: ArpTimers = field(default_factory=ArpTimers)
    counters: Counter[str] = field(default_factory=Counter)
    _uplinks: list[_PaUplink] = field(default_factory=list)
    _local: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        if not self.configs:
            raise VSwitchError("a host needs at least one uplink")
        for config in self.configs:
            pa = config.provider_address
            gateway = config.default_gateway
            self._uplinks.append(
                _PaUplink(
                    config=config,
                    address=pa.ip.packed,
                    network=int(pa.network.network_address),
                    mask=int(pa.network.netmask),
                    gateway=None if gateway is None else gateway.packed,
                    resolver=ArpResolver(self.timers),
                    header_tail=_ethernet(ZERO_MAC, config.mac, ETHERTYPE_IPV4, config.vlan)[
                        MAC_LEN:
                    ],
                    mac=config.mac,
                    vlan=config.vlan,
                )
            )
        addresses = [u.address for u in self._uplinks]
        if len(set(addresses)) != len(addresses):
            raise VSwitchError("two uplinks have the same provider address")
        self._local = frozenset(addresses)

    # ------------------------------------------------------------ queries

    @property
    def provider_addresses(self) -> tuple[bytes, ...]:
        return tuple(u.address for u in self._uplinks)

    def select_uplink(self, flow_hash: int) -> int:
        """The uplink of a flow: its hash modulo the number of uplinks."""
        return flow_hash % len(self._uplinks)

    def source_address(self, uplink: int) -> bytes:
        """The PA to use as the outer source of a packet sent on ``uplink``."""
        return self._uplinks[uplink].address

    def next_hop(self, uplink: int, destination: bytes) -> bytes | None:
        """The on-link address to ARP for: the destination itself or the gateway."""
        u = self._uplinks[uplink]
        if _as_int(destination) & u.mask == u.network:
            return destination
        return u.gateway

    def neighbours(self, uplink: int, now: float) -> dict[bytes, bytes]:
        return self._uplinks[uplink].resolver.entries(now)

    # ------------------------------------------------------------ sending

    def send_ip(self, uplink: int, packet: bytes, now: float) -> list[Operation]:
        """Send an outer IPv4 packet (already addressed) to its destination PA."""
        if len(packet) < IPV4_HEADER_LEN:
            raise VSwitchError(f"send_ip: {len(packet)} bytes is not an IPv4 packet")
        return self._resolve_and_send(uplink, packet[_IPV4_DESTINATION], packet, now)

    def send_frame(self, uplink: int, frame: bytes, now: float) -> list[Operation]:
        """Send an untagged Ethernet/IPv4 frame, filling its MACs (and the VLAN tag)."""
        if len(frame) < ETHERNET_HEADER_LEN + IPV4_HEADER_LEN:
            raise VSwitchError(f"send_frame: {len(frame)} bytes is not an Ethernet/IPv4 frame")
        at = ETHERNET_HEADER_LEN + IPV4_DST_AT
        destination = frame[at : at + IPV4_HEADER_LEN - IPV4_DST_AT]
        return self._resolve_and_send(uplink, destination, frame[ETHERNET_HEADER_LEN:], now)

    def _resolve_and_send(
        self, uplink: int, destination: bytes, packet: bytes, now: float
    ) -> list[Operation]:
        u = self._uplinks[uplink]
        hop = destination if int.from_bytes(destination) & u.mask == u.network else u.gateway
        if hop is None:
            self.counters["tx_no_route"] += 1
            return []
        mac = u.resolver.lookup(hop, now)
        if mac is not None:
            self.counters["tx_frames"] += 1
            return [UplinkSend(uplink, mac + u.header_tail + packet)]
        if u.resolver.enqueue(hop, ZERO_MAC + u.header_tail + packet, now):
            return [self._arp_request(uplink, hop)]
        return []

    def resolve(self, uplink: int, hop: bytes, now: float) -> list[Operation]:
        """Ask for the MAC of on-link ``hop`` (an ARP request) unless already asking; the
        answer is learned as for any frame waiting on it. Used to resolve next hops
        before traffic needs them and to refresh them before they expire."""
        resolver = self._uplinks[uplink].resolver
        if resolver.is_pending(hop):
            return []
        resolver.watch(hop, now)
        return [self._arp_request(uplink, hop)]

    def _arp_request(self, uplink: int, target: bytes) -> UplinkSend:
        u = self._uplinks[uplink]
        arp = Arp(ARP_REQUEST, u.config.mac, u.address, ZERO_MAC, target)
        header = _ethernet(BROADCAST_MAC, u.config.mac, ETHERTYPE_ARP, u.config.vlan)
        self.counters["arp_requests_sent"] += 1
        return UplinkSend(uplink, header + arp.pack())

    def announce(self) -> list[Operation]:
        """A gratuitous ARP per uplink, so switches and the router learn the PAs."""
        ops: list[Operation] = []
        for index in range(len(self._uplinks)):
            ops += self.announce_one(index)
        return ops

    def announce_one(self, uplink: int) -> list[Operation]:
        """A gratuitous ARP for the PA of ``uplink`` (it moved to another team member:
        the fabric's bridges learn where its MAC is now)."""
        u = self._uplinks[uplink]
        arp = Arp(ARP_REQUEST, u.config.mac, u.address, ZERO_MAC, u.address)
        header = _ethernet(BROADCAST_MAC, u.config.mac, ETHERTYPE_ARP, u.config.vlan)
        self.counters["gratuitous_arps_sent"] += 1
        return [UplinkSend(uplink, header + arp.pack())]

    def tick(self, now: float) -> list[Operation]:
        """Retry unanswered ARP requests and expire old answers."""
        ops: list[Operation] = []
        for index, u in enumerate(self._uplinks):
            before = u.resolver.counters.dropped_unresolved
            for hop in u.resolver.expire(now):
                ops.append(self._arp_request(index, hop))
            lost = u.resolver.counters.dropped_unresolved - before
            if lost:
                self.counters["tx_dropped_unresolved"] += lost
        return ops

    # ------------------------------------------------------------ receiving

    def receive(self, uplink: int, frame: bytes, now: float) -> list[Operation]:
        """Handle one frame received on ``uplink`` (the hot path: no copies but the payload)."""
        u = self._uplinks[uplink]
        size = len(frame)
        if size < ETHERNET_HEADER_LEN:
            self.counters["rx_dropped_malformed"] += 1
            return []
        if frame[ETHERTYPE_AT] == _VLAN_HI and frame[ETHERTYPE_AT + 1] == _VLAN_LO:
            if size < ETHERNET_HEADER_LEN + VLAN_TAG_LEN:
                self.counters["rx_dropped_malformed"] += 1
                return []
            vid = (frame[VLAN_TCI_AT] & _TCI_HIGH_VID) << 8 | frame[VLAN_TCI_AT + 1]
            l3 = ETHERNET_HEADER_LEN + VLAN_TAG_LEN
        else:
            vid = 0
            l3 = ETHERNET_HEADER_LEN
        if vid != u.vlan:
            self.counters["rx_dropped_vlan"] += 1
            return []
        destination_mac = frame[:MAC_LEN]
        if destination_mac != u.mac and destination_mac != BROADCAST_MAC:
            self.counters["rx_dropped_not_our_mac"] += 1
            return []
        ethertype = frame[l3 - ETHERNET_HEADER_LEN + ETHERTYPE_AT : l3]
        try:
            if ethertype == ETHERTYPE_IPV4_BYTES:
                return self._receive_ipv4(uplink, frame, l3)
            if ethertype == ETHERTYPE_ARP_BYTES:
                return self._receive_arp(uplink, frame, l3, now)
        except PacketError:
            self.counters["rx_dropped_malformed"] += 1
            return []
        self.counters["rx_dropped_ethertype"] += 1
        return []

    def _receive_ipv4(self, uplink: int, frame: bytes, l3: int) -> list[Operation]:
        try:  # the fixed header in one call of packet.ipv4's struct (bit fields unsplit)
            first, _, total, _, fragment, _, protocol, _, source, destination = _ipv4(frame, l3)
        except struct.error:
            raise PacketError("ipv4", l3, "shorter than its header") from None
        if first >> IPV4_VERSION_SHIFT != IPV4_VERSION:
            raise PacketError("ipv4", l3, f"version {first >> IPV4_VERSION_SHIFT} is not 4")
        header_length = (first & IPV4_IHL_MASK) * IPV4_IHL_UNIT
        end = l3 + total
        l4 = l3 + header_length
        if header_length < IPV4_HEADER_LEN or end < l4 or end > len(frame):
            raise PacketError("ipv4", l3, "header length or total length do not fit the frame")
        if destination not in self._local:
            self.counters["rx_dropped_not_our_pa"] += 1
            return []
        if fragment & IPV4_FRAGMENT_BITS:
            self.counters["rx_dropped_fragment"] += 1
            return []
        if protocol == PROTO_UDP:
            if end - l4 < UDP_HEADER_LEN:
                raise PacketError("udp", l4, "shorter than its header")
            source_port, destination_port, _, _ = _udp(frame, l4)
            if destination_port != VXLAN_PORT:
                self.counters["rx_dropped_udp_port"] += 1
                return []
            self.counters["rx_vxlan"] += 1
            payload = frame[l4 + UDP_HEADER_LEN : end]
            return [
                TunnelFrame(uplink, ENCAPSULATION_VXLAN, source, destination, source_port, payload)
            ]
        if protocol == PROTO_GRE:
            self.counters["rx_nvgre"] += 1
            return [TunnelFrame(uplink, ENCAPSULATION_NVGRE, source, destination, 0, frame[l4:end])]
        if protocol == PROTO_ICMP and end > l4 and frame[l4] == ICMP_ECHO_REQUEST:
            return self._echo_reply(uplink, frame, l3)
        self.counters["rx_dropped_protocol"] += 1
        return []

    def _echo_reply(self, uplink: int, frame: bytes, l3: int) -> list[Operation]:
        u = self._uplinks[uplink]
        ip, l4 = IPv4.parse(frame, l3, verify_checksum=False)
        request, _ = Icmp.parse(frame, l4, ip.payload_length, verify_checksum=False)
        reply = request.echo_reply().pack()
        header = _ethernet(frame[MAC_LEN:ETHERTYPE_AT], u.config.mac, ETHERTYPE_IPV4, u.config.vlan)
        answer = IPv4(ip.dst, ip.src, PROTO_ICMP, flags=IPV4_FLAG_DF)
        self.counters["icmp_echo_replies"] += 1
        return [UplinkSend(uplink, header + answer.pack(len(reply)) + reply)]

    def _receive_arp(self, uplink: int, frame: bytes, l3: int, now: float) -> list[Operation]:
        u = self._uplinks[uplink]
        arp, _ = Arp.parse(frame, l3)
        if arp.sender_ip == u.address:
            if arp.sender_mac != u.config.mac:
                self.counters["arp_address_conflict"] += 1
            return []
        on_link = _as_int(arp.sender_ip) & u.mask == u.network
        ops: list[Operation] = []
        for_us = arp.target_ip == u.address
        if on_link and (for_us or u.resolver.knows(arp.sender_ip)):
            for waiting in u.resolver.learn(arp.sender_ip, arp.sender_mac, now):
                self.counters["tx_frames"] += 1
                ops.append(UplinkSend(uplink, arp.sender_mac + waiting[MAC_LEN:]))
        if not for_us:
            self.counters["arp_not_for_us"] += 1
            return ops
        if arp.op == ARP_REQUEST:
            reply = Arp(ARP_REPLY, u.config.mac, u.address, arp.sender_mac, arp.sender_ip)
            header = _ethernet(arp.sender_mac, u.config.mac, ETHERTYPE_ARP, u.config.vlan)
            ops.append(UplinkSend(uplink, header + reply.pack()))
            self.counters["arp_replies_sent"] += 1
        return ops


def _ethernet(destination: bytes, source: bytes, ethertype: int, vlan: int) -> bytes:
    """An Ethernet header, tagged with ``vlan`` unless it is 0 (untagged)."""
    return Ethernet(destination, source, ethertype, vlan or None).pack()


# ---------------------------------------------------------------- the socket edge


class UplinkDriver:
    """Applies a ``ProviderStack``'s operations to AF_PACKET sockets, one per uplink.

    Open the sockets in the host's namespace (``AfPacketSocket(ifname)`` there); the
    driver only reads, writes and calls ``on_tunnel`` for each received tunnel frame.
    """

    def __init__(
        self,
        stack: ProviderStack,
        sockets: Sequence[AfPacketSocket],
        on_tunnel: Callable[[TunnelFrame], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if len(sockets) != len(stack.configs):
            raise VSwitchError(f"{len(sockets)} sockets for {len(stack.configs)} uplinks")
        self.stack = stack
        self.sockets = list(sockets)
        self.on_tunnel = on_tunnel
        self.clock = clock
        self._next_tick = 0.0
        self._selector = selectors.DefaultSelector()
        for index, sock in enumerate(self.sockets):
            self._selector.register(sock, selectors.EVENT_READ, index)

    def apply(self, operations: list[Operation]) -> None:
        for op in operations:
            if isinstance(op, UplinkSend):
                if not self.sockets[op.uplink].send(op.frame):
                    self.stack.counters["tx_dropped_socket_full"] += 1
            else:
                self.on_tunnel(op)

    def announce(self) -> None:
        self.apply(self.stack.announce())

    def send_ip(self, uplink: int, packet: bytes) -> None:
        self.apply(self.stack.send_ip(uplink, packet, self.clock()))

    def send_frame(self, uplink: int, frame: bytes) -> None:
        self.apply(self.stack.send_frame(uplink, frame, self.clock()))

    def poll(self, timeout: float) -> int:
        """Wait up to ``timeout`` s, handle every ready uplink; returns frames handled."""
        handled = 0
        for key, _ in self._selector.select(timeout):
            index = int(key.data)
            now = self.clock()
            for frame in self.sockets[index].recv_batch(_BATCH):
                handled += 1
                self.apply(self.stack.receive(index, frame, now))
        now = self.clock()
        if now >= self._next_tick:
            self._next_tick = now + TICK_SECONDS
            self.apply(self.stack.tick(now))
        return handled

    def close(self) -> None:
        self._selector.close()
        for sock in self.sockets:
            sock.close()
