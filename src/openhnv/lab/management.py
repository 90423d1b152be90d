"""The lab's management network: how the controller reaches each host's OVSDB over SSL.

A real datacenter registers each server by its management address (SDN Express gives a
bare IP or FQDN) and the Network Controller dials the host agent's OVSDB there over SSL
at 6640. The lab does the same on a network of its own, apart from the PA fabric::

    root namespace          hnv-L-mgmt                      hnv-L-host-<h>
    hnvm-<hash>  ── veth ── m-ctl ─┐                         mgmt0 <ADDR>/24
    (controller's address)         br-mgmt ── m-<h> ── veth ─┘  (hnv host --listen ADDR:6640)

The controller in the root namespace reaches the hosts only through ``hnvm-<hash>``,
whose peer lives in the lab's management namespace; no other interface carries the
management prefix (``check_free`` refuses a prefix the root namespace already routes
anywhere but by its default route). Deleting the management namespace deletes the veth,
so ``hnv lab down`` leaves nothing in the root namespace.

Certificates come from ``hnv pki`` in ``<run_dir>/pki``: the controller's, and each
host's (issued by ``hnv host`` from the host CA on its first start).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute

from openhnv.lab import netns
from openhnv.lab.builder import LabNames
from openhnv.lab.errors import LabError
from openhnv.lab.topology import Topology
from openhnv.ovsdb.errors import OvsdbError
from openhnv.ovsdb.pki import init_ca, issue

OVSDB_SSL_PORT = 6640  # the NC's OVSDB port on a host
PKI_DIR = "pki"
CONTROLLER_PKI_NAME = "controller"
HOST_INTERFACE = "mgmt0"
BRIDGE = "br-mgmt"
CONTROLLER_PEER = "m-ctl"
SUBNET_BASE = ipaddress.IPv4Network("172.31.0.0/16")  # one /24 of it per lab, by name
SUBNET_PREFIX = 24
FIRST_HOST = 10  # hosts get .10, .11, ...; the controller .1
MTU = 1500

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class ManagementPlan:
    """Addresses of one lab's management network; pure data."""

    lab: str
    prefix: ipaddress.IPv4Network
    controller: ipaddress.IPv4Interface
    hosts: dict[str, ipaddress.IPv4Interface]

    @property
    def namespace(self) -> str:
        return f"{LabNames(self.lab).prefix}mgmt"

    @property
    def root_link(self) -> str:
        return LabNames(self.lab).management_link

    def address(self, host: str) -> str:
        """The bare management address the lab registers ``host`` with."""
        return str(self.hosts[host].ip)

    def listen(self, host: str) -> str:
        """``hnv host --listen`` of ``host``: SSL at its management address."""
        return f"{self.address(host)}:{OVSDB_SSL_PORT}"


def plan(topology: Topology) -> ManagementPlan:
    """The management network of a lab: a /24 of 172.31.0.0/16 chosen by its name."""
    names = [h.name for h in topology.hosts] + [g.name for g in topology.edge.gateways]
    index = int(hashlib.sha1(topology.name.encode()).hexdigest(), 16) % 256
    prefix = list(SUBNET_BASE.subnets(new_prefix=SUBNET_PREFIX))[index]
    hosts = {
        name: ipaddress.IPv4Interface(f"{prefix[FIRST_HOST + i]}/{SUBNET_PREFIX}")
        for i, name in enumerate(names)
    }
    controller = ipaddress.IPv4Interface(f"{prefix[1]}/{SUBNET_PREFIX}")
    return ManagementPlan(topology.name, prefix, controller, hosts)


def pki_dir(run_dir: Path) -> Path:
    return run_dir / PKI_DIR


def make_pki(run_dir: Path) -> Path:
    """The lab's CAs and the controller's certificate (hosts issue their own)."""
    directory = pki_dir(run_dir)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        init_ca(directory, label=f"openhnv lab {run_dir.name}")
        issue(directory, CONTROLLER_PKI_NAME, "controller")
    except (OSError, OvsdbError) as err:
        raise LabError(f"pki in {directory}: {err}") from err
    return directory


def check_free(prefix: ipaddress.IPv4Network) -> None:
    """Refuse a prefix the root namespace already has an address or a route in (other
    than its default route): the management traffic must go to the lab's veth only."""
    with IPRoute() as ipr:
        for route in ipr.get_routes(family=2):
            length = int(route["dst_len"])
            if length == 0:
                continue
            dst = route.get_attr("RTA_DST")
            if dst is None:
                continue
            network = ipaddress.ip_network(f"{dst}/{length}", strict=False)
            if isinstance(network, ipaddress.IPv4Network) and network.overlaps(prefix):
                raise LabError(
                    f"management network {prefix}: the root namespace already routes "
                    f"{network} (another lab, or a real network); not using it"
                )


def build(plan_: ManagementPlan, progress: Progress) -> None:
    """The management namespace, its bridge, a leg per host and the controller's veth."""
    ns = plan_.namespace
    progress(f"management network {plan_.prefix}: namespace {ns}, bridge {BRIDGE}")
    check_free(plan_.prefix)
    netns.create_namespace(ns)
    netns.add_bridge(ns, BRIDGE, MTU)
    netns.set_up(ns, BRIDGE)
    for host in plan_.hosts:
        attach_host(plan_, host)
    progress(f"management network: the controller's address {plan_.controller} on "
             f"{plan_.root_link} (root namespace), its peer in {ns}")  # fmt: skip
    netns.add_root_veth(plan_.root_link, ns, CONTROLLER_PEER, MTU)
    netns.set_master(ns, CONTROLLER_PEER, BRIDGE)
    netns.set_up(ns, CONTROLLER_PEER)
    netns.set_root_up(plan_.root_link, plan_.controller)


def attach_host(plan_: ManagementPlan, host: str) -> None:
    """``host``'s leg: ``mgmt0`` with its address in the host namespace, bridged in the
    management namespace (also again, after the host namespace was made anew)."""
    ns, host_ns = plan_.namespace, LabNames(plan_.lab).host(host)
    peer = f"m-{sorted(plan_.hosts).index(host)}"
    netns.add_veth(host_ns, HOST_INTERFACE, ns, peer, MTU)
    netns.set_up(host_ns, HOST_INTERFACE)
    netns.add_address(host_ns, HOST_INTERFACE, plan_.hosts[host])
    netns.set_master(ns, peer, BRIDGE)
    netns.set_up(ns, peer)


__all__ = [
    "OVSDB_SSL_PORT",
    "ManagementPlan",
    "attach_host",
    "build",
    "make_pki",
    "pki_dir",
    "plan",
]
