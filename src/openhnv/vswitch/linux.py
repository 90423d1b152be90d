"""The Linux data plane: VM ports are veths, uplinks are ``up0``, ``up1``, ... of the host.

``LinuxDriver`` runs inside the host's network namespace (it remembers the namespace
it was made in; its thread, and any uplink opened later, enter it). One thread polls
every socket:

- a ``PacketRing`` (mmap'd AF_PACKET rings) on the host end of each VM port's veth:
  frames a VM sent go to ``sink.from_port`` in batches; ``send_to_port`` writes into
  the ring and one system call per batch sends them;
- a ``PacketRing`` on each uplink, read into ``linux_pa.PaSide``: tunnel frames for a
  local PA go to ``sink.from_uplink``, ARP and ICMP echo for the PAs are answered, next
  hops are resolved and reported; ``transmit`` sends the engine's whole outer frames
  out of the uplink of their source PA;
- the rtnetlink socket of ``portlinks.LinkWatcher``: links whose ifalias is
  ``openhnv-port <port-id> <mac>`` appear and disappear as VM ports (offloads are
  turned off on the host end, and it is brought up), reported with
  ``sink.port_added`` / ``sink.port_removed``; a re-dump every second catches alias
  changes, which send no netlink event; an uplink's carrier change goes to
  ``PaSide.set_carrier`` as the event arrives (team failover);
- an eventfd that wakes the loop for work posted from other threads (send_to_port,
  transmit, PA changes): only the loop thread touches the rings.

Each polling round hands the ready rings' frames to the sink and sends what came back
(one system call per ring), then calls ``sink.round_done()``.

A VM port over its abuse limits (``sink.from_port`` returns a pause, vfp.limits) is
left unread for that long: its ring is taken off the poll set (``port_pauses``), the
VM's frames meanwhile wait in, and overflow, that port's own ring, and the loop serves
every other port. Below that, the port's socket filter meters the same limits in the
kernel (``set_port_limits``, ``vswitch.fastpath.meters``): SYNs, broadcasts and ARP over
their rates never reach the ring (``kernel_limit_drops``). That meter is the port's
socket filter: with the fast path its port filter, without it the meter filter alone
(``hnv_sk_meter``, the object loaded for it); with ``xdp_meter`` it is the object's XDP
program on the port's veth host end instead (the socket filter then does not meter
again), the socket filter where XDP cannot be attached. Without the object the Python
meter works alone and ``metering_status`` says why.

With the kernel fast path (``fastpath="on"`` or ``"auto"``, docs/fastpath.md) the
driver opens it in its namespace (adopting the one an earlier process left attached
to the uplinks), attaches its tc programs where the drop program of
``vswitch.ingress`` would go and its socket filters to every ring, and keeps the VM
ports' offloads on; ``fast_path`` is then the loaded ``FastPath`` the switch writes
its entries to. The programs stay attached when the driver closes: established flows
keep flowing while the process is gone, and the next one adopts them.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import ipaddress
import logging
import os
import select
import subprocess
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openhnv.packet.addresses import mac_to_str
from openhnv.vfp.emits import Transmit
from openhnv.vfp.limits import NO_LIMITS, PortLimits
from openhnv.vfp.qos import NO_QOS, QOS_INBOUND, QOS_OUTBOUND, QosSettings
from openhnv.vswitch import htb, qdisc
from openhnv.vswitch.driver import FrameSink, PaConfig, RingCounters
from openhnv.vswitch.errors import DeviceError, VSwitchError
from openhnv.vswitch.fastpath.attach import detach_socket, detach_xdp
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import FastPath
from openhnv.vswitch.fastpath.meters import MeterTable, metered
from openhnv.vswitch.htb import UplinkScheduler
from openhnv.vswitch.ingress import hide_from_kernel, show_to_kernel
from openhnv.vswitch.linux_pa import PaSide
from openhnv.vswitch.portlinks import (
    UPLINK_NAME,
    LinkInfo,
    LinkWatcher,
    PortLink,
    port_links,
    uplink_names,
)
from openhnv.vswitch.ring import RING_COUNTERS, PacketRing, counters_of
from openhnv.vswitch.uplink_planning import UplinkPlanning, WantedTrees

BATCH = 256
TICK_SECONDS = 0.25
RESCAN_SECONDS = 1.0
READY_SECONDS = 10.0
UPLINK_RX_FRAMES = 4096  # an uplink carries every flow of the host: a deeper ring (8 MB)
PORT_OFFLOADS_OFF = ("tx", "off", "tso", "off", "gso", "off", "sg", "off", "gro", "off")
# with the fast path the kernel takes the VM's GSO frames whole; GRO stays off so that
# the frames the Python switch gets are the VM's own
PORT_OFFLOADS_ON = ("tx", "on", "tso", "on", "gso", "on", "sg", "on", "gro", "off")
FASTPATH_MODES = ("auto", "on", "off")
_CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)
_LOGGED_ERRORS = 20

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Port:
    link: PortLink
    ring: PacketRing


def _setns(fd: int) -> None:
    if _LIBC.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


class LinuxDriver:
    """AF_PACKET rings on veths and uplinks, one polling thread; see the module doc."""

    def __init__(
        self,
        uplinks: Sequence[str] | None = None,
        *,
        isolate_kernel: bool = True,
        fastpath: str = "off",
        xdp_meter: bool = False,
        uplink_mbps: int | None = None,
    ) -> None:
        """``uplinks``: the uplink names (all ``up<N>`` when None). ``isolate_kernel``:
        drop every frame of the uplinks and VM ports at tc ingress once the switch has
        seen it, so the host's IP stack spends nothing on them (``vswitch.ingress``).
        ``fastpath``: ``on`` (the kernel fast path, or ``VSwitchError`` saying why it
        cannot run), ``auto`` (on when it can, else without it and one log line),
        ``off``. ``xdp_meter``: meter the abuse limits in native XDP on each VM port
        instead of in its socket filter (off by default: on a veth it costs the port's
        own TCP more than it saves, docs/vfp.md). ``uplink_mbps``: the uplinks' capacity
        for reservations (else each device's ``speed``, vswitch.htb)."""
        if fastpath not in FASTPATH_MODES:
            raise VSwitchError(f"fastpath {fastpath!r}: expected one of {FASTPATH_MODES}")
        self.counters: Counter[str] = Counter()
        self.fast_path: FastPath | None = None
        self.fastpath_mode = fastpath
        self.fastpath_reason = "--fastpath off" if fastpath == "off" else ""
        self._netns = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._watcher = LinkWatcher()
        self._uplink_names = list(uplinks) if uplinks is not None else None
        self._uplink_rings: dict[str, PacketRing] = {}
        self._uplink_lock = threading.Lock()
        self._isolate_kernel = isolate_kernel
        self._hidden: set[str] = set()
        self._problems: set[str] = set()
        self._sink: FrameSink | None = None
        self._ports: dict[str, _Port] = {}
        self._port_fds: dict[int, _Port] = {}
        self._dirty: set[PacketRing] = set()
        self._paused: dict[int, float] = {}  # ring fd -> when to poll it again
        self._limits = NO_LIMITS
        self._meter_only: FastPath | None = None  # without the fast path: its meter filter
        self.metering_reason = "no limits set"
        self._xdp_meter = xdp_meter
        self._xdp_ports: set[str] = set()  # ifnames whose XDP program meters them
        self._qos: dict[str, QosSettings] = {}  # port -> the caps to shape (vswitch.qdisc)
        self._shaped: dict[
            str, tuple[str, int, QosSettings]
        ] = {}  # port -> (ifname, ifindex, caps)
        self.scheduler = UplinkScheduler(uplink_mbps)  # the uplinks' htb trees (vswitch.htb)
        self.planning = UplinkPlanning(self.scheduler, self._enter_netns, self.counters)
        self._posted: deque[Callable[[], None]] = deque()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._thread: threading.Thread | None = None
        self._loop_ident = 0
        self._stopping = False
        self._closed = False
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._poller = select.epoll()
        self._handlers: dict[int, Callable[[], None]] = {}
        self._pa = PaSide(self.counters, self._dirty)
        names = self._uplink_names
        try:
            for name in names if names is not None else uplink_names(self._watcher.dump()):
                self._uplink(name)
            if fastpath != "off":
                self._open_fast_path(fastpath)
        except VSwitchError:
            self._close_all()
            raise

    def _open_fast_path(self, mode: str) -> None:
        """Load (or adopt) the kernel fast path here; ``on`` refuses to run without it.
        Adoption looks at the VM ports too: only their program uses the port flow map."""
        found, _ = port_links(self._watcher.dump())
        interfaces = [*self._uplink_rings, *(link.ifname for link in found.values())]
        try:
            fp = FastPath.open(interfaces)
        except FastPathError as exc:
            self.fastpath_reason = " ".join(str(exc).split())
            if mode == "on":
                raise VSwitchError(
                    f"the kernel fast path cannot run here: {self.fastpath_reason}"
                ) from None
            log.warning("linux driver: kernel fast path off: %s", self.fastpath_reason)
            return
        self.fast_path = fp
        try:
            for name, ring in self._uplink_rings.items():
                fp.attach_uplink_socket(ring, f"uplink {name}")
        except FastPathError:
            fp.close()
            self.fast_path = None
            raise
        log.info("linux driver: kernel fast path on (%s)", "adopted" if fp.adopted else "loaded")

    # ------------------------------------------------------------ Driver protocol

    def open(self, sink: FrameSink) -> None:
        """Start the polling thread; VM ports found now are reported before it returns."""
        if self._thread is not None or self._closed:
            raise VSwitchError("the Linux driver is already open or was closed")
        self._sink = sink
        self._pa.sink = sink
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="hnv-linux-driver", daemon=True)
        self._thread.start()
        if not self._ready.wait(READY_SECONDS) or self._failed is not None:
            self.close()
            raise VSwitchError(f"the Linux driver's thread did not start: {self._failed}")

    def close(self) -> None:
        """Stop the thread and close every socket (idempotent; a closed driver stays
        closed). The fast path's programs stay attached and keep forwarding."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            os.eventfd_write(self._wake, 1)
            thread.join(10.0)
            self._thread = None
        self.planning.close()
        self._close_all()
        if self.fast_path is not None:
            self.fast_path.close()
        if self._meter_only is not None:
            self._meter_only.close()
            self._meter_only = None

    def send_to_port(self, port: str, frames: Sequence[bytes]) -> None:
        if threading.get_ident() != self._loop_ident:
            frames = list(frames)
            self._post(lambda: self.send_to_port(port, frames))
            return
        p = self._ports.get(port)
        if p is None:
            self.counters["tx_dropped_no_port"] += len(frames)
            return
        p.ring.queue_many(frames)
        self._dirty.add(p.ring)

    def transmit(self, frames: Sequence[Transmit]) -> None:
        if threading.get_ident() != self._loop_ident:
            frames = list(frames)
            self._post(lambda: self.transmit(frames))
            return
        self._pa.transmit(frames)

    def transmit_from(self, port: str, frames: Sequence[Transmit]) -> None:
        """``transmit`` the frames ``port`` sent: in its uplink class where the uplinks
        schedule (each ring flushed with the class's ``SO_PRIORITY``)."""
        if threading.get_ident() != self._loop_ident:
            frames = list(frames)
            self._post(lambda: self.transmit_from(port, frames))
            return
        p = self._ports.get(port)
        priority = 0 if p is None else self.scheduler.priority_of(p.ring.ifindex)
        self._pa.transmit(frames, priority)

    def set_provider_addresses(self, pas: Sequence[PaConfig]) -> None:
        for pa in pas:
            self._uplink(pa.interface)
        pas = list(pas)
        self._post(lambda: self._pa.configure(pas, self._uplink_rings))

    def uplink_mac(self, interface: str) -> str:
        return mac_to_str(self._uplink(interface).mac)

    def watch_neighbors(self, addresses: Sequence[str]) -> None:
        for address in addresses:
            try:
                ipaddress.IPv4Address(address)
            except ValueError:
                raise VSwitchError(f"watch_neighbors: {address!r} is not an IPv4 PA") from None
        wanted = list(addresses)
        self._post(lambda: self._pa.watch(wanted))

    def set_access_vlans(self, vlans: frozenset[int]) -> None:
        wanted = frozenset(vlans)
        self._post(lambda: setattr(self._pa, "access_vlans", wanted))

    # ------------------------------------------------------------ inspection

    def port_interfaces(self) -> dict[str, str]:
        """port id -> host-side interface name, of the ports found."""
        return {port: p.link.ifname for port, p in self._ports.items()}

    def set_port_qos(self, port: str, settings: QosSettings) -> None:
        """Shape ``port``'s caps in the kernel (vswitch.qdisc): inbound always, outbound
        for what the fast path encapsulates; kept for a port that appears later."""
        if threading.get_ident() != self._loop_ident:
            self._post(lambda: self.set_port_qos(port, settings))
            return
        if settings.scheduled:
            self._qos[port] = settings
        else:
            self._qos.pop(port, None)
        p = self._ports.get(port)
        if p is not None:
            self._shape(p)

    def qos_drops(self) -> dict[str, dict[str, int]]:
        """Port -> {``qos_inbound``: its tbf's drops, ``qos_outbound``: its htb classes'
        drops on the uplinks} for the shaped ports."""
        found: dict[str, dict[str, int]] = {}
        try:
            by_class: Counter[int] = Counter()
            for uplink in list(self._uplink_rings):
                by_class.update({k: v[2] for k, v in htb.class_stats(uplink).items()})
            for port, (ifname, ifindex, shaped) in list(self._shaped.items()):
                drops = {}
                if shaped.inbound_max_mbps:
                    drops[QOS_INBOUND] = qdisc.port_drops(ifname)
                if by_class.get(ifindex):
                    drops[QOS_OUTBOUND] = by_class[ifindex]
                found[port] = drops
        except qdisc.TcError as exc:
            log.warning("linux driver: QoS drops: %s", exc)
        return found

    def _shape(self, p: _Port) -> None:
        """Make the kernel shape ``p`` as ``_qos`` says (nothing when it already does)."""
        port, ifname, ifindex = p.link.port, p.link.ifname, p.ring.ifindex
        wanted = self._qos.get(port, NO_QOS)
        _, _, done = self._shaped.get(port, (ifname, ifindex, NO_QOS))
        if wanted == done:
            return
        try:
            if wanted.inbound_max_mbps:
                qdisc.shape_port(ifname, wanted.inbound_max_mbps)
            elif done.inbound_max_mbps:
                qdisc.unshape_port(ifname)
            p.ring.set_qdisc_bypass(not wanted.inbound_max_mbps)
        except (qdisc.TcError, OSError) as exc:
            self.counters["qos_setup_failed"] += 1
            log.warning("linux driver: QoS of port %s on %s: %s", port, ifname, exc)
            return
        if wanted.scheduled:
            self._shaped[port] = (ifname, ifindex, wanted)
        else:
            self._shaped.pop(port, None)
        self._schedule()

    def _unshape_uplinks(self, port: str) -> None:
        """A port went: its htb classes leave the uplinks (its veth took its tbf); beside
        shaped ports, the other ports' shares move (vswitch.htb)."""
        if self._shaped.pop(port, None) is not None or self._shaped:
            self._schedule()

    def _schedule(self) -> None:
        """The uplinks' htb trees for the ports, shaped or not (vswitch.htb), applied off
        this thread (vswitch.uplink_planning); the uplink rings stop bypassing the qdisc
        where the tree schedules, so the Python switch's frames cross it too."""
        ports = {p.ring.ifindex: NO_QOS for p in self._ports.values()}
        ports.update({ifindex: s for _, ifindex, s in self._shaped.values()})
        rings = dict(self._uplink_rings)
        self.planning.want(WantedTrees(rings, ports, flat_classes=self.fast_path is not None))

    def _enter_netns(self) -> None:
        _setns(self._netns)

    def qos_status(self) -> dict[str, object]:
        """The uplinks' scheduling (vswitch.htb) and each port's class (with a
        ``warning`` when its reservation was scaled down: the uplink is oversubscribed)."""
        ports: dict[str, dict[str, object]] = {}
        shaped = dict(self._shaped)  # other threads change both
        for port, p in list(self._ports.items()):  # an unreserved one too: its share
            found = self.scheduler.port_class(p.ring.ifindex)
            if found is None:
                continue
            rate = found["rate_mbps"]
            asked = shaped[port][2].outbound_reserved_mbps if port in shaped else 0
            if isinstance(rate, float) and rate < asked:
                found["reserved_mbps"] = asked
                found["warning"] = (f"reservation {asked} Mbit/s scaled to {rate:g}: the"
                                    f" reservations on {found['uplink']} exceed its"
                                    " capacity")  # fmt: skip
            ports[port] = found
        return {"uplinks": self.scheduler.status(), "ports": ports}

    def port_ifindex(self, port: str) -> int | None:
        """The ifindex of ``port``'s veth host end (None: not found)."""
        p = self._ports.get(port)
        return None if p is None else p.ring.ifindex

    def uplink_ifindex(self, interface: str) -> int | None:
        ring = self._uplink_rings.get(interface)
        return None if ring is None else ring.ifindex

    def uplink_mtu(self, interface: str) -> int | None:
        ring = self._uplink_rings.get(interface)
        if ring is None:
            return None
        try:
            return ring.mtu
        except OSError:
            return None

    # ------------------------------------------------------------ abuse limits

    def set_port_limits(self, limits: PortLimits) -> None:
        """Meter ``limits`` in every VM port's socket filter from now on. Without the fast
        path the object is loaded for its meter filter alone; when it cannot be, the
        Python meter works alone (``metering_status`` says why)."""
        self._limits = limits
        if self.fast_path is None and self._meter_only is None and metered(limits):
            try:
                self._meter_only = FastPath.load(flow_capacity=1, generation_slots=1)
            except FastPathError as exc:
                self.metering_reason = " ".join(str(exc).split())
                log.warning("linux driver: abuse limits metered in Python only: %s",
                            self.metering_reason)  # fmt: skip
        self._post(self._meter_all)

    def _meters(self) -> MeterTable | None:
        fp = self.fast_path or self._meter_only
        return None if fp is None else fp.meters

    def _meter_all(self) -> None:
        for p in self._ports.values():
            self._meter_port(p)

    def _meter_port(self, p: _Port) -> None:
        """Write (or take back) the kernel meter of port ``p`` and put the program that
        meters it in place: the XDP meter (its socket filter then does not meter), else
        the socket filter (without the fast path: the meter filter)."""
        meters = self._meters()
        fp = self.fast_path or self._meter_only
        if meters is None or fp is None:
            return
        what = f"port {p.link.port}"
        try:
            if not metered(self._limits):
                meters.delete(p.ring.ifindex)
                self._unmeter_xdp(p)
                return
            meters.set(p.ring.ifindex, self._limits)
            if self._meter_xdp(p, fp):
                if self.fast_path is not None:
                    self.fast_path.attach_classify_socket(p.ring, what)
                else:
                    detach_socket(p.ring)
                return
            self._unmeter_xdp(p)
            if self._meter_only is not None:
                self._meter_only.attach_meter_socket(p.ring, what)
        except FastPathError as exc:
            self.counters["kernel_meter_failed"] += 1
            log.warning("linux driver: port %s: its limits stay in Python: %s", p.link.port, exc)

    def _meter_xdp(self, p: _Port, fp: FastPath) -> bool:
        """The XDP meter on ``p``'s veth host end (replacing one an earlier process left);
        whether it is there. With XDP the veth runs NAPI and may turn GRO on: GRO goes
        off again, so that the switch's ring and tc keep getting the VM's own frames."""
        ifname = p.link.ifname
        if not self._xdp_meter:
            return False
        if ifname in self._xdp_ports:
            return True
        try:
            fp.attach_port_xdp(ifname)
        except FastPathError as exc:
            self.counters["xdp_attach_failed"] += 1
            log.warning("linux driver: %s (metered by its socket filter instead)", exc)
            return False
        self._xdp_ports.add(ifname)
        _set_offloads(ifname, ("gro", "off"))
        return True

    def _unmeter_xdp(self, p: _Port) -> None:
        """No XDP meter on ``p``: also none an earlier process left (it would meter with
        that process's map); with the fast path its socket filter meters again."""
        ifname = p.link.ifname
        was = ifname in self._xdp_ports
        self._xdp_ports.discard(ifname)
        with contextlib.suppress(FastPathError):
            detach_xdp(ifname)
        if was and self.fast_path is not None:
            self.fast_path.attach_port_socket(p.ring, f"port {p.link.port}")

    def kernel_limit_drops(self) -> dict[str, dict[str, int]]:
        """Port -> ``vfp.limits`` reason -> frames its kernel meter dropped (ports
        that dropped nothing are left out)."""
        meters = self._meters()
        if meters is None:
            return {}
        ports: dict[str, int] = {}
        for _ in range(10):  # the loop thread may change the ports meanwhile: copy again
            try:
                ports = {port: p.ring.ifindex for port, p in self._ports.items()}
                break
            except RuntimeError:
                continue
        found = {}
        for port, ifindex in ports.items():
            try:
                drops = meters.drops(ifindex)
            except FastPathError:
                continue  # the fd closed under us: the driver is closing
            if drops:
                found[port] = drops
        return found

    def metering_status(self) -> dict[str, object]:
        """Whether the abuse limits are metered in the kernel too (``state`` on/off), by
        which filter, and why not."""
        if not metered(self._limits):
            return {"state": "off", "reason": "no rate limit set"}
        xdp = {"xdp_ports": len(self._xdp_ports)} if self._xdp_meter else {}
        if self.fast_path is not None:
            return {"state": "on", "filter": "hnv_sk_port (the fast path's)", **xdp}
        if self._meter_only is not None:
            return {"state": "on", "filter": "hnv_sk_meter (without the fast path)", **xdp}
        return {"state": "off", "reason": self.metering_reason}

    def fastpath_status(self) -> dict[str, object]:
        """``mode`` asked, ``state`` on/off, ``reason`` when off, ``adopted`` when on."""
        fp = self.fast_path
        if fp is None:
            return {"mode": self.fastpath_mode, "state": "off", "reason": self.fastpath_reason}
        return {"mode": self.fastpath_mode, "state": "on", "adopted": fp.adopted}

    def statistics(self) -> dict[str, int]:
        """The driver's counters plus the PA stack's and the rings' drops."""
        stats: dict[str, int] = {}
        rings: list[PacketRing] = []
        for _ in range(10):  # the loop thread may add a key meanwhile: copy again
            try:
                stats = dict(self.counters)
                stats.update({f"pa:{k}": v for k, v in self._pa.stack_counters.items()})
                rings = [*self._uplink_rings.values(), *(p.ring for p in self._ports.values())]
                break
            except RuntimeError:
                continue
        for counter in RING_COUNTERS:  # rx_truncated, the GSO frames segmented and dropped
            stats[counter] = sum(getattr(r, counter) for r in rings)
        stats["rx_dropped_ring"] = sum(r.update_drops() for r in rings)
        stats["tx_dropped_ring"] = sum(r.tx_dropped for r in rings)
        stats["tx_failed_flushes"] = sum(r.tx_failed_flushes for r in rings)
        return stats

    def ring_counters(self) -> RingCounters:
        """Each VM port's and each uplink's ring counters (vswitch.ring)."""
        ports = counters_of(lambda: {port: p.ring for port, p in self._ports.items()})
        return RingCounters(ports, counters_of(lambda: self._uplink_rings))

    def _uplink(self, name: str) -> PacketRing:
        """The ring of uplink ``name``, opened (in the driver's namespace) on first use."""
        with self._uplink_lock:
            ring = self._uplink_rings.get(name)
            if ring is not None:
                return ring
            if self._closed:
                raise VSwitchError("the Linux driver is closed")
            allowed = self._uplink_names
            if (allowed is not None and name not in allowed) or (
                allowed is None and not UPLINK_NAME.fullmatch(name)
            ):
                raise VSwitchError(f"uplink {name!r}: not an uplink of this driver")
            saved = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(self._netns)
                try:
                    ring = PacketRing(name, rx_frames=UPLINK_RX_FRAMES)
                except DeviceError as exc:
                    raise VSwitchError(f"uplink {exc}") from None
                finally:
                    _setns(saved)
            finally:
                os.close(saved)
            self._uplink_rings[name] = ring
            if self.fast_path is not None:
                try:
                    self.fast_path.attach_uplink_socket(ring, f"uplink {name}")
                except FastPathError as exc:
                    self.counters["fastpath_attach_failed"] += 1
                    log.warning("linux driver: %s", exc)
            if self._thread is not None:  # the loop runs: it polls the new ring from now on
                self._handlers[ring.fileno()] = self._reader_of_uplink(ring)
                self._poller.register(ring.fileno(), select.EPOLLIN)
                self._post(lambda: self._hide(name))
                self._post(self._schedule)
            return ring

    # ------------------------------------------------------------ the loop

    def _post(self, work: Callable[[], None]) -> None:
        self._posted.append(work)
        if self._thread is not None:
            os.eventfd_write(self._wake, 1)

    def _run(self) -> None:
        try:
            _setns(self._netns)
        except OSError as exc:
            self._failed = exc
            self._ready.set()
            return
        self._loop_ident = threading.get_ident()
        poller = self._poller
        handlers = self._handlers
        handlers[self._wake] = self._on_wake
        handlers[self._watcher.fileno()] = self._on_link_events
        for ring in self._uplink_rings.values():
            handlers[ring.fileno()] = self._reader_of_uplink(ring)
        for fd in handlers:
            poller.register(fd, select.EPOLLIN)
        for name in list(self._uplink_rings):
            self._guard(functools.partial(self._hide, name))
        self._guard(self._rescan)
        self._guard(self._schedule)  # a configured link is scheduled before any port asks
        self._on_wake()  # work posted before the thread ran (PAs, neighbours)
        self._flush()
        self._ready.set()
        next_tick = next_scan = 0.0
        try:
            while not self._stopping:
                ready = poller.poll(self._poll_timeout())
                if ready:
                    self._round(ready)
                now = time.monotonic()
                self._resume(now)
                if now >= next_tick:
                    next_tick = now + TICK_SECONDS
                    self._guard(functools.partial(self._pa.tick, now))
                    self._flush()
                if now >= next_scan:
                    next_scan = now + RESCAN_SECONDS
                    self._guard(self._rescan)
        finally:
            if self.fast_path is None:  # the fast path's programs outlive the process
                for name in sorted(self._hidden):
                    self._show(name)
            self._loop_ident = 0

    def _round(self, ready: list[tuple[int, int]]) -> None:
        """One polling round: each ready socket's handler and its sends, then the sink's
        deferred work (``round_done``)."""
        handlers = self._handlers
        for fd, _events in ready:
            handler = handlers.get(fd)
            if handler is not None:
                self._guard(handler)
            self._flush()
        if self._sink is not None:
            self._guard(self._sink.round_done)

    def _hide(self, ifname: str, port: bool = False) -> None:
        """Keep the host's IP stack off ``ifname``: the fast path's tc program (uplink or
        VM ``port``), else the drop program (a warning, not an error, if it fails)."""
        fp = self.fast_path
        if ifname in self._hidden or (fp is None and not self._isolate_kernel):
            return
        if fp is not None:
            try:
                (fp.attach_port if port else fp.attach_uplink)(ifname)
            except FastPathError as exc:
                self.counters["fastpath_attach_failed"] += 1
                log.warning("linux driver: %s (the drop program instead)", exc)
            else:
                self._hidden.add(ifname)
                return
        try:
            hide_from_kernel(ifname)
        except OSError as exc:
            self.counters["kernel_isolation_failed"] += 1
            log.warning("linux driver: the host kernel still sees %s: %s", ifname, exc)
            return
        self._hidden.add(ifname)

    def _show(self, ifname: str) -> None:
        self._hidden.discard(ifname)
        try:
            show_to_kernel(ifname)
        except OSError as exc:
            log.debug("linux driver: %s keeps its ingress filter: %s", ifname, exc)

    def _guard(self, work: Callable[[], None]) -> None:
        """Run ``work``; an exception is logged and counted, never ends the loop."""
        try:
            work()
        except Exception:
            self.counters["loop_errors"] += 1
            errors = self.counters["loop_errors"]
            if errors <= _LOGGED_ERRORS or errors % 1000 == 0:  # never flood the log
                log.exception("linux driver: error in the polling loop (%d so far)", errors)

    def _flush(self) -> None:
        if self._dirty:
            for ring in self._dirty:
                ring.flush()
            self._dirty.clear()

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._wake)
        posted = self._posted
        while posted:
            self._guard(posted.popleft())

    def _reader_of_uplink(self, ring: PacketRing) -> Callable[[], None]:
        recv = ring.recv_batch
        receive = self._pa.receive

        def read() -> None:
            frames = recv(BATCH)
            if frames:
                receive(ring, frames)

        return read

    # ------------------------------------------------------------ VM ports

    def _reader_of_port(self, p: _Port) -> Callable[[], None]:
        recv = p.ring.recv_batch
        port = p.link.port
        counters = self.counters
        fd = p.ring.fileno()

        def read() -> None:
            frames = recv(BATCH)
            if frames and self._sink is not None:
                counters["rx_port_frames"] += len(frames)
                pause = self._sink.from_port(port, frames)
                if pause > 0:
                    self._pause(fd, pause)

        return read

    def _pause(self, fd: int, seconds: float) -> None:
        """Leave ring ``fd`` unread for ``seconds`` (its port is over its limits)."""
        if fd in self._paused or fd not in self._port_fds:
            return
        self._poller.modify(fd, 0)
        self._paused[fd] = time.monotonic() + seconds
        self.counters["port_pauses"] += 1

    def _resume(self, now: float) -> None:
        """Poll again the paused rings whose pause is over."""
        for fd, until in list(self._paused.items()):
            if until <= now:
                del self._paused[fd]
                if fd in self._port_fds:
                    self._poller.modify(fd, select.EPOLLIN)

    def _poll_timeout(self) -> float:
        if not self._paused:
            return TICK_SECONDS
        soonest = min(self._paused.values()) - time.monotonic()
        return min(TICK_SECONDS, max(0.0, soonest))

    def _on_link_events(self) -> None:
        events = self._watcher.events()
        for event in events:  # an uplink's carrier: team failover at once, not at a rescan
            if event.ifname in self._uplink_rings and not event.deleted:
                self._pa.set_carrier(event.ifname, event.carrier)
        if self._watcher.overflowed or any(self._changes_ports(e) for e in events):
            self._rescan()

    def _changes_ports(self, event: LinkInfo) -> bool:
        if event.ifname in self._uplink_rings and event.alias is None:
            return False  # an uplink's state, not a port
        known = self._port_fds_by_index().get(event.index)
        if event.deleted:
            return known is not None
        return known is None or known.link.ifname != event.ifname or event.alias is not None

    def _port_fds_by_index(self) -> dict[int, _Port]:
        return {p.link.index: p for p in self._ports.values()}

    def _rescan(self) -> None:
        links = self._watcher.dump()
        for info in links:
            if info.ifname in self._uplink_rings:
                self._pa.set_carrier(info.ifname, info.carrier)
        found, problems = port_links(links)
        for problem in sorted(set(problems) - self._problems):  # each new one once
            self.counters["port_alias_problems"] += 1
            log.warning("linux driver: %s", problem)
        self._problems = set(problems)
        for port, p in list(self._ports.items()):
            if found.get(port) != p.link:
                self._remove_port(port)
        for port, link in found.items():
            if port not in self._ports:
                self._add_port(link)

    def _add_port(self, link: PortLink) -> None:
        fp = self.fast_path
        try:
            _prepare_port(link.ifname, PORT_OFFLOADS_OFF if fp is None else PORT_OFFLOADS_ON)
            ring = PacketRing(link.ifname)
        except (OSError, subprocess.SubprocessError) as exc:
            self.counters["port_setup_failed"] += 1
            log.warning("linux driver: port %s on %s: %s", link.port, link.ifname, exc)
            return
        if fp is not None:
            try:
                fp.attach_port_socket(ring, f"port {link.port} on {link.ifname}")
            except FastPathError as exc:
                self.counters["fastpath_attach_failed"] += 1
                log.warning("linux driver: %s", exc)
        self._hide(link.ifname, port=True)
        p = _Port(link, ring)
        self._meter_port(p)
        self._ports[link.port] = p
        fd = ring.fileno()
        self._port_fds[fd] = p
        self._handlers[fd] = self._reader_of_port(p)
        self._poller.register(fd, select.EPOLLIN)
        if link.port in self._qos:
            self._shape(p)
        elif self._shaped:  # a class of its own beside the shaped ports (vswitch.htb)
            self._schedule()
        if self._sink is not None:
            self._sink.port_added(link.port, link.mac)

    def _remove_port(self, port: str) -> None:
        p = self._ports.pop(port)
        meters = self._meters()
        if meters is not None:
            with contextlib.suppress(FastPathError, OSError):
                meters.delete(p.ring.ifindex)
        if p.link.ifname in self._xdp_ports:
            self._xdp_ports.discard(p.link.ifname)
            with contextlib.suppress(FastPathError):
                detach_xdp(p.link.ifname)
        self._unshape_uplinks(port)
        if p.link.ifname in self._hidden:
            self._show(p.link.ifname)
        fd = p.ring.fileno()
        self._port_fds.pop(fd, None)
        self._paused.pop(fd, None)
        self._handlers.pop(fd, None)
        with contextlib.suppress(OSError):
            self._poller.unregister(fd)
        self._dirty.discard(p.ring)
        p.ring.close()
        if self._sink is not None:
            self._sink.port_removed(port)

    # ------------------------------------------------------------ teardown

    def _close_all(self) -> None:
        self._closed = True
        for p in list(self._ports.values()):
            p.ring.close()
        self._ports.clear()
        with self._uplink_lock:
            for ring in self._uplink_rings.values():
                ring.close()
            self._uplink_rings.clear()
        self._watcher.close()
        self._poller.close()
        for fd in ("_wake", "_netns"):
            value = getattr(self, fd, -1)
            if value >= 0:
                with contextlib.suppress(OSError):
                    os.close(value)
                setattr(self, fd, -1)


def _prepare_port(ifname: str, offloads: Sequence[str]) -> None:
    """The host end of a VM port: its offloads (off without the fast path: whole frames,
    finished checksums; on with it: the kernel forwards GSO frames as they are), up."""
    _set_offloads(ifname, offloads)
    subprocess.run(["ip", "link", "set", "dev", ifname, "up"], check=True, capture_output=True,
                   timeout=10)  # fmt: skip


def _set_offloads(ifname: str, offloads: Sequence[str]) -> None:
    """``ethtool -K ifname offloads`` (a warning when it fails)."""
    try:
        done = subprocess.run(["ethtool", "-K", ifname, *offloads],
                              check=False, capture_output=True, text=True, timeout=10)  # fmt: skip
    except FileNotFoundError:
        log.warning("linux driver: ethtool is not installed; offloads stay on %s", ifname)
    else:
        if done.returncode != 0:
            log.warning("linux driver: ethtool -K %s: %s", ifname, done.stderr.strip())
