"""Northbound documents of gateways, the gateway part of the one builder (``lab.documents``).

External logical networks, public IP addresses, gateway pools, gateways, virtual gateways
and their connections (``Nat``, ``IPSec``, ``L3``), credentials holding certificates, and
a NIC behind a hardware VTEP — each exactly as the controller accepts it (docs/api.md,
"Gateways"). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

from openhnv.lab.documents import Document, Resource, child, reference

DEFAULT_POOL = "default"


def _resource(collection: str, resource_id: str, properties: Document) -> Resource:
    return Resource(collection, resource_id, child(resource_id, properties))


def external_subnet(
    name: str,
    prefix: str,
    *,
    vlan: int = 0,
    gateway: str | None = None,
    public: bool = False,
    pool: tuple[str, str] | None = None,
) -> Document:
    """A subnet of a logical network outside HNV; ``public`` ones hold public addresses."""
    properties: Document = {"addressPrefix": prefix, "vlanID": vlan, "isPublic": public}
    if gateway is not None:
        properties["defaultGateways"] = [gateway]
    if pool is not None:
        properties["ipPools"] = [
            child(f"{name}-pool", {"startIpAddress": pool[0], "endIpAddress": pool[1]})
        ]
    return child(name, properties)


def external_network(name: str, subnets: Sequence[Document]) -> Resource:
    """A logical network without network virtualization (an Internet, a VLAN network)."""
    return _resource("logicalNetworks", name, {"subnets": list(subnets)})


def public_ip(name: str, address: str | None = None) -> Resource:
    """A public IP address: ``address`` (Static), or one from a public pool (Dynamic)."""
    properties: Document = {"publicIPAddressVersion": "IPv4"}
    if address is None:
        properties["publicIPAllocationMethod"] = "Dynamic"
    else:
        properties.update(ipAddress=address, publicIPAllocationMethod="Static")
    return _resource("publicIPAddresses", name, properties)


def gateway_pool(name: str = DEFAULT_POOL, kind: str = "All") -> Resource:
    return _resource("gatewayPools", name, {"type": kind, "redundantGatewayCount": 0})


def gateway(
    name: str, server: str, external_nics: Sequence[str], pool: str = DEFAULT_POOL
) -> Resource:
    """A gateway: the server running ``hnv host --role gateway`` and its external NICs."""
    return _resource(
        "gateways",
        name,
        {
            "pool": reference("gatewayPools", pool),
            "type": "All",
            "server": reference("servers", server),
            "externalInterfaces": [
                reference("servers", server, "networkInterfaces", nic) for nic in external_nics
            ],
        },
    )


def nat_connection(
    name: str, public_ip_name: str, port_mappings: Sequence[tuple[str, int, str, int]] = ()
) -> Document:
    """Outbound NAT behind a public address; inbound (protocol, port, backend, port)."""
    properties: Document = {
        "connectionType": "Nat",
        "publicIPAddress": reference("publicIPAddresses", public_ip_name),
    }
    if port_mappings:
        properties["natConfiguration"] = {
            "inboundNatRules": [
                {"protocol": p, "frontendPort": f, "backendIPAddress": b, "backendPort": bp}
                for p, f, b, bp in port_mappings
            ]
        }
    return child(name, properties)


def ipsec_connection(
    name: str,
    public_ip_name: str,
    destination: str,
    routes: Sequence[str],
    *,
    shared_secret: str | None = None,
    local_certificate: str | None = None,
    peer_authority: str | None = None,
) -> Document:
    """A site-to-site IPsec tunnel: a pre-shared key, or two certificate credentials."""
    config: Document = {"authenticationMethod": "PSK"}
    if shared_secret is not None:
        config["sharedSecret"] = shared_secret
    if local_certificate is not None and peer_authority is not None:
        config = {
            "authenticationMethod": "Certificates",
            "localCertificate": reference("credentials", local_certificate),
            "peerCertificateAuthority": reference("credentials", peer_authority),
        }
    return child(
        name,
        {
            "connectionType": "IPSec",
            "publicIPAddress": reference("publicIPAddresses", public_ip_name),
            "destinationIPAddress": destination,
            "routes": [{"destinationPrefix": r, "metric": 10} for r in routes],
            "ipSecConfiguration": config,
        },
    )


def l3_connection(
    name: str,
    network: str,
    subnet: str,
    address: str,
    prefix_length: int,
    peers: Sequence[str],
    routes: Sequence[str] = (),
) -> Document:
    """L3 forwarding: the compartment on a VLAN subnet, ``routes`` through ``peers[0]``."""
    return child(
        name,
        {
            "connectionType": "L3",
            "l3Configuration": {
                "vlanSubnet": reference("logicalNetworks", network, "subnets", subnet)
            },
            "ipAddresses": [{"ipAddress": address, "prefixLength": prefix_length}],
            "peerIPAddresses": list(peers),
            "routes": [{"destinationPrefix": r, "metric": 10} for r in routes],
        },
    )


def virtual_gateway(
    name: str,
    virtual_network_name: str,
    gateway_subnet: str,
    connections: Sequence[Document],
    pool: str = DEFAULT_POOL,
) -> Resource:
    return _resource(
        "virtualGateways",
        name,
        {
            "gatewayPool": reference("gatewayPools", pool),
            "gatewaySubnets": [
                reference("virtualNetworks", virtual_network_name, "subnets", gateway_subnet)
            ],
            "routingType": "Static",
            "networkConnections": list(connections),
        },
    )


def certificate(name: str, pem: str) -> Resource:
    """A credential holding PEM: a certificate (and its key), or a CA's certificate."""
    return _resource("credentials", name, {"type": "X509Certificate", "value": pem})


def nic_behind_vtep(
    name: str, mac: str, address: str, virtual_network_name: str, subnet: str, vtep: str
) -> Resource:
    """A server's NIC behind a hardware VTEP (openhnv's ``vtepAddress``)."""
    return _resource(
        "networkInterfaces",
        name,
        {
            "privateMacAddress": mac,
            "privateMacAllocationMethod": "Static",
            "vtepAddress": vtep,
            "ipConfigurations": [
                child(
                    "ipconfig1",
                    {
                        "privateIPAddress": address,
                        "privateIPAllocationMethod": "Static",
                        "subnet": reference(
                            "virtualNetworks", virtual_network_name, "subnets", subnet
                        ),
                    },
                )
            ],
        },
    )
