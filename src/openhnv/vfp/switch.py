"""The VSwitch: programming (``apply``), packet processing (fast and slow path), expiry.

``process_batch(port, frames, now)`` takes frames sent by VM ``port`` (or received on
``UPLINK``) and returns the emits the I/O layer must carry out. A frame whose exact key
is in the port's unified flow table at the port's generation takes the fast path: one
key build, one dict probe, one int compare and the cached transposition. Anything else
takes the slow path (``pipeline.decide``) and its decision is committed to the table.
The clock is an argument (``now``) or the callable given at construction.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable

from openhnv.packet.errors import PacketError
from openhnv.packet.flowkey import FAST_KEY, TCP_FLAGS_OFFSET, flow_key, parse_flow_key
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Emit, Punt, Transmit
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.flowtable import (
    TCP_ACK,
    TCP_CLOSE_FLAGS,
    TCP_SYN,
    TCP_WATCH_FLAGS,
    Flow,
    UnifiedFlowTable,
)
from openhnv.vfp.listing import Listing
from openhnv.vfp.model import Port
from openhnv.vfp.pipeline import Decision, Fabric, decide
from openhnv.vfp.policy import IN, OUT, Direction
from openhnv.vfp.programming import Programming
from openhnv.vfp.transposition import (
    IP_PROTO_UDP,
    IPV4_HEADER_LEN,
    UDP_HEADER_LEN,
    VXLAN_HEADER_LEN,
    VXLAN_PORT_BYTES,
    Decap,
    Discard,
    LocalDelivery,
    Template,
)
from openhnv.vfp.uplink import (
    NVGRE_OUTER_KEY,
    VXLAN_OUTER_KEY,
    decide_uplink,
    outer_key,
)

DEFAULT_FLOW_CAPACITY = 1_000_000
DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_CLOSE_TIMEOUT = 10.0  # a closed TCP pair stays this long after its last packet
_SYN_ACK = TCP_SYN | TCP_ACK
_VXLAN_OVERHEAD = IPV4_HEADER_LEN + UDP_HEADER_LEN + VXLAN_HEADER_LEN
_OUTER_VXLAN = 50
_OUTER_NVGRE = 42
_join = b"".join
_fast_key = FAST_KEY.unpack_from
_vxlan_key = VXLAN_OUTER_KEY.unpack_from
_nvgre_key = NVGRE_OUTER_KEY.unpack_from
_new = tuple.__new__
_DPORT = VXLAN_PORT_BYTES


class VSwitch(Programming, Listing):
    """One host's VFP engine: VM ports, the uplink, the spaces and the flow tables."""

    def __init__(
        self,
        *,
        flow_capacity: int = DEFAULT_FLOW_CAPACITY,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if flow_capacity < 1:
            raise PolicyError("flow_capacity", flow_capacity, "must be at least 1")
        if idle_timeout <= 0:
            raise PolicyError("idle_timeout", idle_timeout, "must be positive")
        if close_timeout <= 0:
            raise PolicyError("close_timeout", close_timeout, "must be positive")
        self.fabric = Fabric()
        self.flow_capacity = flow_capacity
        self.idle_timeout = idle_timeout
        self.close_timeout = close_timeout
        self.clock = clock
        self.uplink = Port(UPLINK, "00:00:00:00:00:00", 4096, "-", (), True, flow_capacity)

    # -- processing --------------------------------------------------------------------

    def process(self, port: str, frame: bytes, now: float | None = None) -> list[Emit]:
        """``process_batch`` of one frame."""
        return self.process_batch(port, (frame,), now)

    def process_batch(
        self, port: str, frames: Iterable[bytes], now: float | None = None
    ) -> list[Emit]:
        """The emits for ``frames`` sent by VM ``port``, or received on ``UPLINK``."""
        if now is None:
            now = self.clock()
        out: list[Emit] = []
        if port == UPLINK:
            self._from_uplink(frames, now, out)
        else:
            self._from_vm(self._port(port), frames, now, out)
        return out

    def _from_vm(self, p: Port, frames: Iterable[bytes], now: float, out: list[Emit]) -> None:
        name = p.name
        if not p.enabled:
            for _ in frames:
                self._drop(p, "port_blocked", out)
            return
        flows = p.outbound.flows
        get = flows.get
        gen = p.generation
        if not isinstance(frames, list | tuple):
            frames = list(frames)
        misses = 0
        append = out.append
        for frame in frames:
            try:
                key = _join(_fast_key(frame))  # plain IPv4 TCP/UDP; anything else misses
            except struct.error:
                key = b""
            f = get(key)
            if f is None or f.generation != gen:
                try:
                    key = flow_key(frame)
                except PacketError:
                    misses += 1
                    self._drop(p, "malformed", out)
                    continue
                f = get(key)
                if f is None or f.generation != gen:
                    misses += 1
                    self._slow(p, OUT, frame, key, now, out, f)
                    continue
            f.last_seen = now
            flags_at = f.flags_at
            if (
                flags_at
                and len(frame) > flags_at
                and frame[flags_at] & TCP_WATCH_FLAGS
                and not self._tcp_flags(p, f, frame[flags_at])
            ):
                misses += 1  # a new connection on a closing flow's ports
                self._slow(p, OUT, frame, key, now, out, f)
                continue
            t = f.template
            if t.encap_inline:  # no inner edit: the flow's cached outer headers
                size = len(frame)
                arg = f.arg
                if arg >> 16 == size:
                    header = f.header
                else:
                    f.header = header = t.header(size, arg)  # type: ignore[union-attr]
                    f.arg = (arg & 0xFFFF) | size << 16
                append(_new(Transmit, (header + frame, t.source_pa, t.provider_address)))  # type: ignore[union-attr]
            elif (
                t.__class__ is Discard
                and f.connection is not None
                and f.connection in p.connections
            ):
                misses += 1  # a cached drop of what is now a reply: decide again
                self._slow(p, OUT, frame, key, now, out, f)
            else:
                em = t.emit(name, frame, f.arg)
                if em.__class__ is Transmit:
                    append(em)
                else:
                    self._after(p, em, now, out)
        p.packets_out += len(frames)
        p.uft_hits += len(frames) - misses

    def _to_vm(
        self, q: Port, frame: bytes, now: float, out: list[Emit], key: bytes | None = None
    ) -> None:
        """``frame`` enters VM port ``q``: its inbound layers (UFT first)."""
        if not q.enabled:
            self._drop(q, "port_blocked", out)
            return
        q.packets_in += 1
        if key is None:
            try:
                key = flow_key(frame)
            except PacketError:
                self._drop(q, "malformed", out)
                return
        f = q.inbound.flows.get(key)
        if f is None or f.generation != q.generation:
            self._slow(q, IN, frame, key, now, out, f)
            return
        flags_at = f.flags_at
        if (
            flags_at
            and len(frame) > flags_at
            and frame[flags_at] & TCP_WATCH_FLAGS
            and not self._tcp_flags(q, f, frame[flags_at])
        ):
            self._slow(q, IN, frame, key, now, out, f)
            return
        t = f.template
        if t.__class__ is Discard and f.connection is not None and f.connection in q.connections:
            self._slow(q, IN, frame, key, now, out, f)  # a cached drop of a reply
            return
        q.uft_hits += 1
        f.last_seen = now
        em = t.emit(q.name, frame, 0)
        if em.__class__ is Deliver:
            out.append(em)
        else:
            self._after(q, em, now, out)

    def _from_uplink(self, frames: Iterable[bytes], now: float, out: list[Emit]) -> None:
        up = self.uplink
        get = up.inbound.flows.get
        ports = self.fabric.ports
        n = hits = 0
        append = out.append
        for frame in frames:
            n += 1
            try:  # plain VXLAN / NVGRE around plain IPv4 TCP/UDP; anything else misses
                proto = frame[23]
                if proto == IP_PROTO_UDP:
                    key = _join(_vxlan_key(frame) + _fast_key(frame, _OUTER_VXLAN))
                    inner = _OUTER_VXLAN
                else:
                    key = _join(_nvgre_key(frame) + _fast_key(frame, _OUTER_NVGRE))
                    inner = _OUTER_NVGRE
            except (IndexError, struct.error):
                key, inner = b"", 0
            f = get(key)
            if f is None or f.generation != up.generation:
                okey, inner = outer_key(frame)
                try:
                    key = okey + flow_key(frame, inner) if inner >= 0 else b""
                except PacketError:
                    self._drop(up, "malformed", out)
                    continue
                f = get(key) if key else None
                if f is None or f.generation != up.generation:
                    self._slow_uplink(frame, key, now, out, f)
                    continue
            hits += 1
            f.last_seen = now
            t = f.template
            if t.__class__ is not Decap:
                self._after(up, t.emit(UPLINK, frame, 0), now, out)
                continue
            d = t
            q = ports[d.port]
            ikey = key[d.outer_len :]
            qf = q.inbound.flows.get(ikey)
            inner_frame = frame[inner:]
            if (
                qf is None
                or qf.generation != q.generation
                or not q.enabled
                or qf.template.__class__ is Discard  # drops (maybe of replies now): _to_vm
                or (  # SYN, FIN or RST: _to_vm watches the connection's flags
                    qf.flags_at
                    and len(inner_frame) > qf.flags_at
                    and inner_frame[qf.flags_at] & TCP_WATCH_FLAGS
                )
            ):
                self._to_vm(q, inner_frame, now, out, ikey)
                continue
            q.packets_in += 1
            q.uft_hits += 1
            qf.last_seen = now
            qt = qf.template
            if qt.plain and qt.__class__ is LocalDelivery:
                append(_new(Deliver, (q.name, inner_frame)))
            else:
                em = qt.emit(q.name, inner_frame, 0)
                if em.__class__ is Deliver:
                    append(em)
                else:
                    self._after(q, em, now, out)
        up.packets_in += n
        up.uft_hits += hits

    def _after(self, p: Port, em: Emit, now: float, out: list[Emit]) -> None:
        """Carry out an emit other than a plain transmit: local delivery or a drop."""
        if isinstance(em, Deliver) and em.port != p.name:
            self._to_vm(self.fabric.ports[em.port], em.frame, now, out)
        elif isinstance(em, Drop):
            p.counters[f"drop:{em.reason}"] += 1
            out.append(em)
        else:
            out.append(em)

    def _drop(self, p: Port, reason: str, out: list[Emit]) -> None:
        p.counters[f"drop:{reason}"] += 1
        out.append(Drop(p.name, reason))

    # -- slow path ---------------------------------------------------------------------

    def _slow(
        self,
        p: Port,
        direction: Direction,
        frame: bytes,
        key: bytes,
        now: float,
        out: list[Emit],
        stale: Flow | None,
    ) -> None:
        try:
            fk = parse_flow_key(frame)
        except PacketError:
            self._drop(p, "malformed", out)
            return
        flags = fk.tcp_flags
        new_syn = flags is not None and flags & _SYN_ACK == TCP_SYN
        if stale is not None and stale.closing and new_syn:
            self.retire(p, stale)  # a new connection on the ports of a closing one
            stale = None
        d = decide(self.fabric, p, direction, frame, fk, key)
        self._count(p, d)
        if d.punt is not None:
            p.counters[f"punt:{d.punt}"] += 1
            out.append(Punt(p.name, frame, d.punt))
            return
        if d.copies is not None:
            for copy in d.copies:
                em = copy.template.emit(p.name, copy.frame, copy.arg)
                (out.append(em) if isinstance(em, Transmit) else self._after(p, em, now, out))
            return
        template = d.template
        if template is None:  # decide() always sets one otherwise
            raise RuntimeError("the slow path produced no template")
        flow = None
        if d.cacheable:
            tcp = fk.protocol == 6 and fk.l4_offset >= 0
            flags_at = fk.l4_offset + TCP_FLAGS_OFFSET if tcp else 0
            table = p.table(direction)
            reply = fk.reply_connection()
            flow = self._commit(p, table, key, d, template, now, flags_at, reply, stale)
            if flow is None:
                self._drop(p, "flow_table_full", out)
                return
            acl_drop = isinstance(template, Discard) and template.reason == "acl_deny"
            if acl_drop:  # remember whose packets it drops (see _to_vm)
                flow.connection = fk.connection() or None
        em = template.emit(p.name, frame, d.arg)
        if isinstance(em, Transmit) or (isinstance(em, Deliver) and em.port == p.name):
            out.append(em)
        else:
            self._after(p, em, now, out)
        if flow is not None and flags is not None and flags & TCP_CLOSE_FLAGS:
            self._tcp_flags(p, flow, flags)

    def _slow_uplink(
        self, frame: bytes, key: bytes, now: float, out: list[Emit], stale: Flow | None
    ) -> None:
        up = self.uplink
        d, inner = decide_uplink(self.fabric, frame)
        self._count(up, d)
        template = d.template
        if template is None:
            raise RuntimeError("the uplink decision produced no template")
        cacheable = bool(key) and inner is not None
        if cacheable and self._commit(up, up.inbound, key, d, template, now, 0, b"", stale) is None:
            self._drop(up, "flow_table_full", out)
            return
        if isinstance(template, Decap):
            ikey = flow_key(frame, template.offset)  # valid: decide_uplink parsed it
            self._to_vm(self.fabric.ports[template.port], frame[template.offset :], now, out, ikey)
        else:
            self._after(up, template.emit(UPLINK, frame, 0), now, out)

    def _count(self, p: Port, d: Decision) -> None:
        p.counters["slow_path"] += 1
        for hit in d.hits:
            p.rule_hits[hit] += 1
        for name in d.counters:
            p.counters[f"count:{name}"] += 1

    def _commit(
        self,
        p: Port,
        table: UnifiedFlowTable,
        key: bytes,
        d: Decision,
        template: Template,
        now: float,
        flags_at: int,
        reply: bytes,
        stale: Flow | None,
    ) -> Flow | None:
        """Store the decision under ``key`` (re-using a stale entry); None when full."""
        rules = self.fabric.rule_set(d.rules)
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
        if flow.connection is not None and not (allowed and d.stateful and d.reply_of is None):
            if p.connections.get(flow.connection) is flow:
                del p.connections[flow.connection]
            flow.connection = None
        if allowed and d.stateful and d.reply_of is None and reply:
            p.connections[reply] = flow
            flow.connection = reply
        if allowed and d.reply_of is not None:
            flow.pair, d.reply_of.pair = d.reply_of, flow
            flow.closing = d.reply_of.closing = flow.closing or d.reply_of.closing
        return flow

    # -- closing and retirement -------------------------------------------------------

    def _tcp_flags(self, p: Port, f: Flow, flags: int) -> bool:
        """React to the TCP ``flags`` of a packet on flow ``f`` of port ``p``.

        FIN or RST: the pair starts closing (kept until idle for ``close_timeout``, so the
        rest of the close still hits it). SYN without ACK on a closing flow: a new
        connection on the same ports: False, and the caller hands the packet and the
        closing flow to ``_slow``, which retires the old pair and decides afresh.
        """
        if flags & _SYN_ACK == TCP_SYN:
            if f.closing:
                return False  # the caller's slow path retires the old pair
        elif flags & TCP_CLOSE_FLAGS and not f.closing:
            f.closing = True
            if f.pair is not None:
                f.pair.closing = True
        return True

    def retire(self, p: Port, flow: Flow) -> int:
        """Remove ``flow``, its reverse flow and their connection; returns how many flows
        left the tables (each counts in ``flows_retired``)."""
        n = 0
        for f in (flow, flow.pair):
            if f is None:
                continue
            n += f.table.discard(f)
            if f.connection is not None and p.connections.get(f.connection) is f:
                del p.connections[f.connection]
            f.connection = None
        if flow.pair is not None:
            flow.pair.pair = None
            flow.pair = None
        p.counters["flows_retired"] += n
        return n

    def expire(self, now: float | None = None) -> int:
        """Retire every pair idle longer than the close timeout (closing) or the idle
        timeout (open); returns how many flows were retired."""
        if now is None:
            now = self.clock()
        limit = now - self.idle_timeout
        close_limit = now - self.close_timeout
        retired = 0
        for p in [*self.fabric.ports.values(), self.uplink]:
            for table in (p.outbound, p.inbound):
                flows = table.flows
                for f in table:
                    if flows.get(f.key) is not f:
                        continue  # retired with its reverse flow
                    if f.idle_since() < (close_limit if f.closing else limit):
                        retired += self.retire(p, f)
        return retired
