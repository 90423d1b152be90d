"""The uplink scheduler's ``tc`` work, off the driver's polling thread (vswitch.htb).

A VM port that comes or goes re-plans every uplink's htb tree (the other ports' shares
move) and applies the difference with one ``tc -batch``: about 4 ms, more with many
ports. On the polling thread that stalls every port's frames for as long, once per
port. ``UplinkPlanning`` hands it to one worker thread of its own and coalesces: what
the driver wants is a whole state (every uplink ring and every port's settings, a
snapshot taken on the polling thread), so while a plan is being applied only the latest
state asked for waits, and it is applied next. A burst of ports (a host starting its
VMs) costs one or two plans instead of one each, and no frame waits for ``tc``.

Until its class exists, a new port's frames take the default class, the tree's place
for "a port the driver does not know yet"; the uplink rings stop bypassing the qdisc
once a hierarchical tree is applied (``set_qdisc_bypass``), as before. A plan that
fails is counted in the driver's ``qos_setup_failed`` and logged; the next state asked
for is planned again from what the kernel holds. ``close`` applies what is still
waiting, then stops the thread.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from openhnv.vfp.qos import QosSettings
from openhnv.vswitch.htb import UplinkScheduler
from openhnv.vswitch.qdisc import TcError
from openhnv.vswitch.ring import PacketRing

log = logging.getLogger(__name__)

CLOSE_SECONDS = 10.0
FAILED = "qos_setup_failed"


@dataclass(frozen=True, slots=True)
class WantedTrees:
    """What the uplinks' trees should hold: the rings of the uplinks to schedule, each
    port's settings by ifindex, and whether a flat tree keeps its capped ports' classes
    (only the kernel fast path classifies frames then)."""

    rings: Mapping[str, PacketRing]
    ports: Mapping[int, QosSettings]
    flat_classes: bool


class UplinkPlanning:
    """Applies the latest ``WantedTrees`` on a worker thread (see the module doc)."""

    def __init__(
        self, scheduler: UplinkScheduler, enter: Callable[[], None], counters: Counter[str]
    ) -> None:
        """``enter``: run first on the worker thread (the driver's network namespace:
        ``tc`` runs where its thread is); ``counters``: the driver's, for failures."""
        self.scheduler = scheduler
        self._enter = enter
        self._counters = counters
        self._changed = threading.Condition()
        self._wanted: WantedTrees | None = None
        self._busy = False
        self._closing = False
        self._thread: threading.Thread | None = None
        self.plans_applied = 0

    def want(self, wanted: WantedTrees) -> None:
        """Have the trees hold ``wanted`` (replacing a state not yet applied)."""
        with self._changed:
            if self._closing:
                return
            self._wanted = wanted
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="hnv-uplink-planning", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def idle(self, timeout: float) -> bool:
        """Wait until every state asked for is applied; False after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._wanted is None and not self._busy, timeout)

    def close(self) -> None:
        """Apply what still waits, then stop the worker (idempotent)."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(CLOSE_SECONDS)

    def _run(self) -> None:
        try:
            self._enter()
        except OSError as exc:
            self._counters[FAILED] += 1
            log.warning("uplink planning: cannot enter the driver's namespace: %s", exc)
            with self._changed:
                self._closing = True
                self._wanted = None
                self._changed.notify_all()
            return
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._wanted is not None or self._closing)
                wanted, self._wanted = self._wanted, None
                if wanted is None:  # closing, nothing left to apply
                    return
                self._busy = True
            try:
                self._apply(wanted)
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _apply(self, wanted: WantedTrees) -> None:
        scheduler = self.scheduler
        try:
            scheduler.update(wanted.rings, wanted.ports, flat_classes=wanted.flat_classes)
            for name, ring in wanted.rings.items():
                ring.set_qdisc_bypass(not scheduler.scheduling(name))
        except (TcError, OSError) as exc:
            self._counters[FAILED] += 1
            log.warning("linux driver: uplink scheduler: %s", exc)
        except Exception:  # a bug must not end the worker: counted, logged, next state
            self._counters[FAILED] += 1
            log.exception("uplink planning failed")
        self.plans_applied += 1
