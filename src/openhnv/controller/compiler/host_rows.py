"""The rows one source puts on a host: a virtual network, a local NIC, the host itself.

docs/southbound.md fixes the tables, keys and columns. A virtual network's piece (its
router, a switch per subnet, the mapping of every CA, the locators they point at, the
replication set and unknown-dst entry per subnet with NICs) is the same on every host
that has one of its NICs; a NIC's piece (its own mappings as ``local``, Physical_Port,
FW_Rules) lives on its host only. Pieces are read-only and shared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

from openhnv.controller.compiler.firewall import NIC_LAYER, SUBNET_LAYER, AclRule, fw_rules
from openhnv.controller.compiler.gateway_rows import GATEWAY_RULES
from openhnv.controller.compiler.index import Index, Nic, Subnet, VirtualNetwork, mac_with_colons
from openhnv.ovsdb.keys import (
    ACCESS_VLAN,
    QOS_INBOUND_COLUMN,
    QOS_OUTBOUND_COLUMN,
    QOS_RESERVED_COLUMN,
)
from openhnv.ovsdb.rows import Atom, Ref, Row

# Referenced tables before the tables that refer to them (diff inserts in this order).
TABLES = (
    "Logical_Switch",
    "Physical_Locator",
    "Physical_Locator_Set",
    "Logical_Router",
    "Ucast_Macs_Remote",
    "Mcast_Macs_Remote",
    "Physical_Port",
    "Provider_Address",
    "Physical_Switch",
    "Global",
    "FW_Rules",
    "Gateway_Compartment",
    "Gateway_Connection",
)
ENCAPSULATION_TYPES = {"vxlan": "vxlan_over_ipv4", "nvgre": "nvgre_over_ipv4"}
UNKNOWN_DST = "unknown-dst"
MACS = "Ucast_Macs_Remote"
UNTAGGED = 0


Piece: TypeAlias = Mapping[str, Mapping[str, Row]]
"""Rows by table that one source (a VNet, a NIC, the host itself) puts on a host."""


def host_piece(index: Index, server_id: str, local_nics: Sequence[Nic]) -> Piece:
    """The host's own rows: Global, Physical_Switch and a Provider_Address per PA."""
    host = index.hosts[server_id]
    pas = host.provider_addresses
    return {
        "Provider_Address": {
            pa.address: {
                "address": pa.address,
                "prefix_length": pa.prefix_length,
                "vlan": pa.vlan,
                "default_gateway": pa.default_gateway,
                "interface": pa.interface,
            }
            for pa in pas
        },
        "Physical_Switch": {
            server_id: {
                "name": server_id,
                "description": host.instance_id,
                "management_ips": host.management_ips,
                "tunnel_ips": frozenset(pa.address for pa in pas),
                "provider_addresses": frozenset(Ref("Provider_Address", pa.address) for pa in pas),
                "ports": frozenset(Ref("Physical_Port", nic.instance_id) for nic in local_nics),
            }
        },
        "Global": {
            "global": {
                "switches": frozenset({Ref("Physical_Switch", server_id)}),
                "other_config": {
                    "distributed_router_mac": mac_with_colons(index.router_mac, "MAC"),
                    "encapsulation": index.encapsulation,
                },
            }
        },
    }


def _locator_key(encapsulation_type: str, address: str) -> str:
    return f"{encapsulation_type}:{address}"


def _ipv6_config(subnet: Subnet) -> dict[Atom, Atom]:
    """A dual-stack subnet's IPv6 prefix and router address (docs/southbound.md)."""
    if not subnet.ipv6_prefix:
        return {}
    return {"address_prefix_v6": subnet.ipv6_prefix, "gateway_ip_v6": subnet.ipv6_gateway_ip}


def vnet_piece(index: Index, vnet_id: str) -> Piece:
    """The rows of one virtual network that every host with one of its NICs gets."""
    vnet = index.vnets[vnet_id]
    encapsulation_type = ENCAPSULATION_TYPES[index.encapsulation]
    switches: dict[str, Row] = {}
    binding: dict[Atom, Atom] = {}
    for subnet in vnet.subnets:
        name = str(subnet.vsid)
        switches[name] = {
            "name": name,
            "description": vnet.rdid,
            "tunnel_key": subnet.vsid,
            "other_config": {
                "address_prefix": subnet.prefix,
                "gateway_ip": subnet.gateway_ip,
                "virtual_network": vnet.vnet_id,
                **_ipv6_config(subnet),
            },
        }
        binding[subnet.prefix] = Ref("Logical_Switch", name)
        if subnet.ipv6_prefix:
            binding[subnet.ipv6_prefix] = Ref("Logical_Switch", name)
    compartment = index.gateways.by_vnet.get(vnet_id)
    static_routes: dict[Atom, Atom] = {}
    if compartment is not None:
        static_routes.update(compartment.routes())
    router: Row = {
        "name": vnet.vnet_id,
        "description": vnet.rdid,
        "enable_logical_router": True,
        "switch_binding": binding,
        "static_routes": static_routes,
        "other_config": {"address_space": ",".join(vnet.address_space)},
    }
    locators: dict[str, Row] = {}
    remote: dict[str, Row] = {}
    replication: dict[str, set[Ref]] = {}
    for key in sorted(index.nics_by_vnet.get(vnet_id, ())):
        nic = index.nics[key]
        vsid = str(nic.subnet.vsid)
        locator = _locator_key(encapsulation_type, nic.provider_address)
        locators[locator] = {
            "dst_ip": nic.provider_address,
            "encapsulation_type": encapsulation_type,
        }
        replication.setdefault(vsid, set()).add(Ref("Physical_Locator", locator))
        for address in nic.addresses:
            row: Row = {
                "MAC": nic.mac,
                "ipaddr": address,
                "logical_switch": Ref("Logical_Switch", vsid),
                "locator": Ref("Physical_Locator", locator),
                "mapping_type": "remote",
            }
            remote[f"{vsid}/{nic.mac}/{address}"] = row
    locator_sets: dict[str, Row] = {}
    flooding: dict[str, Row] = {}
    for vsid, members in sorted(replication.items()):
        locator_sets[f"ls:{vsid}"] = {"locators": frozenset(members)}
        flooding[f"{vsid}/{UNKNOWN_DST}"] = {
            "MAC": UNKNOWN_DST,
            "logical_switch": Ref("Logical_Switch", vsid),
            "locator_set": Ref("Physical_Locator_Set", f"ls:{vsid}"),
            "ipaddr": "",
        }
    return {
        "Logical_Switch": switches,
        "Logical_Router": {vnet.vnet_id: router},
        "Physical_Locator": locators,
        "Physical_Locator_Set": locator_sets,
        MACS: remote,
        "Mcast_Macs_Remote": flooding,
    }


def nic_piece(index: Index, nic: Nic) -> Piece:
    """A local NIC's own mappings (as ``local``), Physical_Port and FW_Rules."""
    if nic.subnet.logical:
        return access_nic_piece(index, nic)
    vnet: VirtualNetwork = index.vnets[nic.vnet_id]
    layers: list[tuple[str, tuple[AclRule, ...]]] = []
    if nic.gateway:
        layers.append((NIC_LAYER, GATEWAY_RULES))
    if nic.subnet.acl_ref is not None and not nic.gateway:
        layers.append((SUBNET_LAYER, index.acl(nic.subnet.acl_ref).rules))
    if nic.acl_ref is not None:
        layers.append((NIC_LAYER, index.acl(nic.acl_ref).rules))
    if not layers:
        layers.append((NIC_LAYER, ()))
    # The VNet's own space for the default rules: with its connected private sites.
    compartment = index.gateways.by_vnet.get(nic.vnet_id)
    private = compartment.private_prefixes() if compartment is not None else frozenset()
    port: Row = {
        "name": nic.instance_id,
        "description": nic.nic_id,
        "vlan_bindings": {UNTAGGED: Ref("Logical_Switch", str(nic.subnet.vsid))},
        "other_config": {
            "mac_address": nic.mac,
            "ip_addresses": ",".join(nic.addresses),
            "mac_spoofing": _bool_text(nic.mac_spoofing),
            "arp_guard": _bool_text(nic.arp_guard),
            "dhcp_guard": _bool_text(nic.dhcp_guard),
            **({"gateway": "true"} if nic.gateway else {}),
            **({"dns_servers": ",".join(nic.dns_servers)} if nic.dns_servers else {}),
            **_qos_columns(nic),
        },
    }
    vsid = str(nic.subnet.vsid)
    locator = _locator_key(ENCAPSULATION_TYPES[index.encapsulation], nic.provider_address)
    local: dict[str, Row] = {
        f"{vsid}/{nic.mac}/{address}": {
            "MAC": nic.mac,
            "ipaddr": address,
            "logical_switch": Ref("Logical_Switch", vsid),
            "locator": Ref("Physical_Locator", locator),
            "mapping_type": "local",
        }
        for address in nic.addresses
    }
    return {
        MACS: local,
        "Physical_Port": {nic.instance_id: port},
        "FW_Rules": fw_rules(nic.instance_id, frozenset(vnet.address_space) | private, layers),
    }


def access_nic_piece(index: Index, nic: Nic) -> Piece:
    """A NIC on a logical (VLAN) subnet: an access port, unbound (no logical switch,
    no mappings) with ``other_config:access_vlan``, and its FW_Rules, whose defaults take
    the logical subnet's prefix as the network's own space."""
    layers: list[tuple[str, tuple[AclRule, ...]]] = []
    if nic.subnet.acl_ref is not None:
        layers.append((SUBNET_LAYER, index.acl(nic.subnet.acl_ref).rules))
    if nic.acl_ref is not None or not layers:
        layers.append((NIC_LAYER, index.acl(nic.acl_ref).rules if nic.acl_ref else ()))
    port: Row = {
        "name": nic.instance_id,
        "description": nic.nic_id,
        "vlan_bindings": {},
        "other_config": {
            ACCESS_VLAN: str(nic.subnet.vlan),
            "mac_address": nic.mac,
            "ip_addresses": ",".join(nic.addresses),
            "mac_spoofing": _bool_text(nic.mac_spoofing),
            "arp_guard": _bool_text(nic.arp_guard),
            "dhcp_guard": _bool_text(nic.dhcp_guard),
            **_qos_columns(nic),
        },
    }
    return {
        "Physical_Port": {nic.instance_id: port},
        "FW_Rules": fw_rules(nic.instance_id, frozenset({nic.subnet.prefix}), layers),
    }


def _bool_text(flag: bool) -> str:
    return "true" if flag else "false"


def _qos_columns(nic: Nic) -> dict[Atom, Atom]:
    """The NIC's QoS caps and reservation for ``other_config`` (0 is left out: none)."""
    caps = {QOS_OUTBOUND_COLUMN: nic.qos_outbound_max_mbps,
            QOS_INBOUND_COLUMN: nic.qos_inbound_max_mbps,
            QOS_RESERVED_COLUMN: nic.qos_outbound_reserved_mbps}  # fmt: skip
    return {column: str(mbps) for column, mbps in caps.items() if mbps}
