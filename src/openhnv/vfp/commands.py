"""The programming API: a few frozen commands, applied through ``engine.programming.apply``.

The host agent and ``hnv vfp`` drive the engine only with these. Adding something that
exists replaces it (idempotent); removing something absent raises ``PolicyError`` unless
``missing_ok`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from openhnv.vfp.errors import PolicyError
from openhnv.vfp.policy import (
    DIRECTIONS,
    GROUP_FAMILIES,
    NO_VSID,
    Allow,
    Block,
    Direction,
    Rule,
    check_access_vlan,
    check_vsid,
    normalize_mac,
    parse_address,
)
from openhnv.vfp.qos import NO_QOS, QosSettings
from openhnv.vfp.routes import RouteTable
from openhnv.vfp.spaces import Mapping, ProviderAddress

ALLOW = Allow()


def _name(field: str, value: object) -> None:
    if not isinstance(value, str) or not value or value.strip() != value:
        raise PolicyError(field, value, "a name is a non-empty string without outer spaces")


@dataclass(frozen=True, slots=True)
class AddPort:
    """A VM port: its MAC, VSID, routing domain and the IPs it may send from.

    A ``gateway`` port (a tenant's gateway compartment) may also send from addresses
    outside the VNet that its routing domain routes to one of its IPs. An access port
    (``access_vlan`` 1..4094: a NIC on a logical, VLAN, subnet) is bridged onto that VLAN
    of the uplinks, without encapsulation; it has no virtual subnet (``vsid`` 0).
    """

    name: str
    mac: str
    vsid: int
    rdid: str
    ip_addresses: tuple[str, ...] = ()
    allow_mac_spoofing: bool = False
    gateway: bool = False
    access_vlan: int | None = None
    qos: QosSettings = NO_QOS  # the QoS layer's caps (vfp.qos)

    def __post_init__(self) -> None:
        _name("name", self.name)
        if not isinstance(self.qos, QosSettings):
            raise PolicyError("qos", self.qos, "must be a QosSettings")
        object.__setattr__(self, "mac", normalize_mac(self.mac, "mac"))
        if self.access_vlan is None:
            check_vsid(self.vsid)
        else:
            check_access_vlan(self.access_vlan)
            if self.vsid != NO_VSID:
                raise PolicyError("vsid", self.vsid, f"an access port's vsid is {NO_VSID}")
        _name("rdid", self.rdid)
        ips = tuple(str(parse_address(a, "ip_addresses")) for a in self.ip_addresses)
        object.__setattr__(self, "ip_addresses", ips)


@dataclass(frozen=True, slots=True)
class RemovePort:
    name: str
    missing_ok: bool = False


@dataclass(frozen=True, slots=True)
class SetPortState:
    """``enabled=False`` blocks the port: every packet from or to it is dropped."""

    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class AddLayer:
    """A layer of ``port``; a stateful layer lets replies of the connections it allowed
    through; ``default_*`` applies when no rule of the layer matches."""

    port: str
    name: str
    priority: int
    stateful: bool = False
    default_inbound: Allow | Block = ALLOW
    default_outbound: Allow | Block = ALLOW

    def __post_init__(self) -> None:
        _name("name", self.name)
        if not isinstance(self.priority, int) or self.priority < 0:
            raise PolicyError("priority", self.priority, "a layer priority is an int >= 0")
        for f in ("default_inbound", "default_outbound"):
            if not isinstance(getattr(self, f), Allow | Block):
                raise PolicyError(f, getattr(self, f), "a layer default is Allow() or Block()")


@dataclass(frozen=True, slots=True)
class RemoveLayer:
    port: str
    name: str
    missing_ok: bool = False


@dataclass(frozen=True, slots=True)
class AddGroup:
    """A group of rules of one direction ("in"/"out") and IP family (4/6), or of ARP
    (``ARP_FAMILY``: the ARP frames a VM sends, seen before the host answers them)."""

    port: str
    layer: str
    name: str
    direction: Direction
    family: int = 4
    priority: int = 0

    def __post_init__(self) -> None:
        _name("name", self.name)
        if self.direction not in DIRECTIONS:
            raise PolicyError("direction", self.direction, "a direction is 'in' or 'out'")
        if self.family not in GROUP_FAMILIES:
            raise PolicyError("family", self.family, "a family is 4, 6 or 0 (ARP)")
        if not isinstance(self.priority, int) or self.priority < 0:
            raise PolicyError("priority", self.priority, "a group priority is an int >= 0")


@dataclass(frozen=True, slots=True)
class RemoveGroup:
    port: str
    layer: str
    name: str
    missing_ok: bool = False


@dataclass(frozen=True, slots=True)
class AddRule:
    port: str
    layer: str
    group: str
    rule: Rule

    def __post_init__(self) -> None:
        if not isinstance(self.rule, Rule):
            raise PolicyError("rule", self.rule, "not a Rule")


@dataclass(frozen=True, slots=True)
class AddRules:
    """Many rules of one group at once (the index is rebuilt once)."""

    port: str
    layer: str
    group: str
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        for r in self.rules:
            if not isinstance(r, Rule):
                raise PolicyError("rules", r, "not a Rule")


@dataclass(frozen=True, slots=True)
class RemoveRule:
    port: str
    layer: str
    group: str
    rule_id: str
    missing_ok: bool = False


@dataclass(frozen=True, slots=True)
class AddMapping:
    mapping: Mapping

    def __post_init__(self) -> None:
        if not isinstance(self.mapping, Mapping):
            raise PolicyError("mapping", self.mapping, "not a Mapping")


@dataclass(frozen=True, slots=True)
class RemoveMapping:
    rdid: str
    customer_address: str
    missing_ok: bool = False


@dataclass(frozen=True, slots=True)
class SetRoutes:
    """Replace the route table of ``table.rdid`` (its address space and static routes)."""

    table: RouteTable

    def __post_init__(self) -> None:
        if not isinstance(self.table, RouteTable):
            raise PolicyError("table", self.table, "not a RouteTable")


@dataclass(frozen=True, slots=True)
class RemoveRoutes:
    rdid: str
    missing_ok: bool = False


@dataclass(frozen=True, slots=True)
class AddProviderAddress:
    provider_address: ProviderAddress

    def __post_init__(self) -> None:
        if not isinstance(self.provider_address, ProviderAddress):
            raise PolicyError("provider_address", self.provider_address, "not a ProviderAddress")


@dataclass(frozen=True, slots=True)
class RemoveProviderAddress:
    address: str
    missing_ok: bool = False


@dataclass(frozen=True, slots=True)
class SetPaNeighbor:
    """The MAC of an on-link remote PA (None forgets it); off-link PAs use the gateway."""

    address: str
    mac: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", str(parse_address(self.address, "address")))
        if self.mac is not None:
            object.__setattr__(self, "mac", normalize_mac(self.mac, "mac"))


Command: TypeAlias = (
    AddPort
    | RemovePort
    | SetPortState
    | AddLayer
    | RemoveLayer
    | AddGroup
    | RemoveGroup
    | AddRule
    | AddRules
    | RemoveRule
    | AddMapping
    | RemoveMapping
    | SetRoutes
    | RemoveRoutes
    | AddProviderAddress
    | RemoveProviderAddress
    | SetPaNeighbor
)
