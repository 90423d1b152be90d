"""Network namespaces and the links between them, through pyroute2.

Every namespace the lab makes is named ``hnv-<lab>-...`` so that ``clean`` finds it.
Links are created directly inside their namespaces (a veth's peer is placed into its
namespace by the same netlink request), so the root namespace never holds a lab link
beyond that one call. Removal tolerates "already gone" everywhere, so a teardown can
run after a half-finished build. ``in_namespace`` switches the *calling thread* into a
namespace (setns), which is how sockets are opened inside one from Python.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import ipaddress
import os
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from typing import ParamSpec, TypeVar

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

from openhnv.lab.errors import LabError

PREFIX = "hnv-"
IFNAMSIZ = 15  # Linux interface names hold at most 15 characters
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)
# ethtool features turned off on a VM-side interface so that a userspace switch gets
# whole frames with finished checksums (no 64 KB GSO super-frames).
VM_OFFLOADS_OFF = ("tx", "off", "tso", "off", "gso", "off", "sg", "off")
VM_OFFLOADS_ON = ("tx", "on", "tso", "on", "gso", "on", "sg", "on")
ROUTE_POLL = 0.2  # seconds between looks at a VM's routes
_EXEC_TIMEOUT = 60.0

P = ParamSpec("P")
R = TypeVar("R")


def interface_name(base: str) -> str:
    """``base`` if it is a valid interface name, else a stable ≤15-char name derived from it."""
    if len(base) <= IFNAMSIZ and "/" not in base and not any(c.isspace() for c in base):
        return base
    digest = hashlib.sha1(base.encode()).hexdigest()[:8]
    head = base[: IFNAMSIZ - len(digest) - 1].replace("/", "_")
    return f"{head}-{digest}"


# ---------------------------------------------------------------- namespaces


def list_namespaces(prefix: str = PREFIX) -> list[str]:
    """Names of the namespaces in /run/netns that start with ``prefix``, sorted."""
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(prefix))


def create_namespace(name: str) -> None:
    """Create a namespace with ``lo`` up and IPv6 off (the lab's underlay is IPv4 only)."""
    if not name.startswith(PREFIX):
        raise LabError(f"namespace {name!r}: lab namespaces must start with {PREFIX!r}")
    if name in list_namespaces(name):
        raise LabError(f"namespace {name}: already exists (run `hnv lab clean`)")
    try:
        netns.create(name)
    except OSError as exc:
        raise LabError(f"namespace {name}: cannot create: {exc}") from exc
    set_sysctl(name, "net/ipv6/conf/all/disable_ipv6", "1")
    set_sysctl(name, "net/ipv6/conf/default/disable_ipv6", "1")
    set_up(name, "lo")


def delete_namespace(name: str) -> bool:
    """Remove a namespace; True if it existed. Its links go with it."""
    try:
        netns.remove(name)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.EINVAL):
            return False
        raise LabError(f"namespace {name}: cannot remove: {exc}") from exc
    return True


def _setns(fd: int) -> None:
    if _LIBC.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@contextlib.contextmanager
def in_namespace(name: str) -> Iterator[None]:
    """Run the body with the calling thread (only it) inside namespace ``name``.

    Each thread has its own network namespace; this saves the thread's current one
    and returns to it afterwards, so threads may use it independently.
    """
    if "/" in name or name in ("", ".", ".."):
        raise LabError(f"namespace {name!r}: not a namespace name")
    try:
        target = os.open(f"{NETNS_DIR}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise LabError(f"namespace {name}: cannot open: {exc.strerror}") from exc
    try:
        saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                _setns(target)
            except OSError as exc:
                raise LabError(f"namespace {name}: cannot enter: {exc.strerror}") from exc
            try:
                yield
            finally:
                _setns(saved)
        finally:
            os.close(saved)
    finally:
        os.close(target)


def run_in(name: str, function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Call ``function`` inside namespace ``name`` (a socket made there stays there)."""
    with in_namespace(name):
        return function(*args, **kwargs)


def exec_in(
    name: str,
    argv: Sequence[str],
    *,
    check: bool = True,
    capture: bool = True,
    timeout: float = _EXEC_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace (``ip netns exec``)."""
    command = ["ip", "netns", "exec", name, *argv]
    try:
        result = subprocess.run(
            command, capture_output=capture, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{name}: `{' '.join(argv)}` timed out after {timeout:g} s") from exc
    except OSError as exc:
        raise LabError(f"{name}: cannot run `{' '.join(argv)}`: {exc}") from exc
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip().splitlines()
        last = detail[-1] if detail else f"exit status {result.returncode}"
        raise LabError(f"{name}: `{' '.join(argv)}` failed: {last}")
    return result


def set_sysctl(name: str, key: str, value: str) -> None:
    """Write ``/proc/sys/<key>`` as seen from inside namespace ``name``."""
    path = f"/proc/sys/{key}"

    def write() -> None:
        with open(path, "w", encoding="ascii") as f:
            f.write(value)

    try:
        run_in(name, write)
    except OSError as exc:
        raise LabError(f"{name}: cannot set {key}={value}: {exc}") from exc


# ---------------------------------------------------------------- links


def _ipr(name: str) -> IPRoute:
    return IPRoute(netns=name)


def _index(ipr: IPRoute, namespace: str, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise LabError(f"{namespace}: no interface {ifname}")
    return int(found[0])


def _netlink(step: str, call: Callable[[], object]) -> None:
    try:
        call()
    except NetlinkError as exc:
        raise LabError(f"{step}: {exc.args[-1] if exc.args else exc}") from exc


def add_veth(namespace: str, ifname: str, peer_namespace: str, peer_ifname: str, mtu: int) -> None:
    """A veth pair: ``ifname`` in ``namespace``, ``peer_ifname`` in ``peer_namespace``."""
    for n in (ifname, peer_ifname):
        if len(n) > IFNAMSIZ:
            raise LabError(f"interface name {n!r} is longer than {IFNAMSIZ} characters")
    step = f"{namespace}: veth {ifname} <-> {peer_namespace}/{peer_ifname}"
    with _ipr(namespace) as ipr:
        _netlink(
            step,
            lambda: ipr.link(
                "add",
                ifname=ifname,
                kind="veth",
                mtu=mtu,
                peer={"ifname": peer_ifname, "net_ns_fd": peer_namespace, "mtu": mtu},
            ),
        )


def add_bridge(namespace: str, ifname: str, mtu: int) -> None:
    """A Linux bridge (VLAN-unaware: this kernel has no bridge VLAN filtering)."""
    with _ipr(namespace) as ipr:
        _netlink(
            f"{namespace}: bridge {ifname}",
            lambda: ipr.link("add", ifname=ifname, kind="bridge", mtu=mtu),
        )
        # Forward at once: a lab bridge has no spanning tree and no loops.
        index = _index(ipr, namespace, ifname)
        _netlink(
            f"{namespace}: bridge {ifname} forward delay",
            lambda: ipr.link("set", index=index, kind="bridge", br_forward_delay=0),
        )


def set_master(namespace: str, ifname: str, bridge: str) -> None:
    """Make ``ifname`` a port of ``bridge``."""
    with _ipr(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        master = _index(ipr, namespace, bridge)
        _netlink(
            f"{namespace}: {ifname} into bridge {bridge}",
            lambda: ipr.link("set", index=index, master=master),
        )


def set_up(namespace: str, ifname: str, mtu: int | None = None, mac: str | None = None) -> None:
    """Bring an interface up, optionally setting its MTU and MAC first."""
    with _ipr(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        changes: dict[str, object] = {}
        if mtu is not None:
            changes["mtu"] = mtu
        if mac is not None:
            changes["address"] = mac
        if changes:
            _netlink(
                f"{namespace}: {ifname} set {changes}",
                lambda: ipr.link("set", index=index, **changes),
            )
        _netlink(f"{namespace}: {ifname} up", lambda: ipr.link("set", index=index, state="up"))


def set_down(namespace: str, ifname: str) -> None:
    """Take an interface down (its veth peer loses carrier: a cable pulled)."""
    with _ipr(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        _netlink(f"{namespace}: {ifname} down", lambda: ipr.link("set", index=index, state="down"))


def add_address(namespace: str, ifname: str, interface: ipaddress.IPv4Interface) -> None:
    """Give ``ifname`` an IPv4 address with its prefix length."""
    with _ipr(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        _netlink(
            f"{namespace}: address {interface} on {ifname}",
            lambda: ipr.addr(
                "add",
                index=index,
                address=str(interface.ip),
                prefixlen=interface.network.prefixlen,
            ),
        )


def add_route(
    namespace: str, destination: ipaddress.IPv4Network | None, gateway: ipaddress.IPv4Address
) -> None:
    """A route to ``destination`` (None = default) via ``gateway``."""
    target = "default" if destination is None else str(destination)
    with _ipr(namespace) as ipr:
        _netlink(
            f"{namespace}: route {target} via {gateway}",
            lambda: ipr.route("add", dst=target, gateway=str(gateway)),
        )


def set_alias(namespace: str, ifname: str, alias: str) -> None:
    """Set an interface's ifalias (``ip link set IF alias TEXT``)."""
    with _ipr(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        _netlink(
            f"{namespace}: {ifname} alias {alias!r}",
            lambda: ipr.link("set", index=index, ifalias=alias),
        )


def move_link(namespace: str, ifname: str, target: str) -> None:
    """Move ``ifname`` from ``namespace`` into namespace ``target`` (it arrives down; its
    name, MAC, MTU, ifalias and offload settings stay; a veth keeps its peer)."""
    with _ipr(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        _netlink(
            f"{namespace}: move {ifname} into {target}",
            lambda: ipr.link("set", index=index, net_ns_fd=target),
        )


def link_mac(namespace: str, ifname: str) -> str:
    """The MAC address of an interface, lower case with colons."""
    with _ipr(namespace) as ipr:
        index = _index(ipr, namespace, ifname)
        link = ipr.get_links(index)[0]
        return str(link.get_attr("IFLA_ADDRESS"))


def link_names(namespace: str) -> list[str]:
    """Names of the interfaces in a namespace."""
    with _ipr(namespace) as ipr:
        return [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]


WIRE_FRAMES_ONLY = ("tx", "off", "tso", "off", "gso", "off", "tx-udp_tnl-segmentation", "off",
                    "tx-gre-segmentation", "off")  # fmt: skip


def wire_frames_only(namespace: str, ifname: str) -> None:
    """``ifname`` sends only frames of its MTU with finished checksums (the kernel
    segments and sums what a kernel fast path or router hands it in 64 KB GSO frames),
    as a physical NIC puts on the wire: for links that reach the lab's userspace access
    relay (``vlanport``), which forwards frames one by one (it would segment GSO frames
    itself, at a Python cost the kernel's segmentation spares it)."""
    exec_in(namespace, ["ethtool", "-K", ifname, *WIRE_FRAMES_ONLY])


def enable_ipv6(namespace: str, ifname: str) -> None:
    """Turn IPv6 on for ``ifname`` (lab namespaces start with it off), without duplicate
    address detection: its link-local address is usable at once (router and DHCPv6
    solicitations go out from it)."""
    set_sysctl(namespace, f"net/ipv6/conf/{ifname}/accept_dad", "0")
    set_sysctl(namespace, f"net/ipv6/conf/{ifname}/disable_ipv6", "0")


def add_address6(namespace: str, ifname: str, interface: ipaddress.IPv6Interface) -> None:
    """Turn IPv6 on for ``ifname`` (lab namespaces start with it off) and give it an
    address; without duplicate address detection (the NC assigned the address; DAD would
    only delay its link-local address, and so its router solicitation, by a second)."""
    enable_ipv6(namespace, ifname)
    argv = ["ip", "-6", "addr", "add", str(interface), "dev", ifname, "nodad"]
    exec_in(namespace, argv)


def wait_default_route6(namespace: str, gateway: str, timeout: float) -> None:
    """Wait until the namespace has an IPv6 default route via ``gateway`` (learnt from a
    Router Advertisement); LabError naming what it has after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        routes = exec_in(namespace, ["ip", "-6", "route", "show", "default"]).stdout
        if f"via {gateway} " in routes:
            return
        if time.monotonic() >= deadline:
            found = routes.strip() or "no IPv6 default route"
            raise LabError(f"{namespace}: no default route via {gateway} after {timeout:g} s "
                           f"({found})")  # fmt: skip
        time.sleep(ROUTE_POLL)


def enable_offloads(namespace: str, ifname: str) -> None:
    """Turn TX checksum, TSO (IPv4 and IPv6), GSO and SG on: the switch then gets GSO
    super-frames (the kernel fast path forwards them, the Python switch segments them)."""
    exec_in(namespace, ["ethtool", "-K", ifname, *VM_OFFLOADS_ON])


def disable_offloads(namespace: str, ifname: str) -> None:
    """Turn off TX checksum, TSO, GSO and SG so a userspace switch sees whole frames."""
    exec_in(namespace, ["ethtool", "-K", ifname, *VM_OFFLOADS_OFF])


def add_root_veth(ifname: str, peer_namespace: str, peer_ifname: str, mtu: int) -> None:
    """A veth pair with ``ifname`` in the root namespace and its peer in a lab namespace
    (deleting that namespace deletes both ends)."""
    for n in (ifname, peer_ifname):
        if len(n) > IFNAMSIZ:
            raise LabError(f"interface name {n!r} is longer than {IFNAMSIZ} characters")
    with IPRoute() as ipr:
        _netlink(
            f"root namespace: veth {ifname} <-> {peer_namespace}/{peer_ifname}",
            lambda: ipr.link(
                "add",
                ifname=ifname,
                kind="veth",
                mtu=mtu,
                peer={"ifname": peer_ifname, "net_ns_fd": peer_namespace, "mtu": mtu},
            ),
        )


def set_root_up(ifname: str, interface: ipaddress.IPv4Interface) -> None:
    """Give the root namespace's ``ifname`` (a lab veth) its address and bring it up."""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise LabError(f"root namespace: no interface {ifname}")
        index = found[0]
        _netlink(
            f"root namespace: address {interface} on {ifname}",
            lambda: ipr.addr(
                "add", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen
            ),
        )
        _netlink(f"root namespace: {ifname} up", lambda: ipr.link("set", index=index, state="up"))


def root_link_names(prefix: str = PREFIX) -> list[str]:
    """Links in the root namespace whose names start with ``prefix``."""
    with IPRoute() as ipr:
        names = [str(link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]
    return sorted(n for n in names if n.startswith(prefix))


def delete_root_links(prefix: str = PREFIX) -> list[str]:
    """Remove links in the root namespace whose names start with ``prefix``."""
    removed: list[str] = []
    with IPRoute() as ipr:
        for link in ipr.get_links():
            name = str(link.get_attr("IFLA_IFNAME"))
            if not name.startswith(prefix):
                continue
            try:
                ipr.link("del", index=link["index"])
            except NetlinkError as exc:
                if exc.code not in (errno.ENODEV, errno.ENOENT):
                    raise LabError(f"root namespace: cannot remove link {name}: {exc}") from exc
            removed.append(name)
    return removed
