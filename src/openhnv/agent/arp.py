"""ARP answered by the host from its mapping store (DESIGN.md §1, §4).

A VM's ARP never leaves the host: the engine punts it (``Punt(reason="arp")``) and the
agent answers here. A request for a customer address of the VM's own virtual subnet
gets the MAC the mapping store has for it; a request for the distributed router's
address of the subnet (its lowest usable IP) gets the router MAC from
``Global.other_config:distributed_router_mac``. Anything else (an unknown CA, a reply,
a gratuitous ARP or a probe for the VM's own address) gets no answer. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from openhnv.packet.addresses import ip_to_str, mac_to_bytes
from openhnv.packet.arp import ARP_REQUEST, Arp
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_ARP, Ethernet


@dataclass(frozen=True, slots=True)
class Ipv6Router:
    """The distributed router on a subnet's IPv6 prefix: the prefix it advertises and its
    address there (the lowest usable, as for IPv4)."""

    prefix: str  # e.g. fd00:7::/64
    address: str  # e.g. fd00:7::1


@dataclass(frozen=True, slots=True)
class ArpTable:
    """What the host answers: CA MACs per (VSID, CA) of both IP families, the router's
    IPv4 address per VSID, and its IPv6 prefix and address per VSID (agent.ndp)."""

    router_mac: str | None = None
    customer_macs: Mapping[tuple[int, str], str] = field(default_factory=dict)
    gateways: Mapping[int, str] = field(default_factory=dict)  # VSID -> router address
    ipv6_routers: Mapping[int, Ipv6Router] = field(default_factory=dict)  # VSID -> router


@dataclass(frozen=True, slots=True)
class Requester:
    """The VM port an ARP came from: its subnet and its own addresses."""

    vsid: int
    ip_addresses: tuple[str, ...]


def resolve(table: ArpTable, vsid: int, address: str) -> str | None:
    """The MAC that answers for ``address`` in virtual subnet ``vsid``, or None."""
    if table.router_mac is not None and table.gateways.get(vsid) == address:
        return table.router_mac
    return table.customer_macs.get((vsid, address))


def answer(table: ArpTable, requester: Requester, frame: bytes) -> bytes | None:
    """The Ethernet frame answering the ARP request ``frame``, or None (never raises)."""
    try:
        ethernet, offset = Ethernet.parse(frame)
        if ethernet.ethertype != ETHERTYPE_ARP:
            return None
        request, _ = Arp.parse(frame, offset)
    except PacketError:
        return None
    if request.op != ARP_REQUEST:
        return None
    target = ip_to_str(request.target_ip)
    if request.sender_ip == request.target_ip or target in requester.ip_addresses:
        return None  # gratuitous ARP or duplicate address probe: silence is the answer
    mac = resolve(table, requester.vsid, target)
    if mac is None:
        return None
    reply = request.reply(mac_to_bytes(mac))
    header = Ethernet(request.sender_mac, mac_to_bytes(mac), ETHERTYPE_ARP, ethernet.vlan_id)
    return header.pack() + reply.pack()
