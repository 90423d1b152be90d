"""The engine's object tree: VM ports hold layers, layers hold groups, groups hold rules.

These are the switch's own mutable state, changed only through commands. Each group
keeps a ``RuleIndex`` built on first use after a change; each port keeps its two unified
flow tables (outbound, inbound), its connections and its counters.
"""

from __future__ import annotations

import ipaddress
from collections import Counter

from openhnv.vfp.classifier import RuleIndex
from openhnv.vfp.flowtable import Flow, UnifiedFlowTable
from openhnv.vfp.limits import PortMeter, TokenBucket
from openhnv.vfp.policy import IN, OUT, Allow, Block, Direction, Rule
from openhnv.vfp.qos import NO_QOS, PortQos, QosSettings


class Group:
    """Rules of one direction and IP family, at a priority within its layer."""

    __slots__ = ("_index", "direction", "family", "name", "priority", "rules")

    def __init__(self, name: str, direction: Direction, family: int, priority: int) -> None:
        self.name = name
        self.direction = direction
        self.family = family
        self.priority = priority
        self.rules: dict[str, Rule] = {}
        self._index: RuleIndex | None = None

    def changed(self) -> None:
        self._index = None

    def index(self) -> RuleIndex:
        if self._index is None:
            self._index = RuleIndex(self.rules.values())
        return self._index


class Layer:
    """Groups at a priority within a port; ``stateful`` layers pass connection replies."""

    __slots__ = (
        "_order",
        "default_inbound",
        "default_outbound",
        "groups",
        "name",
        "priority",
        "stateful",
    )

    def __init__(
        self,
        name: str,
        priority: int,
        stateful: bool,
        default_inbound: Allow | Block,
        default_outbound: Allow | Block,
    ) -> None:
        self.name = name
        self.priority = priority
        self.stateful = stateful
        self.default_inbound = default_inbound
        self.default_outbound = default_outbound
        self.groups: dict[str, Group] = {}
        self._order: dict[tuple[Direction, int], list[Group]] | None = None

    def changed(self) -> None:
        self._order = None

    def groups_for(self, direction: Direction, family: int | None) -> list[Group]:
        """The groups a packet of ``direction`` and ``family`` crosses, in order."""
        if self._order is None:
            order: dict[tuple[Direction, int], list[Group]] = {}
            for g in sorted(self.groups.values(), key=lambda g: (g.priority, g.name)):
                order.setdefault((g.direction, g.family), []).append(g)
            self._order = order
        if family is None:
            return []
        return self._order.get((direction, family), [])

    def default(self, direction: Direction) -> Allow | Block:
        return self.default_inbound if direction == IN else self.default_outbound


class Port:
    """A VM port of the switch."""

    __slots__ = (
        "_layer_order",
        "access_vlan",
        "allow_mac_spoofing",
        "connections",
        "counters",
        "enabled",
        "gateway",
        "generation",
        "inbound",
        "ip_addresses",
        "layers",
        "mac",
        "meter",
        "name",
        "outbound",
        "packets_in",
        "packets_out",
        "qos",
        "qos_in",
        "qos_out",
        "rdid",
        "rule_hits",
        "uft_hits",
        "vsid",
    )

    def __init__(
        self,
        name: str,
        mac: str,
        vsid: int,
        rdid: str,
        ip_addresses: tuple[str, ...],
        allow_mac_spoofing: bool,
        capacity: int,
        gateway: bool = False,
        access_vlan: int | None = None,
    ) -> None:
        self.name = name
        self.access_vlan = access_vlan  # bridged onto this VLAN of the uplinks (no VSID)
        self.mac = mac
        self.vsid = vsid
        self.rdid = rdid
        self.ip_addresses = frozenset(ipaddress.ip_address(a) for a in ip_addresses)
        self.allow_mac_spoofing = allow_mac_spoofing
        self.gateway = gateway  # may send from addresses routed to it (a gateway compartment)
        self.enabled = True
        self.generation = 0
        self.layers: dict[str, Layer] = {}
        self._layer_order: list[Layer] | None = None
        self.outbound = UnifiedFlowTable(name, OUT, capacity)
        self.inbound = UnifiedFlowTable(name, IN, capacity)
        self.connections: dict[bytes, Flow] = {}
        self.counters: Counter[str] = Counter()
        self.rule_hits: Counter[tuple[str, str, str]] = Counter()
        self.packets_out = 0  # the hot counters live in slots, the rest in ``counters``
        self.packets_in = 0
        self.uft_hits = 0
        self.meter: PortMeter | None = None  # the abuse limits (VM ports; None: none)
        self.qos = NO_QOS  # the QoS layer's caps (vfp.qos) and their buckets (None: none)
        self.qos_out: TokenBucket | None = None
        self.qos_in: TokenBucket | None = None

    def set_qos(self, settings: QosSettings, police_inbound: bool = True) -> None:
        """The QoS layer's caps from now on (buckets kept when the caps are the same);
        ``police_inbound`` False: the inbound cap is the driver's to shape."""
        if settings != self.qos or (self.qos_in is not None) != (
            police_inbound and bool(settings.inbound_max_mbps)
        ):
            layer = PortQos(settings, 0.0)
            self.qos, self.qos_out = settings, layer.outbound
            self.qos_in = layer.inbound if police_inbound else None

    def all_counters(self) -> dict[str, int]:
        """Every counter of the port by name (``drop:<reason>``, ``punt:<reason>`` …)."""
        hot = {"packets_out": self.packets_out, "packets_in": self.packets_in}
        return {**hot, "uft_hits": self.uft_hits, **self.counters}

    def changed(self) -> None:
        """Policy changed: later hits of older UFT entries re-evaluate them."""
        self._layer_order = None
        self.generation += 1

    def layers_for(self, direction: Direction) -> list[Layer]:
        """Outbound crosses layers by ascending priority, inbound in reverse."""
        if self._layer_order is None:
            self._layer_order = sorted(self.layers.values(), key=lambda x: (x.priority, x.name))
        return self._layer_order if direction == OUT else self._layer_order[::-1]

    def table(self, direction: Direction) -> UnifiedFlowTable:
        return self.outbound if direction == OUT else self.inbound
