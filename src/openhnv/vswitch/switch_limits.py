"""The abuse limits of one host switch's VM ports: set, and what they dropped.

``SwitchLimits`` is owned by ``HostSwitch``. The limits (``vfp.limits``) go to the
engine's meter and, when the driver meters below the switch (``MeteringDriver``: the
Linux driver's port socket filters), to the driver too. The engine counts its drops
per port (``drop:<reason>``), the driver its own per port and reason: ``status`` puts
both together (totals, the ports that dropped), and each expiry pass ``since_last``
says what moved since the pass before, for ``log_moved`` to write one warning line per
port that dropped (the kernel's drops as ``<reason> in the kernel``).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping

from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.limits import LIMIT_REASONS, PortLimits
from openhnv.vswitch.driver import Driver, MeteringDriver

log = logging.getLogger(__name__)


class SwitchLimits:
    """The abuse limits of the switch's ports (see the module docstring); the engine is
    read under the switch's ``lock``, the driver outside it."""

    def __init__(self, engine: VfpEngine, driver: Driver, lock: threading.RLock) -> None:
        self.engine = engine
        self.driver = driver
        self._lock = lock
        self._reported: dict[str, dict[str, int]] = {}  # port -> drops last logged
        if isinstance(driver, MeteringDriver):
            driver.set_port_limits(engine.state.limits)

    def set(self, limits: PortLimits) -> None:
        """The limits of every VM port from now on, in the engine and, when the driver
        meters them too, below it."""
        with self._lock:
            self.engine.set_limits(limits)
        if isinstance(self.driver, MeteringDriver):
            self.driver.set_port_limits(limits)

    def kernel_drops(self) -> dict[str, dict[str, int]]:
        """Port -> reason -> frames the driver dropped over the limits before the engine
        saw them (its socket filters); {} when it meters nothing."""
        driver = self.driver
        return driver.kernel_limit_drops() if isinstance(driver, MeteringDriver) else {}

    def status(self) -> dict[str, object]:
        """The limits and the drops they caused, in total and by port (ports that
        dropped nothing are left out): ``drops``/``ports`` by the engine's meter,
        ``kernel`` by the driver's."""
        with self._lock:
            ports = {name: limit_drops(p.counters) for name, p in self.engine.state.ports.items()}
            limits = self.engine.state.limits.as_dict()
        by_port = {name: drops for name, drops in ports.items() if drops}
        driver = self.driver
        kernel: dict[str, object] = (
            {**driver.metering_status(), **totals(driver.kernel_limit_drops())}
            if isinstance(driver, MeteringDriver) else {"state": "off"}
        )  # fmt: skip
        return {"limits": limits, **totals(by_port), "kernel": kernel}

    def since_last(self) -> dict[str, dict[str, int]]:
        """Per port, the limit drops counted since the last call (under the lock); the
        kernel's as ``<reason> in the kernel``."""
        moved: dict[str, dict[str, int]] = {}
        reported = self._reported
        kernel = self.kernel_drops()
        for name, p in self.engine.state.ports.items():
            drops = limit_drops(p.counters)
            drops.update({f"{r} in the kernel": n for r, n in kernel.get(name, {}).items()})
            before = reported.get(name, {})
            delta = {r: n - before.get(r, 0) for r, n in drops.items() if n > before.get(r, 0)}
            if delta:
                moved[name] = delta
            reported[name] = drops
        return moved


def log_moved(moved: Mapping[str, dict[str, int]]) -> None:
    """One warning line per port that dropped since the last report."""
    for port, drops in moved.items():
        log.warning(
            "port %s: over its abuse limits since the last report, dropped %s",
            port, ", ".join(f"{n} ({reason})" for reason, n in sorted(drops.items())),
        )  # fmt: skip


def limit_drops(counters: Counter[str]) -> dict[str, int]:
    """Reason -> frames a port's ``counters`` say the engine's meter dropped (0s left out)."""
    return {r: counters[f"drop:{r}"] for r in LIMIT_REASONS if counters[f"drop:{r}"]}


def totals(by_port: dict[str, dict[str, int]]) -> dict[str, object]:
    """``drops`` (reason -> total) and ``ports`` (the ports that dropped, by reason)."""
    total: Counter[str] = Counter()
    for drops in by_port.values():
        total.update(drops)
    return {"drops": dict(total), "ports": by_port}
