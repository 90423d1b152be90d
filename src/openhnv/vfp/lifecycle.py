"""A flow's life in the unified flow tables: committed, paired, closed, retired.

The slow path's decisions become flows here (``commit``): a stateful layer's allowed
origin tracks its connection on the port (``Port.connections``, by the reply's key), a
reply pairs with its origin (``Flow.pair``), and whether a connection is *opened*
follows docs/vfp.md "Connection origins" (``opens``). TCP flags move a pair to closing
(``tcp_flags``); ``retire`` removes a pair and its connection, ``expire`` every pair idle
too long. Each change is noted for the offloader (``vfp.offload``) when it is on. No I/O;
the clock is an argument.
"""

from __future__ import annotations

from openhnv.packet.tcp import TCP_ACK, TCP_SYN
from openhnv.vfp.decision import Decision
from openhnv.vfp.flowtable import TCP_CLOSE_FLAGS, Flow, UnifiedFlowTable
from openhnv.vfp.model import Port
from openhnv.vfp.offload import Offloader
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import Discard, Template

SYN_ACK = TCP_SYN | TCP_ACK
# What opens a connection (docs/vfp.md "Connection origins"): packets (a TCP origin
# opens on a SYN without ACK), replays (a flow made afresh from a key stands for an
# established one), a migration's import (every connection it carries)
OPEN_BY_PACKETS, OPEN_BY_REPLAY, OPEN_ALL = range(3)


def opens(p: Port, stale: Flow | None, syn: bool | None, opening: int) -> bool:
    """Whether a flow decided now opens the connection it may start (docs/vfp.md
    "Connection origins"). ``syn``: None for anything but TCP (opens), else whether
    the packet is a SYN without ACK (opens). A mid-stream TCP segment opens only a
    flow decided again in place that was open, a flow a replay makes afresh, or what
    a migration imports. ``opening``: what opens connections now (``OPEN_BY_PACKETS``,
    ``OPEN_BY_REPLAY`` or ``OPEN_ALL``)."""
    if syn is None or syn or opening == OPEN_ALL:
        return True
    if stale is None:
        return opening == OPEN_BY_REPLAY
    return stale.connection is not None and opened(p, stale.connection, stale)


def commit(
    state: EngineState,
    offload: Offloader,
    p: Port,
    table: UnifiedFlowTable,
    key: bytes,
    d: Decision,
    template: Template,
    now: float,
    flags_at: int,
    reply: bytes,
    stale: Flow | None,
    opens: bool = True,
) -> Flow | None:
    """Store the decision under ``key`` (re-using a stale entry); None when full.
    ``opens``: whether a connection this flow starts opens (``opens``)."""
    rules = state.rule_set(d.rules)
    if stale is not None:
        flow = stale
        flow.generation, flow.template, flow.arg = p.generation, template, d.arg
        flow.rules, flow.flags_at, flow.last_seen = rules, flags_at, now
    else:
        flow = Flow(key, table, p.generation, template, d.arg, now, flags_at, rules)
        if not table.insert(flow):
            return None
        p.counters["flow_setups"] += 1
    allowed = not isinstance(template, Discard)
    origin = allowed and d.stateful and d.reply_of is None and not flow.reply
    if flow.connection is not None and not origin:
        if p.connections.get(flow.connection) is flow:
            del p.connections[flow.connection]
        flow.connection = None
    flow.unopened = origin and not opens
    if origin and reply:
        p.connections[reply] = flow
        flow.connection = reply
    if allowed and d.reply_of is not None:
        flow.reply = True
        flow.pair, d.reply_of.pair = d.reply_of, flow
        flow.closing = d.reply_of.closing = flow.closing or d.reply_of.closing
    if offload.enabled:  # the slow path only: a fast-path hit changes nothing
        offload.note(flow)
        if flow.pair is not None:
            offload.note(flow.pair)
    return flow


def tcp_flags(f: Flow, flags: int) -> bool:
    """React to the TCP ``flags`` of a packet on flow ``f``.

    FIN or RST: the pair starts closing (kept until idle for ``close_timeout``, so the
    rest of the close still hits it). SYN without ACK on a closing flow, or on a flow
    of a connection no SYN opened: a new connection on the same ports: False, and the
    caller hands the packet and the flow to the slow path, which retires the old pair and
    decides afresh.
    """
    if flags & SYN_ACK == TCP_SYN:
        if f.closing or unopened(f):
            return False  # the caller's slow path retires the old pair
    elif flags & TCP_CLOSE_FLAGS and not f.closing:
        f.closing = True
        if f.pair is not None:
            f.pair.closing = True
    return True


def retire(offload: Offloader, p: Port, flow: Flow) -> int:
    """Remove ``flow``, its reverse flow and their connection; returns how many flows
    left the tables (each counts in ``flows_retired``)."""
    n = 0
    noting = offload.enabled
    for f in (flow, flow.pair):
        if f is None:
            continue
        n += f.table.discard(f)
        if noting:
            offload.note(f)
        if f.connection is not None and p.connections.get(f.connection) is f:
            del p.connections[f.connection]
        f.connection = None
    if flow.pair is not None:
        flow.pair.pair = None
        flow.pair = None
    p.counters["flows_retired"] += n
    return n


def expire(
    state: EngineState,
    offload: Offloader,
    now: float,
    idle_timeout: float,
    close_timeout: float,
) -> int:
    """Retire every pair idle longer than ``close_timeout`` (closing) or ``idle_timeout``
    (open) at ``now``; returns how many flows were retired."""
    limit = now - idle_timeout
    close_limit = now - close_timeout
    retired = 0
    for p in [*state.ports.values(), state.uplink]:
        for table in (p.outbound, p.inbound):
            flows = table.flows
            for f in table:
                if flows.get(f.key) is not f:
                    continue  # retired with its reverse flow
                if f.idle_since() < (close_limit if f.closing else limit):
                    retired += retire(offload, p, f)
    return retired


def opened(p: Port, connection: bytes, flow: Flow | None = None) -> bool:
    """Whether port ``p`` tracks ``connection`` as opened (by ``flow``, when given)."""
    origin = p.connections.get(connection)
    return origin is not None and not origin.unopened and (flow is None or origin is flow)


def unopened(f: Flow) -> bool:
    """Whether ``f`` is a flow of a connection no SYN opened (its origin or its reply)."""
    return f.unopened or (f.pair is not None and f.pair.unopened)


def adopted(p: Port, flow: Flow) -> bool:
    """Whether ``flow`` is the opened origin of a connection ``p`` tracks (allowed: not
    a cached drop)."""
    return flow.connection is not None and opened(p, flow.connection, flow)
