"""Port guards: the GUARD layer that keeps a VM from answering for others (docs/vfp.md).

NC's ``portSettings.arpGuardEnabled`` and ``dhcpGuardEnabled`` become one stateless
layer that runs first outbound (before the ACLs, so that no connection state lets a
guarded frame through):

- ARP guard (an ``ARP_FAMILY`` group): an ARP frame whose sender IP is not one of the
  port's own IPv4 addresses is dropped (``arp_guard``): replies, gratuitous ARP and
  requests alike; a probe (sender 0.0.0.0, RFC 5227) claims nothing and passes;
- DHCP guard (IPv4 and IPv6 groups): DHCP server messages — UDP from port 67 (RFC 2131)
  or 547 (DHCPv6, RFC 8415) — are dropped (``dhcp_guard``).

``arp_rules`` walks a port's ARP groups for the slow path (the engine never caches an
ARP decision: the key of a non-IP frame is its Ethernet header alone).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from openhnv.packet.arp import Arp
from openhnv.packet.dhcp import DHCP_SERVER_PORT
from openhnv.packet.ethernet import ETHERNET_HEADER_LEN, ETHERTYPE_ARP, VLAN_TAG_LEN
from openhnv.packet.flowkey import FlowKey
from openhnv.packet.ipv4 import PROTO_UDP
from openhnv.vfp import commands as c
from openhnv.vfp.classifier import PacketView
from openhnv.vfp.model import Port
from openhnv.vfp.policy import ARP_FAMILY, OUT, Block, Rule, conditions

GUARD = "GUARD"
GUARD_PRIORITY = 5  # before ACL_NIC (10): the first layer a VM's frame crosses
ARP_GUARD = "arp_guard"
DHCP_GUARD = "dhcp_guard"
DHCPV6_SERVER_PORT = 547
UNSPECIFIED_V4 = "0.0.0.0/32"  # the sender of an ARP probe
ANY_V4 = "0.0.0.0/0"
ARP_GROUP, V4_GROUP, V6_GROUP = "out-arp", "out-v4", "out-v6"
_IPV4 = 4


def guard_groups(
    ip_addresses: Iterable[str], *, arp_guard: bool, dhcp_guard: bool
) -> dict[str, tuple[int, tuple[Rule, ...]]]:
    """The GUARD layer's outbound groups: name -> (family, rules); empty when neither
    guard is on."""
    groups: dict[str, tuple[int, tuple[Rule, ...]]] = {}
    if arp_guard:
        own = sorted(f"{a}/32" for a in ip_addresses if ipaddress.ip_address(a).version == _IPV4)
        spoof = conditions(src_prefixes=[ANY_V4], src_excluded=[UNSPECIFIED_V4, *own])
        groups[ARP_GROUP] = (ARP_FAMILY, (Rule("arp-guard", 1, spoof, Block(ARP_GUARD)),))
    if dhcp_guard:
        for name, family, port in (
            (V4_GROUP, 4, DHCP_SERVER_PORT),
            (V6_GROUP, 6, DHCPV6_SERVER_PORT),
        ):
            server = conditions(protocols=[PROTO_UDP], src_ports=[port])
            groups[name] = (family, (Rule("dhcp-guard", 1, server, Block(DHCP_GUARD)),))
    return groups


def guard_layer_commands(
    port: str, ip_addresses: Iterable[str], *, arp_guard: bool, dhcp_guard: bool
) -> list[c.Command]:
    """The commands of ``port``'s GUARD layer (none when neither guard is on)."""
    groups = guard_groups(ip_addresses, arp_guard=arp_guard, dhcp_guard=dhcp_guard)
    if not groups:
        return []
    cmds: list[c.Command] = [c.AddLayer(port, GUARD, GUARD_PRIORITY)]
    for name, (family, rules) in groups.items():
        cmds.append(c.AddGroup(port, GUARD, name, OUT, family))
        cmds.append(c.AddRules(port, GUARD, name, rules))
    return cmds


def arp_rules(port: Port, frame: bytes, fk: FlowKey) -> list[tuple[str, str, Rule]]:
    """The rule each outbound ARP group of ``port`` chooses for ``frame`` (layer, group,
    rule), in order, ending at the first that blocks; ``PacketError`` if malformed."""
    groups = [
        (layer.name, g) for layer in port.layers_for(OUT) for g in layer.groups_for(OUT, ARP_FAMILY)
    ]
    if not groups:
        return []
    at = ETHERNET_HEADER_LEN + (VLAN_TAG_LEN if fk.vlan_id is not None else 0)
    arp, _ = Arp.parse(frame, at)
    view = PacketView(
        src_mac=fk.src_mac,
        dst_mac=fk.dst_mac,
        ethertype=ETHERTYPE_ARP,
        vsid=port.vsid,
        family=_IPV4,
        src_ip=int.from_bytes(arp.sender_ip, "big"),
        dst_ip=int.from_bytes(arp.target_ip, "big"),
    )
    chosen: list[tuple[str, str, Rule]] = []
    for layer, group in groups:
        rule = group.index().classify(view)
        if rule is None:
            continue
        chosen.append((layer, group.name, rule))
        if isinstance(rule.action, Block):
            break
    return chosen
