"""Policy as plain data: conditions, actions and rules (frozen, hashable values).

A rule is ``conditions -> action`` at a priority (lowest number wins). ``conditions()``
builds a ``Conditions`` from operator-friendly strings ("10.0.0.0/8", "aa:bb:..",
(1024, 65535)) and raises ``PolicyError`` naming the field for anything malformed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from openhnv.vfp.errors import PolicyError

Direction: TypeAlias = Literal["in", "out"]
IN: Direction = "in"
OUT: Direction = "out"
DIRECTIONS = (IN, OUT)
FAMILIES = (4, 6)
ARP_FAMILY = 0  # a group of ARP rules: they see the ARP sender/target as src/dst IPv4
GROUP_FAMILIES = (*FAMILIES, ARP_FAMILY)
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
PortRange: TypeAlias = tuple[int, int]
MIN_VSID = 4096
MAX_VSID = 2**24 - 2
NO_VSID = 0  # an access port's: it is on a VLAN, in no virtual subnet
MIN_ACCESS_VLAN = 1
MAX_ACCESS_VLAN = 4094
MAX_PORT = 65535


def normalize_mac(value: str, field: str = "mac") -> str:
    """``aa:bb:cc:dd:ee:ff`` from any of ``AA-BB-..``, ``aabb..``, ``aa:bb:..``."""
    if not isinstance(value, str):
        raise PolicyError(field, value, "a MAC address must be a string")
    digits = value.replace(":", "").replace("-", "").replace(".", "").lower()
    if len(digits) != 12 or any(c not in "0123456789abcdef" for c in digits):
        raise PolicyError(field, value, "not a MAC address")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def parse_prefix(value: str, field: str) -> IPNetwork:
    """An IPv4/IPv6 network from ``"10.0.0.0/8"`` or a host ``"10.0.0.1"``."""
    try:
        return ipaddress.ip_network(value, strict=True)
    except (ValueError, TypeError) as exc:
        raise PolicyError(field, value, f"not an IP prefix ({exc})") from None


def parse_address(value: str, field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """An IPv4/IPv6 address, or ``PolicyError`` naming ``field``."""
    try:
        return ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise PolicyError(field, value, "not an IP address") from None


def check_vsid(value: int, field: str = "vsid") -> int:
    """A VSID in 4096..2^24-2 (DESIGN.md §1)."""
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_VSID <= value <= MAX_VSID:
        raise PolicyError(field, value, f"a VSID is an integer in {MIN_VSID}..{MAX_VSID}")
    return value


def check_access_vlan(value: int, field: str = "access_vlan") -> int:
    """An access port's VLAN: a tag in 1..4094 (0 is untagged, the PAs' own network)."""
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_ACCESS_VLAN <= value <= MAX_ACCESS_VLAN
    ):
        raise PolicyError(
            field, value, f"an access VLAN is an integer in {MIN_ACCESS_VLAN}..{MAX_ACCESS_VLAN}"
        )
    return value


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a rule matches; ``None`` means any value. All given fields must match.

    Prefix fields match when the address is inside one of the prefixes and outside every
    excluded prefix (the ACL tag ``Internet`` is "any, excluding the VNet's space").
    """

    src_macs: frozenset[str] | None = None
    dst_macs: frozenset[str] | None = None
    src_prefixes: tuple[IPNetwork, ...] | None = None
    src_excluded: tuple[IPNetwork, ...] = ()
    dst_prefixes: tuple[IPNetwork, ...] | None = None
    dst_excluded: tuple[IPNetwork, ...] = ()
    protocols: frozenset[int] | None = None
    src_ports: tuple[PortRange, ...] | None = None
    dst_ports: tuple[PortRange, ...] | None = None
    vsids: frozenset[int] | None = None
    ethertypes: frozenset[int] | None = None

    def __post_init__(self) -> None:
        for name in ("src_ports", "dst_ports"):
            ranges: tuple[PortRange, ...] | None = getattr(self, name)
            for lo, hi in ranges or ():
                if not 0 <= lo <= hi <= MAX_PORT:
                    raise PolicyError(name, (lo, hi), "a port range is lo..hi within 0..65535")
        for p in self.protocols or ():
            if not 0 <= p <= 255:
                raise PolicyError("protocols", p, "an IP protocol number is 0..255")
        for v in self.vsids or ():
            check_vsid(v, "vsids")
        for e in self.ethertypes or ():
            if not 0x0600 <= e <= 0xFFFF:
                raise PolicyError("ethertypes", e, "an ethertype is 0x0600..0xffff")


def conditions(
    *,
    src_macs: Iterable[str] | None = None,
    dst_macs: Iterable[str] | None = None,
    src_prefixes: Iterable[str] | None = None,
    src_excluded: Iterable[str] = (),
    dst_prefixes: Iterable[str] | None = None,
    dst_excluded: Iterable[str] = (),
    protocols: Iterable[int] | None = None,
    src_ports: Iterable[int | PortRange] | None = None,
    dst_ports: Iterable[int | PortRange] | None = None,
    vsids: Iterable[int] | None = None,
    ethertypes: Iterable[int] | None = None,
) -> Conditions:
    """``Conditions`` from strings and ints; a port may be ``80`` or ``(1024, 65535)``."""

    def macs(name: str, vals: Iterable[str] | None) -> frozenset[str] | None:
        return None if vals is None else frozenset(normalize_mac(v, name) for v in vals)

    def nets(name: str, vals: Iterable[str] | None) -> tuple[IPNetwork, ...] | None:
        return None if vals is None else tuple(parse_prefix(v, name) for v in vals)

    def ports(name: str, vals: Iterable[int | PortRange] | None) -> tuple[PortRange, ...] | None:
        if vals is None:
            return None
        out: list[PortRange] = []
        for v in vals:
            if isinstance(v, int) and not isinstance(v, bool):
                out.append((v, v))
            elif isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int) for x in v):
                out.append((v[0], v[1]))
            else:
                raise PolicyError(name, v, "a port is an int or a (lo, hi) pair")
        return tuple(out)

    return Conditions(
        src_macs=macs("src_macs", src_macs),
        dst_macs=macs("dst_macs", dst_macs),
        src_prefixes=nets("src_prefixes", src_prefixes),
        src_excluded=nets("src_excluded", src_excluded) or (),
        dst_prefixes=nets("dst_prefixes", dst_prefixes),
        dst_excluded=nets("dst_excluded", dst_excluded) or (),
        protocols=None if protocols is None else frozenset(protocols),
        src_ports=ports("src_ports", src_ports),
        dst_ports=ports("dst_ports", dst_ports),
        vsids=None if vsids is None else frozenset(vsids),
        ethertypes=None if ethertypes is None else frozenset(ethertypes),
    )


ANY = Conditions()


@dataclass(frozen=True, slots=True)
class Allow:
    """Let the packet pass this layer."""


@dataclass(frozen=True, slots=True)
class Block:
    """Drop the packet, counted under ``reason``."""

    reason: str = "acl_deny"


@dataclass(frozen=True, slots=True)
class Count:
    """Count the flow's packets under ``counter`` (non-terminating rules usually)."""

    counter: str


@dataclass(frozen=True, slots=True)
class Rewrite:
    """Modify headers: Ethernet MACs, decrement the IP TTL, set the VSID."""

    src_mac: str | None = None
    dst_mac: str | None = None
    decrement_ttl: bool = False
    vsid: int | None = None

    def __post_init__(self) -> None:
        if self.src_mac is not None:
            object.__setattr__(self, "src_mac", normalize_mac(self.src_mac, "src_mac"))
        if self.dst_mac is not None:
            object.__setattr__(self, "dst_mac", normalize_mac(self.dst_mac, "dst_mac"))
        if self.vsid is not None:
            check_vsid(self.vsid)


@dataclass(frozen=True, slots=True)
class Encapsulate:
    """Forward in the packet's VSID: the mapping space (VSID, dst MAC) gives the PA and the
    encapsulation; a local PA means local delivery; broadcast/multicast is replicated."""


@dataclass(frozen=True, slots=True)
class Route:
    """The distributed router: a packet to ``router_mac`` is looked up by (RDID, dst IP);
    TTL decremented, src MAC = router MAC, dst MAC = the CA's MAC, VSID = the CA's VSID;
    then forwarded as ``Encapsulate``. Never leaves the port's RDID."""

    router_mac: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "router_mac", normalize_mac(self.router_mac, "router_mac"))


Action: TypeAlias = Allow | Block | Count | Rewrite | Encapsulate | Route
ACTION_TYPES = (Allow, Block, Count, Rewrite, Encapsulate, Route)


@dataclass(frozen=True, slots=True)
class Rule:
    """``conditions -> action`` at ``priority`` (lowest wins; ties by rule_id)."""

    rule_id: str
    priority: int
    conditions: Conditions
    action: Action
    terminating: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.rule_id, str) or not self.rule_id:
            raise PolicyError("rule_id", self.rule_id, "a rule needs a non-empty string id")
        if not isinstance(self.priority, int) or not 0 <= self.priority <= 2**32 - 1:
            raise PolicyError("priority", self.priority, "a priority is an int in 0..2^32-1")
        if not isinstance(self.conditions, Conditions):
            raise PolicyError("conditions", self.conditions, "not a Conditions value")
        if not isinstance(self.action, ACTION_TYPES):
            raise PolicyError("action", self.action, "not an engine action")


def describe_action(action: Action) -> str:
    """A short text such as ``block(acl_deny)`` for trace and listings."""
    match action:
        case Allow():
            return "allow"
        case Block(reason):
            return f"block({reason})"
        case Count(counter):
            return f"count({counter})"
        case Rewrite(src_mac, dst_mac, ttl, vsid):
            parts = [f"src_mac={src_mac}"] if src_mac else []
            parts += [f"dst_mac={dst_mac}"] if dst_mac else []
            parts += ["ttl-1"] if ttl else []
            parts += [f"vsid={vsid}"] if vsid is not None else []
            return f"rewrite({', '.join(parts)})"
        case Encapsulate():
            return "encapsulate"
        case Route(router_mac):
            return f"route(router_mac={router_mac})"
