"""Northbound documents as a GET returns them: the compiler's input, without a controller.

Each document is built by the lab's builder (``openhnv.lab.documents``) and then
``stored``: the envelope (``resourceRef``, a stable ``instanceId`` and ``etag``,
``provisioningState``) on it and on every child, plus the values the controller would
have allocated (a server's ``providerAddresses``, a virtual network's
``routingDomainId``; VSIDs and MACs are asked for). ``snapshot`` gathers documents
into a compiler snapshot; ``figure8`` is the seed's figure 8 datacenter and
``synthetic_datacenter`` one of any size for the benchmarks.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from openhnv.controller.northbound.paths import child_collections
from openhnv.controller.northbound.render import DISTRIBUTED_ROUTER_MAC
from openhnv.lab import documents as nb
from openhnv.lab.documents import PROVIDER_NETWORK, Resource

Doc = dict[str, Any]
Snapshot = dict[str, list[Doc]]
ProviderAddress = tuple[str, int, int, str]  # address, prefix length, VLAN, gateway
Subnet = tuple[str, str, int, str | None]  # resourceId, prefix, VSID, ACL resourceId

PA_SUBNET = "pa"
SUCCEEDED = "Succeeded"
CONTOSO_RDID = "2b0a7f14-5c1e-4d0e-9a11-c0c0c0c05001"
FABRIKAM_RDID = "7e5d3a22-8f4b-4c6f-b1d2-fafafafa6001"
HOST1_PA: ProviderAddress = ("192.168.1.10", 24, 0, "192.168.1.1")
HOST2_PA: ProviderAddress = ("192.168.2.20", 24, 0, "192.168.2.1")


def instance_id(ref: str) -> str:
    """A stable instanceId for a resource, as the controller would have allocated."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"openhnv-test:{ref}"))


def _envelope(kind: tuple[str, ...], ref: str, properties: Mapping[str, Any]) -> Doc:
    inline = child_collections(kind)
    props: Doc = {}
    for name, value in properties.items():
        if name in inline:
            props[name] = [
                _envelope((*kind, name), f"{ref}/{name}/{c['resourceId']}", c["properties"])
                for c in value
            ]
        else:
            props[name] = value
    props["provisioningState"] = SUCCEEDED
    return {
        "resourceId": ref.rsplit("/", 1)[-1],
        "resourceRef": ref,
        "instanceId": instance_id(ref),
        "etag": f'W/"{instance_id(ref + "#etag")}"',
        "properties": props,
    }


def stored(resource: Resource, **allocated: Any) -> Doc:
    """``resource`` as the controller stores and returns it, with ``allocated`` values."""
    return _envelope((resource.collection,), resource.path, resource.properties | allocated)


def pnic(index: int) -> str:
    """The resourceId of a server's ``index``-th physical NIC (0-based)."""
    return f"pnic{index + 1}"


def server(
    server_id: str, pas: Sequence[ProviderAddress] = (), management: Sequence[str] = ()
) -> Doc:
    """A server with allocated PAs ``(address, prefix_length, vlan, gateway)``, one per pNIC."""
    ref = f"/servers/{server_id}"
    subnet = nb.reference("logicalNetworks", PROVIDER_NETWORK, "subnets", PA_SUBNET)
    addresses = [
        {
            "address": address,
            "prefixLength": prefix_length,
            "vlanID": vlan,
            "defaultGateway": gateway,
            "networkInterface": {"resourceRef": f"{ref}/networkInterfaces/{pnic(i)}"},
            "logicalSubnet": subnet,
        }
        for i, (address, prefix_length, vlan, gateway) in enumerate(pas)
    ]
    nics = [(pnic(i), PA_SUBNET) for i in range(len(pas))]
    return stored(nb.server(server_id, management, nics), providerAddresses=addresses)


def subnet(subnet_id: str, prefix: str, vsid: int, acl: str | None = None) -> Subnet:
    """A virtual subnet to pass to ``vnet``: (id, prefix, VSID, ACL resourceId)."""
    return (subnet_id, prefix, vsid, acl)


def vnet(
    vnet_id: str,
    address_space: Sequence[str],
    subnets: Iterable[Subnet],
    rdid: str | None = None,
) -> Doc:
    """A virtual network with its subnets inline and allocated RDID and VSIDs."""
    children = [
        nb.virtual_subnet(name, prefix, vsid=vsid, acl=acl) for name, prefix, vsid, acl in subnets
    ]
    rdid = rdid or instance_id(f"/virtualNetworks/{vnet_id}#rdid")
    return stored(nb.virtual_network(vnet_id, address_space, children), routingDomainId=rdid)


def nic(
    nic_id: str,
    mac: str,
    ips: Sequence[tuple[str, str]],
    host: str | None = None,
    acl: str | None = None,
    mac_spoofing: str = nb.DISABLED,
) -> Doc:
    """A VM NIC: ``ips`` are (privateIPAddress, "vnet/subnet"); ``host`` its server."""
    configs = []
    for i, (address, where) in enumerate(ips):
        vnet_id, subnet_id = where.split("/")
        configs.append(
            nb.ip_configuration(address, vnet_id, subnet_id, name=f"ipconfig{i + 1}", acl=acl)
        )
    return stored(
        nb.network_interface(nic_id, configs, server_name=host, mac=mac, mac_spoofing=mac_spoofing)
    )


def rule(
    rule_id: str,
    direction: str,
    action: str,
    priority: int,
    protocol: str = "All",
    source: str = nb.ANY,
    destination: str = nb.ANY,
    source_ports: str = nb.ANY,
    destination_ports: str = nb.ANY,
    logging: str = nb.DISABLED,
) -> Doc:
    """An aclRule to pass to ``acl``."""
    return nb.acl_rule(
        rule_id,
        direction,
        action,
        priority,
        protocol=protocol,
        source=source,
        destination=destination,
        source_ports=source_ports,
        destination_ports=destination_ports,
        logging=logging,
    )


def acl(acl_id: str, rules: Sequence[Doc]) -> Doc:
    """An access control list with its aclRules inline."""
    return stored(nb.access_control_list(acl_id, rules))


def configuration(protocol: str = "Vxlan") -> Doc:
    """The virtualNetworkManager/configuration singleton."""
    return stored(nb.configuration(protocol), distributedRouterMacAddress=DISTRIBUTED_ROUTER_MAC)


def snapshot(
    servers: Iterable[Doc] = (),
    vnets: Iterable[Doc] = (),
    nics: Iterable[Doc] = (),
    acls: Iterable[Doc] = (),
    config: Doc | None = None,
) -> Snapshot:
    """A compiler snapshot of those documents."""
    return {
        "logicalNetworks": [],
        "macPools": [],
        "credentials": [],
        "servers": list(servers),
        "accessControlLists": list(acls),
        "virtualNetworks": list(vnets),
        "networkInterfaces": list(nics),
        "virtualNetworkManager": [] if config is None else [config],
    }


def figure8() -> Snapshot:
    """The seed's figure 8: Contoso and Fabrikam, both 10.1.1.0/24, SQL on host1, Web on host2."""
    return snapshot(
        servers=[
            server("host1", [HOST1_PA], ["10.0.0.11"]),
            server("host2", [HOST2_PA], ["10.0.0.12"]),
        ],
        vnets=[
            vnet(
                "Contoso", ["10.1.1.0/24"], [subnet("Subnet1", "10.1.1.0/24", 5001)], CONTOSO_RDID
            ),
            vnet(
                "Fabrikam", ["10.1.1.0/24"], [subnet("Subnet1", "10.1.1.0/24", 6001)], FABRIKAM_RDID
            ),
        ],
        nics=[
            nic("contoso-sql", "001DD8070011", [("10.1.1.11", "Contoso/Subnet1")], "host1"),
            nic("contoso-web", "001DD8070012", [("10.1.1.12", "Contoso/Subnet1")], "host2"),
            nic("fabrikam-sql", "001DD8070021", [("10.1.1.11", "Fabrikam/Subnet1")], "host1"),
            nic("fabrikam-web", "001DD8070022", [("10.1.1.12", "Fabrikam/Subnet1")], "host2"),
        ],
    )


# -- a synthetic datacenter of any size ------------------------------------------------

TEAM = 2  # PAs per host (a team of two)
SUBNETS_PER_VNET = 2
SUBNET_ACL, NIC_ACL = "subnet-acl", "nic-acl"
IPS_PER_BLOCK = 250  # host and NIC numbers are spread over /24-sized blocks of this many


def _synthetic_acls() -> list[Doc]:
    return [
        acl(
            SUBNET_ACL,
            [
                rule("deny-internet-in", "Inbound", "Deny", 100, source="Internet"),
                rule("allow-web", "Inbound", "Allow", 200, "TCP", destination_ports="443"),
                rule("deny-smb-out", "Outbound", "Deny", 300, "TCP", destination_ports="445"),
                rule("allow-dns", "Outbound", "Allow", 400, "UDP", destination_ports="53"),
            ],
        ),
        acl(
            NIC_ACL,
            [
                rule("allow-sql", "Inbound", "Allow", 100, "TCP", destination_ports="1433"),
                rule("allow-icmp", "Inbound", "Allow", 110, "ICMP"),
                rule("deny-out-internet", "Outbound", "Deny", 120, destination="Internet"),
            ],
        ),
    ]


def _synthetic_server(h: int) -> Doc:
    block, offset = divmod(h, IPS_PER_BLOCK)
    pas = [
        (f"172.{16 + m}.{block}.{offset + 1}", 16, 10 + m, f"172.{16 + m}.255.254")
        for m in range(TEAM)
    ]
    return server(f"host{h}", pas, [f"10.0.{block}.{offset + 1}"])


def synthetic_datacenter(hosts: int, vnets: int, nics: int, seed: int = 1) -> Snapshot:
    """``hosts`` servers with a team of two PAs each; ``vnets`` virtual networks of two
    subnets (the first with a 4-rule subnet ACL); ``nics`` NICs spread evenly over the
    virtual networks and at random (seeded) over the hosts, every other one with a
    3-rule NIC ACL."""
    rnd = random.Random(seed)
    networks = [
        vnet(
            f"tenant{v}",
            ["10.0.0.0/15"],
            [
                subnet(
                    f"s{s}",
                    f"10.{s}.0.0/16",
                    5000 + SUBNETS_PER_VNET * v + s,
                    SUBNET_ACL if s == 0 else None,
                )
                for s in range(SUBNETS_PER_VNET)
            ],
        )
        for v in range(vnets)
    ]
    interfaces = []
    for n in range(nics):
        v, s = n % vnets, (n // vnets) % SUBNETS_PER_VNET
        block, offset = divmod(n // vnets, IPS_PER_BLOCK)
        interfaces.append(
            nic(
                f"nic{n}",
                f"001DD8{n:06X}",
                [(f"10.{s}.{block}.{offset + 4}", f"tenant{v}/s{s}")],
                f"host{rnd.randrange(hosts)}",
                acl=NIC_ACL if n % 2 else None,
            )
        )
    return snapshot(
        servers=[_synthetic_server(h) for h in range(hosts)],
        vnets=networks,
        nics=interfaces,
        acls=_synthetic_acls(),
    )


def acl_datacenter(
    *, subnet_acl: bool = True, web_acl: bool = False, sql_acl: bool = False
) -> Snapshot:
    """Contoso 10.1.0.0/16, Subnet1 10.1.1.0/24 (optionally with the subnet ACL), SQL
    (10.1.1.11) and Web (10.1.1.12) both on host1, App (10.1.1.13) on host2.

    Subnet ACL: deny inbound TCP 22, allow inbound TCP 80 from anywhere, deny inbound
    TCP 443. Web's NIC ACL: deny inbound TCP 80. SQL's NIC ACL: allow inbound TCP 443.
    """
    acls = [
        acl(
            "subnet-acl",
            [
                rule("deny-ssh", "Inbound", "Deny", 100, "TCP", destination_ports="22"),
                rule("allow-web", "Inbound", "Allow", 110, "TCP", destination_ports="80"),
                rule("deny-tls", "Inbound", "Deny", 120, "TCP", destination_ports="443"),
            ],
        ),
        acl("web-acl", [rule("no-http", "Inbound", "Deny", 100, "TCP", destination_ports="80")]),
        acl("sql-acl", [rule("tls", "Inbound", "Allow", 100, "TCP", destination_ports="443")]),
    ]
    contoso = subnet("Subnet1", "10.1.1.0/24", 5001, "subnet-acl" if subnet_acl else None)
    where = "Contoso/Subnet1"
    return snapshot(
        servers=[
            server("host1", [HOST1_PA], ["10.0.0.11"]),
            server("host2", [HOST2_PA], ["10.0.0.12"]),
        ],
        vnets=[vnet("Contoso", ["10.1.0.0/16"], [contoso], CONTOSO_RDID)],
        nics=[
            nic(
                "sql",
                "001DD8070011",
                [("10.1.1.11", where)],
                "host1",
                "sql-acl" if sql_acl else None,
            ),
            nic(
                "web",
                "001DD8070012",
                [("10.1.1.12", where)],
                "host1",
                "web-acl" if web_acl else None,
            ),
            nic("app", "001DD8070013", [("10.1.1.13", where)], "host2"),
        ],
        acls=acls,
        config=configuration(),
    )
