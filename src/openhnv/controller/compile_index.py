"""The compiler's index: a snapshot of northbound documents resolved once into plain values.

A ``Snapshot`` maps each collection name (``servers``, ``virtualNetworks``, ...) to the
resource documents exactly as a REST GET returns them. ``Index.build`` reads every document
once, resolves references (NIC -> subnet -> virtual network, NIC -> server -> provider
address, subnet/ipConfiguration -> ACL) and files the results by the keys the compiler
asks for: NICs by virtual network and by host. Nothing here raises on bad data: a document
that cannot be used is left out and described by a ``CompileProblem``. A broken ACL keeps
every NIC that uses it out of the compile (fail closed), as does a broken subnet.

``Index.replace_nic`` re-resolves one NIC against an existing index, the cheap path behind
the one-NIC incremental compile.
"""

from __future__ import annotations

import ipaddress
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from openhnv.controller.firewall import AclRule, parse_acl_rule

Snapshot: TypeAlias = Mapping[str, Sequence[Mapping[str, Any]]]
"""Collection name -> resource documents as the REST GET returns them."""

VXLAN_ENCAPSULATION = "vxlan"
NVGRE_ENCAPSULATION = "nvgre"
PROTOCOL_TO_ENCAPSULATION = {"vxlan": VXLAN_ENCAPSULATION, "nvgre": NVGRE_ENCAPSULATION}
DEFAULT_ROUTER_MAC = "401DD8B71C06"
CONFIGURATION_ID = "configuration"
VSID_MIN = 4096
VSID_MAX = 2**24 - 2
MAC_HEX_DIGITS = 12


@dataclass(frozen=True, slots=True)
class CompileProblem:
    """A document the compiler had to leave out, and why."""

    resource_ref: str
    message: str


@dataclass(frozen=True, slots=True)
class ProviderAddress:
    """One PA of a host (one per team member)."""

    address: str
    prefix_length: int
    vlan: int
    default_gateway: str
    interface: str


@dataclass(frozen=True, slots=True)
class Host:
    """A server: the Hyper-V host a NIC's port lives on."""

    server_id: str
    instance_id: str
    management_ips: frozenset[str]
    provider_addresses: tuple[ProviderAddress, ...]  # sorted by address


@dataclass(frozen=True, slots=True)
class Subnet:
    """A virtual subnet: one VSID, one broadcast domain."""

    ref: str
    vnet_id: str
    vsid: int
    prefix: str
    gateway_ip: str
    acl_ref: str | None


@dataclass(frozen=True, slots=True)
class VirtualNetwork:
    """A virtual network: one routing domain (RDID) and its subnets."""

    vnet_id: str
    ref: str
    rdid: str
    address_space: tuple[str, ...]
    subnets: tuple[Subnet, ...]


@dataclass(frozen=True, slots=True)
class Acl:
    """An access control list with its rules parsed."""

    ref: str
    rules: tuple[AclRule, ...]


@dataclass(frozen=True, slots=True)
class Nic:
    """A VM NIC placed on a host, fully resolved."""

    ref: str
    nic_id: str
    instance_id: str
    server_id: str
    subnet: Subnet
    mac: str  # lower case with colons
    addresses: tuple[str, ...]  # customer addresses, by ipConfiguration resourceId
    acl_ref: str | None
    mac_spoofing: bool
    arp_guard: bool
    dhcp_guard: bool
    provider_address: str

    @property
    def vnet_id(self) -> str:
        return self.subnet.vnet_id


class _Broken(Exception):
    """A document cannot be compiled; the message says which field and why."""


def _key(ref: str) -> str:
    """References compare case-insensitively, like the REST paths."""
    return ref.rstrip("/").casefold()


def mac_with_colons(raw: object, what: str) -> str:
    """``"001DD8070001"`` (or with ``-``/``:``) -> ``"00:1d:d8:07:00:01"``."""
    if not isinstance(raw, str):
        raise _Broken(f"{what} must be 12 hex digits, got {raw!r}")
    digits = raw.replace("-", "").replace(":", "").lower()
    if len(digits) != MAC_HEX_DIGITS or any(c not in "0123456789abcdef" for c in digits):
        raise _Broken(f"{what} must be 12 hex digits, got {raw!r}")
    return ":".join(digits[i : i + 2] for i in range(0, MAC_HEX_DIGITS, 2))


def _props(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    props = doc.get("properties", {})
    if not isinstance(props, Mapping):
        raise _Broken(f"properties must be an object, got {props!r}")
    return props


def _ref_of(value: object, what: str) -> str | None:
    """The ``resourceRef`` of a reference object, or None when absent."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _Broken(f"{what} must be {{'resourceRef': ...}}, got {value!r}")
    ref = value.get("resourceRef")
    if ref is None or ref == "":
        return None
    if not isinstance(ref, str) or not ref.startswith("/"):
        raise _Broken(f"{what}.resourceRef must be a path like /servers/host1, got {ref!r}")
    return ref


def _text(props: Mapping[str, Any], name: str, what: str) -> str:
    value = props.get(name)
    if not isinstance(value, str) or not value:
        raise _Broken(f"{what}.{name} is missing or not a string: {value!r}")
    return value


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Broken(f"{what} must be an integer, got {value!r}")
    return value


def _list(value: object, what: str) -> Sequence[Any]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise _Broken(f"{what} must be a list, got {value!r}")
    return value


def _children(parent_ref: str, props: Mapping[str, Any], name: str) -> list[tuple[str, Any]]:
    """Inline child documents with their refs, sorted by ref for a stable order."""
    out: list[tuple[str, Any]] = []
    for child in _list(props.get(name), f"{parent_ref} properties.{name}"):
        if not isinstance(child, Mapping):
            raise _Broken(f"{parent_ref} properties.{name} holds a non-object {child!r}")
        ref = child.get("resourceRef")
        if not isinstance(ref, str) or not ref:
            child_id = child.get("resourceId")
            if not isinstance(child_id, str) or not child_id:
                raise _Broken(f"{parent_ref} properties.{name} has a child without resourceId")
            ref = f"{parent_ref}/{name}/{child_id}"
        out.append((ref, child))
    return sorted(out, key=lambda pair: _key(pair[0]))


def _flag(value: object) -> bool:
    """portSettings flags come as ``"Enabled"``/``"Disabled"`` or as booleans."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.casefold() in ("enabled", "true")


def _documents(
    snapshot: Snapshot, collection: str, problems: list[CompileProblem]
) -> list[tuple[str, Mapping[str, Any]]]:
    """A collection's documents sorted by ref; duplicates of one ref keep one, reported."""
    grouped: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for doc in snapshot.get(collection, ()):
        if not isinstance(doc, Mapping):
            problems.append(CompileProblem(f"/{collection}", f"not a document: {doc!r}"))
            continue
        ref = doc.get("resourceRef")
        if not isinstance(ref, str) or not ref:
            rid = doc.get("resourceId")
            if not isinstance(rid, str) or not rid:
                problems.append(CompileProblem(f"/{collection}", "document without resourceId"))
                continue
            ref = f"/{collection}/{rid}"
        grouped.setdefault(_key(ref), []).append((ref, doc))
    out: list[tuple[str, Mapping[str, Any]]] = []
    for key in sorted(grouped):
        docs = grouped[key]
        if len(docs) > 1:
            docs.sort(key=lambda pair: json.dumps(pair[1], sort_keys=True, default=str))
            problems.append(
                CompileProblem(docs[0][0], f"{len(docs)} documents share this resourceRef")
            )
        out.append(docs[0])
    return out


def _resource_id(ref: str) -> str:
    return ref.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Index:
    """The snapshot resolved: hosts, virtual networks, ACLs and placed NICs."""

    encapsulation: str
    router_mac: str
    hosts: Mapping[str, Host]  # server resourceId -> host
    host_by_ref: Mapping[str, str]  # casefolded server ref -> server resourceId
    vnets: Mapping[str, VirtualNetwork]  # vnet resourceId -> vnet
    subnets: Mapping[str, Subnet]  # casefolded subnet ref -> subnet
    acls: Mapping[str, Acl]  # casefolded ACL ref -> ACL
    nics: Mapping[str, Nic]  # casefolded NIC ref -> placed NIC
    nics_by_vnet: Mapping[str, frozenset[str]]  # vnet resourceId -> NIC keys
    nics_by_host: Mapping[str, frozenset[str]]  # server resourceId -> NIC keys
    base_problems: tuple[CompileProblem, ...] = ()
    nic_problems: Mapping[str, tuple[CompileProblem, ...]] = field(default_factory=dict)
    broken_acls: Mapping[str, str] = field(default_factory=dict)  # ACL key -> message

    @property
    def problems(self) -> list[CompileProblem]:
        """Every problem found, sorted by resource and message."""
        found = list(self.base_problems)
        for nic_found in self.nic_problems.values():
            found.extend(nic_found)
        return sorted(found, key=lambda p: (_key(p.resource_ref), p.message))

    def hosts_of_vnet(self, vnet_id: str) -> set[str]:
        """The hosts with a NIC in ``vnet_id``."""
        return {self.nics[n].server_id for n in self.nics_by_vnet.get(vnet_id, ())}

    @classmethod
    def build(cls, snapshot: Snapshot) -> Index:
        """Resolve a whole snapshot."""
        problems: list[CompileProblem] = []
        encapsulation, router_mac = _configuration(snapshot, problems)
        hosts: dict[str, Host] = {}
        host_by_ref: dict[str, str] = {}
        for ref, doc in _documents(snapshot, "servers", problems):
            try:
                host = _host(ref, doc)
            except _Broken as err:
                problems.append(CompileProblem(ref, str(err)))
                continue
            hosts[host.server_id] = host
            host_by_ref[_key(ref)] = host.server_id
        acls: dict[str, Acl] = {}
        broken_acls: dict[str, str] = {}
        for ref, doc in _documents(snapshot, "accessControlLists", problems):
            try:
                acls[_key(ref)] = _acl(ref, doc)
            except _Broken as err:
                problems.append(CompileProblem(ref, str(err)))
                broken_acls[_key(ref)] = str(err)
        vnets: dict[str, VirtualNetwork] = {}
        subnets: dict[str, Subnet] = {}
        vsid_owner: dict[int, str] = {}
        for ref, doc in _documents(snapshot, "virtualNetworks", problems):
            try:
                vnet = _vnet(ref, doc, vsid_owner, problems)
            except _Broken as err:
                problems.append(CompileProblem(ref, str(err)))
                continue
            vnets[vnet.vnet_id] = vnet
            subnets.update((_key(s.ref), s) for s in vnet.subnets)
        index = cls(
            encapsulation=encapsulation,
            router_mac=router_mac,
            hosts=hosts,
            host_by_ref=host_by_ref,
            vnets=vnets,
            subnets=subnets,
            acls=acls,
            nics={},
            nics_by_vnet={},
            nics_by_host={},
            base_problems=tuple(problems),
            broken_acls=broken_acls,
        )
        nics: dict[str, Nic] = {}
        nic_problems: dict[str, tuple[CompileProblem, ...]] = {}
        by_vnet: dict[str, set[str]] = {}
        by_host: dict[str, set[str]] = {}
        nic_dupes: list[CompileProblem] = []
        for ref, doc in _documents(snapshot, "networkInterfaces", nic_dupes):
            nic, found = index._resolve_nic(ref, doc)
            if found:
                nic_problems[_key(ref)] = found
            if nic is not None:
                nics[_key(ref)] = nic
                by_vnet.setdefault(nic.vnet_id, set()).add(_key(ref))
                by_host.setdefault(nic.server_id, set()).add(_key(ref))
        return replace(
            index,
            nics=nics,
            nics_by_vnet={v: frozenset(n) for v, n in by_vnet.items()},
            nics_by_host={h: frozenset(n) for h, n in by_host.items()},
            base_problems=tuple(problems + nic_dupes),
            nic_problems=nic_problems,
        )

    def replace_nic(self, ref: str, doc: Mapping[str, Any] | None) -> Index:
        """This index with the NIC at ``ref`` replaced by ``doc`` (None: deleted)."""
        key = _key(ref)
        nics = dict(self.nics)
        by_vnet = dict(self.nics_by_vnet)
        by_host = dict(self.nics_by_host)
        nic_problems = dict(self.nic_problems)
        old = nics.pop(key, None)
        nic_problems.pop(key, None)
        if old is not None:
            by_vnet[old.vnet_id] = by_vnet[old.vnet_id] - {key}
            by_host[old.server_id] = by_host[old.server_id] - {key}
        if doc is not None:
            nic, found = self._resolve_nic(ref, doc)
            if found:
                nic_problems[key] = found
            if nic is not None:
                nics[key] = nic
                by_vnet[nic.vnet_id] = by_vnet.get(nic.vnet_id, frozenset()) | {key}
                by_host[nic.server_id] = by_host.get(nic.server_id, frozenset()) | {key}
        return replace(
            self, nics=nics, nics_by_vnet=by_vnet, nics_by_host=by_host, nic_problems=nic_problems
        )

    def _resolve_nic(
        self, ref: str, doc: Mapping[str, Any]
    ) -> tuple[Nic | None, tuple[CompileProblem, ...]]:
        """The placed NIC, or None with the reasons (an unplaced NIC has no reason)."""
        try:
            return self._nic(ref, doc)
        except _Broken as err:
            return None, (CompileProblem(ref, str(err)),)

    def _nic(
        self, ref: str, doc: Mapping[str, Any]
    ) -> tuple[Nic | None, tuple[CompileProblem, ...]]:
        props = _props(doc)
        server_ref = _ref_of(props.get("server"), "properties.server")
        if server_ref is None:
            return None, ()  # not placed on a host yet: nothing to compile
        server_id = self.host_by_ref.get(_key(server_ref))
        if server_id is None:
            raise _Broken(f"properties.server refers to {server_ref}, which does not exist")
        host = self.hosts[server_id]
        if not host.provider_addresses:
            raise _Broken(f"server {server_id} has no provider address yet")
        instance_id = _text(doc, "instanceId", "document")
        mac = mac_with_colons(props.get("privateMacAddress"), "properties.privateMacAddress")
        configs = _children(ref, props, "ipConfigurations")
        if not configs:
            raise _Broken("properties.ipConfigurations is empty")
        subnet: Subnet | None = None
        acl_ref: str | None = None
        addresses: list[str] = []
        for config_ref, config in configs:
            cprops = _props(config)
            where = f"ipConfiguration {_resource_id(config_ref)}"
            subnet_ref = _ref_of(cprops.get("subnet"), f"{where} subnet")
            if subnet_ref is None:
                raise _Broken(f"{where} has no subnet")
            found = self.subnets.get(_key(subnet_ref))
            if found is None:
                raise _Broken(f"{where} subnet {subnet_ref} does not exist or was not compiled")
            if subnet is not None and found is not subnet:
                raise _Broken(f"{where} is in {found.ref}, but the NIC is already in {subnet.ref}")
            subnet = found
            this_acl = _ref_of(cprops.get("accessControlList"), f"{where} accessControlList")
            if addresses and this_acl != acl_ref:
                raise _Broken(f"{where} has ACL {this_acl}, another ipConfiguration has {acl_ref}")
            acl_ref = this_acl
            address = _text(cprops, "privateIPAddress", where)
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                raise _Broken(f"{where} privateIPAddress {address!r} is not an IP") from None
            if ip not in ipaddress.ip_network(subnet.prefix):
                raise _Broken(f"{where} privateIPAddress {address} is outside {subnet.prefix}")
            addresses.append(str(ip))
        if subnet is None:
            raise _Broken("properties.ipConfigurations is empty")
        for layer_ref in (subnet.acl_ref, acl_ref):
            if layer_ref is None:
                continue
            if _key(layer_ref) in self.broken_acls:
                raise _Broken(f"ACL {layer_ref} could not be compiled (fail closed)")
            if _key(layer_ref) not in self.acls:
                raise _Broken(f"ACL {layer_ref} does not exist (fail closed)")
        settings = props.get("portSettings") or {}
        if not isinstance(settings, Mapping):
            raise _Broken(f"properties.portSettings must be an object, got {settings!r}")
        pas = host.provider_addresses
        chosen = pas[zlib.crc32(instance_id.encode()) % len(pas)].address
        nic = Nic(
            ref=ref,
            nic_id=_resource_id(ref),
            instance_id=instance_id,
            server_id=server_id,
            subnet=subnet,
            mac=mac,
            addresses=tuple(addresses),
            acl_ref=acl_ref,
            mac_spoofing=_flag(settings.get("macSpoofingEnabled")),
            arp_guard=_flag(settings.get("arpGuardEnabled")),
            dhcp_guard=_flag(settings.get("dhcpGuardEnabled")),
            provider_address=chosen,
        )
        return nic, ()

    def acl(self, ref: str) -> Acl:
        """The ACL at ``ref`` (present: a NIC using a missing ACL is never placed)."""
        return self.acls[_key(ref)]


def _configuration(snapshot: Snapshot, problems: list[CompileProblem]) -> tuple[str, str]:
    """The global encapsulation and distributed-router MAC (raw 12 hex digits)."""
    encapsulation, router_mac = VXLAN_ENCAPSULATION, DEFAULT_ROUTER_MAC
    for ref, doc in _documents(snapshot, "virtualNetworkManager", problems):
        if doc.get("resourceId", _resource_id(ref)) != CONFIGURATION_ID:
            problems.append(CompileProblem(ref, "only virtualNetworkManager/configuration is used"))
            continue
        try:
            props = _props(doc)
            protocol = props.get("networkVirtualizationProtocol", "Vxlan")
            if (
                not isinstance(protocol, str)
                or protocol.casefold() not in PROTOCOL_TO_ENCAPSULATION
            ):
                raise _Broken(
                    f"networkVirtualizationProtocol must be Vxlan or Nvgre, got {protocol!r}"
                )
            encapsulation = PROTOCOL_TO_ENCAPSULATION[protocol.casefold()]
            raw_mac = props.get("distributedRouterMacAddress", DEFAULT_ROUTER_MAC)
            mac_with_colons(raw_mac, "distributedRouterMacAddress")
            router_mac = str(raw_mac)
        except _Broken as err:
            problems.append(CompileProblem(ref, f"{err}; using Vxlan and the default MAC"))
            encapsulation, router_mac = VXLAN_ENCAPSULATION, DEFAULT_ROUTER_MAC
    return encapsulation, router_mac


def _host(ref: str, doc: Mapping[str, Any]) -> Host:
    props = _props(doc)
    management: set[str] = set()
    for connection in _list(props.get("connections"), "properties.connections"):
        if not isinstance(connection, Mapping):
            continue
        for address in _list(connection.get("managementAddresses"), "managementAddresses"):
            try:
                management.add(str(ipaddress.ip_address(address)))
            except ValueError:
                continue  # a host name, not an IP
    pas: list[ProviderAddress] = []
    for i, pa in enumerate(_list(props.get("providerAddresses"), "properties.providerAddresses")):
        what = f"providerAddresses[{i}]"
        if not isinstance(pa, Mapping):
            raise _Broken(f"{what} must be an object, got {pa!r}")
        address = _text(pa, "address", what)
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise _Broken(f"{what}.address {address!r} is not an IP address") from None
        interface = _ref_of(pa.get("networkInterface"), f"{what}.networkInterface")
        gateway = pa.get("defaultGateway") or ""
        pas.append(
            ProviderAddress(
                address=address,
                prefix_length=_int(pa.get("prefixLength"), f"{what}.prefixLength"),
                vlan=_int(pa.get("vlanID", 0), f"{what}.vlanID"),
                default_gateway=str(gateway),
                interface=_resource_id(interface) if interface else "",
            )
        )
    pas.sort(key=lambda p: ipaddress.ip_address(p.address))
    return Host(
        server_id=_resource_id(ref),
        instance_id=_text(doc, "instanceId", "document"),
        management_ips=frozenset(management),
        provider_addresses=tuple(pas),
    )


def _acl(ref: str, doc: Mapping[str, Any]) -> Acl:
    rules: list[AclRule] = []
    for rule_ref, rule in _children(ref, _props(doc), "aclRules"):
        try:
            rules.append(parse_acl_rule(_resource_id(rule_ref), _props(rule)))
        except ValueError as err:
            raise _Broken(f"aclRule {_resource_id(rule_ref)}: {err}") from None
    return Acl(ref=ref, rules=tuple(rules))


def _vnet(
    ref: str,
    doc: Mapping[str, Any],
    vsid_owner: dict[int, str],
    problems: list[CompileProblem],
) -> VirtualNetwork:
    props = _props(doc)
    vnet_id = _resource_id(ref)
    rdid = _text(props, "routingDomainId", "properties")
    space = props.get("addressSpace") or {}
    if not isinstance(space, Mapping):
        raise _Broken(f"properties.addressSpace must be an object, got {space!r}")
    address_space = tuple(_networks(space.get("addressPrefixes"), "addressSpace.addressPrefixes"))
    if not address_space:
        raise _Broken("addressSpace.addressPrefixes is empty")
    subnets: list[Subnet] = []
    for subnet_ref, doc_subnet in _children(ref, props, "subnets"):
        try:
            subnet = _subnet(subnet_ref, vnet_id, _props(doc_subnet))
        except _Broken as err:
            problems.append(CompileProblem(subnet_ref, str(err)))
            continue
        owner = vsid_owner.setdefault(subnet.vsid, subnet_ref)
        if owner != subnet_ref:
            problems.append(
                CompileProblem(subnet_ref, f"virtualSubnetId {subnet.vsid} is already {owner}'s")
            )
            continue
        subnets.append(subnet)
    return VirtualNetwork(
        vnet_id=vnet_id, ref=ref, rdid=rdid, address_space=address_space, subnets=tuple(subnets)
    )


def _networks(value: object, what: str) -> Iterable[str]:
    for prefix in _list(value, what):
        try:
            yield str(ipaddress.ip_network(prefix, strict=False))
        except (TypeError, ValueError):
            raise _Broken(f"{what} holds {prefix!r}, which is not a CIDR prefix") from None


def _subnet(ref: str, vnet_id: str, props: Mapping[str, Any]) -> Subnet:
    vsid = _int(props.get("virtualSubnetId"), "properties.virtualSubnetId")
    if not VSID_MIN <= vsid <= VSID_MAX:
        raise _Broken(f"virtualSubnetId {vsid} is outside {VSID_MIN}..{VSID_MAX}")
    (prefix,) = _networks([props.get("addressPrefix")], "properties.addressPrefix")
    network = ipaddress.ip_network(prefix)
    lowest_usable = network.network_address + (1 if network.num_addresses > 2 else 0)
    return Subnet(
        ref=ref,
        vnet_id=vnet_id,
        vsid=vsid,
        prefix=prefix,
        gateway_ip=str(lowest_usable),
        acl_ref=_ref_of(props.get("accessControlList"), "properties.accessControlList"),
    )
