"""The physical network of a lab, built from a topology in network namespaces.

Layout for a lab named ``L`` (all names from ``LabNames``)::

    hnv-L-vm-<vm>       eth0 (CA, MTU 1500, default via the subnet gateway; offloads
                        off, unless the hosts run the kernel fast path)
         │ veth
    hnv-L-host-<host>   vm-<vm> (read by the host's switch) ... up0, up1 (no kernel PA)
         │ veth (MTU 1700)
    hnv-L-fabric        br-<pa> per PA subnet, the hosts' uplink peers as its ports
         │ veth                     (a VLAN subnet: via the vlanport access relay)
    hnv-L-router        r-<pa>: the PA subnet's gateway address; ip_forward on

The bridges are VLAN-unaware (this kernel has no bridge VLAN filtering and no 802.1Q
sub-interfaces), so they carry the hosts' tagged frames as they are; for a PA subnet
with a VLAN the router's port is an *access port*: ``openhnv.lab.vlanport``, a small
daemon in the fabric namespace, pops the tag towards the router and pushes it back,
as a physical switch would. Its pid is recorded in ``<run_dir>/*.pid``; ``clean``
stops it by that pid.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import openhnv
from openhnv.lab import netns
from openhnv.lab.errors import LabError
from openhnv.lab.topology import Topology, Vm
from openhnv.vswitch.portlinks import port_alias

RUN_ROOT = Path("/run/openhnv")
UNDERLAY_MTU = 1700  # ≥ 1660, so VMs keep MTU 1500 under VXLAN/NVGRE and a VLAN tag
VM_MTU = 1500
VM_INTERFACE = "eth0"
PIDFILE_SUFFIX = ".pid"
_DAEMON_READY_SECONDS = 10.0
_STOP_SECONDS = 3.0
_POLL = 0.02

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass(frozen=True, slots=True)
class LabNames:
    """Every namespace and interface name of one lab; pure naming, no I/O."""

    lab: str

    @property
    def prefix(self) -> str:
        return f"{netns.PREFIX}{self.lab}-"

    @property
    def management_link(self) -> str:
        """The root namespace's end of the management network (``lab.management``),
        ≤ 15 characters for any lab name."""
        digest = hashlib.sha1(self.lab.encode()).hexdigest()[:8]
        return f"hnvm-{digest}"

    @property
    def fabric(self) -> str:
        return f"{self.prefix}fabric"

    @property
    def router(self) -> str:
        return f"{self.prefix}router"

    def host(self, host: str) -> str:
        return f"{self.prefix}host-{host}"

    def vm(self, vm: str) -> str:
        return f"{self.prefix}vm-{vm}"

    @staticmethod
    def uplink(index: int) -> str:
        return f"up{index}"

    @staticmethod
    def vm_port(vm: str) -> str:
        """The host-side end of a VM's veth, in the host namespace."""
        return netns.interface_name(f"vm-{vm}")

    @staticmethod
    def bridge(pa_subnet: str) -> str:
        return netns.interface_name(f"br-{pa_subnet}")

    @staticmethod
    def uplink_peer(host: str, index: int) -> str:
        """The fabric-side end of a host uplink (a port of the PA subnet's bridge)."""
        return netns.interface_name(f"u{index}-{host}")

    @staticmethod
    def router_leg(pa_subnet: str) -> str:
        """The router's interface in a PA subnet (router namespace)."""
        return netns.interface_name(f"r-{pa_subnet}")

    @staticmethod
    def router_peer(pa_subnet: str) -> str:
        """Fabric-side end of the router leg: a bridge port, or the access side of a relay."""
        return netns.interface_name(f"rt-{pa_subnet}")

    @staticmethod
    def trunk_port(pa_subnet: str) -> str:
        """VLAN subnets: the bridge port towards the access relay (fabric namespace)."""
        return netns.interface_name(f"tk-{pa_subnet}")

    @staticmethod
    def trunk_peer(pa_subnet: str) -> str:
        """VLAN subnets: the relay's trunk side (fabric namespace)."""
        return netns.interface_name(f"tr-{pa_subnet}")


@dataclass(slots=True)
class Lab:
    """A built lab: its names and the daemons the fabric started."""

    topology: Topology
    names: LabNames
    run_dir: Path
    pids: dict[str, int] = field(default_factory=dict)
    underlay_mtu: int = UNDERLAY_MTU

    def vm_namespace(self, vm: str) -> str:
        return self.names.vm(vm)

    def host_namespace(self, host: str) -> str:
        return self.names.host(host)


def run_dir_of(lab: str, run_root: Path = RUN_ROOT) -> Path:
    return run_root / lab


@contextlib.contextmanager
def _step(description: str, progress: Progress) -> Iterator[None]:
    progress(description)
    try:
        yield
    except LabError as exc:
        raise LabError(f"{description}: {exc}") from exc
    except OSError as exc:
        raise LabError(f"{description}: {exc}") from exc


def build(
    topology: Topology,
    run_root: Path = RUN_ROOT,
    progress: Progress = _quiet,
    *,
    vm_offloads: bool = False,
    underlay_mtu: int = UNDERLAY_MTU,
) -> Lab:
    """Build the fabric, router, host and VM namespaces; on failure remove all of it.

    ``vm_offloads``: the VMs keep TSO/GSO and checksum offload (for hosts running the
    kernel fast path, which forwards such frames as they are); without it they are off
    on both ends of each VM's veth, as a userspace switch needs. ``underlay_mtu``: of
    every link of the physical network (below 1550, VMs' full frames do not fit once
    encapsulated and get ICMP fragmentation needed)."""
    names = LabNames(topology.name)
    lab = Lab(topology=topology, names=names, run_dir=run_dir_of(topology.name, run_root),
              underlay_mtu=underlay_mtu)  # fmt: skip
    leftovers = netns.list_namespaces(names.prefix)
    if leftovers:
        raise LabError(
            f"lab {topology.name} already has namespaces ({', '.join(leftovers)}):"
            " run `hnv lab down` or `hnv lab clean` first"
        )
    try:
        lab.run_dir.mkdir(parents=True, exist_ok=True)
        _build_physical(lab, progress)
        for host in topology.hosts:
            _build_host(lab, host.name, progress)
        for vm in topology.vms:
            _build_vm(lab, vm.name, progress, vm_offloads)
    except BaseException:
        progress("build failed: removing what was built")
        teardown(topology, run_root)
        raise
    return lab


def _build_physical(lab: Lab, progress: Progress) -> None:
    names, topology = lab.names, lab.topology
    with _step(f"namespace {names.fabric} (PA switches)", progress):
        netns.create_namespace(names.fabric)
    with _step(f"namespace {names.router} (PA router)", progress):
        netns.create_namespace(names.router)
        netns.set_sysctl(names.router, "net/ipv4/ip_forward", "1")
    for pa in topology.pa_subnets:
        bridge = names.bridge(pa.name)
        with _step(f"PA subnet {pa.name} {pa.prefix}: bridge {bridge}", progress):
            netns.add_bridge(names.fabric, bridge, lab.underlay_mtu)
            netns.set_up(names.fabric, bridge)
        leg, peer = names.router_leg(pa.name), names.router_peer(pa.name)
        gateway = ipaddress.IPv4Interface(f"{pa.gateway}/{pa.prefix.prefixlen}")
        with _step(f"PA subnet {pa.name}: router leg {leg} {gateway}", progress):
            netns.add_veth(names.router, leg, names.fabric, peer, lab.underlay_mtu)
            netns.set_up(names.router, leg)
            netns.add_address(names.router, leg, gateway)
            netns.set_up(names.fabric, peer)
            if pa.vlan:  # wire-size frames for the access relay (see wire_frames_only)
                netns.wire_frames_only(names.router, leg)
        if pa.vlan == 0:
            with _step(f"PA subnet {pa.name}: router port into {bridge}", progress):
                netns.set_master(names.fabric, peer, bridge)
            continue
        trunk, trunk_peer = names.trunk_port(pa.name), names.trunk_peer(pa.name)
        with _step(f"PA subnet {pa.name}: VLAN {pa.vlan} access port for the router", progress):
            netns.add_veth(names.fabric, trunk, names.fabric, trunk_peer, lab.underlay_mtu)
            netns.set_master(names.fabric, trunk, bridge)
            netns.set_up(names.fabric, trunk)
            netns.set_up(names.fabric, trunk_peer)
            lab.pids[f"vlanport-{pa.name}"] = start_vlan_port(
                lab.run_dir, names.fabric, trunk_peer, peer, pa.vlan, f"vlanport-{pa.name}"
            )


def _build_host(lab: Lab, host_name: str, progress: Progress) -> None:
    names, host = lab.names, lab.topology.host(host_name)
    namespace = names.host(host.name)
    with _step(f"host {host.name}: namespace {namespace}", progress):
        netns.create_namespace(namespace)
    bridge = names.bridge(host.pa_subnet)
    for index in range(host.uplinks):
        uplink, peer = names.uplink(index), names.uplink_peer(host.name, index)
        with _step(f"host {host.name}: uplink {uplink} into {bridge}", progress):
            netns.add_veth(namespace, uplink, names.fabric, peer, lab.underlay_mtu)
            netns.set_master(names.fabric, peer, bridge)
            netns.set_up(names.fabric, peer)
            netns.set_up(namespace, uplink)
            if lab.topology.pa_subnet(host.pa_subnet).vlan:
                netns.wire_frames_only(namespace, uplink)


def _build_vm(lab: Lab, vm_name: str, progress: Progress, offloads: bool) -> None:
    vm = lab.topology.vm(vm_name)
    namespace = lab.names.vm(vm.name)
    with _step(f"VM {vm.name}: namespace {namespace}, {vm.ip} on host {vm.host}", progress):
        netns.create_namespace(namespace)
        _wire_vm(lab, vm_name, offloads)


def _wire_vm(lab: Lab, vm_name: str, offloads: bool) -> None:
    """The VM's veth into its host namespace, its address and default route; without
    ``offloads`` TSO/GSO and checksum offload are off on both ends."""
    names, topology = lab.names, lab.topology
    vm = topology.vm(vm_name)
    prefix, gateway = topology.vm_prefix(vm)
    namespace, host_namespace = names.vm(vm.name), names.host(vm.host)
    port = names.vm_port(vm.name)
    address = ipaddress.IPv4Interface(f"{vm.ip}/{prefix.prefixlen}")
    # An access port's frames always stay with the Python switch (which would segment
    # GSO frames, at a cost per segment): no GSO, even when the hosts run the fast path.
    offloads = offloads and vm.logical_network is None
    netns.add_veth(namespace, VM_INTERFACE, host_namespace, port, VM_MTU)
    netns.set_up(namespace, VM_INTERFACE, mac=vm.mac)
    if not vm.dhcp:  # else a DHCP client configures it (lab.dhcp_client)
        netns.add_address(namespace, VM_INTERFACE, address)
        if gateway is not None:
            netns.add_route(namespace, None, gateway)
    if vm.ip6 is not None and vm.dhcp:  # a DHCPv6 client configures it (lab.dhcp6_client)
        netns.enable_ipv6(namespace, VM_INTERFACE)
    elif vm.ip6 is not None:  # static; its default route comes from the RA
        netns.add_address6(namespace, VM_INTERFACE, _interface6(topology, vm))
    if not offloads:
        netns.disable_offloads(namespace, VM_INTERFACE)
    netns.set_up(host_namespace, port)
    if not offloads:
        netns.disable_offloads(host_namespace, port)


def _interface6(topology: Topology, vm: Vm) -> ipaddress.IPv6Interface:
    prefix6 = topology.vm_subnet(vm).prefix6
    if prefix6 is None or vm.ip6 is None:  # the topology's checks rule this out
        raise LabError(f"VM {vm.name}: ip6 without its subnet's prefix6")
    return ipaddress.IPv6Interface(f"{vm.ip6}/{prefix6.prefixlen}")


def rebuild_host(
    lab: Lab,
    host_name: str,
    ports: Mapping[str, tuple[str, str]],
    progress: Progress = _quiet,
    *,
    vm_offloads: bool = False,
) -> None:
    """Make a removed host namespace again, as a rebooted host comes back: its uplinks,
    and the veth of each of its VMs (whose namespaces stayed), given back the NIC's
    ``(mac, port_id)`` from ``ports``. ``vm_offloads`` as the lab was built with (see
    ``build``). Its daemons are not started here."""
    _build_host(lab, host_name, progress)
    for vm in lab.topology.vms:
        if vm.host != host_name:
            continue
        with _step(f"VM {vm.name}: veth into host {host_name} again", progress):
            _wire_vm(lab, vm.name, vm_offloads)
            if vm.name in ports:
                attach_vm_port(lab, vm.name, *ports[vm.name])


# ---------------------------------------------------------------- daemons


def attach_vm_port(lab: Lab, vm_name: str, mac: str, port_id: str) -> None:
    """Give a VM its NIC: the MAC on the VM end, the port alias on the host end.

    The host's switch takes the host end as the VM port of NIC ``port_id`` once its
    ifalias reads ``openhnv-port <port-id> <mac>`` (the LinuxDriver contract).
    """
    vm = lab.topology.vm(vm_name)
    namespace, host_namespace = lab.names.vm(vm.name), lab.names.host(vm.host)
    port = lab.names.vm_port(vm.name)
    netns.set_up(namespace, VM_INTERFACE, mac=mac)
    netns.set_alias(host_namespace, port, port_alias(port_id, mac))


def _src_path() -> str:
    return str(Path(openhnv.__file__).resolve().parents[1])


def start_vlan_port(
    run_dir: Path, namespace: str, trunk: str, access: str, vlan: int, name: str
) -> int:
    """Start the access-port relay in ``namespace``; returns its pid once it is ready."""
    pidfile = run_dir / f"{name}{PIDFILE_SUFFIX}"
    log = run_dir / f"{name}.log"
    pidfile.unlink(missing_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_src_path(), env.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "openhnv.lab.vlanport", "--netns", namespace]
    argv += ["--trunk", trunk, "--access", access, "--vlan", str(vlan), "--pidfile", str(pidfile)]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, start_new_session=True
        )
    deadline = time.monotonic() + _DAEMON_READY_SECONDS
    while time.monotonic() < deadline:
        if pidfile.exists():
            return process.pid
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"{name} exited with status {process.returncode}: {tail[0]}")
        time.sleep(_POLL)
    process.kill()
    raise LabError(f"{name} did not become ready within {_DAEMON_READY_SECONDS:g} s")


def alive(pid: int) -> bool:
    """The process runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def _is_ours(pid: int) -> bool:
    """A pid from a pidfile still belongs to an openhnv process (guards against pid reuse)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"openhnv" in f.read()
    except OSError:
        return False


def stop_pidfile(pidfile: Path) -> int | None:
    """Stop the process named by a pidfile (TERM, then KILL); returns its pid if it ran."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pidfile.unlink(missing_ok=True)
        return None
    stopped: int | None = None
    if alive(pid) and _is_ours(pid):
        stopped = pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_SECONDS
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(_POLL)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    pidfile.unlink(missing_ok=True)
    return stopped


# ---------------------------------------------------------------- removal


@dataclass(frozen=True, slots=True)
class CleanReport:
    """What ``clean`` removed."""

    namespaces: tuple[str, ...]
    links: tuple[str, ...]
    daemons: tuple[int, ...]


def teardown(topology: Topology, run_root: Path = RUN_ROOT) -> CleanReport:
    """Remove everything ``build`` made for this topology's lab."""
    return clean(LabNames(topology.name).prefix, run_root)


def clean(prefix: str = netns.PREFIX, run_root: Path = RUN_ROOT) -> CleanReport:
    """Stop recorded daemons and remove every namespace and root link named ``prefix``…"""
    if not prefix.startswith(netns.PREFIX):
        raise LabError(f"clean: prefix {prefix!r} must start with {netns.PREFIX!r}")
    daemons: list[int] = []
    management_links: list[str] = []
    if run_root.is_dir():
        for lab_dir in sorted(p for p in run_root.iterdir() if p.is_dir()):
            if not f"{netns.PREFIX}{lab_dir.name}-".startswith(prefix):
                continue
            # The lab's own daemons first (controller, hosts, relays), then whatever
            # they supervised and left a pidfile for deeper down (a host's ovsdb-server,
            # a compartment's charon), looked for only once the supervisors are gone: one
            # may have started a daemon while it was being stopped.
            for pattern in (f"*{PIDFILE_SUFFIX}", f"**/*{PIDFILE_SUFFIX}"):
                for pidfile in sorted(lab_dir.glob(pattern)):
                    pid = stop_pidfile(pidfile)
                    if pid is not None:
                        daemons.append(pid)
            shutil.rmtree(lab_dir, ignore_errors=True)
            # gone with its namespace too, but only once the kernel has reaped that
            management_links += netns.delete_root_links(LabNames(lab_dir.name).management_link)
    removed = [n for n in netns.list_namespaces(prefix) if netns.delete_namespace(n)]
    links = management_links + netns.delete_root_links(prefix)
    return CleanReport(tuple(removed), tuple(links), tuple(daemons))
