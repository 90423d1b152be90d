"""Network namespaces for tests and benchmarks: made with unique names, always removed.

Names are short and unique to the process and the call: ``hnv-<tag><pid><hex>-<part>``
(the ``hnv-`` prefix lets ``hnv lab clean`` find a leftover). Namespaces come from
``openhnv.lab.netns``, so ``lo`` is up and IPv6 off in each; on exit every namespace
under the prefix goes, and one that is already gone is no error.

- ``namespaces(tag, *parts)`` — plain namespaces;
- ``namespace_pair(tag)`` — two of them, ``a`` and ``b``; ``join`` links two by a veth;
- ``host_with_vms(tag, vms)`` — a host namespace whose VM namespaces hang off veths
  carrying the ``openhnv-port`` ifalias that ``hnv host --driver linux`` reads.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NamedTuple

from openhnv.lab import netns
from openhnv.vswitch.portlinks import port_alias

PID_DIGITS = 1000  # the pid modulo this goes into the name (short, yet per process)
VETH_MTU = 1700  # room for an encapsulated 1500-byte frame
VM_MTU = 1500
VM_INTERFACE = "eth0"
UPLINK, UPLINK_PEER = "up0", "upx0"


def unique_prefix(tag: str) -> str:
    """``hnv-<tag><pid mod 1000><4 hex digits>-``: no other process or call shares it."""
    return f"{netns.PREFIX}{tag}{os.getpid() % PID_DIGITS:03d}{secrets.token_hex(2)}-"


def remove_namespaces(prefix: str) -> None:
    """Remove every namespace whose name starts with ``prefix`` (gone ones are fine)."""
    for name in netns.list_namespaces(prefix):
        netns.delete_namespace(name)


@contextmanager
def namespaces(tag: str, *parts: str) -> Iterator[list[str]]:
    """Namespaces ``<prefix><part>`` for each part; all removed on exit."""
    prefix = unique_prefix(tag)
    try:
        names = []
        for part in parts:
            names.append(prefix + part)
            netns.create_namespace(names[-1])
        yield names
    finally:
        remove_namespaces(prefix)


class NamespacePair(NamedTuple):
    a: str
    b: str


@contextmanager
def namespace_pair(tag: str = "t") -> Iterator[NamespacePair]:
    """Two namespaces, ``<prefix>a`` and ``<prefix>b``."""
    with namespaces(tag, "a", "b") as (a, b):
        yield NamespacePair(a, b)


@dataclass(frozen=True, slots=True)
class End:
    """One end of a veth: its namespace, name, and optionally MAC and IPv4 interface."""

    namespace: str
    ifname: str
    mac: str | None = None
    address: str | None = None  # "10.9.0.1/24"


def join(first: End, second: End, mtu: int = VETH_MTU) -> None:
    """A veth between two ends, both up, with their MACs and addresses."""
    netns.add_veth(first.namespace, first.ifname, second.namespace, second.ifname, mtu)
    for end in (first, second):
        netns.set_up(end.namespace, end.ifname, mac=end.mac)
        if end.address is not None:
            netns.add_address(end.namespace, end.ifname, ipaddress.IPv4Interface(end.address))


@dataclass(frozen=True, slots=True)
class VmPort:
    """A VM of ``host_with_vms``: its NIC's port id (instanceId), MAC and address."""

    name: str
    port_id: str
    mac: str  # 00:1d:d8:07:00:11
    address: str  # 10.1.1.11/24


@dataclass(frozen=True, slots=True)
class HostNamespaces:
    """The host's namespace and each VM's, by VM name."""

    host: str
    vms: dict[str, str]


@contextmanager
def host_with_vms(
    tag: str, vms: Sequence[VmPort], *, vm_offloads: bool = False
) -> Iterator[HostNamespaces]:
    """A host namespace with an uplink (``up0``, its peer ``upx0`` in the host too: no
    physical network) and one namespace per VM, joined to the host by a veth: ``p1``,
    ``p2``, ... on the host with the port's ifalias, ``eth0`` in the VM with its MAC and
    address and the offloads off (a userspace switch then sees whole frames) unless
    ``vm_offloads`` (a switch with the kernel fast path takes GSO frames whole)."""
    prefix = unique_prefix(tag)
    host = prefix + "h"
    made = HostNamespaces(host, {vm.name: f"{prefix}v{i + 1}" for i, vm in enumerate(vms)})
    try:
        for name in (host, *made.vms.values()):
            netns.create_namespace(name)
        join(End(host, UPLINK), End(host, UPLINK_PEER))
        for i, vm in enumerate(vms):
            port = f"p{i + 1}"
            vm_ns = made.vms[vm.name]
            netns.add_veth(host, port, vm_ns, VM_INTERFACE, VM_MTU)
            netns.set_alias(host, port, port_alias(vm.port_id, vm.mac))
            netns.set_up(host, port)
            netns.set_up(vm_ns, VM_INTERFACE, mtu=VM_MTU, mac=vm.mac)
            if not vm_offloads:
                netns.disable_offloads(vm_ns, VM_INTERFACE)
            netns.add_address(vm_ns, VM_INTERFACE, ipaddress.IPv4Interface(vm.address))
        yield made
    finally:
        remove_namespaces(prefix)
