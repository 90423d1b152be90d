"""Read-only views of an engine for ``hnv vfp`` and ``hnv trace``: plain data, no change.

``Listing`` (``engine.listing``) reads the ``EngineState`` it is given: ports, layers,
groups, rules, spaces, mappings, unified flows and counters as lists of ``TableRow``s
(JSON-ready dicts), and ``trace``, the dry run of one frame through a port (vfpctrl
/process-tuples, ovn-trace).

Each unified flow carries the ``state`` of its connection (``FLOW_STATES``), read from
the flow's own fields, so a listing tells an answered connection from a SYN nobody
answered yet and from a pair a mid-stream packet made (docs/vfp.md "Connection origins").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from openhnv.packet.errors import PacketError
from openhnv.packet.flowkey import describe_key, parse_flow_key
from openhnv.vfp.decision import Decision, TraceStep
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.flowtable import Flow
from openhnv.vfp.model import Port
from openhnv.vfp.pipeline import decide
from openhnv.vfp.policy import DIRECTIONS, IN, Direction, describe_action
from openhnv.vfp.qos import QOS
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import Decap, Discard, Encap, HeaderTransposition, LocalDelivery
from openhnv.vfp.uplink import decide_uplink

TableRow = dict[str, Any]
"""One row of a listing: column name -> JSON-ready value."""


@dataclass(frozen=True, slots=True)
class Trace:
    """What ``frame`` would do crossing ``port`` in ``direction``; ``then`` follows it into
    the local port it is delivered to (that port's inbound layers)."""

    port: str
    direction: Direction
    flow: str
    steps: tuple[TraceStep, ...]
    transposition: HeaderTransposition
    result: str
    then: Trace | None = None
    copies: tuple[str, ...] = field(default=())

    def lines(self) -> list[str]:
        """The trace as indented text lines."""
        out = [f"{self.port} {self.direction}: {self.flow}"]
        for s in self.steps:
            where = s.layer if s.group == "-" else f"{s.layer}/{s.group}"
            rule = "" if s.rule_id == "-" else f" rule {s.rule_id} (priority {s.priority})"
            note = f"  # {s.note}" if s.note else ""
            out.append(f"  {where}:{rule} {s.action}{note}")
        out.append(f"  transposition: {self.transposition.describe()}")
        out += [f"  copy: {x}" for x in self.copies]
        out.append(f"  result: {self.result}")
        if self.then is not None:
            out += ["  " + line for line in self.then.lines()]
        return out


def _result(d: Decision) -> str:
    if d.punt is not None:
        return f"punt({d.punt})"
    t = d.template
    if isinstance(t, Encap):
        return f"transmit from PA {t.source_pa} to PA {t.provider_address}"
    if isinstance(t, LocalDelivery):
        return f"deliver to port {t.port}"
    if isinstance(t, Decap):
        return f"decapsulate to port {t.port}"
    if isinstance(t, Discard):
        return f"drop({t.reason})"
    if d.copies is not None:
        return f"replicate to {len(d.copies)} VMs"
    return "nothing"


# What a flow's connection is, in the order ``flow_state`` decides it.
UNOPENED = "unopened"  # a mid-stream TCP segment made it: it opens nothing
CLOSING = "closing"  # a FIN or RST crossed the pair
ESTABLISHED = "established"  # both directions were seen: the pair is set up
SYN_SENT = "syn-sent"  # a TCP connection's first flow: its SYN, no answer yet
UNREPLIED = "unreplied"  # the same for UDP, ICMP …: no packet back yet
DROPPED = "dropped"  # a cached drop (an ACL deny, a discard)
STATELESS = "stateless"  # decided by stateless layers only: no connection
FLOW_STATES = (UNOPENED, CLOSING, ESTABLISHED, SYN_SENT, UNREPLIED, DROPPED, STATELESS)


def flow_state(f: Flow) -> str:
    """The state of ``f``'s connection, one of ``FLOW_STATES``."""
    pair = f.pair
    if f.unopened or (pair is not None and pair.unopened):
        return UNOPENED
    if isinstance(f.template, Discard):
        return DROPPED
    if f.closing:
        return CLOSING
    if pair is not None:
        return ESTABLISHED
    if f.connection is not None:  # the origin of a connection nothing answered yet
        return SYN_SENT if f.flags_at else UNREPLIED
    return STATELESS


def parse_states(text: str) -> frozenset[str]:
    """A comma-separated list of ``FLOW_STATES`` (a ``list-flows`` filter)."""
    states = frozenset(x.strip() for x in text.split(",") if x.strip())
    unknown = sorted(states - set(FLOW_STATES))
    if unknown or not states:
        raise PolicyError("state", text, f"states are {', '.join(FLOW_STATES)}")
    return states


def _flow_row(f: Flow, direction: str) -> TableRow:
    t = f.template
    desc = describe_key(f.key) if direction != UPLINK else f.key.hex()
    return {
        "direction": direction,
        "flow": desc,
        "key": f.key.hex(),
        "generation": f.generation,
        "last_seen": f.last_seen,
        "result": _result(Decision(template=t)),
        "flow_arg": f.arg & 0xFFFF,
        "rules": [r.rule_id for r in f.rules],
        "paired": f.pair is not None,
        "closing": f.closing,
        "connection": f.connection is not None,
        "state": flow_state(f),
    }


class Listing:
    """Inspection and trace of one engine's state."""

    def __init__(self, state: EngineState) -> None:
        self.state = state

    def _get_port(self, name: str) -> Port:
        return self.state.port_or_uplink(name)

    def ports(self) -> list[TableRow]:
        return [
            {"name": p.name, "mac": p.mac, "vsid": p.vsid, "rdid": p.rdid,
             "ip_addresses": sorted(str(a) for a in p.ip_addresses), "enabled": p.enabled,
             "allow_mac_spoofing": p.allow_mac_spoofing, "generation": p.generation,
             "layers": len(p.layers), "flows": len(p.outbound) + len(p.inbound),
             "qos_outbound_mbps": p.qos.outbound_max_mbps,
             "qos_inbound_mbps": p.qos.inbound_max_mbps,
             "qos_reserved_mbps": p.qos.outbound_reserved_mbps}
            for p in sorted(self.state.ports.values(), key=lambda p: p.name)
        ]  # fmt: skip

    def layers(self, port: str) -> list[TableRow]:
        """The port's layers in outbound order; a capped port's QoS layer (vfp.qos) first."""
        p = self._get_port(port)
        qos: list[TableRow] = []
        if p.qos.scheduled:
            qos.append(
                {
                    "name": QOS,
                    "priority": 0,
                    "stateful": False,
                    "default_inbound": _cap(p.qos.inbound_max_mbps),
                    "default_outbound": _cap(p.qos.outbound_max_mbps, p.qos.outbound_reserved_mbps),
                    "groups": 0,
                }
            )
        return qos + [
            {"name": x.name, "priority": x.priority, "stateful": x.stateful,
             "default_inbound": describe_action(x.default_inbound),
             "default_outbound": describe_action(x.default_outbound), "groups": len(x.groups)}
            for x in p.layers_for("out")
        ]  # fmt: skip

    def groups(self, port: str, layer: str) -> list[TableRow]:
        found = self._get_port(port).layers.get(layer)
        if found is None:
            raise PolicyError("layer", layer, f"no such layer on port {port}")
        return [
            {"name": g.name, "direction": g.direction, "family": g.family,
             "priority": g.priority, "rules": len(g.rules)}
            for g in sorted(found.groups.values(), key=lambda g: (g.priority, g.name))
        ]  # fmt: skip

    def rules(self, port: str, layer: str, group: str) -> list[TableRow]:
        p = self._get_port(port)
        found = p.layers.get(layer)
        g = None if found is None else found.groups.get(group)
        if g is None:
            raise PolicyError("group", group, f"no such group in {port}/{layer}")
        return [
            {"rule_id": r.rule_id, "priority": r.priority, "action": describe_action(r.action),
             "terminating": r.terminating, "conditions": repr(r.conditions),
             "matches": p.rule_hits[(layer, group, r.rule_id)]}
            for r in g.index().rules
        ]  # fmt: skip

    def spaces(self) -> list[TableRow]:
        """The routing domains the mapping space holds, with their VSIDs and sizes."""
        by_rdid: dict[str, TableRow] = {}
        for m in self.state.mappings.all():
            row = by_rdid.setdefault(m.rdid, {"rdid": m.rdid, "vsids": set(), "mappings": 0})
            row["vsids"].add(m.vsid)
            row["mappings"] += 1
        return [{**r, "vsids": sorted(r["vsids"])} for r in by_rdid.values()]

    def mappings(self) -> list[TableRow]:
        local = self.state.provider_addresses
        return [
            {"rdid": m.rdid, "customer_address": m.customer_address,
             "provider_address": m.provider_address, "customer_mac": m.customer_mac,
             "vsid": m.vsid, "encapsulation": m.encapsulation,
             "local": m.provider_address in local}
            for m in self.state.mappings.all()
        ]  # fmt: skip

    def provider_addresses(self) -> list[TableRow]:
        return [
            {"address": p.address, "mac": p.mac, "prefix_length": p.prefix_length,
             "vlan_id": p.vlan_id, "gateway_mac": p.gateway_mac}
            for p in sorted(self.state.provider_addresses.values(), key=lambda p: p.address)
        ]  # fmt: skip

    def flows(
        self, port: str, limit: int | None = None, states: frozenset[str] | None = None
    ) -> list[TableRow]:
        """The port's unified flows (both directions), up to ``limit`` of them; only those
        whose ``flow_state`` is one of ``states`` when given."""
        p = self._get_port(port)
        rows: list[TableRow] = []
        for direction, table in (("out", p.outbound), ("in", p.inbound)):
            for f in table:
                if limit is not None and len(rows) >= limit:
                    return rows
                if states is None or flow_state(f) in states:
                    rows.append(_flow_row(f, UPLINK if p is self.state.uplink else direction))
        return rows

    def counters(self, port: str) -> TableRow:
        """The port's counters: packets, UFT hits, flow setups, ``drop:<reason>`` …;
        the connections it tracks, and how many of them are in each state
        (``connections:<state>``, e.g. ``connections:syn-sent``: never answered)."""
        p = self._get_port(port)
        by_state = Counter(flow_state(f) for f in p.connections.values())
        return {
            "port": p.name, "flows": len(p.outbound) + len(p.inbound),
            "connections": len(p.connections),
            **{f"connections:{s}": by_state[s] for s in FLOW_STATES if by_state[s]},
            **dict(sorted(p.all_counters().items())),
        }  # fmt: skip

    def rule_counters(self, port: str) -> list[TableRow]:
        """Per-rule matches (slow-path decisions, i.e. flows set up or re-evaluated)."""
        p = self._get_port(port)
        return [
            {"layer": layer, "group": group, "rule_id": rule_id, "matches": n}
            for (layer, group, rule_id), n in sorted(p.rule_hits.items())
        ]

    def trace(self, port: str, direction: Direction, frame: bytes) -> Trace:
        """The dry run of ``frame`` through ``port`` (``UPLINK``: a frame from the PA
        network, direction "in"); nothing in the switch changes."""
        if direction not in DIRECTIONS:
            raise PolicyError("direction", direction, "a direction is 'in' or 'out'")
        state = self.state
        if port == UPLINK:
            d, fk = decide_uplink(state, frame, record=True)
            then = None
            if isinstance(d.template, Decap):
                then = self.trace(d.template.port, IN, frame[d.template.offset :])
            flow = fk.describe() if fk is not None else "malformed"
            return Trace(UPLINK, IN, flow, tuple(d.steps),
                         HeaderTransposition(tuple(d.ops)), _result(d), then)  # fmt: skip
        p = self._get_port(port)
        try:
            fk = parse_flow_key(frame)
        except PacketError as exc:
            step = TraceStep("-", "-", "-", None, "drop(malformed)", str(exc))
            return Trace(
                port, direction, "malformed", (step,), HeaderTransposition(), "drop(malformed)"
            )
        if not p.enabled:
            step = TraceStep("-", "-", "-", None, "drop(port_blocked)")
            return Trace(
                port, direction, fk.describe(), (step,), HeaderTransposition(), "drop(port_blocked)"
            )
        d = decide(state, p, direction, frame, fk, record=True)
        then = None
        if d.next_port is not None and d.next_port != port and d.template is not None:
            em = d.template.emit(port, frame, d.arg)
            inner = getattr(em, "frame", None)
            if inner is not None:
                then = self.trace(d.next_port, IN, inner)
        copies = tuple(
            (f"port {x.next_port}" if x.next_port else _result(Decision(template=x.template)))
            + f" dst {parse_flow_key(x.frame).dst_mac}"
            for x in d.copies or ()
        )
        return Trace(port, direction, fk.describe(), tuple(d.steps),
                     HeaderTransposition(tuple(d.ops)), _result(d), then, copies)  # fmt: skip


def _cap(mbps: int, reserved: int = 0) -> str:
    """How the QoS layer treats one direction: a policer at ``mbps``, or nothing; and
    the minimum the uplink scheduler keeps for it (``reserve(...)``, vswitch.htb)."""
    text = f"police({mbps} Mbit/s)" if mbps else "allow"
    return f"{text}, reserve({reserved} Mbit/s)" if reserved else text
