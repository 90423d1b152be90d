"""An in-process physical network of many hosts, and the driver that plugs a host into it.

``EmulatedNetwork`` is the PA network: subnets (each an L2 segment with an optional 802.1Q tag),
hosts whose uplinks sit on a subnet, and one L3 router with an interface (the gateway)
on every subnet that has one. It carries whole outer frames by destination MAC: to the
host uplink with that MAC on the same subnet, or to the router, which decrements the
outer TTL, finds the subnet of the destination PA and hands the frame on with its own
MAC as source and the egress subnet's tag. ARP is modelled, not sent: a driver asks the
network (``arp``) for the MAC of an address on its uplink's subnet. Frames whose tag does
not match their subnet, or whose destination MAC nobody owns, are dropped and counted.

``EmulatedDriver(network, host)`` is a ``Driver``: it places the host's PAs on its
uplinks, resolves next hops and reports them (again whenever a PA appears or leaves
anywhere), pops the tag of received frames and hands those for a local PA carrying
VXLAN or NVGRE to the switch; it answers ICMP echo to its PAs (``network.ping``). VM
ports are made with ``network.add_vm_port``; a VM sends with ``network.send_from_vm``
and what it receives queues in ``network.received``. Frames are read and built with the
``openhnv.packet`` codecs, or, on the path every tunnel frame takes, at the offsets it
exports.
Everything runs synchronously in the caller's thread. For fast tests and scale runs.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from openhnv.packet.addresses import MAC_LEN, mac_to_bytes, mac_to_str
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_AT,
    ETHERTYPE_IPV4_BYTES,
    ETHERTYPE_VLAN_BYTES,
    VLAN_TAG_LEN,
    push_vlan,
)
from openhnv.packet.frames import icmp_echo_frame
from openhnv.packet.icmp import ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_HEADER_LEN, Icmp
from openhnv.packet.ipv4 import (
    IPV4_DST_AT,
    IPV4_HEADER_LEN,
    IPV4_IHL_MASK,
    IPV4_IHL_UNIT,
    IPV4_PROTOCOL_AT,
    PROTO_GRE,
    PROTO_ICMP,
    PROTO_UDP,
    IPv4,
)
from openhnv.packet.udp import UDP_DST_PORT_AT
from openhnv.packet.vxlan import VXLAN_PORT
from openhnv.vfp.emits import Transmit
from openhnv.vswitch.driver import FrameSink, PaConfig
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.null import made_up_mac

# Offsets into an untagged frame, for the receive path every tunnel frame takes.
_DST = slice(ETHERNET_HEADER_LEN + IPV4_DST_AT, ETHERNET_HEADER_LEN + IPV4_HEADER_LEN)
_PROTOCOL = ETHERNET_HEADER_LEN + IPV4_PROTOCOL_AT
_L4 = ETHERNET_HEADER_LEN + IPV4_HEADER_LEN
_ETHERTYPE = slice(ETHERTYPE_AT, ETHERNET_HEADER_LEN)
_VXLAN_PORT = VXLAN_PORT.to_bytes(2, "big")
_PING_ID = 0x4E56


@dataclass(slots=True)
class Subnet:
    """One PA subnet: an L2 segment with its VLAN tag and the router's interface on it."""

    name: str
    network: ipaddress.IPv4Network
    vlan_id: int | None
    gateway: str | None
    router_mac: bytes
    macs: dict[bytes, tuple[str, str]] = field(
        default_factory=dict
    )  # uplink MAC -> (host, interface)
    addresses: dict[str, bytes] = field(default_factory=dict)  # PA on the segment -> MAC

    def tag(self) -> bytes:
        return (
            b"" if self.vlan_id is None else ETHERTYPE_VLAN_BYTES + self.vlan_id.to_bytes(2, "big")
        )


@dataclass(slots=True)
class _HostUplink:
    """A host's uplink plugged into a subnet, and the PAs it carries."""

    host: str
    interface: str
    subnet: Subnet
    mac: bytes
    pas: set[str] = field(default_factory=set)


class EmulatedNetwork:
    """The emulated physical network (see the module docstring)."""

    def __init__(self, *, capture: bool = False) -> None:
        self.subnets: dict[str, Subnet] = {}
        self.counters: Counter[str] = Counter()
        self.capture = capture
        self._captured: list[tuple[str, bytes]] = []
        self._uplinks: dict[tuple[str, str], _HostUplink] = {}
        self._drivers: dict[str, EmulatedDriver] = {}
        self._vm_ports: dict[str, dict[str, str]] = {}
        self._received: dict[tuple[str, str], list[bytes]] = {}
        self._lock = threading.Lock()
        self._pings = 0

    # -- building ----------------------------------------------------------------------

    def add_subnet(
        self, name: str, cidr: str, *, vlan_id: int | None = None, gateway: str | None = None
    ) -> Subnet:
        """A PA subnet; ``gateway`` is the router's address on it (None: no router)."""
        if name in self.subnets:
            raise VSwitchError(f"subnet {name!r} exists already")
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError as exc:
            raise VSwitchError(f"subnet {name!r}: cidr {cidr!r}: {exc}") from None
        if gateway is not None and ipaddress.IPv4Address(gateway) not in network:
            raise VSwitchError(f"subnet {name!r}: gateway {gateway} is outside {network}")
        router_mac = mac_to_bytes(made_up_mac(f"router/{name}"))
        subnet = Subnet(name, network, vlan_id, gateway, router_mac)
        if gateway is not None:
            subnet.addresses[gateway] = router_mac
        self.subnets[name] = subnet
        return subnet

    def add_uplink(self, host: str, interface: str, subnet: str) -> str:
        """Plug ``host``'s uplink ``interface`` into ``subnet``; returns the uplink's MAC."""
        where = self.subnets.get(subnet)
        if where is None:
            raise VSwitchError(f"uplink {host}/{interface}: no subnet {subnet!r}")
        if (host, interface) in self._uplinks:
            raise VSwitchError(f"uplink {host}/{interface} exists already")
        mac = mac_to_bytes(made_up_mac(f"{host}/{interface}"))
        self._uplinks[(host, interface)] = _HostUplink(host, interface, where, mac)
        where.macs[mac] = (host, interface)
        return mac_to_str(mac)

    def add_host(self, host: str, uplinks: dict[str, str]) -> None:
        """A host with its uplinks: interface -> subnet name."""
        for interface, subnet in uplinks.items():
            self.add_uplink(host, interface, subnet)

    def uplink_mac(self, host: str, interface: str) -> str:
        return mac_to_str(self._uplink(host, interface).mac)

    def _uplink(self, host: str, interface: str) -> _HostUplink:
        u = self._uplinks.get((host, interface))
        if u is None:
            raise VSwitchError(f"host {host!r} has no uplink {interface!r} on the network")
        return u

    # -- VMs ---------------------------------------------------------------------------

    def add_vm_port(self, host: str, port: str, mac: str) -> None:
        """A VM NIC on ``host``: its port appears to the host's switch."""
        self._vm_ports.setdefault(host, {})[port] = mac
        driver = self._drivers.get(host)
        if driver is not None:
            driver.port_appeared(port, mac)

    def remove_vm_port(self, host: str, port: str) -> None:
        if self._vm_ports.get(host, {}).pop(port, None) is None:
            raise VSwitchError(f"host {host!r} has no VM port {port!r}")
        driver = self._drivers.get(host)
        if driver is not None:
            driver.port_disappeared(port)

    def vm_ports(self, host: str) -> dict[str, str]:
        return dict(self._vm_ports.get(host, {}))

    def send_from_vm(self, host: str, port: str, frame: bytes) -> None:
        """VM ``port`` on ``host`` sends ``frame``."""
        self.send_batch_from_vm(host, port, [frame])

    def send_batch_from_vm(self, host: str, port: str, frames: list[bytes]) -> None:
        if port not in self._vm_ports.get(host, {}):
            raise VSwitchError(f"host {host!r} has no VM port {port!r}")
        driver = self._drivers.get(host)
        if driver is None or driver.sink is None:
            self.counters["drop:host_down"] += len(frames)
            return
        driver.sink.from_port(port, frames)
        driver.sink.round_done()

    def received(self, host: str, port: str) -> list[bytes]:
        """The frames VM ``port`` on ``host`` received since the last call, oldest first."""
        with self._lock:
            return self._received.pop((host, port), [])

    def _to_vm(self, host: str, port: str, frames: Sequence[bytes]) -> None:
        if port not in self._vm_ports.get(host, {}):
            self.counters["drop:no_vm_port"] += len(frames)
            return
        with self._lock:
            self._received.setdefault((host, port), []).extend(frames)

    # -- the PA side -------------------------------------------------------------------

    def arp(self, host: str, interface: str, address: str) -> str | None:
        """The MAC answering ARP for ``address`` on the subnet of ``host``'s uplink."""
        mac = self._uplink(host, interface).subnet.addresses.get(address)
        return None if mac is None else mac_to_str(mac)

    def ping(self, host: str, interface: str, address: str) -> bool:
        """Whether ``address`` answers an ICMP echo sent from the PA of ``host``'s uplink."""
        u = self._uplink(host, interface)
        driver = self._drivers.get(host)
        if not u.pas or driver is None:
            raise VSwitchError(f"ping: uplink {host}/{interface} carries no PA of a running host")
        target = ipaddress.IPv4Address(address)
        hop = address if target in u.subnet.network else u.subnet.gateway
        mac = None if hop is None else u.subnet.addresses.get(hop)
        if mac is None:
            return False
        self._pings += 1
        sequence = self._pings & 0xFFFF
        request = icmp_echo_frame(
            src_mac=u.mac, dst_mac=mac, src_ip=min(u.pas), dst_ip=address,
            identifier=_PING_ID, sequence=sequence, payload=b"openhnv",
        )  # fmt: skip
        driver.echo_replies.discard(sequence)
        self._send(u, [_tagged(request, u.subnet.vlan_id)])
        return sequence in driver.echo_replies

    def wire(self) -> list[tuple[str, bytes]]:
        """(subnet, frame) of every frame put on a subnet since the last call (``capture``)."""
        with self._lock:
            out, self._captured = self._captured, []
            return out

    def inject(self, host: str, interface: str, frame: bytes) -> None:
        """Put ``frame`` on the wire from ``host``'s uplink, as a (maybe rogue) host would."""
        self._send(self._uplink(host, interface), [frame])

    def _attach(self, driver: EmulatedDriver) -> None:
        self._drivers[driver.host] = driver

    def _detach(self, driver: EmulatedDriver) -> None:
        if self._drivers.get(driver.host) is driver:
            del self._drivers[driver.host]

    def _check_pas(self, host: str, pas: Sequence[PaConfig]) -> None:
        """``VSwitchError`` unless every PA fits its uplink's subnet and is free there."""
        for pa in pas:
            u = self._uplink(host, pa.interface)
            if pa.network != u.subnet.network:
                raise VSwitchError(f"PA {pa.address}/{pa.prefix_length} on {host}/{pa.interface}"
                                   f" does not fit its subnet {u.subnet.network}")  # fmt: skip
            owner = u.subnet.addresses.get(pa.address)
            if owner is not None and u.subnet.macs.get(owner, ("",))[0] != host:
                raise VSwitchError(f"PA {pa.address} on {host}/{pa.interface} is in use already")

    def _place_pas(self, host: str, pas: Sequence[PaConfig]) -> None:
        """``host``'s PAs are now ``pas`` (checked): the segments answer ARP for them."""
        for u in self._uplinks.values():
            if u.host != host:
                continue
            for address in u.pas:
                if u.subnet.addresses.get(address) == u.mac:
                    del u.subnet.addresses[address]
            u.pas.clear()
        for pa in pas:
            u = self._uplink(host, pa.interface)
            u.pas.add(pa.address)
            u.subnet.addresses[pa.address] = u.mac
        for driver in list(self._drivers.values()):
            driver.resolve()

    def _send(self, u: _HostUplink, frames: Sequence[bytes]) -> None:
        """Frames put on ``u``'s subnet: switched by destination MAC, or routed."""
        by_host: dict[str, list[bytes]] = {}
        self._switch(u.subnet, frames, by_host)
        for host, batch in by_host.items():
            driver = self._drivers.get(host)
            if driver is None:
                self.counters["drop:host_down"] += len(batch)
            else:
                driver.from_wire(batch)

    def _switch(
        self, subnet: Subnet, frames: Sequence[bytes], by_host: dict[str, list[bytes]]
    ) -> None:
        tag = subnet.tag()
        n = len(tag)
        routed: list[bytes] = []
        for frame in frames:
            if self.capture:
                with self._lock:
                    self._captured.append((subnet.name, frame))
            if frame[ETHERTYPE_AT : ETHERTYPE_AT + n] != tag or (
                not n and frame[_ETHERTYPE] == ETHERTYPE_VLAN_BYTES
            ):
                self.counters["drop:vlan_mismatch"] += 1
                continue
            dst = frame[:MAC_LEN]
            owner = subnet.macs.get(dst)
            if owner is not None:
                by_host.setdefault(owner[0], []).append(frame)
            elif dst == subnet.router_mac and subnet.gateway is not None:
                routed.append(frame[:ETHERTYPE_AT] + frame[ETHERTYPE_AT + n :])
            else:
                self.counters["drop:unknown_mac"] += 1
        for frame in routed:
            self._route(subnet, frame, by_host)

    def _route(self, ingress: Subnet, frame: bytes, by_host: dict[str, list[bytes]]) -> None:
        """The router: an untagged IPv4 frame from ``ingress`` toward its destination PA."""
        try:
            if frame[_ETHERTYPE] != ETHERTYPE_IPV4_BYTES:
                raise PacketError("ethernet", ETHERTYPE_AT, "not IPv4")
            ip, l4 = IPv4.parse(frame, ETHERNET_HEADER_LEN, verify_checksum=False)
        except PacketError:
            self.counters["router:drop:not_ipv4"] += 1
            return
        destination = ipaddress.IPv4Address(ip.dst)
        egress = next((s for s in self.subnets.values() if destination in s.network), None)
        if egress is None or egress.gateway is None:
            self.counters["router:drop:no_route"] += 1
            return
        if ip.ttl <= 1:
            self.counters["router:drop:ttl_exceeded"] += 1
            return
        mac = egress.addresses.get(str(destination))
        if mac is None:
            self.counters["router:drop:unresolved"] += 1
            return
        header = dataclasses.replace(ip, ttl=ip.ttl - 1).pack(ip.payload_length)
        self.counters["router:forwarded"] += 1
        out = mac + egress.router_mac + egress.tag() + ETHERTYPE_IPV4_BYTES + header + frame[l4:]
        self._switch(egress, [out], by_host)


class EmulatedDriver:
    """A host's ``Driver`` on an ``EmulatedNetwork``."""

    def __init__(self, network: EmulatedNetwork, host: str) -> None:
        self.network = network
        self.host = host
        self.sink: FrameSink | None = None
        self.counters: Counter[str] = Counter()
        self._pas: dict[str, PaConfig] = {}
        self._local: frozenset[bytes] = frozenset()
        self._watched: list[str] = []
        self._reported: dict[str, str] = {}
        self.echo_replies: set[int] = set()  # sequences of echo replies received

    # -- Driver ------------------------------------------------------------------------

    def open(self, sink: FrameSink) -> None:
        self.sink = sink
        self.network._attach(self)
        for port, mac in self.network.vm_ports(self.host).items():
            sink.port_added(port, mac)
        self._reported = {}
        self.resolve()

    def close(self) -> None:
        self.network._detach(self)
        self.sink = None

    def send_to_port(self, port: str, frames: Sequence[bytes]) -> None:
        self.network._to_vm(self.host, port, frames)

    def transmit(self, frames: Sequence[Transmit]) -> None:
        by_pa: dict[str, list[bytes]] = {}
        for t in frames:
            by_pa.setdefault(t.source_pa, []).append(t.frame)
        for source, batch in by_pa.items():
            pa = self._pas.get(source)
            if pa is None:
                self.counters["tx_drop:not_our_pa"] += len(batch)
                continue
            self.counters["tx_frames"] += len(batch)
            self.network._send(self.network._uplink(self.host, pa.interface), batch)

    def set_provider_addresses(self, pas: Sequence[PaConfig]) -> None:
        self.network._check_pas(self.host, pas)
        self._pas = {pa.address: pa for pa in pas}
        self._local = frozenset(ipaddress.IPv4Address(a).packed for a in self._pas)
        self.network._place_pas(self.host, pas)

    def uplink_mac(self, interface: str) -> str:
        return self.network.uplink_mac(self.host, interface)

    def watch_neighbors(self, addresses: Sequence[str]) -> None:
        self._watched = list(addresses)
        self.resolve()

    def set_access_vlans(self, vlans: frozenset[int]) -> None:
        """Kept only: the emulated fabric routes PAs and carries no VLAN network."""
        self.access_vlans = frozenset(vlans)

    # -- the network's side ------------------------------------------------------------

    def resolve(self) -> None:
        """ARP for the gateways and the on-link watched PAs; report what changed."""
        sink = self.sink
        if sink is None:
            return
        found: dict[str, str] = {}
        for pa in self._pas.values():
            wanted = [a for a in self._watched if pa.on_link(a)]
            if pa.gateway is not None:
                wanted.append(pa.gateway)
            for address in wanted:
                mac = self.network.arp(self.host, pa.interface, address)
                if mac is not None:
                    found.setdefault(address, mac)
        old, self._reported = self._reported, found
        for address in sorted(old.keys() - found.keys()):
            sink.pa_neighbor(address, None)
        for address, mac in sorted(found.items()):
            if old.get(address) != mac:
                sink.pa_neighbor(address, mac)

    def port_appeared(self, port: str, mac: str) -> None:
        if self.sink is not None:
            self.sink.port_added(port, mac)

    def port_disappeared(self, port: str) -> None:
        if self.sink is not None:
            self.sink.port_removed(port)

    def from_wire(self, frames: list[bytes]) -> None:
        """Frames the network switched to one of our uplinks: tunnel frames for a local PA
        go (untagged) to the switch; the rest is dropped and counted."""
        sink = self.sink
        if sink is None:
            return
        tunnel: list[bytes] = []
        local = self._local
        for frame in frames:
            if frame[_ETHERTYPE] == ETHERTYPE_VLAN_BYTES:
                frame = frame[:ETHERTYPE_AT] + frame[ETHERTYPE_AT + VLAN_TAG_LEN :]
            if frame[_ETHERTYPE] != ETHERTYPE_IPV4_BYTES or len(frame) < _L4:
                self.counters["rx_drop:not_ipv4"] += 1
                continue
            if frame[_DST] not in local:
                self.counters["rx_drop:not_our_pa"] += 1
                continue
            proto = frame[_PROTOCOL]
            l4 = ETHERNET_HEADER_LEN + (frame[ETHERNET_HEADER_LEN] & IPV4_IHL_MASK) * IPV4_IHL_UNIT
            if proto == PROTO_GRE or (
                proto == PROTO_UDP
                and frame[l4 + UDP_DST_PORT_AT : l4 + UDP_DST_PORT_AT + 2] == _VXLAN_PORT
            ):
                tunnel.append(frame)
            elif proto == PROTO_ICMP and len(frame) >= l4 + ICMP_HEADER_LEN:
                self._icmp(frame, l4)
            else:
                self.counters["rx_drop:not_tunnel"] += 1
        if tunnel:
            self.counters["rx_tunnel"] += len(tunnel)
            sink.from_uplink(tunnel)
            sink.round_done()

    def _icmp(self, frame: bytes, l4: int) -> None:
        """Answer an echo request to a local PA; note the sequence of an echo reply."""
        try:
            ip, _ = IPv4.parse(frame, ETHERNET_HEADER_LEN, verify_checksum=False)
            message, _ = Icmp.parse(frame, l4, ip.payload_length, verify_checksum=False)
        except PacketError:
            self.counters["rx_drop:icmp_type"] += 1
            return
        if message.type == ICMP_ECHO_REPLY:
            self.echo_replies.add(message.sequence)
            return
        if message.type != ICMP_ECHO_REQUEST:
            self.counters["rx_drop:icmp_type"] += 1
            return
        pa = self._pas[ipaddress.IPv4Address(ip.dst).compressed]
        reply = icmp_echo_frame(
            src_mac=self.network.uplink_mac(self.host, pa.interface),
            dst_mac=frame[MAC_LEN:ETHERTYPE_AT],
            src_ip=ip.dst, dst_ip=ip.src, identifier=message.identifier,
            sequence=message.sequence, payload=message.payload, reply=True,
        )  # fmt: skip
        self.counters["icmp_echo_replies"] += 1
        uplink = self.network._uplink(self.host, pa.interface)
        self.network._send(uplink, [_tagged(reply, pa.vlan_id)])


def _tagged(frame: bytes, vlan_id: int | None) -> bytes:
    return frame if vlan_id is None else push_vlan(frame, vlan_id)
