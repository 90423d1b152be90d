"""The Network Controller resources of a lab: a topology turned into REST documents.

A pure function of the topology and the lab's run directory, so that `hnv lab up` can
create a datacenter exactly as an operator would, one ``PUT`` per resource, in an order
where every reference already exists:

1. ``virtualNetworkManager/configuration`` — the encapsulation (``Vxlan`` / ``Nvgre``);
2. ``logicalNetworks/HNVPA`` — the provider network (``networkVirtualizationEnabled``),
   one subnet per PA subnet with its ``vlanID``, gateway and ``ipPools``;
3. ``macPools/lab`` — where VM MACs come from when the topology gives none;
4. ``servers/<host>`` — one per host, managed over the OVSDB unix socket of its
   ``hnv host`` (``unix:<run_dir>/hosts/<host>/ovsdb.sock``), one physical NIC per uplink
   named like the uplink (``up0``, ``up1``, …) so that a PA lands on its team member;
5. ``accessControlLists/<acl>`` — Microsoft-style ``aclRules``;
6. ``virtualNetworks/<vnet>`` — address space, subnets with the asked VSIDs and ACLs;
7. ``networkInterfaces/<vm>`` — one per VM, its ipConfiguration and its ``server``.

The NICs come last and separately (``nic_resources``): their answers carry the
instanceId and MAC that the lab gives to the VM's veth.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openhnv.lab.topology import PORT_MAX, AclRule, Topology, Vm

PROVIDER_NETWORK = "HNVPA"
MAC_POOL = "lab"
MAC_POOL_RANGE = ("00-1D-D8-B7-00-00", "00-1D-D8-B7-FF-FF")
IP_CONFIGURATION = "ipconfig1"
CONFIGURATION_PATH = ("virtualNetworkManager", "configuration")
OVSDB_SOCKET = "ovsdb.sock"
_PROTOCOL_NAMES = {"vxlan": "Vxlan", "nvgre": "Nvgre"}

Document = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Resource:
    """One REST resource to ``PUT``: where, and the body."""

    collection: str
    resource_id: str
    body: Document

    @property
    def path(self) -> str:
        """``/servers/host1`` (relative to ``/networking/v1``)."""
        return f"/{self.collection}/{self.resource_id}"


def host_state_dir(run_dir: Path, host: str) -> Path:
    """Where ``hnv host`` of ``host`` keeps its OVSDB files and sockets."""
    return run_dir / "hosts" / host


def management_address(run_dir: Path, host: str) -> str:
    """The OVSDB address the controller uses for ``host``."""
    return f"unix:{host_state_dir(run_dir, host) / OVSDB_SOCKET}"


def uplink_nic(index: int) -> str:
    """The physical NIC resourceId of uplink ``index``: the uplink's interface name."""
    return f"up{index}"


def _ref(*parts: str) -> dict[str, str]:
    return {"resourceRef": "/" + "/".join(parts)}


def _port_range(ports: tuple[int, int]) -> str:
    low, high = ports
    if (low, high) == (0, PORT_MAX):
        return "*"
    return str(low) if low == high else f"{low}-{high}"


def _mac_text(mac: str) -> str:
    """``00:1d:d8:b7:1c:11`` -> ``00-1D-D8-B7-1C-11`` (Microsoft's spelling)."""
    return mac.replace(":", "-").upper()


def configuration(topology: Topology) -> Resource:
    protocol = _PROTOCOL_NAMES[topology.encapsulation]
    return Resource(
        CONFIGURATION_PATH[0],
        CONFIGURATION_PATH[1],
        {
            "resourceId": CONFIGURATION_PATH[1],
            "properties": {"networkVirtualizationProtocol": protocol},
        },
    )


def provider_network(topology: Topology) -> Resource:
    subnets = []
    for pa in topology.pa_subnets:
        start, end = pa.ip_pool
        subnets.append(
            {
                "resourceId": pa.name,
                "properties": {
                    "addressPrefix": str(pa.prefix),
                    "vlanID": pa.vlan,
                    "defaultGateways": [str(pa.gateway)],
                    "ipPools": [
                        {
                            "resourceId": f"{pa.name}-pool",
                            "properties": {
                                "startIpAddress": str(start),
                                "endIpAddress": str(end),
                            },
                        }
                    ],
                },
            }
        )
    return Resource(
        "logicalNetworks",
        PROVIDER_NETWORK,
        {
            "resourceId": PROVIDER_NETWORK,
            "properties": {"networkVirtualizationEnabled": True, "subnets": subnets},
        },
    )


def mac_pool() -> Resource:
    start, end = MAC_POOL_RANGE
    return Resource(
        "macPools",
        MAC_POOL,
        {"resourceId": MAC_POOL, "properties": {"startMacAddress": start, "endMacAddress": end}},
    )


def servers(topology: Topology, run_dir: Path) -> list[Resource]:
    result = []
    for host in topology.hosts:
        subnet_ref = _ref("logicalNetworks", PROVIDER_NETWORK, "subnets", host.pa_subnet)
        nics = [
            {"resourceId": uplink_nic(i), "properties": {"logicalSubnets": [subnet_ref]}}
            for i in range(host.uplinks)
        ]
        properties = {
            "connections": [{"managementAddresses": [management_address(run_dir, host.name)]}],
            "networkInterfaces": nics,
        }
        result.append(
            Resource("servers", host.name, {"resourceId": host.name, "properties": properties})
        )
    return result


def _acl_rule(rule: AclRule) -> Document:
    return {
        "resourceId": rule.name,
        "properties": {
            "protocol": rule.protocol,
            "sourcePortRange": _port_range(rule.source_ports),
            "destinationPortRange": _port_range(rule.destination_ports),
            "sourceAddressPrefix": rule.source_prefix,
            "destinationAddressPrefix": rule.destination_prefix,
            "action": rule.action,
            "priority": rule.priority,
            "type": rule.type,
            "logging": "Disabled",
        },
    }


def access_control_lists(topology: Topology) -> list[Resource]:
    return [
        Resource(
            "accessControlLists",
            acl.name,
            {
                "resourceId": acl.name,
                "properties": {"aclRules": [_acl_rule(rule) for rule in acl.rules]},
            },
        )
        for acl in topology.acls
    ]


def virtual_networks(topology: Topology) -> list[Resource]:
    result = []
    for network in topology.virtual_networks:
        subnets = []
        for subnet in network.subnets:
            properties: Document = {"addressPrefix": str(subnet.prefix)}
            if subnet.vsid is not None:
                properties["virtualSubnetId"] = subnet.vsid
            if subnet.acl is not None:
                properties["accessControlList"] = _ref("accessControlLists", subnet.acl)
            subnets.append({"resourceId": subnet.name, "properties": properties})
        body = {
            "resourceId": network.name,
            "properties": {
                "addressSpace": {"addressPrefixes": [str(p) for p in network.address_space]},
                "logicalNetwork": _ref("logicalNetworks", PROVIDER_NETWORK),
                "subnets": subnets,
            },
        }
        result.append(Resource("virtualNetworks", network.name, body))
    return result


def nic_resource(vm: Vm) -> Resource:
    """The VM's NIC: Static MAC when the topology gives one, else from the MAC pool."""
    properties: Document = {
        "server": _ref("servers", vm.host),
        "ipConfigurations": [
            {
                "resourceId": IP_CONFIGURATION,
                "properties": {
                    "privateIPAddress": str(vm.ip),
                    "privateIPAllocationMethod": "Static",
                    "subnet": _ref("virtualNetworks", vm.virtual_network, "subnets", vm.subnet),
                },
            }
        ],
        "portSettings": {
            "macSpoofingEnabled": "Disabled",
            "arpGuardEnabled": "Disabled",
            "dhcpGuardEnabled": "Disabled",
        },
    }
    if vm.mac is not None:
        properties["privateMacAddress"] = _mac_text(vm.mac)
        properties["privateMacAllocationMethod"] = "Static"
    else:
        properties["privateMacAllocationMethod"] = "Dynamic"
    return Resource("networkInterfaces", vm.name, {"resourceId": vm.name, "properties": properties})


def infrastructure(topology: Topology, run_dir: Path) -> list[Resource]:
    """Everything but the NICs, in creation order."""
    return [
        configuration(topology),
        provider_network(topology),
        mac_pool(),
        *servers(topology, run_dir),
        *access_control_lists(topology),
        *virtual_networks(topology),
    ]


def nic_resources(topology: Topology) -> list[Resource]:
    """The VMs' NICs; those with a Static MAC first, so a Dynamic one never takes it."""
    ordered = sorted(topology.vms, key=lambda vm: vm.mac is None)
    return [nic_resource(vm) for vm in ordered]


def plan(topology: Topology, run_dir: Path) -> list[Resource]:
    """Every resource of the lab, in creation order (delete in reverse)."""
    return [*infrastructure(topology, run_dir), *nic_resources(topology)]


def mac_of(document: Document) -> str:
    """A NIC document's MAC as the kernel writes it: ``00:1d:d8:b7:00:01``."""
    raw = str(document.get("properties", {}).get("privateMacAddress", ""))
    digits = "".join(c for c in raw if c not in ":-").lower()
    if len(digits) != 12 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"networkInterfaces: privateMacAddress {raw!r} is not a MAC address")
    return ":".join(digits[k : k + 2] for k in range(0, 12, 2))
