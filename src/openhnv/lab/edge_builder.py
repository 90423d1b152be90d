"""The physical part of the datacenter's edge, in namespaces (``lab.edge`` describes it).

Layout for a lab named ``L`` (names from ``EdgeNames``)::

    hnv-L-net-<network>   br0: one bridge per external network (VLAN-unaware, so a VLAN
                          network's frames cross it tagged); an untagged subnet's
                          ``gateway`` is this namespace's own address on br0 (the
                          "Internet" router, where its HTTP server answers); a network
                          with ``trunk`` has a link trunk-<network> into its PA subnet's
                          bridge (VMs on its VLANs are access ports of the hosts there)
    hnv-L-host-<gw>       a gateway host: up0.. into its PA bridge as any host, and
                          ext-<network> (a physical NIC of the server, named so in REST)
                          into each external network's bridge; its compartments are
                          hnv-L-cmp-<gw>-<tenant gateway>, made by the host itself
    hnv-L-site-<site>     a remote site's router: pub on its network, lan toward
    hnv-L-srv-<site>      the site's server (.10 of its lan)
    hnv-L-phys-<server>   a physical server on a subnet of an external network; on a VLAN
                          subnet through an access port (``vlanport`` relay, pid recorded)
    hnv-L-tor-<tor>       a top-of-rack switch: up0 on its PA subnet (the VTEP address),
                          br0 joining a Linux VXLAN device per VSID and the ports of
    hnv-L-bm-<server>     the bare-metal servers behind it (configured by ``edge_tor``)

Everything is named ``hnv-L-...`` so that ``hnv lab down``/``clean`` removes it, and every
link is made inside its namespaces (never in the root namespace).
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from openhnv.lab import netns
from openhnv.lab.builder import UNDERLAY_MTU, VM_MTU, Lab, LabNames, start_vlan_port
from openhnv.lab.edge import ExternalSubnet, Gateway, PhysicalServer, Site, Tor
from openhnv.lab.errors import LabError

BRIDGE = "br0"
ETH = "eth0"
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class EdgeNames:
    """The namespace and interface names of the edge of lab ``lab``; pure naming."""

    lab: str

    @property
    def _prefix(self) -> str:
        return LabNames(self.lab).prefix

    def network(self, name: str) -> str:
        return f"{self._prefix}net-{name.lower()}"

    def site(self, name: str) -> str:
        return f"{self._prefix}site-{name.lower()}"

    def site_server(self, name: str) -> str:
        return f"{self._prefix}srv-{name.lower()}"

    def physical(self, name: str) -> str:
        return f"{self._prefix}phys-{name.lower()}"

    def tor(self, name: str) -> str:
        return f"{self._prefix}tor-{name.lower()}"

    def bare_metal(self, name: str) -> str:
        return f"{self._prefix}bm-{name.lower()}"

    def compartments(self, gateway: str) -> str:
        """The namespace prefix of a gateway host's compartments."""
        return f"{self._prefix}cmp-{gateway.lower()}-"

    @staticmethod
    def external_interface(network: str) -> str:
        """A gateway's leg on ``network``: its interface, and its physical NIC in REST."""
        return netns.interface_name(f"ext-{network.lower()}")


def build_edge(lab: Lab, progress: Progress) -> None:
    """Build the external networks, gateway hosts, sites, physical servers and TORs."""
    edge, names = lab.topology.edge, EdgeNames(lab.topology.name)
    for network in edge.external_networks:
        ns = names.network(network.name)
        with _step(f"external network {network.name}: {ns}", progress):
            netns.create_namespace(ns)
            netns.add_bridge(ns, BRIDGE, UNDERLAY_MTU)
            netns.set_up(ns, BRIDGE)
            for subnet in network.subnets:
                _router_address(ns, subnet)
        if network.trunk is not None:
            with _step(f"external network {network.name}: trunked to PA subnet {network.trunk}",
                       progress):  # fmt: skip
                _trunk(lab, ns, network.name, network.trunk)
    for gateway in edge.gateways:
        with _step(f"gateway host {gateway.name}", progress):
            _gateway_host(lab, gateway)
    for site in edge.sites:
        with _step(f"site {site.name}: {names.site(site.name)} {site.address}", progress):
            _site(lab, site)
    for server in edge.physical_servers:
        with _step(f"physical server {server.name}: {server.address}", progress):
            _physical_server(lab, server)
    for tor in edge.tors:
        with _step(f"TOR {tor.name}: VTEP {tor.vtep}", progress):
            _tor(lab, tor)


@contextlib.contextmanager
def _step(what: str, progress: Progress) -> Iterator[None]:
    progress(what)
    try:
        yield
    except (LabError, OSError) as err:
        raise LabError(f"{what}: {err}") from err


def _trunk(lab: Lab, ns: str, network: str, pa_subnet: str) -> None:
    """A link between the network's bridge and the PA subnet's (both VLAN-unaware): the
    network's tagged frames reach the hosts' uplinks, as on a rack's one switch."""
    leg, peer = netns.interface_name(f"trunk-{network}"), netns.interface_name(f"n-{network}")
    netns.add_veth(ns, leg, lab.names.fabric, peer, UNDERLAY_MTU)
    netns.set_master(ns, leg, BRIDGE)
    netns.set_master(lab.names.fabric, peer, lab.names.bridge(pa_subnet))
    netns.set_up(ns, leg)
    netns.set_up(lab.names.fabric, peer)


def _router_address(ns: str, subnet: ExternalSubnet) -> None:
    if subnet.gateway is None:
        return
    if subnet.vlan:
        raise LabError(f"subnet {subnet.name}: the lab gives a gateway to untagged subnets only")
    netns.add_address(
        ns, BRIDGE, ipaddress.IPv4Interface(f"{subnet.gateway}/{subnet.prefix.prefixlen}")
    )


def _gateway_host(lab: Lab, gateway: Gateway) -> None:
    names, edge = EdgeNames(lab.topology.name), lab.topology.edge
    ns = lab.names.host(gateway.name)
    netns.create_namespace(ns)
    bridge = lab.names.bridge(gateway.pa_subnet)
    for index in range(gateway.uplinks):
        uplink, peer = lab.names.uplink(index), lab.names.uplink_peer(gateway.name, index)
        netns.add_veth(ns, uplink, lab.names.fabric, peer, UNDERLAY_MTU)
        netns.set_master(lab.names.fabric, peer, bridge)
        netns.set_up(lab.names.fabric, peer)
        netns.set_up(ns, uplink)
    for network in gateway.networks:
        edge.external_network(network)  # checked when the topology was loaded
        leg, peer = names.external_interface(network), netns.interface_name(f"gw-{gateway.name}")
        net_ns = names.network(network)
        netns.add_veth(ns, leg, net_ns, peer, VM_MTU)
        netns.set_master(net_ns, peer, BRIDGE)
        netns.set_up(net_ns, peer)
        netns.set_up(ns, leg)


def _site(lab: Lab, site: Site) -> None:
    names, edge = EdgeNames(lab.topology.name), lab.topology.edge
    router, server = names.site(site.name), names.site_server(site.name)
    network = edge.external_network(site.network)
    subnet = network.subnet_of(site.address)
    if subnet is None:
        raise LabError(f"{site.address} is in no subnet of {site.network}")
    netns.create_namespace(router)
    netns.set_sysctl(router, "net/ipv4/ip_forward", "1")
    peer = netns.interface_name(f"s-{site.name}")
    netns.add_veth(router, "pub", names.network(site.network), peer, VM_MTU)
    netns.set_master(names.network(site.network), peer, BRIDGE)
    netns.set_up(names.network(site.network), peer)
    netns.set_up(router, "pub")
    netns.add_address(
        router, "pub", ipaddress.IPv4Interface(f"{site.address}/{subnet.prefix.prefixlen}")
    )
    if subnet.gateway is not None:
        netns.add_route(router, None, subnet.gateway)
    netns.create_namespace(server)
    netns.add_veth(router, "lan", server, ETH, VM_MTU)
    netns.set_up(router, "lan")
    netns.set_up(server, ETH)
    length = site.lan.prefixlen
    netns.add_address(router, "lan", ipaddress.IPv4Interface(f"{site.router}/{length}"))
    netns.add_address(server, ETH, ipaddress.IPv4Interface(f"{site.server}/{length}"))
    netns.add_route(server, None, site.router)


def _physical_server(lab: Lab, server: PhysicalServer) -> None:
    names, edge = EdgeNames(lab.topology.name), lab.topology.edge
    ns, net_ns = names.physical(server.name), names.network(server.network)
    subnet = edge.external_network(server.network).subnet(server.subnet)
    netns.create_namespace(ns)
    port = netns.interface_name(f"p-{server.name}")
    netns.add_veth(ns, ETH, net_ns, port, VM_MTU)
    netns.set_up(ns, ETH)
    netns.disable_offloads(ns, ETH)
    netns.set_up(net_ns, port)
    netns.add_address(
        ns, ETH, ipaddress.IPv4Interface(f"{server.address}/{subnet.prefix.prefixlen}")
    )
    for extra in server.extra:
        netns.add_address(ns, "lo", ipaddress.IPv4Interface(f"{extra}/32"))
    for prefix, via in server.routes:
        netns.add_route(ns, prefix, via)
    if not subnet.vlan:
        netns.set_master(net_ns, port, BRIDGE)
        return
    netns.disable_offloads(net_ns, port)
    trunk, trunk_peer = (
        netns.interface_name(f"tk-{server.name}"),
        netns.interface_name(f"tr-{server.name}"),
    )
    netns.add_veth(net_ns, trunk, net_ns, trunk_peer, VM_MTU)
    netns.set_master(net_ns, trunk, BRIDGE)
    netns.set_up(net_ns, trunk)
    netns.set_up(net_ns, trunk_peer)
    name = f"accessport-{server.name}"
    lab.pids[name] = start_vlan_port(lab.run_dir, net_ns, trunk_peer, port, subnet.vlan, name)


def _tor(lab: Lab, tor: Tor) -> None:
    names = EdgeNames(lab.topology.name)
    ns = names.tor(tor.name)
    pa = lab.topology.pa_subnet(tor.pa_subnet)
    netns.create_namespace(ns)
    peer = lab.names.uplink_peer(f"t{tor.name}", 0)
    netns.add_veth(ns, "up0", lab.names.fabric, peer, UNDERLAY_MTU)
    netns.set_master(lab.names.fabric, peer, lab.names.bridge(tor.pa_subnet))
    netns.set_up(lab.names.fabric, peer)
    netns.set_up(ns, "up0")
    netns.disable_offloads(ns, "up0")
    netns.add_address(ns, "up0", ipaddress.IPv4Interface(f"{tor.vtep}/{pa.prefix.prefixlen}"))
    netns.add_route(ns, None, pa.gateway)
    netns.add_bridge(ns, BRIDGE, VM_MTU)
    netns.set_up(ns, BRIDGE)
    for server in lab.topology.edge.bare_metal:
        if server.tor != tor.name:
            continue
        bm = names.bare_metal(server.name)
        subnet = lab.topology.virtual_network(server.virtual_network).subnet(server.subnet)
        netns.create_namespace(bm)
        port = netns.interface_name(f"b-{server.name}")
        netns.add_veth(bm, ETH, ns, port, VM_MTU)
        netns.set_up(bm, ETH, mac=server.mac)
        netns.disable_offloads(bm, ETH)
        netns.add_address(
            bm, ETH, ipaddress.IPv4Interface(f"{server.ip}/{subnet.prefix.prefixlen}")
        )
        netns.set_master(ns, port, BRIDGE)
        netns.set_up(ns, port)
