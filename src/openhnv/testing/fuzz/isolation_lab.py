"""The namespace form of the isolation test: random datacenters brought up as real labs.

``isolation.random_datacenter`` draws hosts, tenants whose virtual networks share one
address space, VMs on the hosts and ACLs on subnets and NICs (``LAB_SIZE``: small, few
host parts, so that tenants' addresses overlap). ``topology(dc, name)`` writes it as a
lab topology (docs/topology.md); ``probe_lab(dc, lab)`` runs, in every VM, a TCP
responder and a UDP collector on each port the ACLs name (``lab.traffic``), then sends
from every VM to every address of the datacenter but its own, once over UDP and once
over TCP, each with a token of its own, and finds which VMs' listeners saw each token.
A VM sends as any VM would, through its own IP stack (ARP, its default route to the
distributed router), so the oracle is ``isolation.expected_at``: written from the
design's routing and ACL rules, not from the engine.

A UDP probe the oracle says arrives and that did not is sent once more (a datagram the
lab lost while setting the flow up is not a finding); a TCP probe is a connection
(``traffic.tcp_request``: the kernel's own SYN retries, then a timeout), which carries
the token only once established.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from openhnv.lab import traffic
from openhnv.lab.orchestrator import RunningLab
from openhnv.testing.fuzz import isolation as iso

LAB_SIZE = iso.Size(hosts=(2, 2), tenants=(2, 2), nics_per_subnet=(1, 2),
                    host_parts=range(11, 14))  # fmt: skip
"""The short form: 2 hosts, 2 tenants, 4 to 8 VMs."""
LONG_SIZE = iso.Size(hosts=(2, 3), tenants=(2, 3), nics_per_subnet=(0, 2),
                     host_parts=range(11, 15))  # fmt: skip
PA_PREFIX, PA_GATEWAY = "192.168.10.0/24", "192.168.10.1"
TCP_TIMEOUT = 3.0  # seconds a TCP probe waits: the SYN and its first retransmission
UDP_SETTLE = 1.0  # seconds for datagrams to arrive before the collectors are read
PROBE_THREADS = 16


def topology(dc: iso.Datacenter, name: str) -> dict[str, Any]:
    """``dc`` as a lab topology document (``lab.topology.from_document``)."""
    subnet_names = {prefix: f"s{i + 1}" for i, prefix in enumerate(iso.SUBNETS)}
    return {
        "name": name,
        "encapsulation": iso.rnd_protocol(dc).lower(),
        "pa_subnets": [{"name": "pa", "prefix": PA_PREFIX, "gateway": PA_GATEWAY}],
        "hosts": [{"name": h, "pa_subnet": "pa", "uplinks": 1} for h in dc.hosts],
        "acls": [
            {"name": acl, "rules": [_rule(r) for r in rules]} for acl, rules in dc.acls.items()
        ],
        "virtual_networks": [
            {"name": tenant, "address_space": iso.ADDRESS_SPACE,
             "subnets": [{"name": subnet_names[prefix], "prefix": prefix,
                          "vsid": iso.FIRST_VSID + iso.VSIDS_PER_TENANT * t + s,
                          "acl": dc.subnet_acls[(tenant, prefix)]}
                         for s, prefix in enumerate(iso.SUBNETS)]}
            for t, tenant in enumerate(dc.tenants)
        ],
        "vms": [
            {"name": n.name, "host": n.host, "virtual_network": n.tenant,
             "subnet": subnet_names[n.subnet], "ip": n.ip, "acl": n.acl}
            for n in dc.nics
        ],
    }  # fmt: skip


def _rule(rule: iso.AclRule) -> dict[str, Any]:
    return {
        "name": f"r{rule.priority}", "protocol": rule.protocol,
        "source_prefix": rule.source, "destination_prefix": rule.destination,
        "destination_ports": rule.destination_ports,
        "action": "Allow" if rule.allow else "Deny",
        "priority": rule.priority, "type": rule.direction,
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class LabProbe:
    source: str  # NIC (VM) name
    address: str
    protocol: str  # TCP | UDP
    port: int
    token: bytes


@dataclass(frozen=True, slots=True)
class LabOutcome:
    vms: int
    probes: int
    delivered: int
    cross_tenant: int
    mismatches: tuple[str, ...]

    def figures(self) -> dict[str, object]:
        return {"vms": self.vms, "probes": self.probes, "delivered": self.delivered,
                "cross_tenant_deliveries": self.cross_tenant,
                "mismatches": len(self.mismatches)}  # fmt: skip


@dataclass(slots=True)
class _Listeners:
    tcp: dict[str, list[traffic.TcpResponder]]
    udp: dict[str, list[traffic.UdpCollector]]

    def receivers(self, token: bytes) -> list[str]:
        """The VMs whose listeners saw ``token``."""
        got = {vm for vm, rs in self.tcp.items() if any(token in m for r in rs for m in r.received)}
        got |= {vm for vm, cs in self.udp.items()
                if any(token in d for c in cs for d, _ in c.datagrams)}  # fmt: skip
        return sorted(got)


@contextmanager
def _listening(dc: iso.Datacenter, lab: RunningLab) -> Iterator[_Listeners]:
    with ExitStack() as stack:
        listeners = _Listeners({}, {})
        for nic in dc.nics:
            ns = lab.vm_namespace(nic.name)
            listeners.tcp[nic.name] = [
                stack.enter_context(traffic.TcpResponder(ns, nic.ip, port, nic.name.encode()))
                for port in iso.PORTS
            ]
            listeners.udp[nic.name] = [
                stack.enter_context(traffic.UdpCollector(ns, port)) for port in iso.PORTS
            ]
        yield listeners


def probes(dc: iso.Datacenter, seed: int) -> list[LabProbe]:
    """From every NIC to every address of ``dc`` but its own, UDP and TCP, each to a port
    the ACLs may name (drawn from ``seed``), each with its own token."""
    addresses = sorted({n.ip for n in dc.nics})
    ports = itertools.cycle(iso.PORTS[seed % len(iso.PORTS) :] + iso.PORTS)
    found = []
    for number, (nic, address, protocol) in enumerate(
        (n, a, p) for n in dc.nics for a in addresses if a != n.ip for p in iso.PROTOCOLS
    ):
        token = f"hnv-probe-{seed}-{number}-{nic.name}".encode()
        found.append(LabProbe(nic.name, address, protocol, next(ports), token))
    return found


def _send_tcp(lab: RunningLab, p: LabProbe) -> None:
    # dropped on the way (a timeout) or refused: the listeners tell
    with contextlib.suppress(OSError):
        traffic.tcp_request(lab.vm_namespace(p.source), p.address, p.port, p.token,
                            timeout=TCP_TIMEOUT)  # fmt: skip


def _send_udp(lab: RunningLab, p: LabProbe) -> None:
    traffic.udp_send(lab.vm_namespace(p.source), p.address, p.port, p.token)


def probe_lab(dc: iso.Datacenter, lab: RunningLab, seed: int) -> LabOutcome:
    """Every probe of ``probes(dc, seed)`` through the running lab, against the oracle."""
    every = probes(dc, seed)
    tenant = {n.name: n.tenant for n in dc.nics}
    with _listening(dc, lab) as listeners, ThreadPoolExecutor(PROBE_THREADS) as pool:
        udp = [p for p in every if p.protocol == "UDP"]
        tcp = [p for p in every if p.protocol == "TCP"]
        list(pool.map(lambda p: _send_udp(lab, p), udp))
        list(pool.map(lambda p: _send_tcp(lab, p), tcp))
        time.sleep(UDP_SETTLE)
        want = {p: iso.expected_at(dc, p.source, p.address, p.protocol, p.port) for p in every}
        missed = [p for p in udp if want[p] is not None and not listeners.receivers(p.token)]
        list(pool.map(lambda p: _send_udp(lab, p), missed))
        if missed:
            time.sleep(UDP_SETTLE)
        delivered = cross = 0
        mismatches = []
        for p in every:
            got = listeners.receivers(p.token)
            delivered += len(got)
            cross += sum(tenant[g] != tenant[p.source] for g in got)
            expected = want[p]
            if got != ([] if expected is None else [expected]):
                mismatches.append(f"{p.protocol} {p.source} -> {p.address}:{p.port}:"
                                  f" delivered to {got}, expected {expected}")  # fmt: skip
    return LabOutcome(len(dc.nics), len(every), delivered, cross, tuple(mismatches))
