"""The lab topology file: a YAML description of a datacenter, loaded into frozen values.

A topology names the physical network (PA subnets joined by one router), the Hyper-V
hosts on it, the tenants' virtual networks with their subnets and ACLs, the VMs, and
optionally the edge (``lab.edge``: external networks, gateways, sites, TORs).
``load(path)`` / ``parse(text)`` / ``from_document(doc)`` validate everything and raise
one ``TopologyError`` whose message names the key path, e.g.
``vms[2].ip: 10.1.1.300 is not an IPv4 address``. The format is documented in
docs/topology.md; this module only describes, the fabric builder instantiates.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from openhnv.lab import fields
from openhnv.lab.edge import KEYS, Edge, parse_edge
from openhnv.lab.errors import TopologyError as TopologyError
from openhnv.vfp.qos import MAX_MBPS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

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
MAX_PREFIX6_LEN = 126
# Lab names become part of namespace names: short, lower case, no hyphen (the separator).
_LAB_NAME = re.compile(r"[a-z][a-z0-9]{0,11}")
# Resource names: what Microsoft's resourceId allows, kept short for interface names.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-]?)[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}")
V4 = ipaddress.IPv4Address
Net = ipaddress.IPv4Network


@dataclass(frozen=True, slots=True)
class PaSubnet:
    """A provider-address subnet of the physical network, with its router address."""

    name: str
    prefix: ipaddress.IPv4Network
    vlan: int
    gateway: ipaddress.IPv4Address
    ip_pool: tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]

    @property
    def pool_size(self) -> int:
        return int(self.ip_pool[1]) - int(self.ip_pool[0]) + 1


@dataclass(frozen=True, slots=True)
class Host:
    """A Hyper-V host: its PA subnet and how many uplinks (team members, one PA each)."""

    name: str
    pa_subnet: str
    uplinks: int
    uplink_mbps: int | None = None  # the uplinks' capacity (hnv host --uplink-mbps)


@dataclass(frozen=True, slots=True)
class VirtualSubnet:
    """A virtual subnet (one VSID) of a virtual network, optionally with an ACL."""

    name: str
    prefix: ipaddress.IPv4Network
    vsid: int | None
    acl: str | None
    prefix6: ipaddress.IPv6Network | None = None  # dual stack: the subnet's IPv6 prefix

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        """The distributed router's address: the lowest usable IP of the subnet."""
        return self.prefix.network_address + 1

    @property
    def gateway6(self) -> ipaddress.IPv6Address | None:
        """The distributed router's IPv6 address: the lowest usable of ``prefix6``."""
        return None if self.prefix6 is None else self.prefix6.network_address + 1


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
    """A VM with one NIC in one virtual subnet, or (``logical_network`` set, no
    ``virtual_network``) in a VLAN subnet of an external network: an access port."""

    name: str
    host: str
    virtual_network: str  # "" for a VM on a logical network
    subnet: str
    ip: ipaddress.IPv4Address
    mac: str | None
    logical_network: str | None = None
    acl: str | None = None  # the NIC's own ACL (its ipConfiguration's accessControlList)
    dhcp: bool = False  # the VM's namespace takes its address from a DHCP client
    dns_servers: tuple[IPAddress, ...] = ()  # the NIC's dnsSettings (IPv4 and IPv6)
    ip6: ipaddress.IPv6Address | None = None  # a second ipConfiguration (dual stack)
    qos_outbound_mbps: int = 0  # the NIC's qosSettings.outboundMaximumMbps (0: no cap)
    qos_inbound_mbps: int = 0  # the NIC's qosSettings.inboundMaximumMbps (0: no cap)
    qos_reserved_mbps: int = 0  # the NIC's qosSettings.outboundReservedValue (0: none)


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
    edge: Edge = field(default_factory=Edge)  # gateways and the networks outside (lab.edge)

    def pa_subnet(self, name: str) -> PaSubnet:
        return fields.by_name(self.pa_subnets, name)

    def host(self, name: str) -> Host:
        return fields.by_name(self.hosts, name)

    def virtual_network(self, name: str) -> VirtualNetwork:
        return fields.by_name(self.virtual_networks, name)

    def vm(self, name: str) -> Vm:
        return fields.by_name(self.vms, name)

    def vm_subnet(self, vm: Vm) -> VirtualSubnet:
        return self.virtual_network(vm.virtual_network).subnet(vm.subnet)

    def vm_prefix(self, vm: Vm) -> tuple[Net, V4 | None]:
        """The prefix of the VM's subnet and its default gateway (None: no route out)."""
        if vm.logical_network is None:
            subnet = self.vm_subnet(vm)
            return subnet.prefix, subnet.gateway
        found = self.edge.external_network(vm.logical_network).subnet(vm.subnet)
        return found.prefix, found.gateway

    # what lab.edge checks its sections against
    def pa_subnet_names(self) -> dict[str, tuple[Net, int, V4, tuple[V4, V4]]]:
        return {p.name: (p.prefix, p.vlan, p.gateway, p.ip_pool) for p in self.pa_subnets}

    def host_names(self) -> set[str]:
        return {h.name for h in self.hosts}

    def vnet_subnets(self) -> dict[tuple[str, str], Net]:
        return {(n.name, s.name): s.prefix for n in self.virtual_networks for s in n.subnets}

    def vm_addresses(self) -> set[tuple[str, V4]]:
        return {(vm.virtual_network, vm.ip) for vm in self.vms}


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
    top = fields.mapping(document, "")
    fields.known(
        top,
        "",
        ("name", "encapsulation", "pa_subnets", "hosts", "virtual_networks", "acls", "vms", *KEYS),
    )
    name = fields.string(top, "name", "", pattern=_LAB_NAME, hint="1-12 of a-z0-9, starting a-z")
    encapsulation = fields.choice(top, "encapsulation", "", ENCAPSULATIONS, default="vxlan").lower()
    pa_subnets = fields.listed(top, "pa_subnets", "", _pa_subnet, required=True)
    fields.unique(pa_subnets, "pa_subnets")
    fields.no_overlap([(s.name, s.prefix) for s in pa_subnets], "pa_subnets")
    hosts = fields.listed(top, "hosts", "", _host, required=True)
    fields.unique(hosts, "hosts")
    subnet_names = {s.name for s in pa_subnets}
    for i, host in enumerate(hosts):
        if host.pa_subnet not in subnet_names:
            raise TopologyError(f"hosts[{i}].pa_subnet: no PA subnet named {host.pa_subnet!r}")
    for i, pa_subnet in enumerate(pa_subnets):
        users = [h for h in hosts if h.pa_subnet == pa_subnet.name]
        needed = sum(h.uplinks for h in users)
        if needed > pa_subnet.pool_size:
            raise TopologyError(
                f"pa_subnets[{i}].ip_pool: {pa_subnet.pool_size} addresses for {needed} uplinks"
                f" (hosts {', '.join(h.name for h in users)})"
            )
    acls = fields.listed(top, "acls", "", _acl, required=False)
    fields.unique(acls, "acls")
    acl_names = {a.name for a in acls}
    networks = fields.listed(top, "virtual_networks", "", _virtual_network, required=True)
    fields.unique(networks, "virtual_networks")
    _check_vsids(networks)
    for i, network in enumerate(networks):
        for j, subnet in enumerate(network.subnets):
            if subnet.acl is not None and subnet.acl not in acl_names:
                raise TopologyError(
                    f"virtual_networks[{i}].subnets[{j}].acl: no ACL named {subnet.acl!r}"
                )
    vms = fields.listed(top, "vms", "", _vm, required=True)
    fields.unique(vms, "vms")
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
    topology = dataclasses.replace(topology, edge=parse_edge(top, topology))
    _check_logical_vms(topology)
    return topology


# ---------------------------------------------------------------- sections


def _pa_subnet(raw: object, path: str) -> PaSubnet:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "prefix", "vlan", "gateway", "ip_pool"))
    prefix = fields.network(item, "prefix", path)
    gateway = fields.address(item, "gateway", path)
    if not _usable(gateway, prefix):
        raise TopologyError(f"{path}.gateway: {gateway} is not a usable address of {prefix}")
    return PaSubnet(
        name=fields.string(item, "name", path, pattern=_NAME),
        prefix=prefix,
        vlan=fields.integer(item, "vlan", path, 0, VLAN_MAX, default=0),
        gateway=gateway,
        ip_pool=_ip_pool(item.get("ip_pool"), f"{path}.ip_pool", prefix, gateway),
    )


def _usable(address: ipaddress.IPv4Address, prefix: ipaddress.IPv4Network) -> bool:
    return address in prefix and address not in (prefix.network_address, prefix.broadcast_address)


def _ip_pool(
    raw: object, where: str, prefix: ipaddress.IPv4Network, gateway: ipaddress.IPv4Address
) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """The PA pool ``start-end``; by default the usable addresses above the gateway."""
    if raw is None:
        first, last = prefix.network_address + 1, prefix.broadcast_address - 1
        start, end = (gateway + 1, last) if gateway < last else (first, gateway - 1)
        if start > end:
            raise TopologyError(f"{where}: {prefix} has no address left for hosts")
        return start, end
    start_text, _, end_text = str(raw).partition("-")
    try:
        start = ipaddress.IPv4Address(start_text.strip())
        end = ipaddress.IPv4Address(end_text.strip()) if end_text else start
    except ValueError:
        raise TopologyError(
            f"{where}: {raw!r} is not an address range (e.g. 192.168.1.10-192.168.1.99)"
        ) from None
    if not (_usable(start, prefix) and _usable(end, prefix)) or start > end:
        raise TopologyError(f"{where}: {raw} is not a range of usable addresses of {prefix}")
    if start <= gateway <= end:
        raise TopologyError(f"{where}: {raw} contains the gateway {gateway}")
    return start, end


def _host(raw: object, path: str) -> Host:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "pa_subnet", "uplinks", "uplink_mbps"))
    mbps = item.get("uplink_mbps")
    return Host(
        name=fields.string(item, "name", path, pattern=_NAME),
        pa_subnet=fields.string(item, "pa_subnet", path),
        uplinks=fields.integer(item, "uplinks", path, 1, MAX_UPLINKS, default=DEFAULT_UPLINKS),
        uplink_mbps=None
        if mbps is None
        else fields.integer(item, "uplink_mbps", path, 1, MAX_MBPS),
    )


def _virtual_network(raw: object, path: str) -> VirtualNetwork:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "address_space", "subnets"))
    name = fields.string(item, "name", path, pattern=_NAME)
    spaces_raw = item.get("address_space")
    if isinstance(spaces_raw, str):
        spaces_raw = [spaces_raw]
    if not isinstance(spaces_raw, list) or not spaces_raw:
        raise TopologyError(f"{path}.address_space: expected a CIDR or a list of CIDRs")
    spaces = tuple(
        fields.parse_network(s, f"{path}.address_space[{k}]") for k, s in enumerate(spaces_raw)
    )
    subnets = fields.listed(item, "subnets", path, _virtual_subnet, required=True)
    fields.unique(subnets, f"{path}.subnets")
    fields.no_overlap([(s.name, s.prefix) for s in subnets], f"{path}.subnets")
    sixes = [(s.name, s.prefix6) for s in subnets if s.prefix6 is not None]
    for k, (name6, six) in enumerate(sixes):
        for other, prefix6 in sixes[:k]:
            if six.overlaps(prefix6):
                raise TopologyError(f"{path}.subnets: {name6} prefix6 {six} overlaps {other}")
    for j, subnet in enumerate(subnets):
        if not any(subnet.prefix.subnet_of(space) for space in spaces):
            raise TopologyError(
                f"{path}.subnets[{j}].prefix: {subnet.prefix} is outside the address space"
                f" {', '.join(map(str, spaces))}"
            )
    return VirtualNetwork(name=name, address_space=spaces, subnets=subnets)


def _virtual_subnet(raw: object, path: str) -> VirtualSubnet:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "prefix", "vsid", "acl", "prefix6"))
    prefix = fields.network(item, "prefix", path)
    if prefix.num_addresses < 4:
        raise TopologyError(f"{path}.prefix: {prefix} is too small (at most /30)")
    prefix6 = fields.network6(item, "prefix6", path) if item.get("prefix6") is not None else None
    if prefix6 is not None and prefix6.prefixlen > MAX_PREFIX6_LEN:
        raise TopologyError(f"{path}.prefix6: {prefix6} is too small (at most /{MAX_PREFIX6_LEN})")
    vsid = fields.integer(item, "vsid", path, VSID_MIN, VSID_MAX, default=None)
    acl = fields.string(item, "acl", path) if "acl" in item and item["acl"] is not None else None
    return VirtualSubnet(
        name=fields.string(item, "name", path, pattern=_NAME),
        prefix=prefix,
        vsid=vsid,
        acl=acl,
        prefix6=prefix6,
    )


def _acl(raw: object, path: str) -> Acl:
    item = fields.mapping(raw, path)
    fields.known(item, path, ("name", "rules"))
    rules = fields.listed(item, "rules", path, _acl_rule, required=False)
    fields.unique(rules, f"{path}.rules")
    return Acl(name=fields.string(item, "name", path, pattern=_NAME), rules=rules)


def _acl_rule(raw: object, path: str) -> AclRule:
    item = fields.mapping(raw, path)
    fields.known(
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
        name=fields.string(item, "name", path, pattern=_NAME),
        protocol=fields.choice(item, "protocol", path, ACL_PROTOCOLS, default="All"),
        source_prefix=_acl_prefix(item, "source_prefix", path),
        source_ports=_port_range(item, "source_ports", path),
        destination_prefix=_acl_prefix(item, "destination_prefix", path),
        destination_ports=_port_range(item, "destination_ports", path),
        action=fields.choice(item, "action", path, ACL_ACTIONS),
        priority=fields.integer(item, "priority", path, ACL_PRIORITY_MIN, ACL_PRIORITY_MAX),
        type=fields.choice(item, "type", path, ACL_TYPES),
    )


def _vm(raw: object, path: str) -> Vm:
    item = fields.mapping(raw, path)
    fields.known(
        item, path, ("name", "host", "virtual_network", "logical_network", "subnet", "ip", "mac",
                     "acl", "dhcp", "dns", "ip6", "qos")
    )  # fmt: skip
    logical = item.get("logical_network")
    if (logical is None) == (item.get("virtual_network") is None):
        raise TopologyError(f"{path}: give either virtual_network or logical_network")
    dhcp = item.get("dhcp", False)
    if not isinstance(dhcp, bool):
        raise TopologyError(
            f"{fields.key_path(path, 'dhcp')}: expected true or false, got {dhcp!r}"
        )
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
        name=fields.string(item, "name", path, pattern=_NAME),
        host=fields.string(item, "host", path),
        virtual_network="" if logical else fields.string(item, "virtual_network", path),
        subnet=fields.string(item, "subnet", path),
        ip=fields.address(item, "ip", path),
        mac=mac,
        logical_network=None if logical is None else fields.string(item, "logical_network", path),
        acl=None if item.get("acl") is None else fields.string(item, "acl", path),
        dhcp=dhcp,
        dns_servers=fields.listed(item, "dns", path, _dns_server, required=False),
        ip6=fields.address6(item, "ip6", path) if item.get("ip6") is not None else None,
        **_qos(item, path),
    )


def _qos(item: Mapping[str, Any], path: str) -> dict[str, int]:
    """A VM's ``qos:`` (``outbound_max_mbps``, ``inbound_max_mbps``,
    ``outbound_reserved_mbps``; each 0..MAX_MBPS, 0 or absent: none; the reservation
    within the outbound cap), as ``Vm`` fields."""
    if item.get("qos") is None:
        return {}
    where = fields.key_path(path, "qos")
    qos = fields.mapping(item["qos"], where)
    fields.known(qos, where, ("outbound_max_mbps", "inbound_max_mbps", "outbound_reserved_mbps"))
    found = {
        "qos_outbound_mbps": fields.integer(qos, "outbound_max_mbps", where, 0, MAX_MBPS, 0),
        "qos_inbound_mbps": fields.integer(qos, "inbound_max_mbps", where, 0, MAX_MBPS, 0),
        "qos_reserved_mbps": fields.integer(qos, "outbound_reserved_mbps", where, 0, MAX_MBPS, 0),
    }
    if found["qos_outbound_mbps"] and found["qos_reserved_mbps"] > found["qos_outbound_mbps"]:
        raise TopologyError(f"{where}.outbound_reserved_mbps: exceeds outbound_max_mbps")
    return found


def _dns_server(raw: object, where: str) -> IPAddress:
    try:
        return ipaddress.ip_address(str(raw))
    except ValueError:
        raise TopologyError(f"{where}: {raw!r} is not an IP address") from None


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
    taken6: dict[tuple[str, ipaddress.IPv6Address], str] = {}
    acl_names = {a.name for a in topology.acls}
    for i, vm in enumerate(topology.vms):
        path = f"vms[{i}]"
        if vm.host not in host_names:
            raise TopologyError(f"{path}.host: no host named {vm.host!r}")
        if vm.acl is not None and vm.acl not in acl_names:
            raise TopologyError(f"{path}.acl: no ACL named {vm.acl!r}")
        if vm.logical_network is not None:
            continue  # checked against the edge (_check_logical_vms)
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
        _check_ip6(vm, subnet, path, network.name, taken6)


def _check_ip6(
    vm: Vm,
    subnet: VirtualSubnet,
    path: str,
    network: str,
    taken: dict[tuple[str, ipaddress.IPv6Address], str],
) -> None:
    """A VM's ``ip6``: a usable address of its subnet's ``prefix6``, unique in the network."""
    if vm.ip6 is None:
        return
    if subnet.prefix6 is None:
        raise TopologyError(f"{path}.ip6: subnet {subnet.name} has no prefix6")
    if vm.ip6 not in subnet.prefix6:
        raise TopologyError(
            f"{path}.ip6: {vm.ip6} is outside subnet {subnet.name} ({subnet.prefix6})"
        )
    if vm.ip6 in (subnet.prefix6.network_address, subnet.gateway6):
        raise TopologyError(
            f"{path}.ip6: {vm.ip6} is reserved in {subnet.prefix6} (network or gateway)"
        )
    if (network, vm.ip6) in taken:
        raise TopologyError(
            f"{path}.ip6: {vm.ip6} is already used by VM {taken[(network, vm.ip6)]!r}"
        )
    taken[(network, vm.ip6)] = vm.name


def _check_logical_vms(topology: Topology) -> None:
    """A VM on a logical network: a tagged subnet of an external network trunked to its
    host's PA subnet (the VLAN reaches the host's uplinks there), an unused host address."""
    taken: dict[tuple[str, ipaddress.IPv4Address], str] = {}
    for i, vm in enumerate(topology.vms):
        if vm.logical_network is None:
            continue
        path = f"vms[{i}]"
        try:
            network = topology.edge.external_network(vm.logical_network)
        except KeyError:
            raise TopologyError(
                f"{path}.logical_network: no external network named {vm.logical_network!r}"
            ) from None
        try:
            subnet = network.subnet(vm.subnet)
        except KeyError:
            raise TopologyError(
                f"{path}.subnet: external network {network.name!r} has no subnet {vm.subnet!r}"
            ) from None
        if not subnet.vlan:
            raise TopologyError(
                f"{path}.subnet: {subnet.name} has no vlan (access ports are tagged)"
            )
        pa_subnet = topology.host(vm.host).pa_subnet
        if network.trunk != pa_subnet:
            raise TopologyError(
                f"{path}.logical_network: {network.name} is not trunked to PA subnet {pa_subnet}"
                f" of host {vm.host} (external_networks[].trunk)"
            )
        if vm.ip6 is not None:
            raise TopologyError(f"{path}.ip6: a VM on a logical network has IPv4 only")
        prefix = subnet.prefix
        if vm.ip not in prefix or vm.ip in (prefix.network_address, prefix.broadcast_address,
                                            subnet.gateway):  # fmt: skip
            raise TopologyError(f"{path}.ip: {vm.ip} is no free host address of {prefix}")
        key = (network.name, vm.ip)
        if key in taken:
            raise TopologyError(f"{path}.ip: {vm.ip} is already used by VM {taken[key]!r}")
        taken[key] = vm.name


# ---------------------------------------------------------------- ACL fields


def _acl_prefix(item: Mapping[str, Any], key: str, path: str) -> str:
    value = item.get(key, "*")
    text = "*" if value is None else str(value)
    for tag in ACL_PREFIX_TAGS:
        if text.lower() == tag.lower():
            return tag
    if ":" in text:  # an IPv6 rule
        return str(fields.network6({key: text}, key, path))
    return str(fields.parse_network(text, fields.key_path(path, key)))


def _port_range(item: Mapping[str, Any], key: str, path: str) -> tuple[int, int]:
    where = fields.key_path(path, key)
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
            f"{where}: {value!r} is not a port or port range (e.g. 80, 1000-2000, *)"
        ) from None
    if not 0 <= low <= high <= PORT_MAX:
        raise TopologyError(
            f"{fields.key_path(path, key)}: {value!r} is not a range within 0..{PORT_MAX}"
        )
    return (low, high)


def lab_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a lab name, or None when it can."""
    if _LAB_NAME.fullmatch(name):
        return None
    return f"{name!r} is not a valid lab name (1-12 of a-z0-9, starting a-z)"
