"""The lab topology file: a YAML description of a datacenter, loaded into frozen values.

A topology names the physical network (PA subnets joined by one router), the Hyper-V
hosts on it, the tenants' virtual networks with their subnets and ACLs, and the VMs.
``load(path)`` / ``parse(text)`` / ``from_document(doc)`` validate everything and raise
one ``TopologyError`` whose message names the key path, e.g.
``vms[2].ip: 10.1.1.300 is not an IPv4 address``. The format is documented in
docs/topology.md; this module only describes, the fabric builder instantiates.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

from openhnv.lab.errors import LabError

ENCAPSULATIONS = ("vxlan", "nvgre")
VLAN_MAX = 4094
VSID_MIN = 4096
VSID_MAX = 2**24 - 2
DEFAULT_UPLINKS = 2
MAX_UPLINKS = 8
ACL_PRIORITY_MIN = 100
ACL_PRIORITY_MAX = 65000
PORT_MAX = 65535
ACL_PROTOCOLS = ("TCP", "UDP", "ICMP", "All")
ACL_ACTIONS = ("Allow", "Deny")
ACL_TYPES = ("Inbound", "Outbound")
ACL_PREFIX_TAGS = ("*", "Internet")
# Lab names become part of namespace names: short, lower case, no hyphen (the separator).
_LAB_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")
# Resource names: what Microsoft's resourceId allows, kept short for interface names.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")

T = TypeVar("T")


class TopologyError(LabError, ValueError):
    """A topology file is malformed; the message starts with the offending key path."""


@dataclass(frozen=True, slots=True)
class PaSubnet:
    """A provider-address subnet of the physical network, with its router address."""

    name: str
    prefix: ipaddress.IPv4Network
    vlan: int
    gateway: ipaddress.IPv4Address


@dataclass(frozen=True, slots=True)
class Host:
    """A Hyper-V host: its PA subnet and how many uplinks (team members, one PA each)."""

    name: str
    pa_subnet: str
    uplinks: int


@dataclass(frozen=True, slots=True)
class VirtualSubnet:
    """A virtual subnet (one VSID) of a virtual network, optionally with an ACL."""

    name: str
    prefix: ipaddress.IPv4Network
    vsid: int | None
    acl: str | None

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The distributed router's address: the lowest usable IP of the subnet."""
        return self.prefix.network_address + 1


@dataclass(frozen=True, slots=True)
class VirtualNetwork:
    """A tenant's virtual network (one routing domain)."""

    name: str
    address_space: tuple[ipaddress.IPv4Network, ...]
    subnets: tuple[VirtualSubnet, ...]

    def subnet(self, name: str) -> VirtualSubnet:
        for subnet in self.subnets:
            if subnet.name == name:
                return subnet
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class AclRule:
    """One Microsoft-style ACL rule (Datacenter Firewall)."""

    name: str
    protocol: str
    source_prefix: str
    source_ports: tuple[int, int]
    destination_prefix: str
    destination_ports: tuple[int, int]
    action: str
    priority: int
    type: str


@dataclass(frozen=True, slots=True)
class Acl:
    """A named access control list."""

    name: str
    rules: tuple[AclRule, ...]


@dataclass(frozen=True, slots=True)
class Vm:
    """A VM with one NIC in one virtual subnet."""

    name: str
    host: str
    virtual_network: str
    subnet: str
    ip: ipaddress.IPv4Address
    mac: str | None


@dataclass(frozen=True, slots=True)
class Topology:
    """A whole lab datacenter."""

    name: str
    encapsulation: str
    pa_subnets: tuple[PaSubnet, ...]
    hosts: tuple[Host, ...]
    virtual_networks: tuple[VirtualNetwork, ...]
    acls: tuple[Acl, ...]
    vms: tuple[Vm, ...]

    def pa_subnet(self, name: str) -> PaSubnet:
        return _by_name(self.pa_subnets, name)

    def host(self, name: str) -> Host:
        return _by_name(self.hosts, name)

    def virtual_network(self, name: str) -> VirtualNetwork:
        return _by_name(self.virtual_networks, name)

    def vm(self, name: str) -> Vm:
        return _by_name(self.vms, name)

    def vm_subnet(self, vm: Vm) -> VirtualSubnet:
        return self.virtual_network(vm.virtual_network).subnet(vm.subnet)


class _Named(Protocol):
    @property
    def name(self) -> str: ...


N = TypeVar("N", bound=_Named)


def _by_name(items: tuple[N, ...], name: str) -> N:
    for item in items:
        if item.name == name:
            return item
    raise KeyError(name)


# ---------------------------------------------------------------- loading


def load(path: str | Path) -> Topology:
    """Read and validate a topology file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TopologyError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse(text, source=str(path))


def parse(text: str, source: str = "<topology>") -> Topology:
    """Validate a topology given as YAML text."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TopologyError(f"{source}: not valid YAML: {exc}") from exc
    return from_document(document)


def from_document(document: object) -> Topology:
    """Validate a topology given as the plain data YAML produces."""
    top = _mapping(document, "")
    _known(
        top,
        "",
        ("name", "encapsulation", "pa_subnets", "hosts", "virtual_networks", "acls", "vms"),
    )
    name = _string(top, "name", "", pattern=_LAB_NAME, hint="1-12 of a-z0-9, starting a-z")
    encapsulation = _choice(top, "encapsulation", "", ENCAPSULATIONS, default="vxlan").lower()
    pa_subnets = _list(top, "pa_subnets", "", _pa_subnet, required=True)
    _unique(pa_subnets, "pa_subnets")
    _no_overlap([(s.name, s.prefix) for s in pa_subnets], "pa_subnets")
    hosts = _list(top, "hosts", "", _host, required=True)
    _unique(hosts, "hosts")
    subnet_names = {s.name for s in pa_subnets}
    for i, host in enumerate(hosts):
        if host.pa_subnet not in subnet_names:
            raise TopologyError(f"hosts[{i}].pa_subnet: no PA subnet named {host.pa_subnet!r}")
    acls = _list(top, "acls", "", _acl, required=False)
    _unique(acls, "acls")
    acl_names = {a.name for a in acls}
    networks = _list(top, "virtual_networks", "", _virtual_network, required=True)
    _unique(networks, "virtual_networks")
    _check_vsids(networks)
    for i, network in enumerate(networks):
        for j, subnet in enumerate(network.subnets):
            if subnet.acl is not None and subnet.acl not in acl_names:
                raise TopologyError(
                    f"virtual_networks[{i}].subnets[{j}].acl: no ACL named {subnet.acl!r}"
                )
    vms = _list(top, "vms", "", _vm, required=True)
    _unique(vms, "vms")
    topology = Topology(
        name=name,
        encapsulation=encapsulation,
        pa_subnets=pa_subnets,
        hosts=hosts,
        virtual_networks=networks,
        acls=acls,
        vms=vms,
    )
    _check_vms(topology)
    return topology


# ---------------------------------------------------------------- sections


def _pa_subnet(raw: object, path: str) -> PaSubnet:
    item = _mapping(raw, path)
    _known(item, path, ("name", "prefix", "vlan", "gateway"))
    prefix = _network(item, "prefix", path)
    gateway = _address(item, "gateway", path)
    if gateway not in prefix or gateway in (prefix.network_address, prefix.broadcast_address):
        raise TopologyError(f"{path}.gateway: {gateway} is not a usable address of {prefix}")
    return PaSubnet(
        name=_string(item, "name", path, pattern=_NAME),
        prefix=prefix,
        vlan=_integer(item, "vlan", path, 0, VLAN_MAX, default=0),
        gateway=gateway,
    )


def _host(raw: object, path: str) -> Host:
    item = _mapping(raw, path)
    _known(item, path, ("name", "pa_subnet", "uplinks"))
    return Host(
        name=_string(item, "name", path, pattern=_NAME),
        pa_subnet=_string(item, "pa_subnet", path),
        uplinks=_integer(item, "uplinks", path, 1, MAX_UPLINKS, default=DEFAULT_UPLINKS),
    )


def _virtual_network(raw: object, path: str) -> VirtualNetwork:
    item = _mapping(raw, path)
    _known(item, path, ("name", "address_space", "subnets"))
    name = _string(item, "name", path, pattern=_NAME)
    spaces_raw = item.get("address_space")
    if isinstance(spaces_raw, str):
        spaces_raw = [spaces_raw]
    if not isinstance(spaces_raw, list) or not spaces_raw:
        raise TopologyError(f"{path}.address_space: expected a CIDR or a list of CIDRs")
    spaces = tuple(
        _parse_network(s, f"{path}.address_space[{k}]") for k, s in enumerate(spaces_raw)
    )
    subnets = _list(item, "subnets", path, _virtual_subnet, required=True)
    _unique(subnets, f"{path}.subnets")
    _no_overlap([(s.name, s.prefix) for s in subnets], f"{path}.subnets")
    for j, subnet in enumerate(subnets):
        if not any(subnet.prefix.subnet_of(space) for space in spaces):
            raise TopologyError(
                f"{path}.subnets[{j}].prefix: {subnet.prefix} is outside the address space"
                f" {', '.join(map(str, spaces))}"
            )
    return VirtualNetwork(name=name, address_space=spaces, subnets=subnets)


def _virtual_subnet(raw: object, path: str) -> VirtualSubnet:
    item = _mapping(raw, path)
    _known(item, path, ("name", "prefix", "vsid", "acl"))
    prefix = _network(item, "prefix", path)
    if prefix.num_addresses < 4:
        raise TopologyError(f"{path}.prefix: {prefix} is too small (at most /30)")
    vsid = _integer(item, "vsid", path, VSID_MIN, VSID_MAX, default=None)
    acl = _string(item, "acl", path) if "acl" in item and item["acl"] is not None else None
    return VirtualSubnet(
        name=_string(item, "name", path, pattern=_NAME), prefix=prefix, vsid=vsid, acl=acl
    )


def _acl(raw: object, path: str) -> Acl:
    item = _mapping(raw, path)
    _known(item, path, ("name", "rules"))
    rules = _list(item, "rules", path, _acl_rule, required=False)
    _unique(rules, f"{path}.rules")
    return Acl(name=_string(item, "name", path, pattern=_NAME), rules=rules)


def _acl_rule(raw: object, path: str) -> AclRule:
    item = _mapping(raw, path)
    _known(
        item,
        path,
        (
            "name",
            "protocol",
            "source_prefix",
            "source_ports",
            "destination_prefix",
            "destination_ports",
            "action",
            "priority",
            "type",
        ),
    )
    return AclRule(
        name=_string(item, "name", path, pattern=_NAME),
        protocol=_choice(item, "protocol", path, ACL_PROTOCOLS, default="All"),
        source_prefix=_acl_prefix(item, "source_prefix", path),
        source_ports=_port_range(item, "source_ports", path),
        destination_prefix=_acl_prefix(item, "destination_prefix", path),
        destination_ports=_port_range(item, "destination_ports", path),
        action=_choice(item, "action", path, ACL_ACTIONS),
        priority=_integer(item, "priority", path, ACL_PRIORITY_MIN, ACL_PRIORITY_MAX),
        type=_choice(item, "type", path, ACL_TYPES),
    )


def _vm(raw: object, path: str) -> Vm:
    item = _mapping(raw, path)
    _known(item, path, ("name", "host", "virtual_network", "subnet", "ip", "mac"))
    mac: str | None = None
    if item.get("mac") is not None:
        text = str(item["mac"])
        if not _MAC.fullmatch(text):
            raise TopologyError(f"{path}.mac: {text} is not a MAC address")
        digits = re.sub(r"[:-]", "", text).lower()
        if int(digits[:2], 16) & 1:
            raise TopologyError(f"{path}.mac: {text} is a multicast MAC address")
        mac = ":".join(digits[k : k + 2] for k in range(0, 12, 2))
    return Vm(
        name=_string(item, "name", path, pattern=_NAME),
        host=_string(item, "host", path),
        virtual_network=_string(item, "virtual_network", path),
        subnet=_string(item, "subnet", path),
        ip=_address(item, "ip", path),
        mac=mac,
    )


# ---------------------------------------------------------------- cross checks


def _check_vsids(networks: tuple[VirtualNetwork, ...]) -> None:
    seen: dict[int, str] = {}
    for i, network in enumerate(networks):
        for j, subnet in enumerate(network.subnets):
            if subnet.vsid is None:
                continue
            where = f"virtual_networks[{i}].subnets[{j}].vsid"
            if subnet.vsid in seen:
                raise TopologyError(
                    f"{where}: VSID {subnet.vsid} is already used by {seen[subnet.vsid]}"
                )
            seen[subnet.vsid] = f"{network.name}/{subnet.name}"


def _check_vms(topology: Topology) -> None:
    host_names = {h.name for h in topology.hosts}
    taken: dict[tuple[str, ipaddress.IPv4Address], str] = {}
    for i, vm in enumerate(topology.vms):
        path = f"vms[{i}]"
        if vm.host not in host_names:
            raise TopologyError(f"{path}.host: no host named {vm.host!r}")
        try:
            network = topology.virtual_network(vm.virtual_network)
        except KeyError:
            raise TopologyError(
                f"{path}.virtual_network: no virtual network named {vm.virtual_network!r}"
            ) from None
        try:
            subnet = network.subnet(vm.subnet)
        except KeyError:
            raise TopologyError(
                f"{path}.subnet: virtual network {network.name!r} has no subnet {vm.subnet!r}"
            ) from None
        prefix = subnet.prefix
        if vm.ip not in prefix:
            raise TopologyError(f"{path}.ip: {vm.ip} is outside subnet {subnet.name} ({prefix})")
        if vm.ip in (prefix.network_address, prefix.broadcast_address, subnet.gateway):
            raise TopologyError(
                f"{path}.ip: {vm.ip} is reserved in {prefix} (network, broadcast or gateway)"
            )
        key = (network.name, vm.ip)
        if key in taken:
            raise TopologyError(f"{path}.ip: {vm.ip} is already used by VM {taken[key]!r}")
        taken[key] = vm.name


# ---------------------------------------------------------------- field helpers


def _unique(items: tuple[Any, ...], path: str) -> None:
    seen: set[str] = set()
    for k, item in enumerate(items):
        if item.name in seen:
            raise TopologyError(f"{path}[{k}].name: {item.name!r} is used twice")
        seen.add(item.name)


def _no_overlap(prefixes: list[tuple[str, ipaddress.IPv4Network]], path: str) -> None:
    for k, (name, prefix) in enumerate(prefixes):
        for other_name, other in prefixes[:k]:
            if prefix.overlaps(other):
                raise TopologyError(
                    f"{path}[{k}].prefix: {prefix} ({name}) overlaps {other} ({other_name})"
                )


def _mapping(raw: object, path: str) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        where = path or "topology"
        raise TopologyError(f"{where}: expected a mapping, got {type(raw).__name__}")
    return raw


def _known(item: Mapping[str, Any], path: str, keys: tuple[str, ...]) -> None:
    for key in item:
        if key not in keys:
            prefix = f"{path}." if path else ""
            raise TopologyError(f"{prefix}{key}: unknown key (expected one of {', '.join(keys)})")


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _required(item: Mapping[str, Any], key: str, path: str) -> object:
    if key not in item or item[key] is None:
        raise TopologyError(f"{_key(path, key)}: missing")
    return item[key]


def _list(
    item: Mapping[str, Any],
    key: str,
    path: str,
    parse_one: Callable[[object, str], T],
    required: bool,
) -> tuple[T, ...]:
    raw = item.get(key)
    if raw is None:
        if required:
            raise TopologyError(f"{_key(path, key)}: missing")
        return ()
    if not isinstance(raw, list):
        raise TopologyError(f"{_key(path, key)}: expected a list, got {type(raw).__name__}")
    if required and not raw:
        raise TopologyError(f"{_key(path, key)}: must not be empty")
    return tuple(parse_one(entry, f"{_key(path, key)}[{k}]") for k, entry in enumerate(raw))


def _string(
    item: Mapping[str, Any],
    key: str,
    path: str,
    pattern: re.Pattern[str] | None = None,
    hint: str = "letters, digits, '_', '.', '-', at most 32",
) -> str:
    value = _required(item, key, path)
    if not isinstance(value, str):
        raise TopologyError(f"{_key(path, key)}: expected a string, got {value!r}")
    if pattern is not None and not pattern.fullmatch(value):
        raise TopologyError(f"{_key(path, key)}: {value!r} is not a valid name ({hint})")
    return value


def _choice(
    item: Mapping[str, Any],
    key: str,
    path: str,
    choices: tuple[str, ...],
    default: str | None = None,
) -> str:
    if default is not None and item.get(key) is None:
        return default
    value = _required(item, key, path)
    for choice in choices:
        if isinstance(value, str) and value.lower() == choice.lower():
            return choice
    raise TopologyError(f"{_key(path, key)}: {value!r} is not one of {', '.join(choices)}")


def _integer(
    item: Mapping[str, Any],
    key: str,
    path: str,
    low: int,
    high: int,
    default: Any = ...,
) -> Any:
    if default is not ... and item.get(key) is None:
        return default
    value = _required(item, key, path)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TopologyError(f"{_key(path, key)}: {value!r} is not an integer")
    if not low <= value <= high:
        raise TopologyError(f"{_key(path, key)}: {value} is not in {low}..{high}")
    return value


def _address(item: Mapping[str, Any], key: str, path: str) -> ipaddress.IPv4Address:
    value = _required(item, key, path)
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        raise TopologyError(f"{_key(path, key)}: {value} is not an IPv4 address") from None


def _network(item: Mapping[str, Any], key: str, path: str) -> ipaddress.IPv4Network:
    return _parse_network(_required(item, key, path), _key(path, key))


def _parse_network(value: object, where: str) -> ipaddress.IPv4Network:
    text = str(value)
    if "/" not in text:
        raise TopologyError(f"{where}: {text} is not an IPv4 prefix (CIDR such as 10.0.0.0/24)")
    try:
        return ipaddress.IPv4Network(text)
    except ValueError as exc:
        raise TopologyError(f"{where}: {text} is not an IPv4 prefix ({exc})") from None


def _acl_prefix(item: Mapping[str, Any], key: str, path: str) -> str:
    value = item.get(key, "*")
    text = "*" if value is None else str(value)
    for tag in ACL_PREFIX_TAGS:
        if text.lower() == tag.lower():
            return tag
    return str(_parse_network(text, _key(path, key)))


def _port_range(item: Mapping[str, Any], key: str, path: str) -> tuple[int, int]:
    value = item.get(key, "*")
    text = "*" if value is None else str(value).strip()
    if text in ("*", ""):
        return (0, PORT_MAX)
    low_text, _, high_text = text.partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if high_text else low
    except ValueError:
        raise TopologyError(
            f"{_key(path, key)}: {value!r} is not a port or port range (e.g. 80, 1000-2000, *)"
        ) from None
    if not 0 <= low <= high <= PORT_MAX:
        raise TopologyError(f"{_key(path, key)}: {value!r} is not a range within 0..{PORT_MAX}")
    return (low, high)


def lab_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a lab name, or None when it can."""
    if _LAB_NAME.fullmatch(name):
        return None
    return f"{name!r} is not a valid lab name (1-12 of a-z0-9, starting a-z)"
