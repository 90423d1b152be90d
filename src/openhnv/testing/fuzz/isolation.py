"""Random datacenters and an oracle of who may reach whom, written from DESIGN.md §4.

``random_datacenter(rnd)`` draws hosts, tenants whose virtual networks all use the same
customer address space (10.1.0.0/16, subnets 10.1.1.0/24 and 10.1.2.0/24 in each), VM
NICs spread over the hosts, and ACLs on subnets and NICs with random rules. ``probe``
sends, from every NIC to every other NIC's address (with the MAC a VM would use: the
peer's in its own subnet, the distributed router's otherwise), one UDP datagram and one
TCP SYN to one of a few ports, through an ``EmulatedDatacenter`` (the real compiler,
planner and engine), and compares where each arrived with ``expected``.

The oracle knows nothing of the engine. From the design: a VM reaches only VMs of its
own virtual network (same RDID); within its subnet by L2, to another subnet of its
network through the router; the sender's NIC ACL then its subnet ACL must pass the
packet outbound, the receiver's subnet ACL then its NIC ACL inbound. An ACL is its user
rules, the lowest priority number first, the first match deciding; behind them the
defaults: allow within the virtual network's address space (both directions), allow
outbound to the Internet, block the rest. A rule matches protocol (TCP, UDP or All),
source and destination prefix (``*`` or a CIDR) and port ranges. Tenants share
addresses: a frame to another tenant's address (with that VM's MAC, or the router's)
reaches the sender's own tenant's VM with that address, if any, never the other's.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass

from openhnv.packet.frames import tcp_frame, udp_frame
from openhnv.testing import snapshots as nb
from openhnv.testing.fuzz.world import EmulatedDatacenter
from openhnv.testing.southbound import ROUTER_MAC

ADDRESS_SPACE = "10.1.0.0/16"
SUBNETS = ("10.1.1.0/24", "10.1.2.0/24")
PORTS = (53, 80, 1433)
PROTOCOLS = {"TCP": 6, "UDP": 17}
FIRST_SOURCE_PORT = 20000  # probes' source ports: never one of PORTS, so no probe is a reply
MIN_PRIORITY, PRIORITY_STEP = 100, 10
FIRST_VSID, VSIDS_PER_TENANT = 5000, 10
ANY = "*"


@dataclass(frozen=True, slots=True)
class AclRule:
    direction: str  # Inbound | Outbound
    allow: bool
    priority: int
    protocol: str  # TCP | UDP | All
    source: str  # * or a CIDR
    destination: str
    destination_ports: str  # * or one port


@dataclass(frozen=True, slots=True)
class Nic:
    name: str
    tenant: str
    subnet: str  # the subnet's prefix
    ip: str
    mac: str
    host: str
    acl: str | None


@dataclass(frozen=True, slots=True)
class Datacenter:
    hosts: tuple[str, ...]
    tenants: tuple[str, ...]
    subnet_acls: dict[tuple[str, str], str | None]  # (tenant, prefix) -> ACL name
    acls: dict[str, tuple[AclRule, ...]]
    nics: tuple[Nic, ...]


@dataclass(frozen=True, slots=True)
class Probe:
    source: str  # NIC name
    target: str  # NIC name whose address (and MAC or the router's) it is sent to
    protocol: str
    source_port: int
    destination_port: int


def _random_rule(rnd: random.Random, nics: list[tuple[str, str]], priority: int) -> AclRule:
    """``nics``: (subnet prefix, ip) of addresses a rule may name."""

    def prefix() -> str:
        kind = rnd.randrange(3)
        if kind == 0 or not nics:
            return ANY
        if kind == 1:
            return rnd.choice(SUBNETS)
        return f"{rnd.choice(nics)[1]}/32"

    protocol = rnd.choice(("TCP", "UDP", "All"))
    ports = ANY if protocol == "All" or rnd.random() < 0.4 else str(rnd.choice(PORTS))
    return AclRule(rnd.choice(("Inbound", "Outbound")), rnd.random() < 0.5, priority,
                   protocol, prefix(), prefix(), ports)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Size:
    """How big ``random_datacenter`` draws: inclusive (low, high) counts, and the host
    parts of the VMs' addresses (few of them: tenants' addresses overlap more)."""

    hosts: tuple[int, int] = (2, 3)
    tenants: tuple[int, int] = (2, 3)
    nics_per_subnet: tuple[int, int] = (0, 3)
    host_parts: range = range(11, 30)


EMULATED = Size()
"""The emulated form's draw (its seeds name the same datacenters as before ``Size``)."""


def random_datacenter(rnd: random.Random, size: Size = EMULATED) -> Datacenter:
    """A small datacenter with overlapping tenants and random ACLs."""
    hosts = tuple(f"host{i + 1}" for i in range(rnd.randint(*size.hosts)))
    tenants = tuple(f"tenant{i + 1}" for i in range(rnd.randint(*size.tenants)))
    nics: list[Nic] = []
    places = [(t, s) for t in tenants for s in SUBNETS]
    for tenant, prefix in places:
        network = ipaddress.IPv4Network(prefix)
        for host_part in rnd.sample(size.host_parts, rnd.randint(*size.nics_per_subnet)):
            index = len(nics) + 1
            nics.append(Nic(f"nic{index}", tenant, prefix, str(network.network_address + host_part),
                            f"00:1d:d8:0a:{index // 256:02x}:{index % 256:02x}",
                            rnd.choice(hosts), None))  # fmt: skip
    addresses = [(n.subnet, n.ip) for n in nics]
    acls: dict[str, tuple[AclRule, ...]] = {}
    for i in range(rnd.randint(1, 4)):
        count = rnd.randint(1, 4)
        priorities = rnd.sample(range(MIN_PRIORITY, MIN_PRIORITY + 50 * PRIORITY_STEP,
                                      PRIORITY_STEP), count)  # fmt: skip
        acls[f"acl{i + 1}"] = tuple(_random_rule(rnd, addresses, p) for p in priorities)
    names: list[str | None] = [None, *acls]
    subnet_acls = {place: rnd.choice(names) for place in places}
    nics = [Nic(n.name, n.tenant, n.subnet, n.ip, n.mac, n.host, rnd.choice(names)) for n in nics]
    return Datacenter(hosts, tenants, subnet_acls, acls, tuple(nics))


def snapshot(dc: Datacenter) -> nb.Snapshot:
    """The northbound documents of ``dc`` as a GET returns them."""
    servers = [
        nb.server(
            host, [(f"192.168.{i + 1}.10", 24, 0, f"192.168.{i + 1}.1")], [f"10.0.0.{i + 11}"]
        )
        for i, host in enumerate(dc.hosts)
    ]
    vnets = []
    for t, tenant in enumerate(dc.tenants):
        subnets = [
            nb.subnet(f"s{s + 1}", prefix, FIRST_VSID + VSIDS_PER_TENANT * t + s,
                      dc.subnet_acls[(tenant, prefix)])
            for s, prefix in enumerate(SUBNETS)
        ]  # fmt: skip
        vnets.append(nb.vnet(tenant, [ADDRESS_SPACE], subnets))
    nics = [
        nb.nic(n.name, n.mac.replace(":", "").upper(),
               [(n.ip, f"{n.tenant}/s{SUBNETS.index(n.subnet) + 1}")], n.host, n.acl)
        for n in dc.nics
    ]  # fmt: skip
    acls = [
        nb.acl(name, [nb.rule(f"r{r.priority}", r.direction, "Allow" if r.allow else "Deny",
                              r.priority, r.protocol, r.source, r.destination, ANY,
                              r.destination_ports) for r in rules])
        for name, rules in dc.acls.items()
    ]  # fmt: skip
    return nb.snapshot(servers, vnets, nics, acls, nb.configuration(rnd_protocol(dc)))


def rnd_protocol(dc: Datacenter) -> str:
    """VXLAN or NVGRE, fixed per datacenter (by its NIC count's parity)."""
    return "Nvgre" if len(dc.nics) % 2 else "Vxlan"


# -- the oracle ------------------------------------------------------------------------
def _in(address: str, prefix: str) -> bool:
    return prefix == ANY or ipaddress.ip_address(address) in ipaddress.ip_network(prefix)


def _verdict(rules: tuple[AclRule, ...], direction: str, probe: Probe, src: str, dst: str) -> bool:
    """One ACL's decision: its first matching user rule, else the defaults."""
    for rule in sorted(rules, key=lambda r: r.priority):
        if (
            rule.direction == direction
            and rule.protocol in ("All", probe.protocol)
            and _in(src, rule.source)
            and _in(dst, rule.destination)
            and rule.destination_ports in (ANY, str(probe.destination_port))
        ):
            return rule.allow
    remote = dst if direction == "Outbound" else src
    return _in(remote, ADDRESS_SPACE) or direction == "Outbound"  # VNet space; Internet out


def _receiver(dc: Datacenter, a: Nic, b: Nic) -> Nic | None:
    """Who owns the address ``a`` sends to in ``a``'s virtual network: in ``a``'s subnet
    the NIC with ``b``'s MAC and IP; in another subnet, reached through the router, the
    NIC there with ``b``'s IP (another tenant's VM with the same address is invisible)."""
    for c in dc.nics:
        if c.tenant != a.tenant or c.ip != b.ip or c is a:
            continue
        if b.subnet == a.subnet and c.subnet == a.subnet and c.mac == b.mac:
            return c
        if b.subnet != a.subnet and c.subnet == b.subnet:
            return c
    return None


def expected(dc: Datacenter, probe: Probe) -> str | None:
    """The NIC that must receive ``probe``, or None when nothing may."""
    nics = {n.name: n for n in dc.nics}
    a = nics[probe.source]
    b = _receiver(dc, a, nics[probe.target])
    return None if b is None else _through_acls(dc, a, b, probe)


def expected_at(dc: Datacenter, source: str, address: str, protocol: str, port: int) -> str | None:
    """The NIC that must receive what NIC ``source``'s own IP stack sends to ``address``
    (``protocol`` to ``port``), or None. Such a VM asks ARP for an address of its subnet,
    which its host answers from the VM's own virtual subnet only, and sends anything else
    to the router: the receiver is the NIC of its own virtual network that has the
    address (another tenant's VM with it is invisible), then the ACLs decide."""
    a = next(n for n in dc.nics if n.name == source)
    b = next((c for c in dc.nics if c.tenant == a.tenant and c.ip == address and c is not a),
             None)  # fmt: skip
    if b is None:
        return None
    return _through_acls(dc, a, b, Probe(a.name, b.name, protocol, 0, port))


def _through_acls(dc: Datacenter, a: Nic, b: Nic, probe: Probe) -> str | None:
    """``b`` when every ACL on the way from ``a`` allows ``probe``, else None."""
    layers = (
        (a.acl, "Outbound"),
        (dc.subnet_acls[(a.tenant, a.subnet)], "Outbound"),
        (dc.subnet_acls[(b.tenant, b.subnet)], "Inbound"),
        (b.acl, "Inbound"),
    )
    for acl, direction in layers:
        if acl is not None and not _verdict(dc.acls[acl], direction, probe, a.ip, b.ip):
            return None
    return b.name


# -- probing ---------------------------------------------------------------------------
def _frame(dc: Datacenter, probe: Probe, token: bytes) -> bytes:
    nics = {n.name: n for n in dc.nics}
    a, b = nics[probe.source], nics[probe.target]
    dst_mac = b.mac if b.subnet == a.subnet else ROUTER_MAC
    if probe.protocol == "UDP":
        return udp_frame(src_mac=a.mac, dst_mac=dst_mac, src_ip=a.ip, dst_ip=b.ip,
                         src_port=probe.source_port, dst_port=probe.destination_port,
                         payload=token)  # fmt: skip
    return tcp_frame(src_mac=a.mac, dst_mac=dst_mac, src_ip=a.ip, dst_ip=b.ip,
                     src_port=probe.source_port, dst_port=probe.destination_port, flags=0x02,
                     payload=token)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Outcome:
    probes: int
    delivered: int
    cross_tenant: int
    mismatches: tuple[str, ...]


Oracle = Callable[[Datacenter, Probe], "str | None"]


def probe(dc: Datacenter, rnd: random.Random, oracle: Oracle | None = None) -> Outcome:
    """Every NIC to every other NIC, UDP and TCP, each compared with ``oracle``
    (``expected`` unless given: a test gives a wrong one to see it caught)."""
    oracle = oracle or expected
    world = EmulatedDatacenter(snapshot(dc))
    nics = {n.name: n for n in dc.nics}
    try:
        port = FIRST_SOURCE_PORT
        sent = delivered = cross = 0
        mismatches: list[str] = []
        for a in dc.nics:
            for b in dc.nics:
                if a is b:
                    continue
                for protocol in PROTOCOLS:
                    port += 1
                    p = Probe(a.name, b.name, protocol, port, rnd.choice(PORTS))
                    token = f"probe-{port}".encode()
                    world.send(a.name, _frame(dc, p, token))
                    sent += 1
                    got = sorted(n.name for n in dc.nics
                                 if any(token in f for f in world.received(n.name)))  # fmt: skip
                    delivered += len(got)
                    cross += sum(nics[g].tenant != a.tenant for g in got)
                    want = oracle(dc, p)
                    if got != ([] if want is None else [want]):
                        mismatches.append(f"{p}: delivered to {got}, expected {want}")
        return Outcome(sent, delivered, cross, tuple(mismatches))
    finally:
        world.close()
