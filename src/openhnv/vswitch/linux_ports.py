"""The links the Linux driver takes from the host: VM ports found, set up, hidden.

A VM port is a link whose ifalias names it (``vswitch.portlinks``); ``PortScan`` turns
each link dump into the ports that went and the ports that came (an alias problem is
logged once), and says which link events may change the ports. ``open_port`` sets up
a port's veth host end (``prepare_port``: its offloads, up), opens its ``PacketRing``
and, with the kernel fast path, attaches the port socket filter to it; the result is
a ``Port``, the driver's record of it.

``KernelHiding`` keeps the host's IP stack off the driver's links (VM ports and
uplinks): the fast path's tc program where it runs, else the drop program of
``vswitch.ingress``; ``show`` gives a link back.

Everything here runs on the driver's loop thread (``vswitch.linux``).
"""

from __future__ import annotations

import logging
import subprocess
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import FastPath
from openhnv.vswitch.ingress import hide_from_kernel, show_to_kernel
from openhnv.vswitch.portlinks import LinkInfo, PortLink, port_links
from openhnv.vswitch.ring import PacketRing

PORT_OFFLOADS_OFF = ("tx", "off", "tso", "off", "gso", "off", "sg", "off", "gro", "off")
# with the fast path the kernel takes the VM's GSO frames whole; GRO stays off so that
# the frames the Python switch gets are the VM's own
PORT_OFFLOADS_ON = ("tx", "on", "tso", "on", "gso", "on", "sg", "on", "gro", "off")

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Port:
    """A VM port the driver found: its link and the ring on its veth host end."""

    link: PortLink
    ring: PacketRing


def open_port(link: PortLink, fast_path: FastPath | None, counters: Counter[str]) -> Port | None:
    """Set up ``link``'s host end and open its ring (None, counted and logged, when that
    fails); with ``fast_path`` its port socket filter goes on the ring."""
    try:
        prepare_port(link.ifname, PORT_OFFLOADS_OFF if fast_path is None else PORT_OFFLOADS_ON)
        ring = PacketRing(link.ifname)
    except (OSError, subprocess.SubprocessError) as exc:
        counters["port_setup_failed"] += 1
        log.warning("linux driver: port %s on %s: %s", link.port, link.ifname, exc)
        return None
    if fast_path is not None:
        try:
            fast_path.attach_port_socket(ring, f"port {link.port} on {link.ifname}")
        except FastPathError as exc:
            counters["fastpath_attach_failed"] += 1
            log.warning("linux driver: %s", exc)
    return Port(link, ring)


def prepare_port(ifname: str, offloads: Sequence[str]) -> None:
    """The host end of a VM port: its offloads (off without the fast path: whole frames,
    finished checksums; on with it: the kernel forwards GSO frames as they are), up."""
    set_offloads(ifname, offloads)
    subprocess.run(["ip", "link", "set", "dev", ifname, "up"], check=True, capture_output=True,
                   timeout=10)  # fmt: skip


def set_offloads(ifname: str, offloads: Sequence[str]) -> None:
    """``ethtool -K ifname offloads`` (a warning when it fails)."""
    try:
        done = subprocess.run(["ethtool", "-K", ifname, *offloads],
                              check=False, capture_output=True, text=True, timeout=10)  # fmt: skip
    except FileNotFoundError:
        log.warning("linux driver: ethtool is not installed; offloads stay on %s", ifname)
    else:
        if done.returncode != 0:
            log.warning("linux driver: ethtool -K %s: %s", ifname, done.stderr.strip())


class PortScan:
    """From link dumps and events to the VM ports that went and came."""

    def __init__(self, counters: Counter[str]) -> None:
        self.counters = counters
        self._problems: set[str] = set()

    def changes(
        self, links: Sequence[LinkInfo], ports: Mapping[str, Port]
    ) -> tuple[list[str], list[PortLink]]:
        """The ports of ``ports`` that a dump no longer shows as they are (to remove),
        then the links it shows that are no port yet (to add); alias problems are
        counted and logged, each new one once."""
        found, problems = port_links(links)
        for problem in sorted(set(problems) - self._problems):
            self.counters["port_alias_problems"] += 1
            log.warning("linux driver: %s", problem)
        self._problems = set(problems)
        gone = [port for port, p in ports.items() if found.get(port) != p.link]
        came = [link for port, link in found.items() if port not in ports or port in gone]
        return gone, came

    @staticmethod
    def touches_ports(event: LinkInfo, uplinks: Collection[str], ports: Mapping[str, Port]) -> bool:
        """Whether link ``event`` may add, remove or change a VM port (then: a rescan)."""
        if event.ifname in uplinks and event.alias is None:
            return False  # an uplink's state, not a port
        known = {p.link.index: p for p in ports.values()}.get(event.index)
        if event.deleted:
            return known is not None
        return known is None or known.link.ifname != event.ifname or event.alias is not None


class KernelHiding:
    """Keeps the host's IP stack off the driver's links (see the module docstring)."""

    def __init__(self, fast_path: FastPath | None, isolate: bool, counters: Counter[str]) -> None:
        self.fast_path = fast_path
        self.isolate = isolate  # the drop program where the fast path does not run
        self.counters = counters
        self.hidden: set[str] = set()

    def hide(self, ifname: str, port: bool = False) -> None:
        """Keep the host's IP stack off ``ifname``: the fast path's tc program (uplink or
        VM ``port``), else the drop program (a warning, not an error, if it fails)."""
        fp = self.fast_path
        if ifname in self.hidden or (fp is None and not self.isolate):
            return
        if fp is not None:
            try:
                (fp.attach_port if port else fp.attach_uplink)(ifname)
            except FastPathError as exc:
                self.counters["fastpath_attach_failed"] += 1
                log.warning("linux driver: %s (the drop program instead)", exc)
            else:
                self.hidden.add(ifname)
                return
        try:
            hide_from_kernel(ifname)
        except OSError as exc:
            self.counters["kernel_isolation_failed"] += 1
            log.warning("linux driver: the host kernel still sees %s: %s", ifname, exc)
            return
        self.hidden.add(ifname)

    def show(self, ifname: str) -> None:
        """Give ``ifname`` back to the host's IP stack (the drop program goes)."""
        self.hidden.discard(ifname)
        try:
            show_to_kernel(ifname)
        except OSError as exc:
            log.debug("linux driver: %s keeps its ingress filter: %s", ifname, exc)
