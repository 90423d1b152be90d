"""The uplink scheduler: an htb tree that gives each VM port its reservation (plan, then tc).

NC's ``outboundReservedValue`` (Hyper-V's absolute minimum bandwidth, Mbit/s) is a
share of the uplink a port keeps when the uplink is contended. The kernel's ``htb``
gives exactly that: a class's ``rate`` is guaranteed, its ``ceil`` is what it may
borrow up to. ``plan_uplink`` turns the ports' settings and the link's capacity into
classes (no I/O); ``apply_plan`` makes an uplink's htb hold them. The tree
(docs/vfp.md, "QoS"):

- ``1:`` the htb root, ``default ffff``: a frame whose ``skb->priority`` names no class
  goes to the default class;
- ``1:1`` the link: rate = ceil = the uplink's capacity;
- ``1:<ifindex>`` per port, under the link, as soon as one port of the host reserves or
  is capped: rate = its reservation, or for a port without one an equal share of what
  the reservations leave (at least ``FLOOR_MBPS``); ceil = its cap (the link without);
- ``1:ffff`` the default class, everything else (the host's own frames, a port the
  driver does not know yet): rate = what the ports' rates leave (at least the floor),
  ceil = the link. Without a reserving or capped port (a configured link only) it
  carries every port.

Each leaf's queue is a ``bfifo`` of 50 ms of its ceil. This kernel has no ``fq_codel``,
``sfq`` or ``drr``: the ports of one class would share one FIFO, where one TCP flow
takes what another leaves (measured once: 8.1 against 93.8 Mbit/s), so each port has
its own class and htb's round robin between classes is fair between ports. Classes come
and go with the ports (``UplinkScheduler.update`` changes only the classes that
differ: a port added or removed moves the shares of the other unreserved ports).

Reservations that add up to more than the link (with the floors) are **scaled down** in
proportion, deterministically (integer kbit/s, rounded down), and the plan says so
(``oversubscribed``): a host never refuses a port the controller programmed.

Without any reservation and without a configured link capacity the tree is flat
(``link_kbit`` None): a class per capped port directly under the root, rate = ceil =
the cap, and htb's direct queue for the rest, unshaped: a host that reserves nothing
pays for no link class.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openhnv.vfp.qos import BYTES_PER_MBIT, QosSettings
from openhnv.vswitch.qdisc import (
    HTB_HANDLE,
    MAX_CLASS,
    TcError,
    class_priority,
    run_tc,
    run_tc_batch,
)

log = logging.getLogger(__name__)

KBIT_PER_MBIT = 1000
LINK_CLASS = 1
"""The link's class minor: loopback's ifindex, never a VM port's."""
DEFAULT_CLASS = 0xFFFF
"""The default class minor (above ``MAX_CLASS``, the largest port ifindex)."""
FLOOR_MBPS = 1
"""The rate of a class without a reservation (a capped port; the default class at least)."""
DEFAULT_LINK_MBPS = 10_000
"""The capacity assumed when neither ``--uplink-mbps`` nor the device's ``speed`` says."""
MIN_QUANTUM = 1514
MAX_QUANTUM = 200_000  # htb's own bounds for a sane quantum (tc warns outside them)
R2Q = 10  # htb's default rate-to-quantum divisor
SHAPER_BURST_SECONDS = 0.004
MIN_BURST_BYTES = 131_072  # two 64 KiB GSO frames: a smaller burst never lets one through
QUEUE_SECONDS = 0.05  # as long as a capped port's tbf lets a frame wait (qdisc.LATENCY_MS)
MIN_QUEUE_BYTES = 262_144  # four 64 KiB GSO frames
_CLASS_LINE = re.compile(rf"class htb {HTB_HANDLE}:([0-9a-f]+) ")
_SENT = re.compile(r"Sent ([0-9]+) bytes ([0-9]+) pkt \(dropped ([0-9]+),")


@dataclass(frozen=True, slots=True)
class HtbClass:
    """One class of an uplink's htb: ``1:<minor>`` under ``1:<parent>`` (0: the root)."""

    minor: int
    parent: int
    rate_kbit: int
    ceil_kbit: int

    @property
    def classid(self) -> str:
        return f"{HTB_HANDLE}:{self.minor:x}"


@dataclass(frozen=True, slots=True)
class UplinkPlan:
    """An uplink's classes; ``link_kbit`` None: the flat tree (caps only)."""

    link_kbit: int | None
    classes: tuple[HtbClass, ...]
    reserved_kbit: int = 0  # what the ports asked for
    granted_kbit: int = 0  # what they got (less when oversubscribed)
    sharing: int = 0  # the unreserved ports with a class of their own
    share_kbit: int = 0  # the rate of each of them (below its cap)

    @property
    def oversubscribed(self) -> bool:
        return self.granted_kbit < self.reserved_kbit

    def of_port(self, ifindex: int) -> HtbClass | None:
        return next((c for c in self.classes if c.minor == ifindex), None)


FLAT = UplinkPlan(None, ())


def plan_uplink(
    link_mbps: int | None, ports: Mapping[int, QosSettings], configured: bool = False
) -> UplinkPlan:
    """The classes for ``ports`` (ifindex -> settings: every port on the uplink, those
    without QoS too) on a link of ``link_mbps`` (None: unknown, ``DEFAULT_LINK_MBPS``);
    the tree is hierarchical when a port reserves or the capacity was ``configured``,
    else flat. In a hierarchical tree with any reserving or capped port every port has
    a class of its own (``_shares``); a port without QoS whose ifindex is no class
    minor is left to the default class."""
    ports = {i: s for i, s in ports.items() if s.scheduled or LINK_CLASS < i <= MAX_CLASS}
    for ifindex in ports:
        if not LINK_CLASS < ifindex <= MAX_CLASS:
            raise TcError(f"ifindex {ifindex}: a port's class minor is 2..{MAX_CLASS}")
    classed = {i: s for i, s in sorted(ports.items()) if s.outbound_max_mbps
               or s.outbound_reserved_mbps}  # fmt: skip
    reserving = any(s.outbound_reserved_mbps for s in classed.values())
    if not reserving and not configured:
        flat = tuple(HtbClass(i, 0, s.outbound_max_mbps * KBIT_PER_MBIT,
                              s.outbound_max_mbps * KBIT_PER_MBIT)
                     for i, s in classed.items())  # fmt: skip
        return UplinkPlan(None, flat)
    if classed:  # the unreserved ports too: htb's round robin is fair between classes
        classed = dict(sorted(ports.items()))
    link = (link_mbps or DEFAULT_LINK_MBPS) * KBIT_PER_MBIT
    floor = FLOOR_MBPS * KBIT_PER_MBIT
    asked = {i: s.outbound_reserved_mbps * KBIT_PER_MBIT for i, s in classed.items()}
    reserved = sum(asked.values())
    floors = floor * (1 + sum(1 for k in asked.values() if not k))  # default class, sharing
    granted = dict(asked)
    if reserved and reserved > link - floors:  # scaled in proportion, rounded down: deterministic;
        room = max(0, link - floor * (1 + len(asked)))  # a floor under every class
        granted = {i: k * room // reserved for i, k in asked.items()}
    ceils = {i: min(link, s.outbound_max_mbps * KBIT_PER_MBIT) if s.outbound_max_mbps
             else link for i, s in classed.items()}  # fmt: skip
    rates = {i: min(ceils[i], max(floor, granted[i])) for i, k in asked.items() if k}
    sharing = len(classed) - len(rates)
    share = _shares(link - floor - sum(rates.values()), floor, sharing)
    classes = [HtbClass(LINK_CLASS, 0, link, link)]
    for i in classed:
        rate = rates.get(i) or min(ceils[i], share)
        classes.append(HtbClass(i, LINK_CLASS, rate, ceils[i]))
    rest = max(floor, link - sum(c.rate_kbit for c in classes[1:]))
    classes.append(HtbClass(DEFAULT_CLASS, LINK_CLASS, rest, link))
    return UplinkPlan(link, tuple(classes), reserved, sum(granted.values()), sharing,
                      share if sharing else 0)  # fmt: skip


def _shares(left: int, floor: int, sharing: int) -> int:
    """The rate of each of ``sharing`` unreserved ports: an equal part of what the
    reservations ``left`` (the default class's floor taken out), at least the floor."""
    return max(floor, left // sharing) if sharing else floor


def burst_of(kbit: int) -> int:
    """A class's burst in bytes: 4 ms of its rate, at least two GSO frames."""
    return max(MIN_BURST_BYTES, int(kbit * BYTES_PER_MBIT / KBIT_PER_MBIT * SHAPER_BURST_SECONDS))


def quantum_of(kbit: int) -> int:
    """A class's quantum in bytes: its rate over htb's r2q, within htb's sane bounds (so
    borrowed bandwidth is shared in proportion to the rates)."""
    return min(MAX_QUANTUM, max(MIN_QUANTUM, kbit * BYTES_PER_MBIT // KBIT_PER_MBIT // R2Q))


def queue_of(kbit: int) -> int:
    """A leaf's queue in bytes: ``QUEUE_SECONDS`` of its ceil, at least ``MIN_QUEUE_BYTES``
    (a frame count would let 64 KiB GSO frames queue for seconds on a slow link)."""
    return max(MIN_QUEUE_BYTES, int(kbit * BYTES_PER_MBIT / KBIT_PER_MBIT * QUEUE_SECONDS))


def link_mbps_of(
    ifname: str, configured: int | None, sys_net: Path = Path("/sys/class/net")
) -> int:
    """The uplink's capacity: ``configured`` (``--uplink-mbps``) when given, else the
    device's ``speed`` when it reports one (a veth says 10000), else ``DEFAULT_LINK_MBPS``."""
    if configured:
        return configured
    try:
        speed = int((sys_net / ifname / "speed").read_text().strip())
    except (OSError, ValueError):
        return DEFAULT_LINK_MBPS
    return speed if speed > 0 else DEFAULT_LINK_MBPS


def _root(ifname: str) -> dict[str, Any] | None:
    shown: list[dict[str, Any]] = json.loads(run_tc("-j", "qdisc", "show", "dev", ifname) or "[]")
    return next((q for q in shown if q.get("root")), None)


def apply_plan(ifname: str, plan: UplinkPlan, before: UplinkPlan | None) -> None:
    """Make ``ifname``'s htb hold ``plan``'s classes (``before``: what it held, None:
    unknown). A change between flat and hierarchical rebuilds the root."""
    hierarchical = plan.link_kbit is not None
    root = _root(ifname)
    is_htb = (
        root is not None and root.get("kind") == "htb" and root.get("handle") == f"{HTB_HANDLE}:"
    )
    wanted_default = f"{DEFAULT_CLASS:x}" if hierarchical else "0"
    has_default = is_htb and root is not None and _default_of(root) == wanted_default
    if (
        not is_htb
        or not has_default
        or (before is not None and (before.link_kbit is None) != (not hierarchical))
    ):
        run_tc("qdisc", "del", "dev", ifname, "root", check=False)
        argv = ["qdisc", "add", "dev", ifname, "root", "handle", f"{HTB_HANDLE}:", "htb"]
        run_tc(*argv, *(["default", wanted_default] if hierarchical else []))
        before = None
    kept = {c.minor: c for c in (before.classes if before else ())}
    present = set(kept) if before is not None else set(class_stats(ifname))
    changes: list[list[str]] = []  # one tc process: a port's coming moves every share
    for c in plan.classes:  # parents first: the link precedes its children
        old = kept.get(c.minor)
        if old == c:
            continue
        parent = f"{HTB_HANDLE}:{c.parent:x}" if c.parent else f"{HTB_HANDLE}:"
        rate, ceil = c.rate_kbit, c.ceil_kbit
        changes.append(["class", "replace", "dev", ifname, "parent", parent, "classid",
                        c.classid, "htb", "rate", f"{rate}kbit", "ceil", f"{ceil}kbit",
                        "burst", str(burst_of(rate)), "cburst", str(burst_of(ceil)),
                        "quantum", str(quantum_of(rate))])  # fmt: skip
        if c.minor != LINK_CLASS and (old is None or old.ceil_kbit != c.ceil_kbit):
            # a leaf: its queue bounded in time (of its ceil), not in frames
            changes.append(["qdisc", "replace", "dev", ifname, "parent", c.classid, "bfifo",
                            "limit", str(queue_of(c.ceil_kbit))])  # fmt: skip
    run_tc_batch(changes)
    wanted = {c.minor for c in plan.classes}
    gone = [["class", "del", "dev", ifname, "classid", f"{HTB_HANDLE}:{minor:x}"]
            for minor in sorted(present - wanted, reverse=True)]  # fmt: skip
    run_tc_batch(gone, check=False)


def _default_of(root: Mapping[str, Any]) -> str:
    options = root.get("options") or {}
    return str(options.get("default", "0")).removeprefix("0x") or "0"


def class_stats(ifname: str) -> dict[int, tuple[int, int, int]]:
    """Class minor -> (bytes sent, frames sent, frames dropped) of ``ifname``'s htb
    (``tc -s class show`` prints htb classes as text only)."""
    found: dict[int, tuple[int, int, int]] = {}
    minor: int | None = None
    for line in run_tc("-s", "class", "show", "dev", ifname, check=False).splitlines():
        head = _CLASS_LINE.match(line)
        if head is not None:
            minor = int(head.group(1), 16)
            continue
        sent = _SENT.search(line)
        if sent is not None and minor is not None:
            found[minor] = (int(sent.group(1)), int(sent.group(2)), int(sent.group(3)))
            minor = None
    return found


class UplinkScheduler:
    """The plans applied to a host's uplinks (the edge: ``tc``); one per driver.

    One thread updates (vswitch.uplink_planning), others read: ``applied`` and
    ``warnings`` are replaced, never changed in place, so a reader sees one whole state."""

    def __init__(self, configured_mbps: int | None = None) -> None:
        self.configured_mbps = configured_mbps
        self.applied: dict[str, UplinkPlan] = {}  # uplink -> its plan in the kernel
        self.warnings: dict[str, str] = {}  # uplink -> why its reservations were scaled

    def update(
        self, uplinks: Iterable[str], ports: Mapping[int, QosSettings], flat_classes: bool
    ) -> dict[str, UplinkPlan]:
        """Plan and apply every uplink for ``ports`` (ifindex -> settings) and return the
        plans; ``flat_classes``: a flat tree keeps its capped ports' classes (only the
        kernel fast path classifies frames then). TcError when ``tc`` fails."""
        configured = self.configured_mbps is not None
        for uplink in uplinks:
            plan = plan_uplink(link_mbps_of(uplink, self.configured_mbps), ports, configured)
            if plan.link_kbit is None and not flat_classes:
                plan = FLAT
            before = self.applied.get(uplink)
            if plan == before:
                continue
            if plan == FLAT and before is None:  # a tree an earlier process left goes
                root = _root(uplink)
                if root is not None and _default_of(root) == f"{DEFAULT_CLASS:x}":
                    run_tc("qdisc", "del", "dev", uplink, "root", check=False)
            elif plan == FLAT and before is not None and before.link_kbit is None:
                for c in before.classes:
                    run_tc("class", "del", "dev", uplink, "classid", c.classid, check=False)
            else:
                apply_plan(uplink, plan, before)
            self.applied = {**self.applied, uplink: plan}
            self._report(uplink, plan)
        return dict(self.applied)

    def _report(self, uplink: str, plan: UplinkPlan) -> None:
        if not plan.oversubscribed:
            if uplink in self.warnings:
                self.warnings = {k: v for k, v in self.warnings.items() if k != uplink}
            return
        link = (plan.link_kbit or 0) // KBIT_PER_MBIT
        text = (f"reservations of {plan.reserved_kbit // KBIT_PER_MBIT} Mbit/s exceed uplink"
                f" {uplink}'s {link} Mbit/s: scaled to {plan.granted_kbit // KBIT_PER_MBIT}"
                " Mbit/s in proportion")  # fmt: skip
        if self.warnings.get(uplink) != text:
            log.warning("uplink scheduler: %s", text)
            self.warnings = {**self.warnings, uplink: text}

    def priority_of(self, ifindex: int) -> int:
        """The ``skb->priority`` of port ``ifindex``'s class where the tree is
        hierarchical (0: none, its frames take the default class)."""
        for plan in self.applied.values():
            if plan.link_kbit is not None and plan.of_port(ifindex) is not None:
                return class_priority(ifindex)
        return 0

    def scheduling(self, uplink: str) -> bool:
        """Whether ``uplink``'s tree is hierarchical (every frame must cross it)."""
        plan = self.applied.get(uplink)
        return plan is not None and plan.link_kbit is not None

    def port_class(self, ifindex: int) -> dict[str, object] | None:
        """Port ``ifindex``'s class as ``hnv vfp ports`` shows it (None: no class)."""
        for uplink, plan in self.applied.items():
            c = plan.of_port(ifindex)
            if c is not None:
                return {"class": c.classid, "rate_mbps": c.rate_kbit / KBIT_PER_MBIT,
                        "ceil_mbps": c.ceil_kbit / KBIT_PER_MBIT, "uplink": uplink}  # fmt: skip
        return None

    def status(self) -> dict[str, object]:
        """Per uplink: its capacity, reservations asked and granted, how many unreserved
        ports have a class of their own and the rate of each, a warning."""
        warnings = self.warnings
        return {
            uplink: {"link_mbps": None if p.link_kbit is None else p.link_kbit // KBIT_PER_MBIT,
                     "reserved_mbps": p.reserved_kbit / KBIT_PER_MBIT,
                     "granted_mbps": p.granted_kbit / KBIT_PER_MBIT,
                     "classes": len(p.classes),
                     **({"fair_share_ports": p.sharing,
                         "fair_share_mbps": p.share_kbit / KBIT_PER_MBIT} if p.sharing else {}),
                     **({"warning": warnings[uplink]} if uplink in warnings else {})}
            for uplink, p in sorted(self.applied.items())
        }  # fmt: skip
