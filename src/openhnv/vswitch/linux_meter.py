"""The Linux driver's kernel meter of the abuse limits, below the Python switch.

``PortMetering`` is owned by ``vswitch.linux.LinuxDriver`` and meters its ports on its
loop thread (``set_limits``, ``drops`` and ``status`` come from others). A VM port's
SYNs, broadcasts and ARP over their rates (``vfp.limits``) are dropped before they
reach its ring, counted per port in the object's meter map (``vswitch.fastpath.meters``):

- with the fast path, by its port socket filter (``hnv_sk_port``);
- without it, by the meter filter alone (``hnv_sk_meter``, the object loaded for it);
- with ``xdp_meter``, by the object's XDP program on the port's veth host end instead
  (the socket filter then does not meter again), the socket filter where XDP cannot be
  attached.

Without the object the Python meter works alone and ``status`` says why.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Mapping

from openhnv.vfp.limits import NO_LIMITS, PortLimits
from openhnv.vswitch.fastpath.attach import detach_socket, detach_xdp
from openhnv.vswitch.fastpath.errors import FastPathError
from openhnv.vswitch.fastpath.fastpath import FastPath
from openhnv.vswitch.fastpath.meters import MeterTable, metered
from openhnv.vswitch.linux_ports import Port, set_offloads

COPY_ATTEMPTS = 10  # the loop thread may change the ports while another thread copies

log = logging.getLogger(__name__)


class PortMetering:
    """The kernel meters of the driver's VM ports (see the module docstring)."""

    def __init__(self, fast_path: FastPath | None, counters: Counter[str], *, xdp: bool) -> None:
        self.fast_path = fast_path
        self.counters = counters
        self.limits = NO_LIMITS
        self.meter_only: FastPath | None = None  # without the fast path: its meter filter
        self.reason = "no limits set"
        self._xdp = xdp
        self._xdp_ports: set[str] = set()  # ifnames whose XDP program meters them

    def set_limits(self, limits: PortLimits) -> None:
        """Meter ``limits`` from now on (the ports follow with ``meter``). Without the
        fast path the object is loaded for its meter filter alone; when it cannot be,
        the Python meter works alone (``status`` says why)."""
        self.limits = limits
        if self.fast_path is None and self.meter_only is None and metered(limits):
            try:
                self.meter_only = FastPath.load(flow_capacity=1, generation_slots=1)
            except FastPathError as exc:
                self.reason = " ".join(str(exc).split())
                log.warning("linux driver: abuse limits metered in Python only: %s",
                            self.reason)  # fmt: skip

    def close(self) -> None:
        """Close the meter filter's object (the fast path is the driver's to close)."""
        if self.meter_only is not None:
            self.meter_only.close()
            self.meter_only = None

    def meters(self) -> MeterTable | None:
        fp = self.fast_path or self.meter_only
        return None if fp is None else fp.meters

    def meter(self, p: Port) -> None:
        """Write (or take back) the kernel meter of port ``p`` and put the program that
        meters it in place: the XDP meter (its socket filter then does not meter), else
        the socket filter (without the fast path: the meter filter)."""
        meters = self.meters()
        fp = self.fast_path or self.meter_only
        if meters is None or fp is None:
            return
        what = f"port {p.link.port}"
        try:
            if not metered(self.limits):
                meters.delete(p.ring.ifindex)
                self._unmeter_xdp(p)
                return
            meters.set(p.ring.ifindex, self.limits)
            if self._meter_xdp(p, fp):
                if self.fast_path is not None:
                    self.fast_path.attach_classify_socket(p.ring, what)
                else:
                    detach_socket(p.ring)
                return
            self._unmeter_xdp(p)
            if self.meter_only is not None:
                self.meter_only.attach_meter_socket(p.ring, what)
        except FastPathError as exc:
            self.counters["kernel_meter_failed"] += 1
            log.warning("linux driver: port %s: its limits stay in Python: %s", p.link.port, exc)

    def forget(self, p: Port) -> None:
        """Port ``p`` went: its meter entry and its XDP program go too."""
        meters = self.meters()
        if meters is not None:
            with contextlib.suppress(FastPathError, OSError):
                meters.delete(p.ring.ifindex)
        if p.link.ifname in self._xdp_ports:
            self._xdp_ports.discard(p.link.ifname)
            with contextlib.suppress(FastPathError):
                detach_xdp(p.link.ifname)

    def _meter_xdp(self, p: Port, fp: FastPath) -> bool:
        """The XDP meter on ``p``'s veth host end (replacing one an earlier process left);
        whether it is there. With XDP the veth runs NAPI and may turn GRO on: GRO goes
        off again, so that the switch's ring and tc keep getting the VM's own frames."""
        ifname = p.link.ifname
        if not self._xdp:
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
        set_offloads(ifname, ("gro", "off"))
        return True

    def _unmeter_xdp(self, p: Port) -> None:
        """No XDP meter on ``p``: also none an earlier process left (it would meter with
        that process's map); with the fast path its socket filter meters again."""
        ifname = p.link.ifname
        was = ifname in self._xdp_ports
        self._xdp_ports.discard(ifname)
        with contextlib.suppress(FastPathError):
            detach_xdp(ifname)
        if was and self.fast_path is not None:
            self.fast_path.attach_port_socket(p.ring, f"port {p.link.port}")

    def drops(self, ports: Mapping[str, Port]) -> dict[str, dict[str, int]]:
        """Port -> ``vfp.limits`` reason -> frames its kernel meter dropped (ports
        that dropped nothing are left out)."""
        meters = self.meters()
        if meters is None:
            return {}
        by_port: dict[str, int] = {}
        for _ in range(COPY_ATTEMPTS):
            try:
                by_port = {port: p.ring.ifindex for port, p in ports.items()}
                break
            except RuntimeError:
                continue
        found = {}
        for port, ifindex in by_port.items():
            try:
                drops = meters.drops(ifindex)
            except FastPathError:
                continue  # the fd closed under us: the driver is closing
            if drops:
                found[port] = drops
        return found

    def status(self) -> dict[str, object]:
        """Whether the abuse limits are metered in the kernel too (``state`` on/off), by
        which filter, and why not."""
        if not metered(self.limits):
            return {"state": "off", "reason": "no rate limit set"}
        xdp = {"xdp_ports": len(self._xdp_ports)} if self._xdp else {}
        if self.fast_path is not None:
            return {"state": "on", "filter": "hnv_sk_port (the fast path's)", **xdp}
        if self.meter_only is not None:
            return {"state": "on", "filter": "hnv_sk_meter (without the fast path)", **xdp}
        return {"state": "off", "reason": self.reason}
