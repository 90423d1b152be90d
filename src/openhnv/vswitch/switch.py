"""One host's switch: the VFP engine, its driver and the dispatch of what the engine emits.

``HostSwitch`` is the ``FrameSink`` of its driver. Frames from VM ports and from the
uplink go through ``engine.process_batch``; ``Deliver`` goes to ``driver.send_to_port``,
``Transmit`` to ``driver.transmit``, ``Punt`` to the ``PortListener`` (the host agent),
``Drop`` is already counted by the engine. The PA side of the engine belongs here:
``set_provider_addresses`` becomes ``AddProviderAddress`` / ``RemoveProviderAddress`` and
the driver's resolved next hops become ``SetPaNeighbor`` and the PAs' ``gateway_mac``;
everything else is programmed by the agent through ``apply``.

One lock serialises programming and packet processing. Emits are carried out after the
lock is released (driver and listener may take their own locks without a lock-order
cycle); a listener may call back into the switch (``send_to_port``, ``apply``).
"""

from __future__ import annotations

import collections.abc
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from openhnv.vfp import commands as c
from openhnv.vfp.emits import UPLINK, Deliver, Emit, Punt, Transmit
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.limits import PortLimits
from openhnv.vfp.migration import ConnectionState
from openhnv.vfp.policy import normalize_mac
from openhnv.vfp.qos import NO_QOS, QosSettings
from openhnv.vswitch.driver import Driver, PaConfig, QosShaping
from openhnv.vswitch.errors import VSwitchError
from openhnv.vswitch.kernel import KernelSide
from openhnv.vswitch.offload import KernelDriver, KernelOffload
from openhnv.vswitch.switch_kernel import ADOPTION_GRACE, KernelViews
from openhnv.vswitch.switch_limits import SwitchLimits, log_moved
from openhnv.vswitch.switch_pas import ProviderAddresses, mapping_keys
from openhnv.vswitch.team import Placement

__all__ = ["HostSwitch", "PaConfig", "PortListener"]

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_EXPIRE_INTERVAL = 10.0
_PA_COMMANDS = (c.AddProviderAddress, c.RemoveProviderAddress, c.SetPaNeighbor)


class PortListener(Protocol):
    """What the switch tells the host agent."""

    def port_added(self, port: str, mac: str) -> None: ...  # port = NIC instanceId
    def port_removed(self, port: str) -> None: ...
    def punted(self, port: str, frame: bytes, reason: str) -> None: ...  # e.g. ARP
    def team_changed(self) -> None: ...  # a member's carrier or a PA's member (team_status)


class HostSwitch:
    """The engine of one host plus its driver; thread-safe."""

    def __init__(
        self,
        engine: VfpEngine,
        driver: Driver,
        *,
        expire_interval: float | None = DEFAULT_EXPIRE_INTERVAL,
    ) -> None:
        self.engine = engine
        self.driver = driver
        self.expire_interval = expire_interval
        self.counters: Counter[str] = Counter()
        self._lock = threading.RLock()
        self._listener: PortListener | None = None
        self._ports: dict[str, str] = {}
        self._pa = ProviderAddresses(engine.state.mappings.all())  # the engine's PA side
        self._access_vlans: frozenset[int] = frozenset()
        self._shaping = driver if isinstance(driver, QosShaping) else None
        self._qos_sent: dict[str, QosSettings] = {}  # port -> the caps the driver shapes
        if self._shaping is not None:
            engine.state.police_inbound = False  # the driver's qdisc shapes them
        self._kernel: KernelSide | None = None
        if isinstance(driver, KernelDriver) and driver.fast_path is not None:
            kernel = KernelOffload(driver.fast_path, driver, lambda: self._pa.placed)
            self._kernel = KernelSide(engine, kernel)
        self._limits = SwitchLimits(engine, driver, self._lock)
        self._stopping = threading.Event()
        self._views = KernelViews(engine, driver, self._kernel, self._shaping, self._lock,
                                  self._stopping)  # fmt: skip
        self._expirer: threading.Thread | None = None
        self._started = False

    # -- life cycle --------------------------------------------------------------------

    def set_listener(self, listener: PortListener) -> None:
        """Tell ``listener`` about ports from now on, and about the ports known already."""
        with self._lock:
            self._listener = listener
            known = dict(self._ports)
        for port, mac in known.items():
            listener.port_added(port, mac)

    def start(self) -> None:
        """Open the driver: ports are reported and frames start flowing."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stopping.clear()
        self.driver.open(self)
        if self.expire_interval is not None:
            self._expirer = threading.Thread(
                target=self._expire_loop, name="hnv-vswitch-expire", daemon=True
            )
            self._expirer.start()

    def stop(self) -> None:
        """Close the driver and stop expiring flows (idempotent)."""
        with self._lock:
            if not self._started:
                return
            self._started = False
        self._stopping.set()
        if self._expirer is not None:
            self._expirer.join()
            self._expirer = None
        self.driver.close()

    def _expire_loop(self) -> None:
        interval = self.expire_interval or DEFAULT_EXPIRE_INTERVAL
        while not self._stopping.wait(interval):
            self.expire()

    def expire(self, now: float | None = None) -> int:
        """Retire idle flows (the engine's idle timeout); returns how many. With a kernel
        fast path the kernel's last-used times count first (read outside the lock)."""
        kernel = self._kernel
        stats = kernel.read_stats() if kernel is not None else None
        with self._lock:
            if now is None:
                now = self.engine.clock()
            if kernel is not None and stats is not None:
                kernel.after_expiry_stats(stats, now)
            retired = self.engine.expire(now)
            if kernel is not None:
                kernel.apply_pending()
            moved = self._limits.since_last()
        log_moved(moved)  # at most one line per port and expiry pass
        return retired

    def set_limits(self, limits: PortLimits) -> None:
        """The abuse limits of every VM port from now on (vswitch.switch_limits)."""
        self._limits.set(limits)

    def kernel_limit_drops(self) -> dict[str, dict[str, int]]:
        """Port -> reason -> frames the driver dropped over the limits (its filters)."""
        return self._limits.kernel_drops()

    def limit_status(self) -> dict[str, object]:
        """The abuse limits (``vfp.limits``) and the drops they caused, in total and by
        port: ``drops``/``ports`` by the engine's meter, ``kernel`` by the driver's."""
        return self._limits.status()

    # -- control side ------------------------------------------------------------------

    def apply(self, commands: Iterable[c.Command]) -> None:
        """Program the engine (ports, layers, groups, rules, mappings), in order.

        Raises ``PolicyError`` at the first command that cannot be applied (those before
        it stay applied). PA commands are refused: the PAs belong to the switch.
        """
        batch = list(commands)
        for command in batch:
            if isinstance(command, _PA_COMMANDS):
                raise PolicyError(
                    "command", command, "PAs and their neighbours are set by the vswitch"
                    " (HostSwitch.set_provider_addresses and the driver)"
                )  # fmt: skip
        failed: PolicyError | None = None
        with self._lock:
            self._offload_pending()
            keys = mapping_keys(batch)
            before = [self.engine.state.mappings.by_ip(*k) for k in keys]
            try:
                self.engine.programming.apply_all(batch)
            except PolicyError as exc:
                failed = exc
            watch = None
            after = [self.engine.state.mappings.by_ip(*k) for k in keys]
            if keys:
                self._pa.count(before, after)
                watch = self._pa.watch_change()
            vlans = self.engine.state.access_vlans()
            access = None if vlans == self._access_vlans else vlans
            self._access_vlans = vlans
            if self._kernel is not None:
                self._kernel.after_commands(batch, [*before, *after])
        if watch is not None:
            self.driver.watch_neighbors(watch)
        if access is not None:
            self.driver.set_access_vlans(access)
        self._shape_changed(batch)
        if failed is not None:
            raise failed

    def _shape_changed(self, batch: Sequence[c.Command]) -> None:
        """Hand the driver the caps of the ports whose caps the batch changed."""
        shaping = self._shaping
        if shaping is None:
            return
        for command in batch:
            if isinstance(command, c.AddPort | c.RemovePort):
                port = self.engine.state.ports.get(command.name)
                wanted = NO_QOS if port is None else port.qos
                if self._qos_sent.get(command.name, NO_QOS) != wanted:
                    shaping.set_port_qos(command.name, wanted)
                    self._qos_sent[command.name] = wanted

    def set_provider_addresses(self, pas: Sequence[PaConfig]) -> None:
        """This host's PAs (the whole set); the engine and the driver follow."""
        wanted: dict[str, PaConfig] = {}
        for pa in pas:
            if not isinstance(pa, PaConfig):
                raise VSwitchError(f"provider address {pa!r} is not a PaConfig")
            if pa.address in wanted:
                raise VSwitchError(f"provider address {pa.address} is given twice")
            wanted[pa.address] = pa
        macs = {a: normalize_mac(self.driver.uplink_mac(pa.interface), "mac")
                for a, pa in wanted.items()}  # fmt: skip
        mtus = {a: self._uplink_mtu(pa.interface) for a, pa in wanted.items()}
        with self._lock:
            before = (self._pa.pas, self._pa.macs)
            self._pa.mtus = mtus
            self._program_pas(wanted, macs)
        try:
            self.driver.set_provider_addresses(list(wanted.values()))
        except Exception:  # the driver refused them: the engine goes back to the old PAs
            with self._lock:
                self._program_pas(*before)
            raise
        with self._lock:
            self._pa.watched = frozenset()  # the driver starts afresh: tell it again
            watch = self._pa.watch_change()
        self.driver.watch_neighbors(watch or [])

    def _uplink_mtu(self, interface: str) -> int | None:
        """The uplink's MTU when the driver can tell (a warning when it is too low)."""
        mtu = self.driver.uplink_mtu(interface) if isinstance(self.driver, KernelDriver) else None
        if mtu is not None:
            self._pa.check_uplink_mtu(interface, mtu)
        return mtu

    def overlay_mtu(self) -> int:
        """The MTU a VM's NIC should have (DHCP option 26): ``VM_MTU``, or less when an
        uplink cannot carry that much once encapsulated (and tagged)."""
        with self._lock:
            return self._pa.overlay_mtu()

    def provider_addresses(self) -> list[PaConfig]:
        with self._lock:
            return list(self._pa.pas.values())

    def send_to_port(self, port: str, frame: bytes) -> None:
        """Send ``frame`` to VM port ``port`` as is (e.g. the agent's ARP reply)."""
        with self._lock:
            if port not in self._ports:
                raise VSwitchError(f"port {port!r}: the driver reported no such port")
            self.counters["sent_to_port"] += 1
        self.driver.send_to_port(port, (frame,))

    def inspect(self, fn: Callable[[VfpEngine], T]) -> T:
        """``fn(engine)`` under the lock (listings, traces, counters)."""
        with self._lock:
            return fn(self.engine)

    def ports(self) -> dict[str, str]:
        """port -> MAC of the VM ports the driver reported."""
        with self._lock:
            return dict(self._ports)

    def neighbors(self) -> dict[str, str]:
        """The resolved next hops (remote PAs and gateways) -> MAC."""
        with self._lock:
            return dict(self._pa.next_hops)

    # -- the kernel fast path ----------------------------------------------------------

    def revalidate_adopted(self, grace: float = ADOPTION_GRACE) -> dict[str, int]:
        """Decide again what a previous process left in an adopted fast path, once the
        engine is programmed and the driver reports its ports (``KernelViews``)."""
        return self._views.revalidate_adopted(self.ports, grace)

    def fastpath_status(self) -> dict[str, object]:
        """Whether the kernel fast path runs, why not, and what it holds."""
        return self._views.fastpath_status()

    def kernel_flows(self, port: str, fresh: bool = False) -> dict[str, tuple[int, int]]:
        """Flow key (hex) -> (packets, bytes) the kernel counted, of ``port``'s flows."""
        return self._views.flows(port, fresh)

    def kernel_qos_drops(self) -> dict[str, dict[str, int]]:
        """Port -> QoS direction -> frames the kernel dropped for the port's caps."""
        return self._views.qos_drops()

    def qos_status(self) -> dict[str, object]:
        """The driver's uplink scheduling and the ports' classes (vswitch.htb; {}: none)."""
        return self._views.qos_status()

    def kernel_port_totals(self, fresh: bool = False) -> dict[str, tuple[int, int]]:
        """Port -> (packets, bytes) the kernel counted for its offloaded flows."""
        return self._views.port_totals(fresh)

    # -- FrameSink: called by the driver -----------------------------------------------

    def from_port(self, port: str, frames: list[bytes]) -> float:
        with self._lock:
            if port not in self.engine.state.ports:  # reported but not programmed (yet)
                self.counters["drop:unprogrammed_port"] += len(frames)
                return 0.0
            emits = self.engine.process_batch(port, frames)
            pause = self.engine.pause(port)
        self._dispatch(emits, port)
        return pause

    def from_uplink(self, frames: list[bytes]) -> None:
        with self._lock:
            emits = self.engine.process_batch(UPLINK, frames)
        self._dispatch(emits)

    def round_done(self) -> None:
        """The driver sent what this round's frames produced: when the engine's notes are
        due (``Offloader.due``: a connection's frame came after its pairing, or an
        offered flow changed), they go down to the kernel now, off the path of the frames
        that made them due."""
        kernel = self._kernel
        offload = self.engine.offload
        if kernel is None or not offload.may_be_due():  # this thread's notes
            return
        with self._lock:
            if not offload.due():
                return
        # the frames just sent may have woken a VM: let it run before this thread
        # spends its CPU on the kernel writes
        os.sched_yield()
        with self._lock:
            kernel.apply_pending()

    def port_added(self, port: str, mac: str) -> None:
        mac = normalize_mac(mac, "mac")
        with self._lock:
            if self._ports.get(port) == mac:
                return
            self._ports[port] = mac
            if self._kernel is not None:  # its veth is known now: its QoS bucket
                self._kernel.sync_qos()
            listener = self._listener
            if self._kernel is not None:
                self._kernel.after_port_attached(port)
        if listener is not None:
            listener.port_added(port, mac)

    def port_removed(self, port: str) -> None:
        with self._lock:
            if self._ports.pop(port, None) is None:
                return
            listener = self._listener
        if listener is not None:
            listener.port_removed(port)

    def connection_states(self, port: str) -> list[ConnectionState]:
        """The connections VM ``port`` tracks (what a live migration carries away)."""
        with self._lock:
            return self.engine.connection_states(port)

    def adopt_connections(self, port: str, states: Sequence[ConnectionState]) -> int:
        """Decide ``states`` (another host's connections of VM ``port``) at ``port`` as
        the connections it tracks (``VfpEngine.adopt_connections``); how many it took."""
        with self._lock:
            self._offload_pending()
            adopted = self.engine.adopt_connections(port, states)
            if self._kernel is not None:
                self._kernel.apply_pending()
        return adopted

    def pa_neighbor(self, address: str, mac: str | None) -> None:
        """A next hop resolved (``mac``) or lost (None): an on-link remote PA or a gateway."""
        if mac is not None:
            mac = normalize_mac(mac, "mac")
        with self._lock:
            cmds = self._pa.neighbor(address, mac, self.engine.state.pa_neighbors)
            if cmds is None:
                return
            if cmds:
                self._offload_pending()
            self.engine.programming.apply_all(cmds)
            if cmds and self._kernel is not None:
                self._kernel.after_spaces()

    def team_changed(
        self,
        placement: collections.abc.Mapping[str, Placement],
        carrier: collections.abc.Mapping[str, bool],
    ) -> None:
        """The driver moved PAs between team members (or a member's carrier changed): the
        kernel entries that send from a moved PA are rewritten to leave by its new member
        before this returns (the engine's decisions do not change: the PA keeps its
        address and MAC)."""
        with self._lock:
            changed, moved = self._pa.move(placement, carrier)
            if moved:
                self.counters["pa_moves"] += len(moved)
                if self._kernel is not None:
                    self._kernel.rehome(moved)
            listener = self._listener
        if changed and listener is not None:  # the agent reports it to the controller
            listener.team_changed()

    def team_status(self) -> dict[str, object]:
        """Each team member's carrier and where each PA lives (``hnv host status``)."""
        with self._lock:
            return self._pa.team_status()

    def placement(self) -> dict[str, Placement]:
        """Where each PA lives (at home unless the driver moved it)."""
        with self._lock:
            return self._pa.placements()

    # -- internals ---------------------------------------------------------------------

    def _program_pas(self, wanted: dict[str, PaConfig], macs: dict[str, str]) -> None:
        """The PAs become ``wanted`` in the engine (under the lock), then the kernel."""
        cmds = self._pa.replace(wanted, macs, self.engine.state.pa_neighbors)
        self._offload_pending()
        self.engine.programming.apply_all(cmds)
        if self._kernel is not None:
            self._kernel.after_spaces()

    def _offload_pending(self) -> None:
        """Before a change of policy or spaces (under the lock): what earlier frames
        paired goes down first, as decided then, so that the change's revalidation
        covers it (a decision of the old policy is never written after the change)."""
        if self._kernel is not None:
            self._kernel.apply_pending()

    def _dispatch(self, emits: list[Emit], port: str | None = None) -> None:
        """Carry out the engine's emits: deliveries per port, one transmit batch (in
        ``port``'s uplink class, when the frames are a VM port's), punts."""
        if not emits:
            return
        to_ports: dict[str, list[bytes]] = {}
        transmits: list[Transmit] = []
        punts: list[Punt] = []
        for em in emits:
            cls = em.__class__
            if cls is Transmit:
                transmits.append(em)  # type: ignore[arg-type]
            elif cls is Deliver:
                to_ports.setdefault(em[0], []).append(em[1])  # type: ignore[arg-type]
            elif cls is Punt:
                punts.append(em)  # type: ignore[arg-type]
        if transmits:
            if port is not None and self._shaping is not None:
                self._shaping.transmit_from(port, transmits)
            else:
                self.driver.transmit(transmits)
        for port, frames in to_ports.items():
            self.driver.send_to_port(port, frames)
        if punts:
            listener = self._listener
            if listener is None:
                with self._lock:
                    self.counters["drop:no_listener"] += len(punts)
                return
            for p in punts:
                listener.punted(p.port, p.frame, p.reason)
