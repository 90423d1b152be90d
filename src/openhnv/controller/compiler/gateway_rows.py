"""The rows a gateway host gets for its compartments (docs/southbound.md, "Gateways").

``Gateway_Compartment`` per virtual gateway placed on the host (its NIC in the VNet,
the router to reach the VNet through, the VNet's address space) and
``Gateway_Connection`` per connection (type, the external leg, the compartment's
addresses there, peers, routes, port mappings, options such as IPsec algorithms in
Microsoft's names and the key or certificates). A compartment's own NIC gets the
``FW_Rules`` of ``GATEWAY_RULES``: the compartment filters for itself (nftables).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from openhnv.controller.compiler.firewall import ALL_PORTS, ANYWHERE, AclRule
from openhnv.controller.compiler.gateways import Compartment
from openhnv.controller.compiler.index import Index
from openhnv.ovsdb.rows import Atom, Row

COMPARTMENTS, CONNECTIONS = "Gateway_Compartment", "Gateway_Connection"
GATEWAY_RULE_PRIORITY = 100
GATEWAY_RULES = tuple(
    AclRule(
        name=f"gateway-allow-{direction}",
        direction=direction,
        action="allow",
        protocols=frozenset(),
        source=ANYWHERE,
        destination=ANYWHERE,
        source_ports=ALL_PORTS,
        destination_ports=ALL_PORTS,
        priority=GATEWAY_RULE_PRIORITY,
        logging="disabled",
    )
    for direction in ("in", "out")
)
"""A compartment's port passes everything; its own nftables rules decide."""


def gateway_piece(index: Index, server_id: str) -> dict[str, dict[str, Row]]:
    """The compartments placed on ``server_id`` and their connections."""
    compartments: dict[str, Row] = {}
    connections: dict[str, Row] = {}
    for compartment in index.gateways.on_host(server_id):
        compartments[compartment.name] = compartment_row(index, compartment)
        for connection in compartment.connections:
            name = f"{compartment.name}/{connection.name}"
            connections[name] = {
                "name": name,
                "compartment": compartment.name,
                "connection_type": connection.kind,
                "routes": frozenset(connection.routes),
                "addresses": frozenset(connection.addresses),
                "peers": frozenset(connection.peers),
                "network": _atoms(
                    {
                        "interface": connection.leg.interface,
                        "vlan": str(connection.leg.vlan),
                        "prefix": connection.leg.prefix,
                        "gateway": connection.leg.gateway,
                    }
                ),
                "port_mappings": frozenset(connection.port_mappings),
                "options": _atoms(connection.options),
            }
    return {COMPARTMENTS: compartments, CONNECTIONS: connections}


def compartment_row(index: Index, compartment: Compartment) -> Row:
    vnet = index.vnets[compartment.vnet_id]
    subnet = next(
        s for s in vnet.subnets if s.ref.casefold() == compartment.nic.subnet_ref.casefold()
    )
    length = ipaddress.ip_network(subnet.prefix).prefixlen
    return {
        "name": compartment.name,
        "description": compartment.instance_id,
        "port": compartment.nic.instance_id,
        "mac": compartment.nic.mac,
        "address": f"{compartment.nic.address}/{length}",
        "router": subnet.gateway_ip,
        "address_space": frozenset(vnet.address_space),
        "other_config": _atoms({"virtual_network": vnet.vnet_id, "routing_domain": vnet.rdid}),
    }


def _atoms(values: Mapping[str, str]) -> dict[Atom, Atom]:
    """A string map as an OVSDB map column."""
    return {key: value for key, value in values.items()}
