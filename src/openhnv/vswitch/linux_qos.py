"""The Linux driver's QoS: VM ports' caps shaped in the kernel, uplinks scheduled.

``PortShaping`` is owned by ``vswitch.linux.LinuxDriver`` and runs on its loop thread
(``drops`` and ``status`` are read from others: they copy first). A port's inbound cap
is a tbf on its veth host end (``vswitch.qdisc``; its ring then stops bypassing the
qdisc); its outbound cap and reservation are its class in each uplink's htb tree
(``vswitch.htb``, ``UplinkScheduler``). Beside a shaped port every port has a class
of its own, so the tree follows the ports as they come and go. The caps asked for a
port the driver has not found yet are kept and shaped when it appears.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping

from openhnv.vfp.qos import NO_QOS, QOS_INBOUND, QOS_OUTBOUND, QosSettings
from openhnv.vswitch import htb, qdisc
from openhnv.vswitch.htb import UplinkScheduler
from openhnv.vswitch.linux_ports import Port
from openhnv.vswitch.ring import PacketRing
from openhnv.vswitch.uplink_planning import UplinkPlanning, WantedTrees

log = logging.getLogger(__name__)


class PortShaping:
    """The kernel's shaping of the driver's VM ports (see the module docstring).

    ``ports`` and ``uplinks`` are the driver's own tables (read, never changed here);
    ``enter``: moves a thread into the driver's network namespace (the uplinks' plans
    run on a worker thread of their own, vswitch.uplink_planning); ``flat_classes``:
    the fast path runs (its buckets police, the classes stay flat)."""

    def __init__(
        self,
        ports: Mapping[str, Port],
        uplinks: Mapping[str, PacketRing],
        counters: Counter[str],
        enter: Callable[[], None],
        *,
        uplink_mbps: int | None,
        flat_classes: bool,
    ) -> None:
        self.scheduler = UplinkScheduler(uplink_mbps)  # the uplinks' htb trees (vswitch.htb)
        self.planning = UplinkPlanning(self.scheduler, enter, counters)
        self.counters = counters
        self._ports = ports
        self._uplinks = uplinks
        self._flat_classes = flat_classes
        self._qos: dict[str, QosSettings] = {}  # port -> the caps to shape (vswitch.qdisc)
        self._shaped: dict[
            str, tuple[str, int, QosSettings]
        ] = {}  # port -> (ifname, ifindex, caps)

    def set(self, port: str, settings: QosSettings) -> None:
        """``port``'s caps from now on (shaped at once when the port is there)."""
        if settings.scheduled:
            self._qos[port] = settings
        else:
            self._qos.pop(port, None)
        p = self._ports.get(port)
        if p is not None:
            self.shape(p)

    def port_added(self, p: Port) -> None:
        """A port came: its caps, or a class of its own beside the shaped ports."""
        if p.link.port in self._qos:
            self.shape(p)
        elif self._shaped:  # a class of its own beside the shaped ports (vswitch.htb)
            self.schedule()

    def port_removed(self, port: str) -> None:
        """A port went: its htb classes leave the uplinks (its veth took its tbf); beside
        shaped ports, the other ports' shares move (vswitch.htb)."""
        if self._shaped.pop(port, None) is not None or self._shaped:
            self.schedule()

    def shape(self, p: Port) -> None:
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
        self.schedule()

    def schedule(self) -> None:
        """The uplinks' htb trees for the ports, shaped or not (vswitch.htb), applied off
        the polling thread (vswitch.uplink_planning); the uplink rings stop bypassing the
        qdisc where the tree schedules, so the Python switch's frames cross it too."""
        ports = {p.ring.ifindex: NO_QOS for p in self._ports.values()}
        ports.update({ifindex: s for _, ifindex, s in self._shaped.values()})
        self.planning.want(WantedTrees(dict(self._uplinks), ports, self._flat_classes))

    def close(self) -> None:
        """Apply the trees still waiting, then stop the planning thread."""
        self.planning.close()

    def drops(self) -> dict[str, dict[str, int]]:
        """Port -> {``qos_inbound``: its tbf's drops, ``qos_outbound``: its htb classes'
        drops on the uplinks} for the shaped ports."""
        found: dict[str, dict[str, int]] = {}
        try:
            by_class: Counter[int] = Counter()
            for uplink in list(self._uplinks):
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

    def status(self) -> dict[str, object]:
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
