"""``hnv lab up`` for the edge: gateway hosts, the edge's resources, the sites and TORs.

Called by ``orchestrator``: ``start_gateway_hosts`` right after the hosts (a gateway is
a host: the controller dials its OVSDB like any other), ``bring_up_edge`` after the VM
NICs are ``Succeeded``: the external networks, gateway servers, pool and gateways, the
tenants' public addresses, the sites' charons (which need those addresses), the virtual
gateways, the bare-metal NICs, and once those are programmed the TORs' tables.

A site is the other end of the tenants' IPsec connections: its router runs its own
charon (``gateway.daemons.start_charon``: private files under ``<run>/sites/<site>/``,
known and stopped by its pidfile, which ``hnv lab down`` finds), answering each tenant
connection that names it (its LAN to the tenant's address space, the key or
certificates the lab made).

A TOR is a Linux bridge with a VXLAN device per VSID of its bare-metal servers,
configured only with ``ip`` and ``bridge``, the way a hardware VTEP is given its
tables: for every VM NIC of that VSID, the MAC's VTEP is its host's PA (``bridge fdb``)
and the CA's MAC is answered from the neighbour table (``proxy``, no flooding of ARP);
broadcasts go to each such host's PA.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from openhnv.gateway import daemons as gateway_daemons
from openhnv.gateway.errors import GatewayError
from openhnv.gateway.ipsec import ipsec_files
from openhnv.gateway.rows import ConnectionSpec, Leg
from openhnv.lab import builder, daemons, management, netns
from openhnv.lab.documents import Document, Resource
from openhnv.lab.edge import Site, Tor
from openhnv.lab.edge_builder import BRIDGE, EdgeNames
from openhnv.lab.edge_resources import (
    EdgeSecrets,
    bare_metal_nics,
    edge_infrastructure,
    issue,
    public_ips,
    tenant_gateways,
)
from openhnv.lab.errors import LabError
from openhnv.lab.rest import ControllerClient, wait_succeeded
from openhnv.packet.vxlan import VXLAN_PORT

Progress = Callable[[str], None]
GATEWAY_ROLE = ("--role", "gateway")


@dataclass
class EdgeState:
    """What the edge's bring-up learnt: public addresses, secrets, documents."""

    secrets: EdgeSecrets = field(default_factory=EdgeSecrets)
    public_addresses: dict[str, str] = field(default_factory=dict)  # vgw -> address
    virtual_gateways: dict[str, Document] = field(default_factory=dict)
    site_pids: dict[str, int] = field(default_factory=dict)


def start_gateway_hosts(lab: builder.Lab, progress: Progress) -> None:
    """Each gateway host, serving OVSDB over SSL at its management address."""
    names = EdgeNames(lab.topology.name)
    addresses, pki = management.plan(lab.topology), management.pki_dir(lab.run_dir)
    for gateway in lab.topology.edge.gateways:
        namespace = lab.names.host(gateway.name)
        progress(f"gateway host {gateway.name}: hnv host --role gateway in {namespace}")
        extra = (*GATEWAY_ROLE, "--compartment-prefix", names.compartments(gateway.name))
        try:
            daemons.start_host(
                lab.run_dir,
                namespace,
                gateway.name,
                extra=extra,
                shared_mounts=True,
                listen=addresses.listen(gateway.name),
                pki=pki,
            )
        except LabError as err:
            raise LabError(f"gateway host {gateway.name}: {err}") from err


def _put(client: ControllerClient, resource: Resource, progress: Progress) -> Document:
    progress(f"PUT {resource.path}")
    try:
        return client.put(resource)
    except (LabError, OSError, ValueError, httpx.HTTPError) as err:
        raise LabError(f"PUT {resource.path}: {err}") from err


def bring_up_edge(
    lab: builder.Lab, client: ControllerClient, progress: Progress, timeout: float
) -> EdgeState:
    """Every edge resource through the REST API, the sites and the TORs."""
    topology, state = lab.topology, EdgeState()
    if not (topology.edge.external_networks or topology.edge.tors):
        return state
    for resource in edge_infrastructure(topology, lab.run_dir):
        _put(client, resource, progress)
    for resource in public_ips(topology):
        document = _put(client, resource, progress)
        vgw = resource.resource_id.removesuffix("-pip")
        state.public_addresses[vgw] = str(document["properties"]["ipAddress"])
    if topology.edge.sites:
        progress(f"sites: strongSwan in {', '.join(s.name for s in topology.edge.sites)}")
        state.site_pids = start_sites(lab, state.secrets, state.public_addresses)
    for resource in tenant_gateways(topology, state.secrets, state.public_addresses):
        document = _put(client, resource, progress)
        if resource.collection == "virtualGateways":
            state.virtual_gateways[resource.resource_id] = document
    bare = {r.resource_id: _put(client, r, progress) for r in bare_metal_nics(topology)}
    if bare:
        progress(f"waiting for {len(bare)} bare-metal NICs to be Succeeded")
        wait_succeeded(client, bare, timeout, progress)
        progress("TORs: VXLAN devices and their tables")
        configure_tors(
            lab,
            client.list("networkInterfaces"),
            client.list("virtualNetworks"),
            client.list("servers"),
        )
    return state


# -- sites --------------------------------------------------------------------------------
SITES_DIR = "sites"


def site_dir(run_dir: Path, site: str) -> Path:
    return run_dir / SITES_DIR / site / "ipsec"


def start_sites(
    lab: builder.Lab, secrets: EdgeSecrets, addresses: Mapping[str, str]
) -> dict[str, int]:
    """Start each site's charon answering the tenants' IPSec connections; pid by site."""
    topology, names = lab.topology, EdgeNames(lab.topology.name)
    pids: dict[str, int] = {}
    for site in topology.edge.sites:
        specs = list(_site_connections(lab, site, secrets, addresses))
        files = ipsec_files(specs, [str(site.lan)], responder=True)
        if files is None:
            continue
        try:
            pids[site.name] = gateway_daemons.start_charon(
                names.site(site.name), site_dir(lab.run_dir, site.name), files
            )
        except GatewayError as err:
            raise LabError(f"site {site.name}: {err}") from err
    return pids


def _site_connections(
    lab: builder.Lab, site: Site, secrets: EdgeSecrets, addresses: Mapping[str, str]
) -> Sequence[ConnectionSpec]:
    topology = lab.topology
    network = topology.edge.external_network(site.network)
    subnet = network.subnet_of(site.address)
    length = subnet.prefix.prefixlen if subnet is not None else 24
    out: list[ConnectionSpec] = []
    for vgw in topology.edge.virtual_gateways:
        space = topology.virtual_network(vgw.virtual_network).address_space
        for conn in vgw.connections:
            if conn.type != "IPSec" or conn.site != site.name:
                continue
            options: dict[str, str] = {"authenticationMethod": "PSK"}
            if conn.authentication == "psk":
                options["sharedSecret"] = secrets.psk(vgw.name, conn.name)
            else:
                cert, key = issue(secrets.ca(), str(site.address))
                options = {
                    "authenticationMethod": "Certificates",
                    "localCertificate": cert + key,
                    "peerCertificateAuthority": secrets.ca().pem,
                }
            out.append(
                ConnectionSpec(
                    name=f"{site.name}/{vgw.name}-{conn.name}",
                    kind="IPSec",
                    routes=tuple(space),
                    addresses=(ipaddress.IPv4Interface(f"{site.address}/{length}"),),
                    peers=(ipaddress.IPv4Address(addresses[vgw.name]),),
                    leg=Leg(
                        "pub",
                        0,
                        ipaddress.IPv4Network(f"{site.address}/{length}", strict=False),
                        None,
                    ),
                    options=options,
                )
            )
    return out


def stop_sites(lab: builder.Lab) -> None:
    for site in lab.topology.edge.sites:
        gateway_daemons.stop(gateway_daemons.charon_pidfile(site_dir(lab.run_dir, site.name)))


# -- TORs ----------------------------------------------------------------------------------
def configure_tors(
    lab: builder.Lab,
    nics: Sequence[Mapping[str, Any]],
    vnets: Sequence[Mapping[str, Any]],
    servers: Sequence[Mapping[str, Any]],
) -> None:
    """Give each TOR the VTEP tables of its bare-metal servers' VSIDs (GET documents in)."""
    names = EdgeNames(lab.topology.name)
    vsids = _vsids(vnets)
    pas = {
        str(s["resourceRef"]).casefold(): [
            pa["address"] for pa in s["properties"].get("providerAddresses", [])
        ]
        for s in servers
    }
    for tor in lab.topology.edge.tors:
        subnets = sorted(
            {
                (bm.virtual_network, bm.subnet)
                for bm in lab.topology.edge.bare_metal
                if bm.tor == tor.name
            }
        )
        for vnet, subnet in subnets:
            ref = f"/virtualNetworks/{vnet}/subnets/{subnet}".casefold()
            _vxlan(names.tor(tor.name), tor, vsids[(vnet, subnet)], _neighbours(nics, pas, ref))


def _vsids(vnets: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for vnet in vnets:
        for subnet in vnet["properties"].get("subnets", []):
            vsid = subnet["properties"]["virtualSubnetId"]
            out[(str(vnet["resourceId"]), str(subnet["resourceId"]))] = int(vsid)
    return out


def _neighbours(
    nics: Sequence[Mapping[str, Any]], pas: Mapping[str, list[str]], subnet_ref: str
) -> list[tuple[str, str, str]]:
    """(CA, MAC, host PA) of the VM NICs in the subnet ``subnet_ref`` (case-folded)."""
    out: list[tuple[str, str, str]] = []
    for nic in nics:
        props = nic["properties"]
        server = (props.get("server") or {}).get("resourceRef")
        if not server or not pas.get(str(server).casefold()):
            continue
        mac = str(props["privateMacAddress"]).lower()
        mac = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
        for config in props.get("ipConfigurations", []):
            cp = config["properties"]
            if str(cp["subnet"]["resourceRef"]).casefold() == subnet_ref:
                out.append((cp["privateIPAddress"], mac, pas[str(server).casefold()][0]))
    return out


def _vxlan(ns: str, tor: Tor, vsid: int, neighbours: Sequence[tuple[str, str, str]]) -> None:
    device = netns.interface_name(f"vx{vsid}")
    if device not in netns.link_names(ns):
        netns.exec_in(ns, ["ip", "link", "add", device, "type", "vxlan", "id", str(vsid),
                           "local", str(tor.vtep), "dstport", str(VXLAN_PORT), "nolearning",
                           "proxy"])  # fmt: skip
        netns.exec_in(ns, ["ip", "link", "set", device, "master", BRIDGE, "up"])
    for pa in sorted({pa for _, _, pa in neighbours}):  # broadcasts: to every such host
        flood = ["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", device, "dst", pa]
        netns.exec_in(ns, flood, check=False)  # already there after a reconfiguration
    for ca, mac, pa in neighbours:
        netns.exec_in(ns, ["bridge", "fdb", "replace", mac, "dev", device, "dst", pa])
        netns.exec_in(
            ns, ["ip", "neigh", "replace", ca, "lladdr", mac, "dev", device, "nud", "permanent"]
        )
