"""Two hosts on one uplink veth, VMs on veths, the kernel fast path (tests and benchmark).

``FastpathNet`` builds namespaces ``hnv-fp…-h1``/``-h2`` (hosts, joined by ``up0`` <->
``up0``, PAs 192.168.1.10/.11 kept in userspace as openhnv does: the host kernels hold
no address) and one namespace per VM with ``eth0`` whose peer in the host namespace
is the VM port (``vm1``...). VMs have static neighbours (no ARP) and their offloads on
unless asked otherwise. Everything is removed on exit, also after a failure.

- ``load(host)`` loads a ``FastPath`` for a host and attaches it to its uplink and
  VM ports; entries are then installed by hand: ``encap_entry`` builds one from the
  outer-header template of the Python engine (``vfp.transposition.Encap``).
- ``SlowPath`` stands in for the Python switch: AF_PACKET sockets on a host's VM
  ports and uplink with the fast path's socket filters, forwarding whatever the
  kernel leaves to it (first packets, SYN/FIN/RST) with the same templates; it
  finishes the L4 checksums of frames from VMs whose offloads are on.
- ``kernel_vxlan(host)`` makes a host a Linux bridge + VXLAN device instead (a peer
  VTEP independent of openhnv, and the benchmark's comparison).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import select
import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from openhnv.lab import netns, traffic
from openhnv.lab.errors import LabError
from openhnv.packet.checksum import internet_checksum, pseudo_header_sum
from openhnv.packet.frames import tcp_frame, udp_frame
from openhnv.packet.vxlan import VXLAN_PORT
from openhnv.testing.namespaces import remove_namespaces, unique_prefix
from openhnv.vfp.transposition import Encap, InnerEdit, source_port_of
from openhnv.vswitch.afpacket import AfPacketSocket
from openhnv.vswitch.fastpath import entries
from openhnv.vswitch.fastpath.fastpath import FastPath
from openhnv.vswitch.fastpath.layout import FlowEntry, PortKey, UplinkKey

VSID = 5001
UPLINK = "up0"
ETH = 14
VLAN_TAG = 4


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    namespace: str
    pa: str
    uplink_mac: str


@dataclass(frozen=True, slots=True)
class Vm:
    name: str
    host: str
    namespace: str
    port: str  # the veth host end, in the host namespace
    mac: str
    ip: str


def net_prefix(tag: str) -> str:
    """``hnv-fp<tag><pid><hex>-``: the namespaces of one net."""
    return unique_prefix(f"fp{tag}")


class FastpathNet:
    """See the module docstring; a context manager."""

    def __init__(
        self,
        tag: str,
        *,
        vms: Sequence[tuple[str, str]] = (("v1", "h1"), ("v2", "h2"), ("v3", "h1")),
        uplink_mtu: int = 1600,
        vm_offloads: bool = True,
        nvgre: bool = False,
        vlan_id: int | None = None,
    ) -> None:
        """``nvgre`` and ``vlan_id``: the overlay of ``install_flow`` and ``SlowPath``."""
        self.prefix = net_prefix(tag)
        self.hosts = {
            h: Host(h, self.prefix + h, f"192.168.1.{10 + i}", f"02:00:00:aa:00:{i + 1:02x}")
            for i, h in enumerate(("h1", "h2"))
        }
        self.vms = {
            name: Vm(name, host, self.prefix + name, f"vm{name[1:]}",
                     f"02:00:00:00:01:{int(name[1:]) + 10:02x}", f"10.0.0.{int(name[1:]) + 10}")
            for name, host in vms
        }  # fmt: skip
        self.uplink_mtu = uplink_mtu
        self.vm_offloads = vm_offloads
        self.nvgre = nvgre
        self.vlan_id = vlan_id
        self.fast_paths: dict[str, FastPath] = {}
        self.slow_paths: list[SlowPath] = []

    def __enter__(self) -> FastpathNet:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for slow in self.slow_paths:
            slow.stop()
        for fp in self.fast_paths.values():
            fp.close()
        remove_namespaces(self.prefix)

    def _build(self) -> None:
        h1, h2 = self.hosts["h1"], self.hosts["h2"]
        for host in self.hosts.values():
            netns.create_namespace(host.namespace)
        netns.add_veth(h1.namespace, UPLINK, h2.namespace, UPLINK, self.uplink_mtu)
        for host in (h1, h2):
            netns.set_up(host.namespace, UPLINK, mac=host.uplink_mac)
        for vm in self.vms.values():
            netns.create_namespace(vm.namespace)
            netns.add_veth(vm.namespace, "eth0", self.hosts[vm.host].namespace, vm.port, 1500)
            netns.set_up(vm.namespace, "eth0", mac=vm.mac)
            netns.set_up(self.hosts[vm.host].namespace, vm.port)
            netns.add_address(vm.namespace, "eth0", ipaddress.IPv4Interface(f"{vm.ip}/24"))
            if not self.vm_offloads:
                netns.disable_offloads(vm.namespace, "eth0")
        for vm in self.vms.values():
            for other in self.vms.values():
                if other is not vm:
                    traffic.set_neighbor(vm.namespace, other.ip, other.mac)

    # -- names and numbers ------------------------------------------------------------

    def ifindex(self, host: str, ifname: str) -> int:
        return netns.run_in(self.hosts[host].namespace, socket.if_nametoindex, ifname)

    def vms_on(self, host: str) -> list[Vm]:
        return [vm for vm in self.vms.values() if vm.host == host]

    def other(self, host: str) -> Host:
        return next(h for h in self.hosts.values() if h.name != host)

    # -- the fast path ----------------------------------------------------------------

    def load(self, host: str, **kwargs: int) -> FastPath:
        """A FastPath for ``host``, attached to its uplink and VM ports."""
        fp = FastPath.load(**kwargs)  # type: ignore[arg-type]
        self.fast_paths[host] = fp
        self.attach(host, fp)
        return fp

    def attach(self, host: str, fp: FastPath) -> None:
        ns = self.hosts[host].namespace
        netns.run_in(ns, fp.attach_uplink, UPLINK)
        for vm in self.vms_on(host):
            netns.run_in(ns, fp.attach_port, vm.port)

    def template(
        self, src: str, *, nvgre: bool = False, vlan_id: int | None = None,
        edit: InnerEdit | None = None,
    ) -> Encap:  # fmt: skip
        """The Python engine's encapsulation from host ``src`` to the other host."""
        here, there = self.hosts[src], self.other(src)
        return Encap(nvgre=nvgre, outer_src_mac=here.uplink_mac, outer_dst_mac=there.uplink_mac,
                     vlan_id=vlan_id, source_pa=here.pa, provider_address=there.pa, vsid=VSID,
                     edit=edit)  # fmt: skip

    def encap_entry(
        self, src: str, entropy: int, *, nvgre: bool = False, vlan_id: int | None = None,
        edit: entries.EntryEdit | None = None, mtu: int | None = None,
        generations: Sequence[tuple[int, int]] = (),
    ) -> FlowEntry:  # fmt: skip
        """An ENCAP entry from ``src`` to the other host, from the engine's template."""
        header = self.template(src, nvgre=nvgre, vlan_id=vlan_id).header(0, entropy)
        return entries.encap_flow(
            header, entropy=entropy, uplink_ifindex=self.ifindex(src, UPLINK),
            mtu=self.uplink_mtu if mtu is None else mtu, edit=edit, generations=generations,
        )  # fmt: skip

    def install_flow(self, src: str, dst: str, frame: bytes, entropy: int) -> PortKey:
        """Entries for the flow of ``frame`` (VM ``src`` to VM ``dst`` on the other host):
        encapsulation on ``src``'s host, decapsulation on ``dst``'s. Returns the port key."""
        a, b = self.vms[src], self.vms[dst]
        key = self.port_key(src, frame)
        if self.nvgre:
            entropy &= 0xFF  # a FlowID
        entry = self.encap_entry(a.host, entropy, nvgre=self.nvgre, vlan_id=self.vlan_id)
        self.fast_paths[a.host].port_flows.set(key, entry)
        template = self.template(a.host, nvgre=self.nvgre, vlan_id=self.vlan_id)
        outer = template.header(len(frame), entropy) + frame
        decap = entries.decap_deliver_flow(self.ifindex(b.host, b.port))
        self.fast_paths[b.host].uplink_flows.set(self.uplink_key(outer), decap)
        return key

    def install_connections(
        self, client: str, server: str, client_ports: range, server_port: int
    ) -> list[PortKey]:
        """Both directions of TCP and UDP between ``client_ports`` of ``client`` and
        ``server_port`` of ``server`` (iperf3's control and data connections)."""
        a, b = self.vms[client], self.vms[server]
        keys = []
        for port in client_ports:
            forward = tcp_frame(src_mac=a.mac, dst_mac=b.mac, src_ip=a.ip, dst_ip=b.ip,
                                src_port=port, dst_port=server_port, flags=0x10)  # fmt: skip
            reverse = tcp_frame(src_mac=b.mac, dst_mac=a.mac, src_ip=b.ip, dst_ip=a.ip,
                                src_port=server_port, dst_port=port, flags=0x10)  # fmt: skip
            for frame, src, dst in ((forward, client, server), (reverse, server, client)):
                entropy = source_port_of(hash(frame[26:38]))
                keys.append(self.install_flow(src, dst, frame, entropy))
                udp = self.udp(src, dst, *struct.unpack_from("!HH", frame, 34))
                keys.append(self.install_flow(src, dst, udp, entropy))
        return keys

    def port_key(self, vm: str, frame: bytes) -> PortKey:
        key = entries.port_key_of(self.ifindex(self.vms[vm].host, self.vms[vm].port), frame)
        assert key is not None, f"no port key for {frame.hex()}"
        return key

    def uplink_key(self, outer: bytes) -> UplinkKey:
        key = entries.uplink_key_of(outer)
        assert key is not None, f"no uplink key for {outer.hex()}"
        return key

    def udp(self, src: str, dst: str, sport: int, dport: int, payload: bytes = b"x" * 32,
            ttl: int = 64, dst_mac: str | None = None) -> bytes:  # fmt: skip
        a, b = self.vms[src], self.vms[dst]
        return udp_frame(src_mac=a.mac, dst_mac=dst_mac or b.mac, src_ip=a.ip, dst_ip=b.ip,
                         src_port=sport, dst_port=dport, payload=payload, ttl=ttl)  # fmt: skip

    def inject(self, vm: str, frames: Sequence[bytes]) -> None:
        """Send ``frames`` out of ``vm``'s eth0 as the VM (they reach its port)."""
        sock = netns.run_in(self.vms[vm].namespace, AfPacketSocket, "eth0")
        try:
            for frame in frames:
                sock.send(frame)
        finally:
            sock.close()

    def capture(self, namespace: str, ifname: str) -> AfPacketSocket:
        return netns.run_in(namespace, AfPacketSocket, ifname)

    # -- a Linux bridge + VXLAN device host -------------------------------------------

    def kernel_vxlan(self, host: str) -> None:
        """Make ``host`` a Linux VTEP: PA on up0, vx0 (VNI 5001) and the VM ports in br0,
        static FDB and neighbour entries toward the other host's VMs and PA."""
        here, there = self.hosts[host], self.other(host)
        ns = here.namespace

        def run(*argv: str) -> None:
            netns.exec_in(ns, list(argv))

        run("ip", "addr", "add", f"{here.pa}/24", "dev", UPLINK)
        run("ip", "neigh", "replace", there.pa, "lladdr", there.uplink_mac, "nud", "permanent",
            "dev", UPLINK)  # fmt: skip
        run("ip", "link", "add", "vx0", "type", "vxlan", "id", str(VSID), "local", here.pa,
            "dstport", str(VXLAN_PORT), "nolearning", "dev", UPLINK)  # fmt: skip
        run("ip", "link", "add", "br0", "type", "bridge")
        run("ip", "link", "set", "vx0", "master", "br0", "up")
        for vm in self.vms_on(host):
            run("ip", "link", "set", vm.port, "master", "br0")
        for vm in self.vms_on(there.name):
            run("bridge", "fdb", "add", vm.mac, "dev", "vx0", "master", "static")
            run("bridge", "fdb", "append", vm.mac, "dev", "vx0", "dst", there.pa, "self")
        run("ip", "link", "set", "br0", "up")
        for key in ("bridge-nf-call-iptables", "bridge-nf-call-arptables"):
            with contextlib.suppress(LabError):  # br_netfilter not loaded: nothing to turn off
                netns.set_sysctl(ns, f"net/bridge/{key}", "0")


def finish_l4_checksum(frame: bytes) -> bytes:
    """``frame`` with its IPv4 TCP/UDP checksum computed (a VM with offloads on leaves it
    unfinished; the kernel would finish it on the wire)."""
    if frame[12:14] != b"\x08\x00" or frame[14] != 0x45:
        return frame
    proto = frame[23]
    at = {6: 16, 17: 6}.get(proto)
    if at is None:
        return frame
    total = struct.unpack_from("!H", frame, 16)[0]
    l4 = bytearray(frame[34 : 14 + total])
    l4[at : at + 2] = b"\0\0"
    pseudo = pseudo_header_sum(frame[26:30], frame[30:34], proto, len(l4))
    csum = internet_checksum(bytes(l4), pseudo)
    if proto == 17 and csum == 0:
        csum = 0xFFFF
    l4[at : at + 2] = csum.to_bytes(2, "big")
    return frame[:34] + bytes(l4) + frame[14 + total :]


class SlowPath:
    """The Python switch's part in these tests (see the module docstring): one thread,
    AF_PACKET sockets with the fast path's socket filters, counting what it forwards."""

    def __init__(self, net: FastpathNet, host: str) -> None:
        self.net = net
        self.host = host
        self.counters: Counter[str] = Counter()
        fp = net.fast_paths[host]
        ns = net.hosts[host].namespace
        self._uplink = net.capture(ns, UPLINK)
        fp.attach_uplink_socket(self._uplink)
        self._ports: dict[str, AfPacketSocket] = {}
        for vm in net.vms_on(host):
            sock = net.capture(ns, vm.port)
            fp.attach_port_socket(sock)
            self._ports[vm.mac] = sock
        self._encap = net.template(host, nvgre=net.nvgre, vlan_id=net.vlan_id)
        self._pa = socket.inet_aton(net.hosts[host].pa)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"slow-{host}")
        self._thread.start()
        net.slow_paths.append(self)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in (self._uplink, *self._ports.values()):
            sock.close()

    def _run(self) -> None:
        poller = select.poll()
        handlers: dict[int, Callable[[], None]] = {self._uplink.fileno(): self._from_uplink}
        for sock in self._ports.values():
            handlers[sock.fileno()] = lambda s=sock: self._from_port(s)  # type: ignore[misc]
        for fd in handlers:
            poller.register(fd, select.POLLIN)
        while not self._stop.is_set():
            for fd, _ in poller.poll(100):
                handlers[fd]()

    def _from_port(self, sock: AfPacketSocket) -> None:
        for frame in sock.recv_batch():
            frame = finish_l4_checksum(frame)
            local = self._ports.get(frame[0:6].hex(":"))
            if local is not None:
                self.counters["local"] += 1
                local.send(frame)
            elif frame[12:14] == b"\x08\x00":
                self.counters["encap"] += 1
                entropy = source_port_of(hash(frame[26:38])) & (0xFF if self.net.nvgre else 0xFFFF)
                self._uplink.send(self._encap.header(len(frame), entropy) + frame)

    def _from_uplink(self) -> None:
        for frame in self._uplink.recv_batch():
            if frame[12:14] == b"\x81\x00":
                frame = frame[:12] + frame[16:]
            if frame[12:14] != b"\x08\x00" or frame[30:34] != self._pa:
                continue
            inner = ETH + 20 + (16 if frame[23] == 17 else 8)
            port = self._ports.get(frame[inner : inner + 6].hex(":"))
            if port is not None:
                self.counters["decap"] += 1
                port.send(frame[inner:])


def receive(sock: AfPacketSocket, count: int = 1, timeout: float = 5.0) -> list[bytes]:
    """At least ``count`` frames from ``sock`` (what arrived by then; fewer on timeout)."""
    frames: list[bytes] = []
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    deadline = time.monotonic() + timeout
    while len(frames) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if poller.poll(left * 1000):
            frames += sock.recv_batch()
    return frames


def settle(sock: AfPacketSocket, seconds: float = 0.3) -> list[bytes]:
    """Whatever ``sock`` received within ``seconds`` (for "nothing arrived" checks, after
    a sentinel shows the frame was handled)."""
    time.sleep(seconds)
    return sock.recv_batch(4096)


IPERF_PORT = 5201
CLIENT_PORTS = range(42000, 42008)  # the client VM's ephemeral ports (ip_local_port_range)
UDP_PAYLOAD = 18  # 14 Ethernet + 20 IPv4 + 8 UDP + 18 = 60 bytes, 64 with the FCS


def narrow_ports(net: FastpathNet, vm: str, ports: range = CLIENT_PORTS) -> None:
    """Make ``vm`` pick its ephemeral ports from ``ports`` (so entries can be installed
    for its connections before they exist)."""
    netns.set_sysctl(net.vms[vm].namespace, "net/ipv4/ip_local_port_range",
                     f"{ports.start} {ports.stop - 1}")  # fmt: skip


def iperf(
    net: FastpathNet, client: str, server: str, seconds: float, *, udp: bool = False
) -> dict[str, Any]:
    """One iperf3 run ``client`` -> ``server``; the client's JSON report (raises on error)."""
    server_vm = net.vms[server]
    process = subprocess.Popen(
        ["ip", "netns", "exec", server_vm.namespace, "iperf3", "-s", "-1", "-p", str(IPERF_PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        argv = ["iperf3", "-c", server_vm.ip, "-p", str(IPERF_PORT), "-J", "-t", str(seconds)]
        if udp:
            argv += ["-u", "-b", "0", "-l", str(UDP_PAYLOAD)]
        report: dict[str, Any] = {}
        for _ in range(50):
            result = netns.exec_in(net.vms[client].namespace, argv, check=False,
                                   timeout=seconds + 30)  # fmt: skip
            report = json.loads(result.stdout or "{}")
            if "error" not in report or "connect" not in str(report["error"]):
                break
            time.sleep(0.1)  # the server is not listening yet
        if "error" in report:
            raise RuntimeError(f"iperf3: {report['error']}")
        return report
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(10)


def tcp_gbit_s(report: dict[str, Any]) -> float:
    return round(float(report["end"]["sum_received"]["bits_per_second"]) / 1e9, 3)


def udp_received_pkt_s(report: dict[str, Any]) -> int:
    total = report["end"]["sum"]
    return round((int(total["packets"]) - int(total["lost_packets"])) / float(total["seconds"]))
