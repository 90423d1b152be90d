"""The Network Controller resources of a lab: a topology turned into REST documents.

A pure function of the topology and the lab's run directory, so that `hnv lab up` can
create a datacenter exactly as an operator would, one ``PUT`` per resource, in an order
where every reference already exists:

1. ``virtualNetworkManager/configuration`` — the encapsulation (``Vxlan`` / ``Nvgre``);
2. ``logicalNetworks/HNVPA`` — the provider network (``networkVirtualizationEnabled``),
   one subnet per PA subnet with its ``vlanID``, gateway and ``ipPools``;
3. ``macPools/lab`` — where VM MACs come from when the topology gives none;
4. ``servers/<host>`` — one per host, registered as SDN Express does, by a bare IP: the
   host's address on the lab's management network (``lab.management``), where its
   ``hnv host`` serves OVSDB over SSL at 6640; one physical NIC per uplink named like the
   uplink (``up0``, ``up1``, …) so that a PA lands on its team member;
5. ``accessControlLists/<acl>`` — Microsoft-style ``aclRules``;
6. ``virtualNetworks/<vnet>`` — address space, subnets with the asked VSIDs and ACLs;
7. ``logicalNetworks/<network>`` — the external networks VMs sit on (VLAN subnets);
8. ``networkInterfaces/<vm>`` — one per VM, its ipConfiguration (a virtual subnet, or a
   logical subnet: an access port) and its ``server``.

The NICs come last and separately (``nic_resources``): their answers carry the
instanceId and MAC that the lab gives to the VM's veth. Every document comes from the
one northbound builder, ``lab.documents``.
"""

from __future__ import annotations

from pathlib import Path

from openhnv.lab import documents as nb
from openhnv.lab import gateway_documents as gw
from openhnv.lab import management
from openhnv.lab.documents import Document, Resource
from openhnv.lab.edge import ExternalNetwork
from openhnv.lab.topology import PORT_MAX, AclRule, Topology, Vm

MAC_POOL = "lab"
IPV6_CONFIGURATION = "ipconfig6"  # a dual-stack VM's second ipConfiguration
MAC_POOL_RANGE = ("00-1D-D8-B7-00-00", "00-1D-D8-B7-FF-FF")
OVSDB_SOCKET = "ovsdb.sock"
_PROTOCOL_NAMES = {"vxlan": "Vxlan", "nvgre": "Nvgre"}


def host_state_dir(run_dir: Path, host: str) -> Path:
    """Where ``hnv host`` of ``host`` keeps its OVSDB files and sockets."""
    return run_dir / "hosts" / host


def management_address(topology: Topology, host: str) -> str:
    """The management address the controller knows ``host`` by (a bare IP: SSL, 6640)."""
    return management.plan(topology).address(host)


def development_address(run_dir: Path, host: str) -> str:
    """The OVSDB unix socket every ``hnv host`` also serves (for development)."""
    return f"unix:{host_state_dir(run_dir, host) / OVSDB_SOCKET}"


def uplink_nic(index: int) -> str:
    """The physical NIC resourceId of uplink ``index``: the uplink's interface name."""
    return f"up{index}"


def _port_range(ports: tuple[int, int]) -> str:
    low, high = ports
    if (low, high) == (0, PORT_MAX):
        return nb.ANY
    return str(low) if low == high else f"{low}-{high}"


def _mac_text(mac: str) -> str:
    """``00:1d:d8:b7:1c:11`` -> ``00-1D-D8-B7-1C-11`` (Microsoft's spelling)."""
    return mac.replace(":", "-").upper()


def configuration(topology: Topology) -> Resource:
    return nb.configuration(_PROTOCOL_NAMES[topology.encapsulation])


def provider_network(topology: Topology) -> Resource:
    subnets = []
    for pa in topology.pa_subnets:
        start, end = pa.ip_pool
        pool = nb.ip_pool(f"{pa.name}-pool", str(start), str(end))
        subnets.append(
            nb.pa_subnet(
                pa.name, str(pa.prefix), vlan=pa.vlan, gateway=str(pa.gateway), pools=[pool]
            )
        )
    return nb.provider_network(subnets)


def mac_pool() -> Resource:
    return nb.mac_pool(MAC_POOL, *MAC_POOL_RANGE)


def servers(topology: Topology, run_dir: Path) -> list[Resource]:
    return [
        nb.server(
            host.name,
            [management_address(topology, host.name)],
            [(uplink_nic(i), host.pa_subnet) for i in range(host.uplinks)],
        )
        for host in topology.hosts
    ]


def _acl_rule(rule: AclRule) -> Document:
    return nb.acl_rule(
        rule.name,
        rule.type,
        rule.action,
        rule.priority,
        protocol=rule.protocol,
        source=rule.source_prefix,
        destination=rule.destination_prefix,
        source_ports=_port_range(rule.source_ports),
        destination_ports=_port_range(rule.destination_ports),
    )


def access_control_lists(topology: Topology) -> list[Resource]:
    return [
        nb.access_control_list(acl.name, [_acl_rule(rule) for rule in acl.rules])
        for acl in topology.acls
    ]


def virtual_networks(topology: Topology) -> list[Resource]:
    return [
        nb.virtual_network(
            network.name,
            # the IPv6 address space is the subnets' prefix6s (the lab file names no other)
            [str(p) for p in network.address_space]
            + [str(s.prefix6) for s in network.subnets if s.prefix6 is not None],
            [
                nb.virtual_subnet(
                    subnet.name,
                    str(subnet.prefix),
                    vsid=subnet.vsid,
                    acl=subnet.acl,
                    ipv6_prefix=None if subnet.prefix6 is None else str(subnet.prefix6),
                )
                for subnet in network.subnets
            ],
        )
        for network in topology.virtual_networks
    ]


def nic_resource(vm: Vm) -> Resource:
    """The VM's NIC: Static MAC when the topology gives one, else from the MAC pool; on a
    logical network, its ipConfiguration names the logical subnet (an access port)."""
    config = nb.ip_configuration(str(vm.ip), vm.virtual_network or "-", vm.subnet, acl=vm.acl)
    if vm.logical_network is not None:
        where = nb.reference("logicalNetworks", vm.logical_network, "subnets", vm.subnet)
        config["properties"]["subnet"] = where
    configs = [config]
    if vm.ip6 is not None:  # dual stack: a second ipConfiguration in the same subnet
        six = nb.ip_configuration(
            str(vm.ip6), vm.virtual_network, vm.subnet, name=IPV6_CONFIGURATION, acl=vm.acl
        )
        configs.append(six)
    return nb.network_interface(
        vm.name,
        configs,
        server_name=vm.host,
        mac=None if vm.mac is None else _mac_text(vm.mac),
        dns_servers=[str(a) for a in vm.dns_servers],
        qos=_qos_settings(vm),
    )


def _qos_settings(vm: Vm) -> dict[str, int] | None:
    """The NIC's ``portSettings.qosSettings`` (None: the VM's YAML has no caps and no
    reservation)."""
    caps = {"outboundMaximumMbps": vm.qos_outbound_mbps, "inboundMaximumMbps": vm.qos_inbound_mbps}
    if vm.qos_reserved_mbps:
        caps["outboundReservedValue"] = vm.qos_reserved_mbps
    return caps if any(caps.values()) else None


def external_network(network: ExternalNetwork) -> Resource:
    """An external network as a logical network without network virtualization."""
    subnets = [
        gw.external_subnet(
            s.name, str(s.prefix), vlan=s.vlan,
            gateway=str(s.gateway) if s.gateway else None, public=s.public,
            pool=(str(s.ip_pool[0]), str(s.ip_pool[1])) if s.ip_pool else None,
        )
        for s in network.subnets
    ]  # fmt: skip
    return gw.external_network(network.name, subnets)


def vm_networks(topology: Topology) -> set[str]:
    """The external networks that VMs sit on (created before the NICs, not by the edge)."""
    return {vm.logical_network for vm in topology.vms if vm.logical_network is not None}


def logical_networks(topology: Topology) -> list[Resource]:
    used = vm_networks(topology)
    return [external_network(n) for n in topology.edge.external_networks if n.name in used]


def infrastructure(topology: Topology, run_dir: Path) -> list[Resource]:
    """Everything but the NICs, in creation order."""
    return [
        configuration(topology),
        provider_network(topology),
        mac_pool(),
        *servers(topology, run_dir),
        *access_control_lists(topology),
        *virtual_networks(topology),
        *logical_networks(topology),
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
