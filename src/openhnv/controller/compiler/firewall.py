"""ACL rules and the ms_firewall ``FW_Rules`` rows they become on a host.

DESIGN.md §4 and docs/southbound.md: each ACL layer present on a NIC (``subnet`` from the
subnet's ACL, ``nic`` from the ipConfiguration's) carries its user rules and, behind them,
the default rules; a NIC with no ACL at all gets a ``nic`` layer of defaults only. The tag
``Internet`` means "outside the virtual network's address space": no address set, and the
address space in the matching ``*_excluded`` column.
"""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openhnv.ovsdb.rows import Row

SUBNET_LAYER = "subnet"
NIC_LAYER = "nic"
INTERNET_TAG = "internet"
ANY_PREFIX = "*"
ALL_PORTS = "0-65535"
PORT_MAX = 65535
PRIORITY_MIN = 100
PRIORITY_MAX = 65000
PROTOCOL_NUMBERS: Mapping[str, frozenset[str]] = {
    "all": frozenset(),
    "tcp": frozenset({"6"}),
    "udp": frozenset({"17"}),
    "icmp": frozenset({"1"}),
}
DIRECTIONS = {"inbound": "in", "outbound": "out"}
ACTIONS = {"allow": "allow", "deny": "deny"}
LOGGING = {"enabled": "enabled", "disabled": "disabled"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One side of a rule: CIDRs (empty = any), or the tag ``Internet``."""

    prefixes: frozenset[str]
    internet: bool


@dataclass(frozen=True, slots=True)
class AclRule:
    """An aclRule, parsed and checked, independent of the NIC it lands on."""

    name: str
    direction: str  # in | out
    action: str  # allow | deny
    protocols: frozenset[str]
    source: Endpoint
    destination: Endpoint
    source_ports: str  # "lo-hi"
    destination_ports: str
    priority: int
    logging: str  # enabled | disabled


ANYWHERE = Endpoint(frozenset(), internet=False)
INTERNET = Endpoint(frozenset(), internet=True)


def _choice(props: Mapping[str, Any], name: str, choices: Mapping[str, Any], default: Any) -> Any:
    value = props.get(name, default)
    if isinstance(value, str) and value.casefold() in choices:
        return choices[value.casefold()]
    raise ValueError(f"{name} must be one of {', '.join(sorted(choices))}, got {value!r}")


def _endpoint(props: Mapping[str, Any], name: str) -> Endpoint:
    value = props.get(name, ANY_PREFIX)
    if value in (ANY_PREFIX, "", None):
        return ANYWHERE
    if isinstance(value, str) and value.casefold() == INTERNET_TAG:
        return INTERNET
    try:
        network = ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a CIDR, '*' or 'Internet', got {value!r}") from None
    return Endpoint(frozenset({str(network)}), internet=False)


def _ports(props: Mapping[str, Any], name: str) -> str:
    value = props.get(name, ANY_PREFIX)
    if value in (ANY_PREFIX, "", None):
        return ALL_PORTS
    text = str(value)
    low, _, high = text.partition("-")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"{name} must be a port or 'lo-hi', got {value!r}") from None
    if not 0 <= lo <= hi <= PORT_MAX:
        raise ValueError(f"{name} must be ports 0..{PORT_MAX} with lo <= hi, got {value!r}")
    return f"{lo}-{hi}"


def parse_acl_rule(name: str, props: Mapping[str, Any]) -> AclRule:
    """An aclRule's properties checked; ValueError names the field and the value."""
    priority = props.get("priority")
    if isinstance(priority, str) and priority.isdigit():
        priority = int(priority)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"priority must be an integer, got {priority!r}")
    if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        raise ValueError(f"priority must be {PRIORITY_MIN}..{PRIORITY_MAX}, got {priority}")
    if name in {d.name for d in DEFAULT_RULES}:
        raise ValueError(f"the name {name!r} is reserved for a default rule")
    return AclRule(
        name=name,
        direction=_choice(props, "type", DIRECTIONS, None),
        action=_choice(props, "action", ACTIONS, None),
        protocols=_choice(props, "protocol", PROTOCOL_NUMBERS, "All"),
        source=_endpoint(props, "sourceAddressPrefix"),
        destination=_endpoint(props, "destinationAddressPrefix"),
        source_ports=_ports(props, "sourcePortRange"),
        destination_ports=_ports(props, "destinationPortRange"),
        priority=priority,
        logging=_choice(props, "logging", LOGGING, "Disabled"),
    )


@dataclass(frozen=True, slots=True)
class DefaultRule:
    """A built-in rule behind the user rules; ``vnet`` endpoints mean the address space."""

    name: str
    priority: int
    direction: str
    action: str
    source_vnet: bool
    destination_vnet: bool
    destination_internet: bool


DEFAULT_RULES = (
    DefaultRule("default-allow-vnet-in", 65001, "in", "allow", True, False, False),
    DefaultRule("default-allow-vnet-out", 65002, "out", "allow", False, True, False),
    DefaultRule("default-allow-internet-out", 65003, "out", "allow", False, False, True),
    DefaultRule("default-deny-all-in", 65500, "in", "deny", False, False, False),
    DefaultRule("default-deny-all-out", 65501, "out", "deny", False, False, False),
)


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes
_UUID5_VERSION = 0x50
_RFC4122_VARIANT = 0x80


def rule_id(nic_instance_id: str, acl_layer: str, rule_name: str) -> str:
    """The FW_Rules key: ``uuid5(NAMESPACE_URL, "<nic>/<layer>/<rule>")`` as a string.

    RFC 4122 §4.3 written out (SHA-1 of namespace and name, version and variant bits
    set): the same value as ``uuid.uuid5``, at a third of its cost.
    """
    name = f"{nic_instance_id}/{acl_layer}/{rule_name}".encode()
    digest = bytearray(hashlib.sha1(_URL_NAMESPACE + name).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | _UUID5_VERSION
    digest[8] = (digest[8] & 0x3F) | _RFC4122_VARIANT
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def fw_rules(
    nic_instance_id: str,
    address_space: frozenset[str],
    layers: Sequence[tuple[str, Sequence[AclRule]]],
) -> dict[str, Row]:
    """The FW_Rules rows of one NIC: per layer (name, user rules), then the defaults."""
    rows: dict[str, Row] = {}
    for layer, rules in layers:
        for rule in rules:
            src_in, src_out = _columns(rule.source, address_space)
            dst_in, dst_out = _columns(rule.destination, address_space)
            key = rule_id(nic_instance_id, layer, rule.name)
            rows[key] = {
                "rule_id": key,
                "vnic_id": nic_instance_id,
                "acl_layer": layer,
                "rule_name": rule.name,
                "direction": rule.direction,
                "action": rule.action,
                "protocols": rule.protocols,
                "src_ip_addresses": src_in,
                "dst_ip_addresses": dst_in,
                "src_ip_excluded": src_out,
                "dst_ip_excluded": dst_out,
                "src_port": rule.source_ports,
                "dst_port": rule.destination_ports,
                "priority": rule.priority,
                "rule_type": "user",
                "rule_state": "enabled",
                "logging_state": rule.logging,
            }
        for default in DEFAULT_RULES:
            key = rule_id(nic_instance_id, layer, default.name)
            rows[key] = {
                "rule_id": key,
                "vnic_id": nic_instance_id,
                "acl_layer": layer,
                "rule_name": default.name,
                "direction": default.direction,
                "action": default.action,
                "protocols": frozenset(),
                "src_ip_addresses": address_space if default.source_vnet else frozenset(),
                "dst_ip_addresses": address_space if default.destination_vnet else frozenset(),
                "src_ip_excluded": frozenset(),
                "dst_ip_excluded": address_space if default.destination_internet else frozenset(),
                "src_port": ALL_PORTS,
                "dst_port": ALL_PORTS,
                "priority": default.priority,
                "rule_type": "default",
                "rule_state": "enabled",
                "logging_state": "disabled",
            }
    return rows


def _columns(endpoint: Endpoint, address_space: frozenset[str]) -> tuple[frozenset[str], ...]:
    """(addresses, excluded) for one side of a rule."""
    if endpoint.internet:
        return frozenset(), address_space
    return endpoint.prefixes, frozenset()
