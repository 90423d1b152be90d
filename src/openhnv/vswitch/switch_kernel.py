"""The kernel data path as one host switch reports it, and adoption after a restart.

``KernelViews`` is owned by ``HostSwitch`` and answers its queries about what runs
below the engine: whether the fast path runs (``fastpath_status``), what it counted
per flow and per port (``flows``, ``port_totals``: as of the last expiry pass, or
read now), what the kernel dropped for the ports' QoS caps (``qos_drops``: the
driver's qdiscs and the fast path's buckets) and how the driver schedules its uplinks
(``qos_status``). ``revalidate_adopted`` decides again, once after a restart, what a
previous process left in an adopted fast path. The engine's state and the kernel's
maps are read under the switch's lock (``lock``); the driver's own reports outside it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

from openhnv.vfp.engine import VfpEngine
from openhnv.vswitch.driver import Driver, QosShaping
from openhnv.vswitch.kernel import KernelSide
from openhnv.vswitch.offload import KernelDriver

ADOPTION_GRACE = 5.0
"""Seconds a restarted switch tries to decide its predecessor's kernel entries again."""
ADOPTION_RETRY = 0.05


class KernelViews:
    """What the switch tells about its kernel data path (see the module docstring)."""

    def __init__(
        self,
        engine: VfpEngine,
        driver: Driver,
        kernel: KernelSide | None,
        shaping: QosShaping | None,
        lock: threading.RLock,
        stopping: threading.Event,
    ) -> None:
        self.engine = engine
        self.driver = driver
        self.kernel = kernel
        self.shaping = shaping
        self._lock = lock
        self._stopping = stopping

    def revalidate_adopted(
        self, ports: Callable[[], dict[str, str]], grace: float = ADOPTION_GRACE
    ) -> dict[str, int]:
        """Decide again every entry a previous process left in an adopted fast path (call
        once the engine is programmed and the driver reports its ``ports``); {} without
        one. Entries the engine cannot decide yet (a remote PA still resolving) are
        tried again for up to ``grace`` seconds; they keep forwarding meanwhile."""
        kernel, driver = self.kernel, self.driver
        if kernel is None or not isinstance(driver, KernelDriver):
            return {}
        deadline = time.monotonic() + grace
        while True:
            final = time.monotonic() >= deadline
            by_ifindex = {}
            for port in ports():
                ifindex = driver.port_ifindex(port)
                if ifindex is not None:
                    by_ifindex[ifindex] = port
            with self._lock:
                counts = kernel.revalidate_adopted(by_ifindex, final=final)
            if not counts.get("pending"):
                return counts
            self._stopping.wait(ADOPTION_RETRY)

    def fastpath_status(self) -> dict[str, object]:
        """Whether the kernel fast path runs, why not, and what it holds."""
        driver = self.driver
        base: dict[str, object] = (
            driver.fastpath_status() if isinstance(driver, KernelDriver)
            else {"state": "off", "reason": "the driver has no kernel data plane"}
        )  # fmt: skip
        if self.kernel is None:
            return base
        with self._lock:
            return {**base, **self.kernel.status()}

    def flows(self, port: str, fresh: bool = False) -> dict[str, tuple[int, int]]:
        """Flow key (hex) -> (packets, bytes) the kernel counted, of ``port``'s offloaded
        flows (``UPLINK`` too), as of the last expiry pass or now (``fresh``); {} without
        a fast path."""
        if self.kernel is None:
            return {}
        if fresh:
            self.refresh_stats()
        with self._lock:
            stats = self.kernel.kernel.flow_stats()
            return {f.key.hex(): v for f, v in stats.items() if f.table.port == port}

    def qos_drops(self) -> dict[str, dict[str, int]]:
        """Port -> {``qos_outbound``/``qos_inbound``: frames the kernel dropped for the
        port's caps} (its qdiscs, and the fast path's buckets)."""
        found: dict[str, Counter[str]] = {}
        if self.shaping is not None:
            for port, drops in self.shaping.qos_drops().items():
                found.setdefault(port, Counter()).update(drops)
        if self.kernel is not None:
            with self._lock:
                policed = self.kernel.qos.drops()
            for port, drops in policed.items():
                found.setdefault(port, Counter()).update(drops)
        return {port: dict(drops) for port, drops in found.items()}

    def qos_status(self) -> dict[str, object]:
        """The driver's uplink scheduling and the ports' classes (vswitch.htb; {}: none)."""
        return {} if self.shaping is None else self.shaping.qos_status()

    def port_totals(self, fresh: bool = False) -> dict[str, tuple[int, int]]:
        """Port -> (packets, bytes) the kernel counted for its offloaded flows."""
        if self.kernel is None:
            return {}
        if fresh:
            self.refresh_stats()
        with self._lock:
            return self.kernel.kernel.port_totals()

    def refresh_stats(self) -> None:
        """Read the kernel's per-entry statistics now (as an expiry pass does first)."""
        kernel = self.kernel
        if kernel is None:
            return
        stats = kernel.read_stats()
        with self._lock:
            kernel.after_expiry_stats(stats, self.engine.clock())
