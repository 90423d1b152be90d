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
every other port. Below that the kernel meters the same limits (``set_port_limits``,
``vswitch.linux_meter``): SYNs, broadcasts and ARP over their rates never reach the
ring (``kernel_limit_drops``).

With the kernel fast path (``fastpath="on"`` or ``"auto"``, docs/fastpath.md) the
driver opens it in its namespace (adopting the one an earlier process left attached
to the uplinks), attaches its tc programs where the drop program of
``vswitch.ingress`` would go and its socket filters to every ring, and keeps the VM
ports' offloads on; ``fast_path`` is then the loaded ``FastPath`` the switch writes
its entries to. The programs stay attached when the driver closes: established flows
keep flowing while the process is gone, and the next one adopts them.

The driver's parts, each a collaborator it owns: ``vswitch.linux_loop`` (the polling
loop: rounds, posted work, paused rings), ``vswitch.linux_uplinks`` (the uplink rings,
opened in the driver's namespace), ``vswitch.linux_ports`` (VM ports found and set
up, links hidden from the host's IP stack), ``vswitch.linux_qos`` (caps shaped,
uplinks scheduled), ``vswitch.linux_meter`` (the kernel meter of the abuse limits),
``vswitch.linux_pa`` (the PA side). This module is the driver: it wires them, runs
the loop's thread and reads the rings (the per-frame readers are here).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence

from openhnv.packet.addresses import mac_to_str
from openhnv.vfp.emits import Transmit
from openhnv.vfp.limits import PortLimits
from openhnv.vfp.qos import QosSettings
from openhnv.vswitch.driver import FrameSink, PaConfig, RingCounters
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import FastPath
from openhnv.vswitch.linux_loop import PollLoop
from openhnv.vswitch.linux_meter import COPY_ATTEMPTS, PortMetering
from openhnv.vswitch.linux_pa import PaSide
from openhnv.vswitch.linux_ports import KernelHiding, Port, PortScan, open_port
from openhnv.vswitch.linux_qos import PortShaping
from openhnv.vswitch.linux_uplinks import Uplinks, enter
from openhnv.vswitch.portlinks import LinkWatcher, PortLink, port_links, uplink_names
from openhnv.vswitch.ring import RING_COUNTERS, PacketRing, counters_of

BATCH = 256
READY_SECONDS = 10.0
FASTPATH_MODES = ("auto", "on", "off")

log = logging.getLogger(__name__)


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
        self._uplinks = Uplinks(uplinks)
        self._uplink_rings = self._uplinks.rings
        self._watcher = LinkWatcher()
        self._sink: FrameSink | None = None
        self._ports: dict[str, Port] = {}
        self._port_fds: dict[int, Port] = {}
        self._scan = PortScan(self.counters)
        self._loop = PollLoop(self.counters, self._port_fds)
        self._post = self._loop.post
        self._dirty = self._loop.dirty
        self._thread: threading.Thread | None = None
        self._loop_ident = 0
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._pa = PaSide(self.counters, self._dirty)
        names = self._uplinks.names
        try:
            for name in names if names is not None else uplink_names(self._watcher.dump()):
                self._uplink(name)
            if fastpath != "off":
                self._open_fast_path(fastpath)
        except VSwitchError:
            self._close_all()
            raise
        fp = self.fast_path  # decided: the parts that depend on it
        self._hiding = KernelHiding(fp, isolate_kernel, self.counters)
        self._metering = PortMetering(fp, self.counters, xdp=xdp_meter)
        self._shaping = PortShaping(
            self._ports,
            self._uplink_rings,
            self.counters,
            lambda: enter(self._uplinks.netns),
            uplink_mbps=uplink_mbps,
            flat_classes=fp is not None,
        )
        self.scheduler = self._shaping.scheduler  # the uplinks' htb trees (vswitch.htb)

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
        if self._thread is not None or self._uplinks.closed:
            raise VSwitchError("the Linux driver is already open or was closed")
        self._sink = sink
        self._pa.sink = sink
        self._loop.round_done = sink.round_done
        self._loop.stopping = False
        self._thread = threading.Thread(target=self._run, name="hnv-linux-driver", daemon=True)
        self._loop.running = True
        self._thread.start()
        if not self._ready.wait(READY_SECONDS) or self._failed is not None:
            self.close()
            raise VSwitchError(f"the Linux driver's thread did not start: {self._failed}")

    def close(self) -> None:
        """Stop the thread and close every socket (idempotent; a closed driver stays
        closed). The fast path's programs stay attached and keep forwarding."""
        thread = self._thread
        if thread is not None:
            self._loop.stop()
            thread.join(10.0)
            self._thread = None
            self._loop.running = False
        self._shaping.close()
        self._close_all()
        if self.fast_path is not None:
            self.fast_path.close()
        self._metering.close()

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
        """Shape ``port``'s caps in the kernel (vswitch.linux_qos): inbound always,
        outbound for what the fast path encapsulates; kept for a port that appears later."""
        if threading.get_ident() != self._loop_ident:
            self._post(lambda: self.set_port_qos(port, settings))
            return
        self._shaping.set(port, settings)

    def qos_drops(self) -> dict[str, dict[str, int]]:
        """Port -> {``qos_inbound``, ``qos_outbound``: frames the kernel dropped for its
        caps} for the shaped ports."""
        return self._shaping.drops()

    def qos_status(self) -> dict[str, object]:
        """The uplinks' scheduling and each port's class (vswitch.linux_qos)."""
        return self._shaping.status()

    def port_ifindex(self, port: str) -> int | None:
        """The ifindex of ``port``'s veth host end (None: not found)."""
        p = self._ports.get(port)
        return None if p is None else p.ring.ifindex

    def uplink_ifindex(self, interface: str) -> int | None:
        return self._uplinks.ifindex(interface)

    def uplink_mtu(self, interface: str) -> int | None:
        return self._uplinks.mtu(interface)

    # ------------------------------------------------------------ abuse limits

    def set_port_limits(self, limits: PortLimits) -> None:
        """Meter ``limits`` in every VM port's kernel meter from now on
        (vswitch.linux_meter; ``metering_status`` says when it cannot)."""
        self._metering.set_limits(limits)
        self._post(self._meter_all)

    def _meter_all(self) -> None:
        for p in self._ports.values():
            self._metering.meter(p)

    def kernel_limit_drops(self) -> dict[str, dict[str, int]]:
        """Port -> ``vfp.limits`` reason -> frames its kernel meter dropped (ports
        that dropped nothing are left out)."""
        return self._metering.drops(self._ports)

    def metering_status(self) -> dict[str, object]:
        """Whether the abuse limits are metered in the kernel too (``state`` on/off), by
        which filter, and why not."""
        return self._metering.status()

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
        for _ in range(COPY_ATTEMPTS):  # the loop thread may add a key meanwhile
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
        return self._uplinks.open(name, self._uplink_opened)

    def _uplink_opened(self, name: str, ring: PacketRing) -> None:
        if self.fast_path is not None:
            try:
                self.fast_path.attach_uplink_socket(ring, f"uplink {name}")
            except FastPathError as exc:
                self.counters["fastpath_attach_failed"] += 1
                log.warning("linux driver: %s", exc)
        if self._thread is not None:  # the loop runs: it polls the new ring from now on
            self._loop.watch(ring.fileno(), self._reader_of_uplink(ring))
            self._post(lambda: self._hiding.hide(name))
            self._post(self._shaping.schedule)

    # ------------------------------------------------------------ the loop

    def _run(self) -> None:
        try:
            enter(self._uplinks.netns)
        except OSError as exc:
            self._failed = exc
            self._ready.set()
            return
        self._loop_ident = threading.get_ident()
        loop = self._loop
        loop.watch(self._watcher.fileno(), self._on_link_events)
        for ring in self._uplink_rings.values():
            loop.watch(ring.fileno(), self._reader_of_uplink(ring))
        for name in list(self._uplink_rings):
            loop.guard(functools.partial(self._hiding.hide, name))
        loop.guard(self._rescan)
        loop.guard(self._shaping.schedule)  # a configured link is scheduled before any port
        loop.start()  # work posted before the thread ran (PAs, neighbours)
        self._ready.set()
        try:
            loop.serve(self._pa.tick, self._rescan)
        finally:
            if self.fast_path is None:  # the fast path's programs outlive the process
                for name in sorted(self._hiding.hidden):
                    self._hiding.show(name)
            self._loop_ident = 0

    def _reader_of_uplink(self, ring: PacketRing) -> Callable[[], None]:
        recv = ring.recv_batch
        receive = self._pa.receive

        def read() -> None:
            frames = recv(BATCH)
            if frames:
                receive(ring, frames)

        return read

    # ------------------------------------------------------------ VM ports

    def _reader_of_port(self, p: Port) -> Callable[[], None]:
        recv = p.ring.recv_batch
        port = p.link.port
        counters = self.counters
        fd = p.ring.fileno()
        pause_ring = self._loop.pause

        def read() -> None:
            frames = recv(BATCH)
            if frames and self._sink is not None:
                counters["rx_port_frames"] += len(frames)
                pause = self._sink.from_port(port, frames)
                if pause > 0:
                    pause_ring(fd, pause)

        return read

    def _on_link_events(self) -> None:
        events = self._watcher.events()
        for event in events:  # an uplink's carrier: team failover at once, not at a rescan
            if event.ifname in self._uplink_rings and not event.deleted:
                self._pa.set_carrier(event.ifname, event.carrier)
        touches = self._scan.touches_ports
        if self._watcher.overflowed or any(
            touches(e, self._uplink_rings, self._ports) for e in events
        ):
            self._rescan()

    def _rescan(self) -> None:
        links = self._watcher.dump()
        for info in links:
            if info.ifname in self._uplink_rings:
                self._pa.set_carrier(info.ifname, info.carrier)
        gone, came = self._scan.changes(links, self._ports)
        for port in gone:
            self._remove_port(port)
        for link in came:
            self._add_port(link)

    def _add_port(self, link: PortLink) -> None:
        """Set up, hide, meter, poll and shape a VM port found (vswitch.linux_ports);
        then the sink hears of it."""
        p = open_port(link, self.fast_path, self.counters)
        if p is None:
            return
        self._hiding.hide(link.ifname, port=True)
        self._metering.meter(p)
        self._ports[link.port] = p
        fd = p.ring.fileno()
        self._port_fds[fd] = p
        self._loop.watch(fd, self._reader_of_port(p))
        self._shaping.port_added(p)
        if self._sink is not None:
            self._sink.port_added(link.port, link.mac)

    def _remove_port(self, port: str) -> None:
        p = self._ports.pop(port)
        self._metering.forget(p)
        self._shaping.port_removed(port)
        if p.link.ifname in self._hiding.hidden:
            self._hiding.show(p.link.ifname)
        fd = p.ring.fileno()
        self._port_fds.pop(fd, None)
        self._loop.unwatch(fd)
        self._dirty.discard(p.ring)
        p.ring.close()
        if self._sink is not None:
            self._sink.port_removed(port)

    # ------------------------------------------------------------ teardown

    def _close_all(self) -> None:
        self._uplinks.closed = True
        for p in list(self._ports.values()):
            p.ring.close()
        self._ports.clear()
        self._uplinks.close()
        self._watcher.close()
        self._loop.close()
