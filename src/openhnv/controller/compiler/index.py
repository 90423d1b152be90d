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
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from openhnv.controller.compiler.documents import (
    CompileProblem,
    Snapshot,
    address_in,
    children,
    documents,
    flag,
    integer,
    items,
    mac_with_colons,
    properties,
    ref_key,
    ref_of,
    resource_id,
    text,
)
from openhnv.controller.compiler.firewall import AclRule, parse_acl_rule
from openhnv.controller.compiler.gateways import (
    GatewayIndex,
    Place,
    build_gateways,
    compartment_nics,
)
from openhnv.controller.compiler.values import (
    NO_HOST,
    NO_VNET,
    NO_VSID,
    Acl,
    Host,
    Nic,
    ProviderAddress,
    Subnet,
    VirtualNetwork,
)
from openhnv.controller.errors import DocumentError

__all__ = [
    "Acl",
    "CompileProblem",
    "Host",
    "Index",
    "Nic",
    "ProviderAddress",
    "Snapshot",
    "Subnet",
    "VirtualNetwork",
    "mac_with_colons",
]

VXLAN_ENCAPSULATION = "vxlan"
NVGRE_ENCAPSULATION = "nvgre"
PROTOCOL_TO_ENCAPSULATION = {"vxlan": VXLAN_ENCAPSULATION, "nvgre": NVGRE_ENCAPSULATION}
DEFAULT_ROUTER_MAC = "401DD8B71C06"
CONFIGURATION_ID = "configuration"
VSID_MIN = 4096
VSID_MAX = 2**24 - 2
IPV4, IPV6 = 4, 6


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
    gateways: GatewayIndex = field(default_factory=GatewayIndex)

    @property
    def problems(self) -> list[CompileProblem]:
        """Every problem found, sorted by resource and message."""
        found = list(self.base_problems)
        for nic_found in self.nic_problems.values():
            found.extend(nic_found)
        return sorted(found, key=lambda p: (ref_key(p.resource_ref), p.message))

    def hosts_of_vnet(self, vnet_id: str) -> set[str]:
        """The hosts with a NIC in ``vnet_id`` (a NIC behind a hardware VTEP has none)."""
        hosts = {self.nics[n].server_id for n in self.nics_by_vnet.get(vnet_id, ())}
        hosts.discard(NO_HOST)
        return hosts

    @classmethod
    def build(cls, snapshot: Snapshot) -> Index:
        """Resolve a whole snapshot."""
        problems: list[CompileProblem] = []
        encapsulation, router_mac = _configuration(snapshot, problems)
        hosts: dict[str, Host] = {}
        host_by_ref: dict[str, str] = {}
        for ref, doc in documents(snapshot, "servers", problems):
            try:
                host = _host(ref, doc)
            except DocumentError as err:
                problems.append(CompileProblem(ref, str(err)))
                continue
            hosts[host.server_id] = host
            host_by_ref[ref_key(ref)] = host.server_id
        acls: dict[str, Acl] = {}
        broken_acls: dict[str, str] = {}
        for ref, doc in documents(snapshot, "accessControlLists", problems):
            try:
                acls[ref_key(ref)] = _acl(ref, doc)
            except DocumentError as err:
                problems.append(CompileProblem(ref, str(err)))
                broken_acls[ref_key(ref)] = str(err)
        vnets: dict[str, VirtualNetwork] = {}
        subnets: dict[str, Subnet] = {}
        vsid_owner: dict[int, str] = {}
        for ref, doc in documents(snapshot, "virtualNetworks", problems):
            try:
                vnet = _vnet(ref, doc, vsid_owner, problems)
            except DocumentError as err:
                problems.append(CompileProblem(ref, str(err)))
                continue
            vnets[vnet.vnet_id] = vnet
            subnets.update((ref_key(s.ref), s) for s in vnet.subnets)
        gateways = build_gateways(
            snapshot,
            Place(
                host_by_ref=host_by_ref,
                provider_addresses={
                    h.server_id: [pa.address for pa in h.provider_addresses] for h in hosts.values()
                },
                subnet_vnets={key: subnet.vnet_id for key, subnet in subnets.items()},
                subnet_prefixes={key: subnet.prefix for key, subnet in subnets.items()},
            ),
            problems,
        )
        subnets.update(_logical_subnets(snapshot, problems))
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
            gateways=gateways,
        )
        nics: dict[str, Nic] = compartment_nics(gateways, subnets)
        nic_problems: dict[str, tuple[CompileProblem, ...]] = {}
        by_vnet: dict[str, set[str]] = {}
        by_host: dict[str, set[str]] = {}
        for key, compartment_nic in nics.items():
            by_vnet.setdefault(compartment_nic.vnet_id, set()).add(key)
            by_host.setdefault(compartment_nic.server_id, set()).add(key)
        nic_dupes: list[CompileProblem] = []
        for ref, doc in documents(snapshot, "networkInterfaces", nic_dupes):
            nic, found = index._resolve_nic(ref, doc)
            if found:
                nic_problems[ref_key(ref)] = found
            if nic is not None:
                nics[ref_key(ref)] = nic
                _file_nic(ref_key(ref), nic, by_vnet, by_host)
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
        key = ref_key(ref)
        nics = dict(self.nics)
        by_vnet = dict(self.nics_by_vnet)
        by_host = dict(self.nics_by_host)
        nic_problems = dict(self.nic_problems)
        old = nics.pop(key, None)
        nic_problems.pop(key, None)
        if old is not None and not old.subnet.logical:
            by_vnet[old.vnet_id] = by_vnet[old.vnet_id] - {key}
            if old.server_id != NO_HOST:
                by_host[old.server_id] = by_host[old.server_id] - {key}
        if doc is not None:
            nic, found = self._resolve_nic(ref, doc)
            if found:
                nic_problems[key] = found
            if nic is not None:
                nics[key] = nic
                if not nic.subnet.logical:
                    by_vnet[nic.vnet_id] = by_vnet.get(nic.vnet_id, frozenset()) | {key}
                if nic.server_id != NO_HOST:
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
        except DocumentError as err:
            return None, (CompileProblem(ref, str(err)),)

    def _nic(
        self, ref: str, doc: Mapping[str, Any]
    ) -> tuple[Nic | None, tuple[CompileProblem, ...]]:
        props = properties(doc)
        vtep = props.get("vtepAddress")
        server_ref = ref_of(props.get("server"), "properties.server")
        if server_ref is None and not vtep:
            return None, ()  # not placed on a host yet: nothing to compile
        server_id = NO_HOST
        if server_ref is not None:
            server_id = self.host_by_ref.get(ref_key(server_ref), "")
            if not server_id:
                raise DocumentError(
                    f"properties.server refers to {server_ref}, which does not exist"
                )
            if not self.hosts[server_id].provider_addresses:
                raise DocumentError(f"server {server_id} has no provider address yet")
        instance_id = text(doc, "instanceId", "document")
        mac = mac_with_colons(props.get("privateMacAddress"), "properties.privateMacAddress")
        subnet, acl_ref, addresses = self._ip_configurations(ref, props)
        if subnet.logical and not subnet.vlan:
            raise DocumentError(
                f"logical subnet {subnet.ref} has vlanID 0: a host gives access ports on"
                " tagged VLANs only (1..4094)"
            )
        for layer_ref in (subnet.acl_ref, acl_ref):
            if layer_ref is not None:
                self._require_acl(layer_ref)
        settings = props.get("portSettings") or {}
        if not isinstance(settings, Mapping):
            raise DocumentError(f"properties.portSettings must be an object, got {settings!r}")
        if server_id == NO_HOST:  # behind a hardware VTEP: its PA is the VTEP's address
            try:
                chosen = str(ipaddress.IPv4Address(str(vtep)))
            except ValueError:
                raise DocumentError(f"properties.vtepAddress {vtep!r} is not IPv4") from None
        else:
            pas = self.hosts[server_id].provider_addresses
            chosen = pas[zlib.crc32(instance_id.encode()) % len(pas)].address
        nic = Nic(
            ref=ref,
            nic_id=resource_id(ref),
            instance_id=instance_id,
            server_id=server_id,
            subnet=subnet,
            mac=mac,
            addresses=addresses,
            acl_ref=acl_ref,
            mac_spoofing=flag(settings.get("macSpoofingEnabled")),
            arp_guard=flag(settings.get("arpGuardEnabled")),
            dhcp_guard=flag(settings.get("dhcpGuardEnabled")),
            provider_address=chosen,
            dns_servers=_dns_servers(props.get("dnsSettings")),
            qos_outbound_max_mbps=_qos_cap(settings, "outboundMaximumMbps"),
            qos_inbound_max_mbps=_qos_cap(settings, "inboundMaximumMbps"),
            qos_outbound_reserved_mbps=_qos_cap(settings, "outboundReservedValue"),
        )
        return nic, ()

    def _ip_configurations(
        self, ref: str, props: Mapping[str, Any]
    ) -> tuple[Subnet, str | None, tuple[str, ...]]:
        """The NIC's subnet, ACL and addresses: every ipConfiguration must agree on the
        subnet and the ACL, and hold an address of the subnet."""
        configs = children(ref, props, "ipConfigurations")
        subnet: Subnet | None = None
        acl_ref: str | None = None
        addresses: list[str] = []
        for config_ref, config in configs:
            cprops = properties(config)
            where = f"ipConfiguration {resource_id(config_ref)}"
            found = self._config_subnet(cprops, where)
            if subnet is not None and found is not subnet:
                raise DocumentError(
                    f"{where} is in {found.ref}, but the NIC is already in {subnet.ref}"
                )
            subnet = found
            this_acl = ref_of(cprops.get("accessControlList"), f"{where} accessControlList")
            if addresses and this_acl != acl_ref:
                raise DocumentError(
                    f"{where} has ACL {this_acl}, another ipConfiguration has {acl_ref}"
                )
            acl_ref = this_acl
            address = text(cprops, "privateIPAddress", where)
            prefix = subnet.prefix_for(address) if _is_ip(address) else subnet.prefix
            addresses.append(address_in(prefix, address, f"{where} privateIPAddress"))
        if subnet is None:
            raise DocumentError("properties.ipConfigurations is empty")
        return subnet, acl_ref, tuple(addresses)

    def _config_subnet(self, cprops: Mapping[str, Any], where: str) -> Subnet:
        subnet_ref = ref_of(cprops.get("subnet"), f"{where} subnet")
        if subnet_ref is None:
            raise DocumentError(f"{where} has no subnet")
        found = self.subnets.get(ref_key(subnet_ref))
        if found is None:
            raise DocumentError(f"{where} subnet {subnet_ref} does not exist or was not compiled")
        return found

    def _require_acl(self, acl_ref: str) -> None:
        """A NIC behind an ACL that is missing or broken is not placed (fail closed)."""
        if ref_key(acl_ref) in self.broken_acls:
            raise DocumentError(f"ACL {acl_ref} could not be compiled (fail closed)")
        if ref_key(acl_ref) not in self.acls:
            raise DocumentError(f"ACL {acl_ref} does not exist (fail closed)")

    def acl(self, ref: str) -> Acl:
        """The ACL at ``ref`` (present: a NIC using a missing ACL is never placed)."""
        return self.acls[ref_key(ref)]


def _file_nic(
    key: str, nic: Nic, by_vnet: dict[str, set[str]], by_host: dict[str, set[str]]
) -> None:
    """File a placed NIC by its virtual network (a logical subnet's has none) and host."""
    if not nic.subnet.logical:
        by_vnet.setdefault(nic.vnet_id, set()).add(key)
    if nic.server_id != NO_HOST:
        by_host.setdefault(nic.server_id, set()).add(key)


def _configuration(snapshot: Snapshot, problems: list[CompileProblem]) -> tuple[str, str]:
    """The global encapsulation and distributed-router MAC (raw 12 hex digits)."""
    encapsulation, router_mac = VXLAN_ENCAPSULATION, DEFAULT_ROUTER_MAC
    for ref, doc in documents(snapshot, "virtualNetworkManager", problems):
        if doc.get("resourceId", resource_id(ref)) != CONFIGURATION_ID:
            problems.append(CompileProblem(ref, "only virtualNetworkManager/configuration is used"))
            continue
        try:
            props = properties(doc)
            protocol = props.get("networkVirtualizationProtocol", "Vxlan")
            if (
                not isinstance(protocol, str)
                or protocol.casefold() not in PROTOCOL_TO_ENCAPSULATION
            ):
                raise DocumentError(
                    f"networkVirtualizationProtocol must be Vxlan or Nvgre, got {protocol!r}"
                )
            encapsulation = PROTOCOL_TO_ENCAPSULATION[protocol.casefold()]
            raw_mac = props.get("distributedRouterMacAddress", DEFAULT_ROUTER_MAC)
            mac_with_colons(raw_mac, "distributedRouterMacAddress")
            router_mac = str(raw_mac)
        except DocumentError as err:
            problems.append(CompileProblem(ref, f"{err}; using Vxlan and the default MAC"))
            encapsulation, router_mac = VXLAN_ENCAPSULATION, DEFAULT_ROUTER_MAC
    return encapsulation, router_mac


def _host(ref: str, doc: Mapping[str, Any]) -> Host:
    props = properties(doc)
    management: set[str] = set()
    for connection in items(props.get("connections"), "properties.connections"):
        if not isinstance(connection, Mapping):
            continue
        for address in items(connection.get("managementAddresses"), "managementAddresses"):
            try:
                management.add(str(ipaddress.ip_address(address)))
            except ValueError:
                continue  # a host name, not an IP
    pas: list[ProviderAddress] = []
    for i, pa in enumerate(items(props.get("providerAddresses"), "properties.providerAddresses")):
        what = f"providerAddresses[{i}]"
        if not isinstance(pa, Mapping):
            raise DocumentError(f"{what} must be an object, got {pa!r}")
        address = text(pa, "address", what)
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            raise DocumentError(f"{what}.address {address!r} is not an IP address") from None
        interface = ref_of(pa.get("networkInterface"), f"{what}.networkInterface")
        gateway = pa.get("defaultGateway") or ""
        pas.append(
            ProviderAddress(
                address=address,
                prefix_length=integer(pa.get("prefixLength"), f"{what}.prefixLength"),
                vlan=integer(pa.get("vlanID", 0), f"{what}.vlanID"),
                default_gateway=str(gateway),
                interface=resource_id(interface) if interface else "",
            )
        )
    pas.sort(key=lambda p: ipaddress.ip_address(p.address))
    return Host(
        server_id=resource_id(ref),
        instance_id=text(doc, "instanceId", "document"),
        management_ips=frozenset(management),
        provider_addresses=tuple(pas),
    )


def _acl(ref: str, doc: Mapping[str, Any]) -> Acl:
    rules: list[AclRule] = []
    for rule_ref, rule in children(ref, properties(doc), "aclRules"):
        try:
            rules.append(parse_acl_rule(resource_id(rule_ref), properties(rule)))
        except ValueError as err:
            raise DocumentError(f"aclRule {resource_id(rule_ref)}: {err}") from None
    return Acl(ref=ref, rules=tuple(rules))


def _vnet(
    ref: str,
    doc: Mapping[str, Any],
    vsid_owner: dict[int, str],
    problems: list[CompileProblem],
) -> VirtualNetwork:
    props = properties(doc)
    vnet_id = resource_id(ref)
    rdid = text(props, "routingDomainId", "properties")
    space = props.get("addressSpace") or {}
    if not isinstance(space, Mapping):
        raise DocumentError(f"properties.addressSpace must be an object, got {space!r}")
    address_space = tuple(_networks(space.get("addressPrefixes"), "addressSpace.addressPrefixes"))
    if not address_space:
        raise DocumentError("addressSpace.addressPrefixes is empty")
    subnets: list[Subnet] = []
    for subnet_ref, doc_subnet in children(ref, props, "subnets"):
        try:
            subnet = _subnet(subnet_ref, vnet_id, properties(doc_subnet))
        except DocumentError as err:
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


def _logical_subnets(snapshot: Snapshot, problems: list[CompileProblem]) -> dict[str, Subnet]:
    """The subnets of the traditional (VLAN) logical networks, by key; the HNV provider
    network's are the hosts' own (its NICs are not compiled)."""
    found: dict[str, Subnet] = {}
    seen: list[CompileProblem] = []  # duplicates are the gateways' to report
    for ref, doc in documents(snapshot, "logicalNetworks", seen):
        props = properties(doc)
        if flag(props.get("networkVirtualizationEnabled")):
            continue
        try:
            subnets = children(ref, props, "subnets")
        except DocumentError as err:
            problems.append(CompileProblem(ref, str(err)))
            continue
        for subnet_ref, doc_subnet in subnets:
            try:
                found[ref_key(subnet_ref)] = _logical_subnet(subnet_ref, properties(doc_subnet))
            except DocumentError as err:
                problems.append(CompileProblem(subnet_ref, str(err)))
    return found


def _logical_subnet(ref: str, props: Mapping[str, Any]) -> Subnet:
    (prefix,) = _networks([props.get("addressPrefix")], "properties.addressPrefix")
    gateways = items(props.get("defaultGateways"), "properties.defaultGateways")
    return Subnet(
        ref=ref,
        vnet_id=NO_VNET,
        vsid=NO_VSID,
        prefix=prefix,
        gateway_ip=str(gateways[0]) if gateways else "",
        acl_ref=ref_of(props.get("accessControlList"), "properties.accessControlList"),
        vlan=integer(props.get("vlanID", 0), "properties.vlanID"),
    )


def _networks(value: object, what: str) -> Iterable[str]:
    for prefix in items(value, what):
        try:
            yield str(ipaddress.ip_network(prefix, strict=False))
        except (TypeError, ValueError):
            raise DocumentError(f"{what} holds {prefix!r}, which is not a CIDR prefix") from None


def _subnet(ref: str, vnet_id: str, props: Mapping[str, Any]) -> Subnet:
    vsid = integer(props.get("virtualSubnetId"), "properties.virtualSubnetId")
    if not VSID_MIN <= vsid <= VSID_MAX:
        raise DocumentError(f"virtualSubnetId {vsid} is outside {VSID_MIN}..{VSID_MAX}")
    (prefix,) = _networks([props.get("addressPrefix")], "properties.addressPrefix")
    network = ipaddress.ip_network(prefix)
    ipv6 = ""
    if network.version == IPV4 and props.get("addressPrefixes") is not None:
        given = _networks(props.get("addressPrefixes"), "properties.addressPrefixes")
        sixes = [p for p in given if ipaddress.ip_network(p).version == IPV6]
        if len(sixes) > 1:
            raise DocumentError(f"properties.addressPrefixes holds two IPv6 prefixes: {sixes}")
        ipv6 = sixes[0] if sixes else ""
    return Subnet(
        ref=ref,
        vnet_id=vnet_id,
        vsid=vsid,
        prefix=prefix,
        gateway_ip=_lowest_usable(prefix),
        acl_ref=ref_of(props.get("accessControlList"), "properties.accessControlList"),
        ipv6_prefix=ipv6,
        ipv6_gateway_ip=_lowest_usable(ipv6) if ipv6 else "",
    )


def _lowest_usable(prefix: str) -> str:
    """The distributed router's address in ``prefix``: its lowest usable address."""
    network = ipaddress.ip_network(prefix)
    return str(network.network_address + (1 if network.num_addresses > 2 else 0))


def _is_ip(address: str) -> bool:
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return True


def _dns_servers(settings: object) -> tuple[str, ...]:
    """``dnsSettings.dnsServers`` of a NIC, each an IP address."""
    if settings is None:
        return ()
    if not isinstance(settings, Mapping):
        raise DocumentError(f"properties.dnsSettings must be an object, got {settings!r}")
    servers = settings.get("dnsServers") or []
    if not isinstance(servers, list):
        raise DocumentError(f"properties.dnsSettings.dnsServers must be a list, got {servers!r}")
    try:
        return tuple(str(ipaddress.ip_address(str(a))) for a in servers)
    except ValueError as err:
        raise DocumentError(f"properties.dnsSettings.dnsServers: {err}") from None


def _qos_cap(settings: Mapping[str, Any], name: str) -> int:
    """``portSettings.qosSettings.<name>`` in Mbit/s, 0 when absent (no cap)."""
    qos = settings.get("qosSettings") or {}
    if not isinstance(qos, Mapping):
        raise DocumentError(f"properties.portSettings.qosSettings must be an object, got {qos!r}")
    value = qos.get(name) or 0
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise DocumentError(
            f"properties.portSettings.qosSettings.{name} must be a count, got {value!r}"
        )
    return int(value)
