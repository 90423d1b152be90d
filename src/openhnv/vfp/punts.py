"""What a VM sends for the host to answer, not for the network: punted to the agent.

ARP (after the port's ARP guard), DHCPv4 and DHCPv6 client messages from the port's own
MAC, and IPv6 Neighbor Discovery with MLD are answered by the host's agent
(``agent.responder``) from the mapping store: the slow path punts them and never caches
the decision (docs/vfp.md, ``Punt``).
"""

from __future__ import annotations

import ipaddress

from openhnv.packet.dhcp import DHCP_CLIENT_PORT, DHCP_SERVER_PORT
from openhnv.packet.dhcp6 import (
    ALL_DHCP_RELAY_AGENTS_AND_SERVERS,
    DHCP6_CLIENT_PORT,
    DHCP6_SERVER_PORT,
)
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_ARP
from openhnv.packet.flowkey import FlowKey
from openhnv.packet.ipv4 import PROTO_ICMPV6, PROTO_UDP
from openhnv.vfp.decision import Decision, TraceStep
from openhnv.vfp.guards import arp_rules
from openhnv.vfp.model import Port
from openhnv.vfp.policy import Block, describe_action
from openhnv.vfp.state import EngineState

DHCP_PUNT = "dhcp"  # a VM's DHCPv4 client message, for the agent's responder
DHCP6_PUNT = "dhcp6"  # a VM's DHCPv6 client message, for the agent's responder
ALL_DHCP_SERVERS = ipaddress.IPv6Address(ALL_DHCP_RELAY_AGENTS_AND_SERVERS)
ND_PUNT = "nd"  # a VM's Neighbor Discovery or MLD message, for the agent's responder
IPV4_FAMILY = 4
IPV6_FAMILY = 6
# ICMPv6 types a VM's link exchanges with its router and neighbours: MLD (130-132, 143,
# RFC 2710/3810) and Neighbor Discovery (133-137, RFC 4861). The host answers them in
# place of the router and the neighbours, so none is ever forwarded or flooded.
ND_TYPES = frozenset({130, 131, 132, 133, 134, 135, 136, 137, 143})


def for_the_host(state: EngineState, port: Port, frame: bytes, fk: FlowKey, d: Decision) -> bool:
    """ARP, DHCPv4 and DHCPv6 client messages and IPv6 Neighbor Discovery (with MLD) a VM sends are
    the host's to answer: punted to the agent (never cached), unless a guard drops ARP
    first. False for anything else."""
    if fk.ethertype == ETHERTYPE_ARP:
        d.cacheable = False  # its key is the Ethernet header alone: never cached
        if arp_blocked(state, port, frame, fk, d):
            return True
        d.punt = "arp"
    elif is_dhcp_client(fk) and fk.src_mac == port.mac:
        d.punt, d.cacheable = DHCP_PUNT, False
    elif is_dhcp6_client(fk) and fk.src_mac == port.mac:
        d.punt, d.cacheable = DHCP6_PUNT, False
    elif fk.family == IPV6_FAMILY and fk.protocol == PROTO_ICMPV6 and fk.icmp_type in ND_TYPES:
        d.punt, d.cacheable = ND_PUNT, False
    else:
        return False
    if d.record:
        d.steps.append(TraceStep("-", "-", "-", None, f"punt({d.punt})", "answered by the agent"))
    return True


def arp_blocked(state: EngineState, port: Port, frame: bytes, fk: FlowKey, d: Decision) -> bool:
    """The port's ARP groups (the GUARD layer's ARP guard) on an ARP frame it sent; True
    when one blocks it or it is malformed (``d`` holds the drop)."""
    try:
        chosen = arp_rules(port, frame, fk)
    except PacketError:
        d.drop("malformed", state, "an ARP frame that does not parse")
        return True
    for layer, group, rule in chosen:
        d.rules.append(rule)
        d.hits.append((layer, group, rule.rule_id))
        if d.record:
            d.steps.append(
                TraceStep(layer, group, rule.rule_id, rule.priority, describe_action(rule.action))
            )
        if isinstance(rule.action, Block):
            d.drop(rule.action.reason, state)
            return True
    return False


def is_dhcp_client(fk: FlowKey) -> bool:
    """A DHCPv4 client message (UDP 68 -> 67, RFC 2131 §4.1): the host answers it."""
    return (
        fk.protocol == PROTO_UDP
        and fk.dst_port == DHCP_SERVER_PORT
        and fk.src_port == DHCP_CLIENT_PORT
        and fk.family == IPV4_FAMILY
    )


def is_dhcp6_client(fk: FlowKey) -> bool:
    """A DHCPv6 client message (UDP 546 -> 547, RFC 8415 §7.2) to the link's servers."""
    return (
        fk.protocol == PROTO_UDP
        and fk.dst_port == DHCP6_SERVER_PORT
        and fk.src_port == DHCP6_CLIENT_PORT
        and fk.dst_ip == ALL_DHCP_SERVERS
    )
