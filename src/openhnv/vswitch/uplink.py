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
a list of operations (``Transmit`` or ``TunnelFrame``). ``UplinkDriver`` is the thin
socket edge that applies them.
"""

from __future__ import annotations

import ipaddress
import selectors
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.arp_resolver import ArpResolver, ArpTimers
from openhnv.vswitch.pawire import (
    ARP_REPLY,
    ARP_REQUEST,
    BROADCAST_MAC,
    ETHERNET_HEADER_LEN,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ICMP_ECHO_REQUEST,
    IP_PROTO_GRE,
    IP_PROTO_ICMP,
    IP_PROTO_UDP,
    IPV4_HEADER_MIN,
    UDP_HEADER_LEN,
    VLAN_TAG_LEN,
    ZERO_MAC,
    ArpPacket,
    Ipv4View,
    WireError,
    ethernet_header,
    icmp_echo_reply,
    ipv4_header,
)

VXLAN_PORT = 4789
ENCAPSULATION_VXLAN = "vxlan"
ENCAPSULATION_NVGRE = "nvgre"
TICK_SECONDS = 0.25
_IPV4_DESTINATION = slice(16, 20)
_IP_FRAGMENT_BITS = 0x3F  # MF flag and the high bits of the fragment offset (byte 6)
_VXLAN_PORT_HI, _VXLAN_PORT_LO = divmod(VXLAN_PORT, 256)
_BATCH = 64


class UplinkError(ValueError):
    """An uplink is configured wrongly or asked to do something it cannot."""


@dataclass(frozen=True, slots=True)
class UplinkConfig:
    """One uplink: its interface, MAC, PA with prefix, VLAN (0 = untagged) and gateway."""

    interface: str
    mac: bytes
    provider_address: ipaddress.IPv4Interface
    vlan: int = 0
    default_gateway: ipaddress.IPv4Address | None = None

    def __post_init__(self) -> None:
        if len(self.mac) != 6 or self.mac[0] & 1:
            raise UplinkError(f"uplink {self.interface}: mac {self.mac.hex()} is not unicast")
        if not 0 <= self.vlan <= 4094:
            raise UplinkError(f"uplink {self.interface}: vlan {self.vlan} is not in 0..4094")
        gateway = self.default_gateway
        if gateway is not None and gateway not in self.provider_address.network:
            raise UplinkError(
                f"uplink {self.interface}: default_gateway {gateway} is outside"
                f" {self.provider_address.network}"
            )


class Transmit(NamedTuple):
    """Send ``frame`` on uplink ``uplink``.

    Operations are immutable named tuples rather than frozen dataclasses: one is made
    per packet, and a frozen dataclass costs about four times as much to create.
    """

    uplink: int
    frame: bytes


class TunnelFrame(NamedTuple):
    """An encapsulated packet for a local PA, handed to the switch (a named tuple: see
    ``Transmit``).

    ``payload`` starts at the VXLAN header (after UDP) or at the GRE header (NVGRE).
    """

    uplink: int
    encapsulation: str
    outer_source: bytes
    outer_destination: bytes
    source_port: int
    payload: bytes


Operation = Transmit | TunnelFrame


@dataclass(slots=True)
class _Uplink:
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
    _uplinks: list[_Uplink] = field(default_factory=list)
    _local: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        if not self.configs:
            raise UplinkError("a host needs at least one uplink")
        for config in self.configs:
            pa = config.provider_address
            gateway = config.default_gateway
            self._uplinks.append(
                _Uplink(
                    config=config,
                    address=pa.ip.packed,
                    network=int(pa.network.network_address),
                    mask=int(pa.network.netmask),
                    gateway=None if gateway is None else gateway.packed,
                    resolver=ArpResolver(self.timers),
                    header_tail=ethernet_header(ZERO_MAC, config.mac, ETHERTYPE_IPV4, config.vlan)[
                        6:
                    ],
                    mac=config.mac,
                    vlan=config.vlan,
                )
            )
        addresses = [u.address for u in self._uplinks]
        if len(set(addresses)) != len(addresses):
            raise UplinkError("two uplinks have the same provider address")
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
        if len(packet) < IPV4_HEADER_MIN:
            raise UplinkError(f"send_ip: {len(packet)} bytes is not an IPv4 packet")
        return self._resolve_and_send(uplink, packet[_IPV4_DESTINATION], packet, now)

    def send_frame(self, uplink: int, frame: bytes, now: float) -> list[Operation]:
        """Send an untagged Ethernet/IPv4 frame, filling its MACs (and the VLAN tag)."""
        if len(frame) < ETHERNET_HEADER_LEN + 20:
            raise UplinkError(f"send_frame: {len(frame)} bytes is not an Ethernet/IPv4 frame")
        destination = frame[ETHERNET_HEADER_LEN + 16 : ETHERNET_HEADER_LEN + 20]
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
            return [Transmit(uplink, mac + u.header_tail + packet)]
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

    def _arp_request(self, uplink: int, target: bytes) -> Transmit:
        u = self._uplinks[uplink]
        arp = ArpPacket(ARP_REQUEST, u.config.mac, u.address, ZERO_MAC, target)
        header = ethernet_header(BROADCAST_MAC, u.config.mac, ETHERTYPE_ARP, u.config.vlan)
        self.counters["arp_requests_sent"] += 1
        return Transmit(uplink, header + arp.build())

    def announce(self) -> list[Operation]:
        """A gratuitous ARP per uplink, so switches and the router learn the PAs."""
        ops: list[Operation] = []
        for index, u in enumerate(self._uplinks):
            arp = ArpPacket(ARP_REQUEST, u.config.mac, u.address, ZERO_MAC, u.address)
            header = ethernet_header(BROADCAST_MAC, u.config.mac, ETHERTYPE_ARP, u.config.vlan)
            ops.append(Transmit(index, header + arp.build()))
        return ops

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
        if frame[12] == 0x81 and frame[13] == 0x00:
            if size < ETHERNET_HEADER_LEN + VLAN_TAG_LEN:
                self.counters["rx_dropped_malformed"] += 1
                return []
            vid = ((frame[14] & 0x0F) << 8) | frame[15]
            l3 = ETHERNET_HEADER_LEN + VLAN_TAG_LEN
        else:
            vid = 0
            l3 = ETHERNET_HEADER_LEN
        if vid != u.vlan:
            self.counters["rx_dropped_vlan"] += 1
            return []
        destination_mac = frame[0:6]
        if destination_mac != u.mac and destination_mac != BROADCAST_MAC:
            self.counters["rx_dropped_not_our_mac"] += 1
            return []
        ethertype = frame[l3 - 2 : l3]
        try:
            if ethertype == b"\x08\x00":
                return self._receive_ipv4(uplink, frame, l3)
            if ethertype == b"\x08\x06":
                return self._receive_arp(uplink, frame[l3:], now)
        except WireError:
            self.counters["rx_dropped_malformed"] += 1
            return []
        self.counters["rx_dropped_ethertype"] += 1
        return []

    def _receive_ipv4(self, uplink: int, frame: bytes, l3: int) -> list[Operation]:
        if len(frame) < l3 + IPV4_HEADER_MIN or frame[l3] >> 4 != 4:
            raise WireError("ipv4: short or not version 4")
        header_length = (frame[l3] & 0x0F) * 4
        end = l3 + ((frame[l3 + 2] << 8) | frame[l3 + 3])
        l4 = l3 + header_length
        if header_length < IPV4_HEADER_MIN or end < l4 or end > len(frame):
            raise WireError("ipv4: header length or total length do not fit the frame")
        destination = frame[l3 + 16 : l3 + 20]
        if destination not in self._local:
            self.counters["rx_dropped_not_our_pa"] += 1
            return []
        if frame[l3 + 6] & _IP_FRAGMENT_BITS or frame[l3 + 7]:
            self.counters["rx_dropped_fragment"] += 1
            return []
        protocol = frame[l3 + 9]
        if protocol == IP_PROTO_UDP:
            if end - l4 < UDP_HEADER_LEN:
                raise WireError("udp: shorter than its header")
            if frame[l4 + 2] != _VXLAN_PORT_HI or frame[l4 + 3] != _VXLAN_PORT_LO:
                self.counters["rx_dropped_udp_port"] += 1
                return []
            self.counters["rx_vxlan"] += 1
            return [
                TunnelFrame(
                    uplink,
                    ENCAPSULATION_VXLAN,
                    frame[l3 + 12 : l3 + 16],
                    destination,
                    (frame[l4] << 8) | frame[l4 + 1],
                    frame[l4 + UDP_HEADER_LEN : end],
                )
            ]
        if protocol == IP_PROTO_GRE:
            self.counters["rx_nvgre"] += 1
            source = frame[l3 + 12 : l3 + 16]
            return [TunnelFrame(uplink, ENCAPSULATION_NVGRE, source, destination, 0, frame[l4:end])]
        if protocol == IP_PROTO_ICMP and end > l4 and frame[l4] == ICMP_ECHO_REQUEST:
            return self._echo_reply(uplink, frame, l3)
        self.counters["rx_dropped_protocol"] += 1
        return []

    def _echo_reply(self, uplink: int, frame: bytes, l3: int) -> list[Operation]:
        u = self._uplinks[uplink]
        ip = Ipv4View.parse(frame[l3:])
        reply = icmp_echo_reply(frame[l3 + ip.header_length : l3 + ip.total_length])
        header = ethernet_header(frame[6:12], u.config.mac, ETHERTYPE_IPV4, u.config.vlan)
        packet = ipv4_header(ip.destination, ip.source, IP_PROTO_ICMP, len(reply)) + reply
        self.counters["icmp_echo_replies"] += 1
        return [Transmit(uplink, header + packet)]

    def _receive_arp(self, uplink: int, payload: bytes, now: float) -> list[Operation]:
        u = self._uplinks[uplink]
        arp = ArpPacket.parse(payload)
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
                ops.append(Transmit(uplink, arp.sender_mac + waiting[6:]))
        if not for_us:
            self.counters["arp_not_for_us"] += 1
            return ops
        if arp.operation == ARP_REQUEST:
            reply = ArpPacket(ARP_REPLY, u.config.mac, u.address, arp.sender_mac, arp.sender_ip)
            header = ethernet_header(arp.sender_mac, u.config.mac, ETHERTYPE_ARP, u.config.vlan)
            ops.append(Transmit(uplink, header + reply.build()))
            self.counters["arp_replies_sent"] += 1
        return ops


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
            raise UplinkError(f"{len(sockets)} sockets for {len(stack.configs)} uplinks")
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
            if isinstance(op, Transmit):
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
