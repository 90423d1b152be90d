"""Typed, validated views of the southbound rows a host agent reads (docs/southbound.md).

``read_catalog(snapshot, uuids)`` turns the OVSDB snapshot (table -> key -> row, with
references as ``Ref(table, key)``) into frozen views. A row that is malformed, or that
refers to a row that is missing or itself malformed, becomes a ``Problem`` (table, uuid,
key, reason) and is left out; it never raises and never stops the other rows. Tables
are read in reference order, so a mapping whose logical switch was refused is refused
too, naming why.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from openhnv.agent.team_rows import is_team_row
from openhnv.ovsdb.keys import (
    ACCESS_VLAN,
    QOS_INBOUND_COLUMN,
    QOS_OUTBOUND_COLUMN,
    QOS_RESERVED_COLUMN,
)
from openhnv.ovsdb.rows import Atom, Ref, Row
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.policy import (
    MAX_ACCESS_VLAN,
    MAX_VSID,
    MIN_ACCESS_VLAN,
    MIN_VSID,
    normalize_mac,
)
from openhnv.vfp.qos import MAX_MBPS, NO_QOS, QosSettings

Snapshot: TypeAlias = Mapping[str, Mapping[str, Row]]
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
PortRange: TypeAlias = tuple[int, int]

ENCAPSULATIONS = {"vxlan_over_ipv4": "vxlan", "nvgre_over_ipv4": "nvgre"}
ACL_LAYERS = ("subnet", "nic")
UNTAGGED_BINDING = 0
FULL_PORT_RANGE = (0, 65535)
TRUE = "true"
PARSE_CACHE = 1 << 16  # addresses and MACs parsed once per agent, not once per sync
MAX_REASON = 300  # a hostile value (100 KB) is not repeated whole in a problem or a log line
IPV6 = 6


class RowError(ValueError):
    """What is wrong with one row (becomes a ``Problem``)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A southbound row the agent skipped, and why (the reason clipped to ``MAX_REASON``)."""

    table: str
    uuid: str
    key: str
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", clipped(self.reason))  # wherever it was made

    def as_dict(self) -> dict[str, str]:
        return {"table": self.table, "uuid": self.uuid, "key": self.key, "reason": self.reason}


def clipped(reason: str) -> str:
    """``reason`` cut to ``MAX_REASON`` characters (its start names the column)."""
    if len(reason) <= MAX_REASON:
        return reason
    return f"{reason[:MAX_REASON]}... ({len(reason)} characters)"


@dataclass(frozen=True, slots=True)
class GlobalView:
    router_mac: str | None  # distributed_router_mac
    encapsulation: str  # "vxlan" | "nvgre" | "" (informative)


@dataclass(frozen=True, slots=True)
class ProviderAddressView:
    address: str
    prefix_length: int
    vlan: int  # 0 = untagged
    gateway: str | None
    interface: str


@dataclass(frozen=True, slots=True)
class SwitchView:
    """A Logical_Switch: one virtual subnet."""

    key: str
    vsid: int
    rdid: str
    prefix: IPNetwork | None
    gateway_ip: str | None  # the distributed router's address (lowest usable)
    virtual_network: str
    prefix6: IPNetwork | None = None  # a dual-stack subnet's IPv6 prefix (address_prefix_v6)
    gateway_ip6: str | None = None  # the router's IPv6 address (lowest usable of prefix6)

    def prefixes(self) -> tuple[IPNetwork, ...]:
        """Every prefix of the subnet (one, or one per family when dual stack)."""
        return tuple(p for p in (self.prefix, self.prefix6) if p is not None)

    def gateway_for(self, version: int) -> str | None:
        """The distributed router's address of IP ``version`` in this subnet, or None."""
        for prefix, gateway in ((self.prefix, self.gateway_ip), (self.prefix6, self.gateway_ip6)):
            if prefix is not None and prefix.version == version:
                return gateway
        return None

    def prefix_for(self, version: int) -> IPNetwork | None:
        """The subnet's prefix of IP ``version``, or None."""
        return next((p for p in self.prefixes() if p.version == version), None)


@dataclass(frozen=True, slots=True)
class RouterView:
    """A Logical_Router: one virtual network's distributed router."""

    key: str
    rdid: str
    enabled: bool
    switches: frozenset[str]  # keys of the bound Logical_Switches
    address_space: tuple[str, ...]
    routes: tuple[tuple[str, str], ...] = ()  # static_routes: (prefix, next hop CA), sorted


@dataclass(frozen=True, slots=True)
class LocatorView:
    key: str
    provider_address: str
    encapsulation: Literal["vxlan", "nvgre"]


@dataclass(frozen=True, slots=True)
class MacView:
    """A Ucast_Macs_Remote: one customer address and the locator of its host."""

    key: str
    mac: str
    customer_address: str
    switch: str
    locator: str
    local: bool


@dataclass(frozen=True, slots=True)
class McastView:
    """A Mcast_Macs_Remote (replication is done from the mapping space; kept for status)."""

    key: str
    switch: str


@dataclass(frozen=True, slots=True)
class PortView:
    """A Physical_Port; ``switch`` is None while the controller has not bound it, and
    for an access port (``access_vlan``: a NIC on a logical, VLAN, subnet), which is
    the controller's but in no logical switch."""

    key: str
    switch: str | None
    mac: str | None
    ip_addresses: tuple[str, ...]
    mac_spoofing: bool
    status: Mapping[str, str]
    gateway: bool = False  # a gateway compartment's port (other_config:gateway)
    access_vlan: int | None = None  # other_config:access_vlan
    arp_guard: bool = False  # other_config:arp_guard (portSettings.arpGuardEnabled)
    dhcp_guard: bool = False  # other_config:dhcp_guard (portSettings.dhcpGuardEnabled)
    dns_servers: tuple[str, ...] = ()  # other_config:dns_servers (dnsSettings.dnsServers)
    qos: QosSettings = NO_QOS  # other_config:qos_*_max_mbps (portSettings.qosSettings)

    @property
    def bound(self) -> bool:
        """The controller gave the port its policy (a logical switch or an access VLAN)."""
        return self.mac is not None and (self.switch is not None or self.access_vlan is not None)


@dataclass(frozen=True, slots=True)
class FwRuleView:
    """One FW_Rules row in engine terms (prefixes and ports parsed)."""

    key: str
    vnic: str
    layer: str  # subnet | nic
    name: str
    direction: Literal["in", "out"]
    allow: bool
    protocols: frozenset[int]
    src_prefixes: tuple[IPNetwork, ...]
    dst_prefixes: tuple[IPNetwork, ...]
    src_excluded: tuple[IPNetwork, ...]
    dst_excluded: tuple[IPNetwork, ...]
    src_ports: PortRange | None
    dst_ports: PortRange | None
    priority: int
    enabled: bool


@dataclass(slots=True)
class Catalog:
    """Every usable row, by table and key, and the problems of the others."""

    global_row: GlobalView | None = None
    provider_addresses: dict[str, ProviderAddressView] = field(default_factory=dict)
    switches: dict[str, SwitchView] = field(default_factory=dict)
    routers: dict[str, RouterView] = field(default_factory=dict)
    locators: dict[str, LocatorView] = field(default_factory=dict)
    macs: dict[str, MacView] = field(default_factory=dict)
    mcasts: dict[str, McastView] = field(default_factory=dict)
    ports: dict[str, PortView] = field(default_factory=dict)
    fw_rules: dict[str, FwRuleView] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "Global": int(self.global_row is not None),
            "Provider_Address": len(self.provider_addresses),
            "Logical_Switch": len(self.switches),
            "Logical_Router": len(self.routers),
            "Physical_Locator": len(self.locators),
            "Ucast_Macs_Remote": len(self.macs),
            "Mcast_Macs_Remote": len(self.mcasts),
            "Physical_Port": len(self.ports),
            "FW_Rules": len(self.fw_rules),
        }


# -- column readers (each raises RowError naming the column) -----------------------------
def _text(row: Row, column: str, *, required: bool = True) -> str:
    value = row.get(column, "")
    if isinstance(value, frozenset) and not value:
        value = ""
    if not isinstance(value, str):
        raise RowError(f"{column}={value!r} is not a string")
    if required and not value:
        raise RowError(f"{column} is empty")
    return value


def _int(row: Row, column: str, lo: int, hi: int) -> int:
    value = row.get(column)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RowError(f"{column}={value!r} is not an integer in {lo}..{hi}")
    return value


def _map(row: Row, column: str) -> Mapping[Any, Any]:
    value = row.get(column, {})
    if isinstance(value, frozenset) and not value:
        return {}
    if not isinstance(value, Mapping):
        raise RowError(f"{column}={value!r} is not a map")
    return value


def _set(row: Row, column: str) -> frozenset[Any]:
    value = row.get(column, frozenset())
    if not isinstance(value, frozenset):
        raise RowError(f"{column}={value!r} is not a set")
    return value


def _ref(value: object, column: str, table: str, known: Mapping[str, object]) -> str:
    if isinstance(value, frozenset) and len(value) == 1:
        (value,) = value
    if not isinstance(value, Ref) or value.table != table:
        raise RowError(f"{column} refers to a {table} row that does not exist or has no key")
    if value.key not in known:
        raise RowError(f"{column} refers to {table} {value.key!r}, which is missing or unusable")
    return value.key


@functools.lru_cache(maxsize=PARSE_CACHE)
def _address(value: str, column: str, version: int | None = None) -> str:
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise RowError(f"{column}={value!r} is not an IP address") from None
    if version is not None and ip.version != version:
        raise RowError(f"{column}={value!r} is not an IPv{version} address")
    return str(ip)


@functools.lru_cache(maxsize=PARSE_CACHE)
def _prefix(value: object, column: str) -> IPNetwork:
    if not isinstance(value, str):
        raise RowError(f"{column} holds {value!r}, not a CIDR string")
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise RowError(f"{column} holds {value!r}, not a CIDR") from None


@functools.lru_cache(maxsize=PARSE_CACHE)
def _mac(value: str, column: str) -> str:
    try:
        mac = normalize_mac(value, column)
    except PolicyError:
        raise RowError(f"{column}={value!r} is not a MAC address") from None
    if int(mac[:2], 16) & 1:
        raise RowError(f"{column}={value!r} is a multicast MAC, not a NIC's")
    return mac


def _port_range(value: str, column: str) -> PortRange | None:
    if value in ("", "*"):
        return None
    low, _, high = value.partition("-")
    try:
        lo, hi = int(low), int(high or low)
    except ValueError:
        raise RowError(f"{column}={value!r} is not 'lo-hi'") from None
    if not 0 <= lo <= hi <= FULL_PORT_RANGE[1]:
        raise RowError(f"{column}={value!r} is not a port range within 0..65535")
    return None if (lo, hi) == FULL_PORT_RANGE else (lo, hi)


@functools.lru_cache(maxsize=PARSE_CACHE)
def _inside(address: str, prefix: IPNetwork) -> bool:
    return ipaddress.ip_address(address) in prefix


def lowest_usable(prefix: IPNetwork) -> str:
    """The distributed router's address in a subnet: its lowest usable IP (x.x.x.1)."""
    if prefix.num_addresses <= 2:
        return str(prefix.network_address)
    return str(prefix.network_address + 1)


# -- one reader per table -----------------------------------------------------------------
def _global(key: str, row: Row, cat: Catalog) -> None:
    other = _map(row, "other_config")
    mac = other.get("distributed_router_mac")
    router_mac = _mac(mac, "other_config:distributed_router_mac") if mac else None
    cat.global_row = GlobalView(router_mac, str(other.get("encapsulation", "")))


def _provider_address(key: str, row: Row, cat: Catalog) -> None:
    address = _address(_text(row, "address"), "address", 4)
    gateway_text = _text(row, "default_gateway", required=False)
    gateway = _address(gateway_text, "default_gateway", 4) if gateway_text else None
    cat.provider_addresses[key] = ProviderAddressView(
        address=address,
        prefix_length=_int(row, "prefix_length", 0, 32),
        vlan=_int(row, "vlan", 0, 4094),
        gateway=gateway,
        interface=_text(row, "interface", required=False),
    )


def _switch(key: str, row: Row, cat: Catalog) -> None:
    vsid = _int(row, "tunnel_key", MIN_VSID, MAX_VSID)
    if key != str(vsid):
        raise RowError(f"name {key!r} is not its tunnel_key {vsid} (the VSID)")
    other = _map(row, "other_config")
    prefix_text = other.get("address_prefix")
    prefix = _prefix(prefix_text, "other_config:address_prefix") if prefix_text else None
    gateway = lowest_usable(prefix) if prefix is not None else None
    given = other.get("gateway_ip")
    if given and gateway is not None and _address(given, "other_config:gateway_ip") != gateway:
        raise RowError(
            f"other_config:gateway_ip={given!r} is not the lowest usable address {gateway} "
            f"of {prefix}"
        )
    prefix6, gateway6 = _ipv6_subnet(other, prefix)
    cat.switches[key] = SwitchView(
        key=key,
        vsid=vsid,
        rdid=_text(row, "description"),
        prefix=prefix,
        gateway_ip=gateway,
        virtual_network=str(other.get("virtual_network", "")),
        prefix6=prefix6,
        gateway_ip6=gateway6,
    )


def _ipv6_subnet(
    other: Mapping[Atom, Atom], prefix: IPNetwork | None
) -> tuple[IPNetwork | None, str | None]:
    """A dual-stack switch's IPv6 prefix and router address (``address_prefix_v6``,
    ``gateway_ip_v6``), beside an IPv4 ``address_prefix``; (None, None) without one."""
    text = other.get("address_prefix_v6")
    if not text:
        return None, None
    prefix6 = _prefix(text, "other_config:address_prefix_v6")
    if prefix6.version != IPV6 or prefix is None or prefix.version == IPV6:
        raise RowError(
            f"other_config:address_prefix_v6={text!r} must be IPv6, beside an IPv4 address_prefix"
        )
    gateway = lowest_usable(prefix6)
    given = other.get("gateway_ip_v6")
    if given and _address(given, "other_config:gateway_ip_v6") != gateway:
        raise RowError(
            f"other_config:gateway_ip_v6={given!r} is not the lowest usable address {gateway} "
            f"of {prefix6}"
        )
    return prefix6, gateway


def _router(key: str, row: Row, cat: Catalog) -> None:
    rdid = _text(row, "description")
    bound: set[str] = set()
    for prefix, target in _map(row, "switch_binding").items():
        switch = _ref(target, f"switch_binding[{prefix}]", "Logical_Switch", cat.switches)
        if cat.switches[switch].rdid != rdid:
            raise RowError(
                f"switch_binding[{prefix}] binds Logical_Switch {switch!r} of routing domain "
                f"{cat.switches[switch].rdid}, not {rdid}"
            )
        bound.add(switch)
    enabled = row.get("enable_logical_router", False)
    space = str(_map(row, "other_config").get("address_space", ""))
    routes: list[tuple[str, str]] = []
    for prefix, hop in _map(row, "static_routes").items():
        network = _prefix(prefix, "static_routes")
        if str(network) != prefix:
            raise RowError(f"static_routes key {prefix!r} has host bits set")
        next_hop = _address(str(hop), f"static_routes[{prefix}]", network.version)
        routes.append((prefix, next_hop))
    cat.routers[key] = RouterView(
        key=key,
        rdid=rdid,
        enabled=enabled is True,
        switches=frozenset(bound),
        address_space=tuple(str(_prefix(p, "address_space")) for p in space.split(",") if p),
        routes=tuple(sorted(routes)),
    )


def _locator(key: str, row: Row, cat: Catalog) -> None:
    kind = _text(row, "encapsulation_type")
    if kind not in ENCAPSULATIONS:
        raise RowError(f"encapsulation_type={kind!r} is not one of {sorted(ENCAPSULATIONS)}")
    address = _address(_text(row, "dst_ip"), "dst_ip", 4)
    encapsulation: Literal["vxlan", "nvgre"] = "vxlan" if kind == "vxlan_over_ipv4" else "nvgre"
    cat.locators[key] = LocatorView(key, address, encapsulation)


def _ucast(key: str, row: Row, cat: Catalog) -> None:
    switch = _ref(row.get("logical_switch"), "logical_switch", "Logical_Switch", cat.switches)
    locator = _ref(row.get("locator"), "locator", "Physical_Locator", cat.locators)
    mac = _mac(_text(row, "MAC"), "MAC")
    address = _address(_text(row, "ipaddr"), "ipaddr")
    prefixes = cat.switches[switch].prefixes()
    if prefixes and not any(_inside(address, p) for p in prefixes):
        subnet = ", ".join(str(p) for p in prefixes)
        raise RowError(f"ipaddr {address} is outside its logical switch's subnet {subnet}")
    mapping_type = _text(row, "mapping_type")
    if mapping_type not in ("local", "remote"):
        raise RowError(f"mapping_type={mapping_type!r} is not local or remote")
    cat.macs[key] = MacView(key, mac, address, switch, locator, mapping_type == "local")


def _mcast(key: str, row: Row, cat: Catalog) -> None:
    switch = _ref(row.get("logical_switch"), "logical_switch", "Logical_Switch", cat.switches)
    cat.mcasts[key] = McastView(key, switch)


def _port(key: str, row: Row, cat: Catalog) -> None:
    if is_team_row(row):
        return  # a team member's row (agent.team_rows), no VM port
    bindings = _map(row, "vlan_bindings")
    switch: str | None = None
    if bindings:
        if set(bindings) != {UNTAGGED_BINDING}:
            raise RowError(f"vlan_bindings {sorted(bindings)} must bind only VLAN 0")
        switch = _ref(
            bindings[UNTAGGED_BINDING], "vlan_bindings[0]", "Logical_Switch", cat.switches
        )
    other = _map(row, "other_config")
    status = {str(k): str(v) for k, v in _map(row, "status").items()}
    access_vlan: int | None = None
    if ACCESS_VLAN in other:
        if switch is not None:
            raise RowError("other_config:access_vlan is set on a port bound to a logical switch")
        access_vlan = _access_vlan(other[ACCESS_VLAN])
    mac: str | None = None
    ips: tuple[str, ...] = ()
    dns = tuple(
        _address(a.strip(), "other_config:dns_servers")
        for a in str(other.get("dns_servers", "")).split(",")
        if a.strip()
    )
    if switch is not None or access_vlan is not None:
        mac_text = other.get("mac_address")
        if not mac_text:
            raise RowError("other_config:mac_address is missing on a bound port")
        mac = _mac(mac_text, "other_config:mac_address")
        texts = [a.strip() for a in str(other.get("ip_addresses", "")).split(",") if a.strip()]
        ips = tuple(sorted(_address(a, "other_config:ip_addresses") for a in texts))
    cat.ports[key] = PortView(
        key=key,
        switch=switch,
        mac=mac,
        ip_addresses=ips,
        mac_spoofing=other.get("mac_spoofing") == TRUE,
        status=status,
        gateway=other.get("gateway") == TRUE,
        access_vlan=access_vlan,
        arp_guard=other.get("arp_guard") == TRUE,
        dhcp_guard=other.get("dhcp_guard") == TRUE,
        dns_servers=dns,
        qos=_qos(other),
    )


def _qos(other: Mapping[object, object]) -> QosSettings:
    """The QoS caps and reservation of other_config (``qos_outbound_max_mbps``,
    ``qos_inbound_max_mbps``, ``qos_outbound_reserved_mbps``)."""
    caps = []
    for column in (QOS_OUTBOUND_COLUMN, QOS_INBOUND_COLUMN, QOS_RESERVED_COLUMN):
        text = str(other.get(column, "0"))
        if not text.isdigit() or int(text) > MAX_MBPS:
            raise RowError(
                f"other_config:{column}={clipped(text)!r} is not an integer in 0..{MAX_MBPS}"
            )
        caps.append(int(text))
    if caps[0] and caps[2] > caps[0]:
        raise RowError(
            f"other_config:{QOS_RESERVED_COLUMN}={caps[2]} exceeds {QOS_OUTBOUND_COLUMN}={caps[0]}"
        )
    return QosSettings(caps[0], caps[1], caps[2])


def _access_vlan(value: object) -> int:
    text = str(value)
    if not text.isdigit() or not MIN_ACCESS_VLAN <= int(text) <= MAX_ACCESS_VLAN:
        raise RowError(
            f"other_config:access_vlan={clipped(text)!r} is not a VLAN in"
            f" {MIN_ACCESS_VLAN}..{MAX_ACCESS_VLAN}"
        )
    return int(text)


def _fw_rule(key: str, row: Row, cat: Catalog) -> None:
    layer = _text(row, "acl_layer")
    if layer not in ACL_LAYERS:
        raise RowError(f"acl_layer={layer!r} is not subnet or nic")
    direction = _text(row, "direction")
    if direction not in ("in", "out"):
        raise RowError(f"direction={direction!r} is not in or out")
    action = _text(row, "action")
    if action not in ("allow", "deny"):
        raise RowError(f"action={action!r} is not allow or deny")
    protocols: set[int] = set()
    for p in _set(row, "protocols"):
        if not isinstance(p, str) or not p.isdigit() or not 0 <= int(p) <= 255:
            raise RowError(f"protocols holds {p!r}, not an IP protocol number 0..255")
        protocols.add(int(p))
    prefixes = {
        column: tuple(sorted((_prefix(v, column) for v in _set(row, column)), key=str))
        for column in ("src_ip_addresses", "dst_ip_addresses", "src_ip_excluded", "dst_ip_excluded")
    }
    cat.fw_rules[key] = FwRuleView(
        key=key,
        vnic=_text(row, "vnic_id"),
        layer=layer,
        name=_text(row, "rule_name"),
        direction="in" if direction == "in" else "out",
        allow=action == "allow",
        protocols=frozenset(protocols),
        src_prefixes=prefixes["src_ip_addresses"],
        dst_prefixes=prefixes["dst_ip_addresses"],
        src_excluded=prefixes["src_ip_excluded"],
        dst_excluded=prefixes["dst_ip_excluded"],
        src_ports=_port_range(_text(row, "src_port", required=False), "src_port"),
        dst_ports=_port_range(_text(row, "dst_port", required=False), "dst_port"),
        priority=_int(row, "priority", 0, 65535),
        enabled=row.get("rule_state", "enabled") != "disabled",
    )


Reader: TypeAlias = Callable[[str, Row, Catalog], None]
READERS: tuple[tuple[str, Reader], ...] = (
    ("Global", _global),
    ("Provider_Address", _provider_address),
    ("Logical_Switch", _switch),
    ("Logical_Router", _router),
    ("Physical_Locator", _locator),
    ("Ucast_Macs_Remote", _ucast),
    ("Mcast_Macs_Remote", _mcast),
    ("Physical_Port", _port),
    ("FW_Rules", _fw_rule),
)
"""Tables in the order they are read: a table after the tables it refers to."""
TABLES = tuple(table for table, _ in READERS)


def read_catalog(
    snapshot: Snapshot, uuids: Mapping[str, Mapping[str, str]] | None = None
) -> Catalog:
    """Every row of ``snapshot`` as a view; bad rows as problems (``uuids`` names them).

    Nothing is logged here: the agent logs a problem when it appears and when it goes.
    """
    cat = Catalog()
    for table, reader in READERS:
        for key in sorted(snapshot.get(table, {})):
            row = snapshot[table][key]
            try:
                reader(key, row, cat)
            except RowError as err:
                row_uuid = (uuids or {}).get(table, {}).get(key, "")
                cat.problems.append(Problem(table, row_uuid, key, str(err)))
    return cat
