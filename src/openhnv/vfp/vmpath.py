"""The packet path of VM ports: what a VM sends, what is delivered to a VM, the slow path.

A frame a VM sends (``_from_vm``) whose exact key is in the port's outbound unified flow
table at the port's generation takes the fast path: one key build, one dict probe, one
int compare and the cached transposition. A frame delivered to a VM (``_to_vm``) meets
the port's inbound table the same way. Anything else takes the slow path (``_slow``:
``pipeline.decide``), whose decision is committed to the table (``vfp.lifecycle``). A
frame is parsed once: the key made for the probe and, on the slow path, its ``FlowKey``
travel with it into ``decide`` and, unchanged, into the port it is delivered to. Drops,
punts and the answers to frames too big to encapsulate are counted on the port.

``VmPath`` is the base of the engine (``engine.VfpEngine``); the uplink's packet path
(``uplinkpath``) builds on it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from openhnv.packet.addresses import MAC_GROUP_BIT
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import ETHERTYPE_ARP_BYTES, ETHERTYPE_AT
from openhnv.packet.flowkey import FAST_KEY, FlowKey, flow_key, parse_flow_key
from openhnv.packet.frames import frag_needed_frame, packet_too_big_frame
from openhnv.packet.ipv4 import PROTO_TCP
from openhnv.packet.tcp import TCP_FLAGS_AT, TCP_SYN
from openhnv.vfp.decision import Decision
from openhnv.vfp.emits import Deliver, Drop, Emit, Punt, Transmit
from openhnv.vfp.flowtable import TCP_CLOSE_FLAGS, TCP_WATCH_FLAGS, Flow
from openhnv.vfp.lifecycle import (
    OPEN_BY_PACKETS,
    SYN_ACK,
    commit,
    opened,
    opens,
    retire,
    tcp_flags,
    unopened,
)
from openhnv.vfp.limits import FLOW_LIMIT
from openhnv.vfp.model import Port
from openhnv.vfp.offload import Offloader
from openhnv.vfp.pipeline import decide
from openhnv.vfp.policy import IN, OUT, Direction
from openhnv.vfp.qos import QOS_INBOUND, QOS_OUTBOUND
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import ENTROPY_MASK, MTU_EXCEEDED, Discard, Encap, Template

_ARP = ETHERTYPE_ARP_BYTES
_ETHERTYPE_END = ETHERTYPE_AT + len(ETHERTYPE_ARP_BYTES)
_ARG_LENGTH_SHIFT = 16  # a flow's arg: the inner length its cached header is for, above
_join = b"".join
_fast_key = FAST_KEY.unpack_from
_new = tuple.__new__


class VmPath:
    """The packet path of VM ports and the slow path, over the engine's state."""

    def __init__(self, state: EngineState, offload: Offloader, clock: Callable[[], float]) -> None:
        self.state = state
        self.offload = offload
        self.clock = clock
        self._opening = OPEN_BY_PACKETS  # what opens connections now (vfp.lifecycle.opens)

    def _from_vm(
        self, p: Port, frames: list[bytes] | tuple[bytes, ...], now: float, out: list[Emit]
    ) -> None:
        name = p.name
        if not p.enabled:
            self._drop_all(p, frames, "port_blocked", out)
            return
        flows = p.outbound.flows
        get = flows.get
        gen = p.generation
        misses = 0
        append = out.append
        qos = p.qos_out  # the QoS layer: first, on every frame (hits too)
        for frame in frames:
            if qos is not None and not qos.take(now, len(frame)):
                misses += 1
                self._drop(p, QOS_OUTBOUND, out)
                continue
            try:
                key = _join(_fast_key(frame))  # plain IPv4 TCP/UDP; anything else misses
            except struct.error:
                key = b""
            f = get(key)
            if f is None or f.generation != gen:
                f = self._out_miss(p, frame, now, out)
                if f is None:  # dropped, or decided on the slow path
                    misses += 1
                    continue
            f.last_seen = now
            flags_at = f.flags_at
            if (
                flags_at
                and len(frame) > flags_at
                and frame[flags_at] & TCP_WATCH_FLAGS
                and not tcp_flags(f, frame[flags_at])
            ):
                misses += 1  # a new connection on a closing flow's ports
                self._slow(p, OUT, frame, now, out, f)
                continue
            t = f.template
            if t.encap_inline:  # no inner edit: the flow's cached outer headers
                if f.arg >> _ARG_LENGTH_SHIFT == len(frame):
                    append(_new(Transmit, (f.header + frame, t.source_pa, t.provider_address)))  # type: ignore[union-attr]
                else:  # another length than the last packet's (rarer): its own call
                    self._encap_resized(p, f, frame, out)
            elif t.__class__ is Discard and f.connection is not None and opened(p, f.connection):
                misses += 1  # a cached drop of what is now a reply: decide again
                self._slow(p, OUT, frame, now, out, f)
            else:
                em = t.emit(name, frame, f.arg)
                if em.__class__ is Transmit:
                    append(em)
                else:
                    self._after(p, em, now, out, sent=(frame, t))
        p.packets_out += len(frames)
        p.uft_hits += len(frames) - misses

    def _encap_resized(self, p: Port, f: Flow, frame: bytes, out: list[Emit]) -> None:
        """Flow ``f``'s cached encapsulation of ``frame``, whose length differs from the
        last packet's: new outer headers (kept on the flow), or a drop when the frame does
        not fit the uplink once encapsulated."""
        t = f.template
        size = len(frame)
        if size > t.max_inner:  # type: ignore[union-attr]
            self._too_big(p, frame, t, out)  # type: ignore[arg-type]
            return
        arg = f.arg
        f.header = header = t.header(size, arg & ENTROPY_MASK)  # type: ignore[union-attr]
        f.arg = (arg & ENTROPY_MASK) | size << _ARG_LENGTH_SHIFT
        out.append(Transmit(header + frame, t.source_pa, t.provider_address))  # type: ignore[union-attr]

    def _to_vm(
        self,
        q: Port,
        frame: bytes,
        now: float,
        out: list[Emit],
        key: bytes | None = None,
        fk: FlowKey | None = None,
    ) -> None:
        """``frame`` enters VM port ``q``: its inbound layers (UFT first). ``key``: its
        probe key when known; ``fk``: its parsed view when known (then ``key`` is its)."""
        if not q.enabled:
            self._drop(q, "port_blocked", out)
            return
        q.packets_in += 1
        qos = q.qos_in  # the QoS layer: the last before the VM, on every frame
        if qos is not None and not qos.take(now, len(frame)):
            self._drop(q, QOS_INBOUND, out)
            return
        checked = None  # a key made here by flow_key: the frame is known to be well formed
        if fk is not None:
            key = fk.key
        elif key is None:
            try:
                key = checked = flow_key(frame)
            except PacketError:
                self._drop(q, "malformed", out)
                return
        f = q.inbound.flows.get(key)
        if f is None or f.generation != q.generation:
            self._slow(q, IN, frame, now, out, f, checked, fk)
            return
        flags_at = f.flags_at
        if (
            flags_at
            and len(frame) > flags_at
            and frame[flags_at] & TCP_WATCH_FLAGS
            and not tcp_flags(f, frame[flags_at])
        ):
            self._slow(q, IN, frame, now, out, f, checked, fk)
            return
        t = f.template
        if t.__class__ is Discard and f.connection is not None and opened(q, f.connection):
            self._slow(q, IN, frame, now, out, f, checked, fk)  # a cached drop of a reply
            return
        q.uft_hits += 1
        f.last_seen = now
        em = t.emit(q.name, frame, 0)
        if em.__class__ is Deliver:
            out.append(em)
        else:
            self._after(q, em, now, out)

    def _after(
        self,
        p: Port,
        em: Emit,
        now: float,
        out: list[Emit],
        fk: FlowKey | None = None,
        sent: tuple[bytes, Template] | None = None,
    ) -> None:
        """Carry out an emit other than a plain transmit: local delivery or a drop. ``fk``:
        the parsed view of a delivered frame, when known; ``sent``: the frame the VM sent
        and its template, to answer a frame too big to encapsulate."""
        if isinstance(em, Deliver) and em.port != p.name:
            self._to_vm(self.state.ports[em.port], em.frame, now, out, fk=fk)
        elif isinstance(em, Drop):
            p.counters[f"drop:{em.reason}"] += 1
            out.append(em)
            if em.reason == MTU_EXCEEDED and sent is not None and isinstance(sent[1], Encap):
                self._answer_too_big(p, sent[0], sent[1].next_hop_mtu, out)
        else:
            out.append(em)

    def _too_big(self, p: Port, frame: bytes, t: Encap, out: list[Emit]) -> None:
        """``frame`` would not fit the uplink once encapsulated: dropped and counted, and
        answered with "fragmentation needed" when it may not be fragmented."""
        p.counters[f"drop:{MTU_EXCEEDED}"] += 1
        out.append(Drop(p.name, MTU_EXCEEDED))
        self._answer_too_big(p, frame, t.next_hop_mtu, out)

    def _answer_too_big(self, p: Port, frame: bytes, mtu: int, out: list[Emit]) -> None:
        answer = frag_needed_frame(frame, mtu) or packet_too_big_frame(frame, mtu)
        if answer is not None:
            p.counters["frag_needed_sent"] += 1
            out.append(Deliver(p.name, answer))

    def _drop(self, p: Port, reason: str, out: list[Emit]) -> None:
        p.counters[f"drop:{reason}"] += 1
        out.append(Drop(p.name, reason))

    def _drop_all(self, p: Port, frames: Iterable[bytes], reason: str, out: list[Emit]) -> None:
        for _ in frames:
            self._drop(p, reason, out)

    def _out_miss(self, p: Port, frame: bytes, now: float, out: list[Emit]) -> Flow | None:
        """A frame from a VM that the fast key did not find (not plain IPv4 TCP/UDP, or a
        new flow): its flow under the full key, or None once it was dropped as malformed
        or taken down the slow path."""
        try:
            key = flow_key(frame)
        except PacketError:
            self._drop(p, "malformed", out)
            return None
        f = p.outbound.flows.get(key)
        if f is None:
            meter = p.meter
            if meter is not None:
                reason = meter.admit_miss(
                    bool(frame[0] & MAC_GROUP_BIT), frame[ETHERTYPE_AT:_ETHERTYPE_END] == _ARP, now
                )
                if reason is not None:
                    self._drop(p, reason, out)
                    return None
            self._slow(p, OUT, frame, now, out, f, key)
            return None
        if f.generation != p.generation:
            self._slow(p, OUT, frame, now, out, f, key)
            return None
        return f

    # -- slow path ---------------------------------------------------------------------

    def _slow(
        self,
        p: Port,
        direction: Direction,
        frame: bytes,
        now: float,
        out: list[Emit],
        stale: Flow | None,
        key: bytes | None = None,
        fk: FlowKey | None = None,
    ) -> None:
        """Decide ``frame`` at ``p`` and commit the decision. ``fk``: its parsed view when
        the caller has it; ``key``: its key when made by ``flow_key`` (not made again)."""
        if fk is None:
            try:
                fk = parse_flow_key(frame, 0, key)
            except PacketError:
                self._drop(p, "malformed", out)
                return
        flags = fk.tcp_flags
        new_syn = flags is not None and flags & SYN_ACK == TCP_SYN
        if stale is not None and new_syn and (stale.closing or unopened(stale)):
            self.retire(p, stale)  # a new connection on the ports of a closing one
            stale = None
        d = decide(self.state, p, direction, frame, fk)
        self._count(p, d)
        if self._uncached(p, d, frame, now, out):
            return
        template = d.template
        if template is None:  # decide() always sets one otherwise
            raise RuntimeError("the slow path produced no template")
        flow = None
        if d.cacheable:
            tcp = fk.protocol == PROTO_TCP and fk.l4_offset >= 0
            flags_at = fk.l4_offset + TCP_FLAGS_AT if tcp else 0
            table = p.table(direction)
            if stale is None and table is p.outbound and self._over_flow_limit(p, d):
                self._drop(p, FLOW_LIMIT, out)
                return
            reply = fk.reply_connection()
            opening = opens(p, stale, None if flags is None else new_syn, self._opening)
            flow = commit(self.state, self.offload, p, table, fk.key, d, template, now,
                          flags_at, reply, stale, opening)  # fmt: skip
            if flow is None:
                self._drop(p, "flow_table_full", out)
                return
            acl_drop = isinstance(template, Discard) and template.reason == "acl_deny"
            if acl_drop:  # remember whose packets it drops (see _to_vm)
                flow.connection = fk.connection() or None
        em = template.emit(p.name, frame, d.arg)
        if isinstance(em, Transmit) or (isinstance(em, Deliver) and em.port == p.name):
            out.append(em)
        else:  # an unedited frame delivered to another port keeps its parsed view
            same = fk if getattr(em, "frame", None) is frame else None
            self._after(p, em, now, out, same, (frame, template) if direction == OUT else None)
        if flow is not None and flags is not None and flags & TCP_CLOSE_FLAGS:
            tcp_flags(flow, flags)

    @staticmethod
    def _over_flow_limit(p: Port, d: Decision) -> bool:
        """Whether a new outbound flow of VM port ``p`` is one too many (``vfp.limits``:
        the first flow of a reply is always admitted)."""
        meter = p.meter
        return meter is not None and d.reply_of is None and not meter.admits_flow(len(p.outbound))

    def _uncached(self, p: Port, d: Decision, frame: bytes, now: float, out: list[Emit]) -> bool:
        """Carry out a decision that leaves no flow (a punt, or the copies of a broadcast);
        False for any other."""
        if d.punt is not None:
            p.counters[f"punt:{d.punt}"] += 1
            out.append(Punt(p.name, frame, d.punt))
            return True
        if d.copies is None:
            return False
        for copy in d.copies:
            em = copy.template.emit(p.name, copy.frame, copy.arg)
            (out.append(em) if isinstance(em, Transmit) else self._after(p, em, now, out))
        return True

    def _count(self, p: Port, d: Decision) -> None:
        p.counters["slow_path"] += 1
        for hit in d.hits:
            p.rule_hits[hit] += 1
        for name in d.counters:
            p.counters[f"count:{name}"] += 1

    def retire(self, p: Port, flow: Flow) -> int:
        """Remove ``flow``, its reverse flow and their connection; returns how many flows
        left the tables (each counts in ``flows_retired``)."""
        return retire(self.offload, p, flow)
