"""The edge's Network Controller resources: a topology's edge turned into REST documents.

Created after the VM NICs, in this order (every reference exists before it is used):

1. ``logicalNetworks/<network>`` per external network (``isPublic`` subnets hold the
   public pool), and ``servers/<gw>`` per gateway host: its uplinks on the PA network
   and one physical NIC per external network, named like its interface (``ext-<net>``);
2. ``gatewayPools/default`` and ``gateways/<gw>`` (the server and its external NICs);
3. ``publicIPAddresses/<vgw>-pip`` per virtual gateway with a Nat or IPSec connection
   (allocated from the public pool: one public address per tenant);
4. for certificate authentication, ``credentials`` with the gateway's certificate and
   the authority the site's certificate is checked against;
5. ``virtualGateways/<vgw>`` with its connections;
6. ``networkInterfaces/<server>`` for each bare-metal server behind a TOR
   (``vtepAddress``).

Secrets (pre-shared keys, certificates) come from ``EdgeSecrets``, which the lab makes
once and also gives the sites. Certificates come from one lab authority, in memory: RSA
(2048 bits; strongSwan here has no elliptic-curve plugin), each naming its endpoint's
public address as a subjectAltName (strongSwan's identity for ``id = <address>``).
"""

from __future__ import annotations

import ipaddress
import secrets as random
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from openhnv.lab import documents as nb
from openhnv.lab import gateway_documents as gw
from openhnv.lab.documents import Resource
from openhnv.lab.edge import Connection, VirtualGateway
from openhnv.lab.edge_builder import EdgeNames
from openhnv.lab.resources import management_address, uplink_nic
from openhnv.lab.topology import Topology
from openhnv.ovsdb import certs
from openhnv.ovsdb.certs import Authority

PSK_BYTES = 18
VALID_DAYS = 30


def new_authority(common_name: str = "openhnv lab IPsec CA") -> Authority:
    # strongSwan checks a CA's digitalSignature usage as well as keyCertSign.
    return certs.new_authority(
        certs.name(common_name), VALID_DAYS, certs.rsa_key(), digital_signature=True
    )


def issue(authority: Authority, address: str) -> tuple[str, str]:
    """(certificate PEM, private key PEM) for the endpoint at ``address``."""
    key = certs.rsa_key()
    alt = x509.IPAddress(ipaddress.ip_address(address))
    cert = certs.sign(authority, certs.name(address), key, VALID_DAYS, alt_names=(alt,))
    return certs.certificate_pem(cert).decode(), certs.key_pem(key).decode()


@dataclass
class EdgeSecrets:
    """Pre-shared keys per (virtual gateway, connection) and the lab's IPsec authority."""

    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    authority: Authority | None = None

    def psk(self, vgw: str, connection: str) -> str:
        return self.keys.setdefault((vgw, connection), random.token_urlsafe(PSK_BYTES))

    def ca(self) -> Authority:
        if self.authority is None:
            self.authority = new_authority()
        return self.authority


def public_ip_name(vgw: str) -> str:
    return f"{vgw}-pip"


def needs_public_ip(vgw: VirtualGateway) -> bool:
    return any(c.type in ("Nat", "IPSec") for c in vgw.connections)


def edge_infrastructure(topology: Topology, run_dir: Path) -> list[Resource]:
    """External networks, gateway servers, the pool and the gateways."""
    edge = topology.edge
    out: list[Resource] = []
    for network in edge.external_networks:
        subnets = [
            gw.external_subnet(
                s.name, str(s.prefix), vlan=s.vlan,
                gateway=str(s.gateway) if s.gateway else None, public=s.public,
                pool=(str(s.ip_pool[0]), str(s.ip_pool[1])) if s.ip_pool else None,
            )
            for s in network.subnets
        ]  # fmt: skip
        out.append(gw.external_network(network.name, subnets))
    for gateway in edge.gateways:
        server = nb.server(
            gateway.name,
            [management_address(run_dir, gateway.name)],
            [(uplink_nic(i), gateway.pa_subnet) for i in range(gateway.uplinks)],
        )
        for network_name in gateway.networks:
            network = edge.external_network(network_name)
            subnets = [
                nb.reference("logicalNetworks", network.name, "subnets", s.name)
                for s in network.subnets
            ]
            nic = EdgeNames.external_interface(network.name)
            server.properties["networkInterfaces"].append(
                nb.child(nic, {"logicalSubnets": subnets})
            )
        out.append(server)
    if edge.gateways:
        out.append(gw.gateway_pool())
    for gateway in edge.gateways:
        nics = [EdgeNames.external_interface(n) for n in gateway.networks]
        out.append(gw.gateway(gateway.name, gateway.name, nics))
    return out


def public_ips(topology: Topology) -> list[Resource]:
    return [
        gw.public_ip(public_ip_name(v.name))
        for v in topology.edge.virtual_gateways
        if needs_public_ip(v)
    ]


def tenant_gateways(
    topology: Topology, secrets: EdgeSecrets, addresses: dict[str, str]
) -> list[Resource]:
    """Credentials and virtual gateways; ``addresses``: each vgw's public address."""
    out: list[Resource] = []
    for vgw in topology.edge.virtual_gateways:
        documents = []
        for conn in vgw.connections:
            document, credentials = _connection(topology, vgw, conn, secrets, addresses)
            documents.append(document)
            out.extend(credentials)
        out.append(gw.virtual_gateway(vgw.name, vgw.virtual_network, vgw.subnet, documents))
    return out


def _connection(
    topology: Topology,
    vgw: VirtualGateway,
    conn: Connection,
    secrets: EdgeSecrets,
    addresses: dict[str, str],
) -> tuple[nb.Document, list[Resource]]:
    pip = public_ip_name(vgw.name)
    if conn.type == "Nat":
        mappings = [(m.protocol, m.port, str(m.to), m.to_port) for m in conn.port_mappings]
        return gw.nat_connection(conn.name, pip, mappings), []
    if conn.type == "L3":
        subnet = topology.edge.external_network(str(conn.network)).subnet(str(conn.subnet))
        document = gw.l3_connection(
            conn.name, str(conn.network), str(conn.subnet), str(conn.address),
            subnet.prefix.prefixlen, [str(conn.peer)], [str(r) for r in conn.routes],
        )  # fmt: skip
        return document, []
    site = topology.edge.site(str(conn.site))
    routes = [str(site.lan)]
    if conn.authentication == "psk":
        key = secrets.psk(vgw.name, conn.name)
        return gw.ipsec_connection(conn.name, pip, str(site.address), routes, shared_secret=key), []
    cert, key_pem = issue(secrets.ca(), addresses[vgw.name])
    local, authority = f"{vgw.name}-{conn.name}-cert", "lab-ipsec-ca"
    credentials = [
        gw.certificate(local, cert + key_pem),
        gw.certificate(authority, secrets.ca().pem),
    ]
    document = gw.ipsec_connection(
        conn.name, pip, str(site.address), routes, local_certificate=local,
        peer_authority=authority,
    )  # fmt: skip
    return document, credentials


def bare_metal_nics(topology: Topology) -> list[Resource]:
    return [
        gw.nic_behind_vtep(
            server.name,
            server.mac.replace(":", "").upper(),
            str(server.ip),
            server.virtual_network,
            server.subnet,
            str(topology.edge.tor(server.tor).vtep),
        )
        for server in topology.edge.bare_metal
    ]
