"""The VFP engine: one host's VM ports, uplink, spaces and flow tables, and its packet path.

``VfpEngine`` owns its parts and does one job itself, processing packets:

- ``engine.state`` (``state.EngineState``): spaces, ports, the uplink, shared templates;
- ``engine.programming`` (``programming.Programming``): ``apply`` / ``apply_all`` of the
  commands of ``openhnv.vfp.commands``;
- ``engine.listing`` (``listing.Listing``): read-only tables and ``trace``;
- ``engine.offload`` (``offload.Offloader``): which unified flows a kernel fast path
  may execute (off unless a switch with one enables it);
- the engine: ``process_batch(port, frames, now)`` takes frames sent by VM ``port`` (or
  received on ``UPLINK``) and returns the emits the I/O layer must carry out;
  ``expire`` and ``retire`` end flows; ``revalidate`` decides flows again from their
  keys (after a change of policy, or for the entries a restarted fast path kept).

A frame whose exact key is in the port's unified flow table at the port's generation
takes the fast path: one key build, one dict probe, one int compare and the cached
transposition. Anything else takes the slow path (``pipeline.decide``) and its decision
is committed to the table. A frame is parsed once: the key made for the probe and, on
the slow path, its ``FlowKey`` travel with it into ``decide`` and, unchanged, into the
port it is delivered to. The clock is an argument (``now``) or the callable given at
construction.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable

from openhnv.packet.addresses import MAC_GROUP_BIT, MAC_LEN, mac_to_bytes, mac_to_str
from openhnv.packet.errors import PacketError
from openhnv.packet.ethernet import (
    ETHERNET_HEADER_LEN,
    ETHERTYPE_ARP_BYTES,
    ETHERTYPE_AT,
    ETHERTYPE_VLAN_BYTES,
    VLAN_TCI_AT,
    pop_vlan,
)
from openhnv.packet.flowkey import (
    FAST_KEY,
    NVGRE_OUTER_KEY,
    VXLAN_OUTER_KEY,
    FlowKey,
    flow_key,
    outer_key,
    parse_flow_key,
)
from openhnv.packet.frames import (
    NVGRE_OUTER_LEN,
    VXLAN_OUTER_LEN,
    frag_needed_frame,
    packet_too_big_frame,
)
from openhnv.packet.ipv4 import IPV4_PROTOCOL_AT, PROTO_TCP, PROTO_UDP
from openhnv.packet.keyframe import frame_of_key, tunnel_frame_of_key
from openhnv.packet.tcp import TCP_ACK, TCP_FLAGS_AT, TCP_SYN
from openhnv.vfp.answer import answer_frame
from openhnv.vfp.decision import Decision
from openhnv.vfp.emits import UPLINK, Deliver, Drop, Emit, Punt, Transmit
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.flowtable import TCP_CLOSE_FLAGS, TCP_WATCH_FLAGS, Flow, UnifiedFlowTable
from openhnv.vfp.limits import FLOW_LIMIT, NO_LIMITS, PortLimits
from openhnv.vfp.listing import Listing
from openhnv.vfp.migration import ConnectionState
from openhnv.vfp.model import Port
from openhnv.vfp.offload import Answer, Offloader
from openhnv.vfp.pipeline import decide
from openhnv.vfp.policy import IN, OUT, Direction
from openhnv.vfp.programming import Programming
from openhnv.vfp.qos import QOS_INBOUND, QOS_OUTBOUND
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import (
    ENTROPY_MASK,
    MTU_EXCEEDED,
    Decap,
    Discard,
    Encap,
    LocalDelivery,
    Template,
)
from openhnv.vfp.uplink import decide_uplink

DEFAULT_FLOW_CAPACITY = 1_000_000
DEFAULT_IDLE_TIMEOUT = 120.0
DEFAULT_CLOSE_TIMEOUT = 10.0  # a closed TCP pair stays this long after its last packet
_SYN_ACK = TCP_SYN | TCP_ACK
# What opens a connection (docs/vfp.md "Connection origins"): packets (a TCP origin
# opens on a SYN without ACK), replays (a flow made afresh from a key stands for an
# established one), a migration's import (every connection it carries)
_OPEN_BY_PACKETS, _OPEN_BY_REPLAY, _OPEN_ALL = range(3)
_ARP = ETHERTYPE_ARP_BYTES
_GROUP_BIT = 0x01  # of a destination MAC's first byte: broadcast or multicast
_ETHERTYPE_END = ETHERTYPE_AT + len(ETHERTYPE_ARP_BYTES)
_OUTER_PROTOCOL_AT = ETHERNET_HEADER_LEN + IPV4_PROTOCOL_AT  # of an untagged outer frame
_ARG_LENGTH_SHIFT = 16  # a flow's arg: the inner length its cached header is for, above
_join = b"".join
_fast_key = FAST_KEY.unpack_from
_vxlan_key = VXLAN_OUTER_KEY.unpack_from
_nvgre_key = NVGRE_OUTER_KEY.unpack_from
_new = tuple.__new__


class VfpEngine:
    """One host's VFP engine: its state, programming and listings, and the packet path."""

    def __init__(
        self,
        *,
        flow_capacity: int = DEFAULT_FLOW_CAPACITY,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        limits: PortLimits = NO_LIMITS,
    ) -> None:
        if flow_capacity < 1:
            raise PolicyError("flow_capacity", flow_capacity, "must be at least 1")
        if idle_timeout <= 0:
            raise PolicyError("idle_timeout", idle_timeout, "must be positive")
        if close_timeout <= 0:
            raise PolicyError("close_timeout", close_timeout, "must be positive")
        self.state = EngineState(flow_capacity, limits)
        self.programming = Programming(self.state)
        self.listing = Listing(self.state)
        self.offload = Offloader(self.state)
        self.idle_timeout = idle_timeout
        self.close_timeout = close_timeout
        self.clock = clock
        self._opening = _OPEN_BY_PACKETS

    def set_limits(self, limits: PortLimits) -> None:
        """The abuse limits of every VM port from now on (their buckets start full)."""
        state = self.state
        state.limits = limits
        for p in state.ports.values():
            p.meter = state.meter()

    def pause(self, port: str) -> float:
        """Seconds the I/O may leave VM ``port``'s queue unread (``PortMeter.pause``)."""
        p = self.state.ports.get(port)
        meter = None if p is None else p.meter
        return 0.0 if meter is None else meter.pause()

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
            if not isinstance(frames, list | tuple):
                frames = list(frames)  # counted after the loop
            self._from_vm(self.state.port(port), frames, now, out)
        return out

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
                and not self._tcp_flags(p, f, frame[flags_at])
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
            elif t.__class__ is Discard and f.connection is not None and _opened(p, f.connection):
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
            and not self._tcp_flags(q, f, frame[flags_at])
        ):
            self._slow(q, IN, frame, now, out, f, checked, fk)
            return
        t = f.template
        if t.__class__ is Discard and f.connection is not None and _opened(q, f.connection):
            self._slow(q, IN, frame, now, out, f, checked, fk)  # a cached drop of a reply
            return
        q.uft_hits += 1
        f.last_seen = now
        em = t.emit(q.name, frame, 0)
        if em.__class__ is Deliver:
            out.append(em)
        else:
            self._after(q, em, now, out)

    def _from_uplink(self, frames: Iterable[bytes], now: float, out: list[Emit]) -> None:
        up = self.state.uplink
        get = up.inbound.flows.get
        ports = self.state.ports
        n = hits = 0
        append = out.append
        join, fast_key, vxlan_key, nvgre_key = _join, _fast_key, _vxlan_key, _nvgre_key
        protocol_at, udp = _OUTER_PROTOCOL_AT, PROTO_UDP  # locals: the loop's names
        vxlan_inner, nvgre_inner = VXLAN_OUTER_LEN, NVGRE_OUTER_LEN
        for frame in frames:
            n += 1
            try:  # plain VXLAN / NVGRE around plain IPv4 TCP/UDP; anything else misses
                if frame[protocol_at] == udp:
                    key = join(vxlan_key(frame) + fast_key(frame, vxlan_inner))
                    inner = vxlan_inner
                else:
                    key = join(nvgre_key(frame) + fast_key(frame, nvgre_inner))
                    inner = nvgre_inner
            except (IndexError, struct.error):
                key, inner = b"", 0
            f = get(key)
            if f is None or f.generation != up.generation:
                okey, inner = outer_key(frame)
                ikey = None
                if inner >= 0:
                    try:
                        ikey = flow_key(frame, inner)
                    except PacketError:  # or an access port's UDP, shaped like VXLAN
                        self._vlan_or_malformed(frame, now, out)
                        continue
                key = b"" if ikey is None else okey + ikey
                f = get(key) if key else None
                if f is None or f.generation != up.generation:
                    self._slow_uplink(frame, key, now, out, f, okey, ikey)
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
                or q.qos_in is not None  # capped: _to_vm meters it
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

    def _vlan_or_malformed(self, frame: bytes, now: float, out: list[Emit]) -> None:
        if not self._from_vlan(frame, now, out):
            self._drop(self.state.uplink, "malformed", out)

    def _from_vlan(self, frame: bytes, now: float, out: list[Emit]) -> bool:
        """A tagged frame from the uplink: when its VLAN has access ports, untagged to the
        one of its destination MAC (or to each, broadcast and multicast), through their
        inbound layers; True when the frame was the VLAN's (taken or dropped here)."""
        access = self.state.access_ports
        if not access or frame[ETHERTYPE_AT:VLAN_TCI_AT] != ETHERTYPE_VLAN_BYTES:
            return False
        try:
            vlan, untagged = pop_vlan(frame)
        except PacketError:
            return False
        members = access.get(vlan or 0)
        if members is None:
            return False
        up = self.state.uplink
        destination = mac_to_str(untagged[:MAC_LEN])
        if mac_to_str(untagged[MAC_LEN : 2 * MAC_LEN]) in members:
            self._drop(up, "vlan_own_frame", out)  # ours, back through another uplink
        elif untagged[0] & MAC_GROUP_BIT:
            for q in list(members.values()):
                self._to_vm(q, untagged, now, out)
        elif destination in members:
            self._to_vm(members[destination], untagged, now, out)
        else:
            self._drop(up, "vlan_no_port", out)
        return True

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
                    bool(frame[0] & 1), frame[ETHERTYPE_AT:_ETHERTYPE_END] == _ARP, now
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
        new_syn = flags is not None and flags & _SYN_ACK == TCP_SYN
        if stale is not None and new_syn and (stale.closing or _unopened(stale)):
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
            opens = self._opens(p, stale, None if flags is None else new_syn)
            flow = self._commit(p, table, fk.key, d, template, now, flags_at, reply, stale, opens)
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
            self._tcp_flags(p, flow, flags)

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

    def _slow_uplink(
        self,
        frame: bytes,
        key: bytes,
        now: float,
        out: list[Emit],
        stale: Flow | None,
        okey: bytes,
        ikey: bytes | None,
    ) -> None:
        """Decide a frame from the PA network; ``okey``/``ikey``: the outer and inner parts
        of its key (``ikey`` None when the frame has no plain shape: ``key`` is empty)."""
        if self._from_vlan(frame, now, out):
            return
        up = self.state.uplink
        d, inner = decide_uplink(self.state, frame, outer_key=okey, inner_key=ikey)
        self._count(up, d)
        template = d.template
        if template is None:
            raise RuntimeError("the uplink decision produced no template")
        cacheable = bool(key) and inner is not None
        if cacheable and self._commit(up, up.inbound, key, d, template, now, 0, b"", stale) is None:
            self._drop(up, "flow_table_full", out)
            return
        if isinstance(template, Decap) and inner is not None:  # inner: the decapsulated frame's
            q = self.state.ports[template.port]
            self._to_vm(q, frame[template.offset :], now, out, fk=inner)
        else:
            self._after(up, template.emit(UPLINK, frame, 0), now, out)

    def _opens(self, p: Port, stale: Flow | None, syn: bool | None) -> bool:
        """Whether a flow decided now opens the connection it may start (docs/vfp.md
        "Connection origins"). ``syn``: None for anything but TCP (opens), else whether
        the packet is a SYN without ACK (opens). A mid-stream TCP segment opens only a
        flow decided again in place that was open, a flow a replay makes afresh, or what
        a migration imports."""
        if syn is None or syn or self._opening == _OPEN_ALL:
            return True
        if stale is None:
            return self._opening == _OPEN_BY_REPLAY
        return stale.connection is not None and _opened(p, stale.connection, stale)

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
        opens: bool = True,
    ) -> Flow | None:
        """Store the decision under ``key`` (re-using a stale entry); None when full.
        ``opens``: whether a connection this flow starts opens (``_opens``)."""
        rules = self.state.rule_set(d.rules)
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
        if self.offload.enabled:  # the slow path only: a fast-path hit changes nothing
            self.offload.note(flow)
            if flow.pair is not None:
                self.offload.note(flow.pair)
        return flow

    # -- closing and retirement -------------------------------------------------------

    def _tcp_flags(self, p: Port, f: Flow, flags: int) -> bool:
        """React to the TCP ``flags`` of a packet on flow ``f`` of port ``p``.

        FIN or RST: the pair starts closing (kept until idle for ``close_timeout``, so the
        rest of the close still hits it). SYN without ACK on a closing flow, or on a flow
        of a connection no SYN opened: a new connection on the same ports: False, and the
        caller hands the packet and the flow to ``_slow``, which retires the old pair and
        decides afresh.
        """
        if flags & _SYN_ACK == TCP_SYN:
            if f.closing or _unopened(f):
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
        noting = self.offload.enabled
        for f in (flow, flow.pair):
            if f is None:
                continue
            n += f.table.discard(f)
            if noting:
                self.offload.note(f)
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
        for p in [*self.state.ports.values(), self.state.uplink]:
            for table in (p.outbound, p.inbound):
                flows = table.flows
                for f in table:
                    if flows.get(f.key) is not f:
                        continue  # retired with its reverse flow
                    if f.idle_since() < (close_limit if f.closing else limit):
                        retired += self.retire(p, f)
        return retired

    # -- revalidation ------------------------------------------------------------------

    def revalidate(self, heads: Iterable[Flow], now: float | None = None) -> None:
        """Decide ``heads`` again as their next packet would, without one (a revalidator:
        after a change of policy or of the spaces): a frame made from each key
        (``packet.keyframe``) is replayed (``replay``). Each head is noted for
        ``offload.operations()``. Heads that decide a connection's reply go after the
        others: a reply is decided once its origin was, so the outcome does not depend
        on the order of ``heads``."""
        heads = list(heads)
        frames: list[tuple[str, bytes]] = []
        replies: list[tuple[str, bytes]] = []
        for head in heads:
            table = head.table
            if table.flows.get(head.key) is not head:
                continue  # retired meanwhile
            uplink = table.port == UPLINK
            frame = tunnel_frame_of_key(head.key) if uplink else frame_of_key(head.key)
            if frame is not None:
                (replies if self._decides_reply(head) else frames).append((table.port, frame))
        self.replay_all(frames + replies, now)
        if self.offload.enabled:
            self.offload.touch(heads)

    def _decides_reply(self, head: Flow) -> bool:
        """Whether ``head`` is a reply flow, or an uplink head delivering into one."""
        t = head.template
        if head.table.port != UPLINK or not isinstance(t, Decap):
            return head.reply
        q = self.state.ports.get(t.port)
        tail = None if q is None else q.inbound.flows.get(head.key[t.outer_len :])
        return tail is not None and tail.reply

    def answer_of(self, head: Flow) -> Answer | None:
        """The decision of the answer to ``head`` (an encapsulating VM head not paired
        yet), made ahead: the slow path decides a frame of the answer (``vfp.answer``)
        at the uplink and then at ``head``'s port, and commits nothing. None unless it
        would be decapsulated to that port and delivered there as the reply of
        ``head``; else the answer's decapsulation as a flow in no table, and the edit
        of its delivery."""
        table = head.table
        p = self.state.ports.get(table.port)
        t = head.template
        if p is None or table.direction != OUT or not isinstance(t, Encap) or not p.enabled:
            return None
        frame = answer_frame(head.key, t, head.arg, mac_to_bytes(p.mac), p.vsid)
        if frame is None:
            return None
        okey, inner_at = outer_key(frame)
        if inner_at < 0:
            return None
        try:
            ikey = flow_key(frame, inner_at)
        except PacketError:
            return None
        up, inner = decide_uplink(self.state, frame, outer_key=okey, inner_key=ikey)
        d = up.template
        if inner is None or not isinstance(d, Decap) or d.port != p.name:
            return None
        reply = decide(self.state, p, IN, frame[d.offset :], inner)
        delivery = reply.template
        if (
            reply.reply_of is not head
            or not reply.cacheable
            or reply.punt is not None
            or reply.copies is not None
            or not isinstance(delivery, LocalDelivery)
            or delivery.port != p.name
        ):
            return None
        uplink = self.state.uplink
        flow = Flow(okey + ikey, uplink.inbound, uplink.generation, d, 0, head.last_seen, 0, ())
        return Answer(flow, delivery.edit)

    def replay(self, port: str, frame: bytes, now: float | None = None) -> None:
        """``replay_all`` of one frame."""
        self.replay_all([(port, frame)], now)

    def replay_all(self, frames: Iterable[tuple[str, bytes]], now: float | None = None) -> None:
        """Decide each (port, frame) as if the port had received it: the slow path for a
        flow without a current decision, else through its cached decision into the port
        it delivers to (whose inbound flow may be stale). Decisions are committed as a
        packet's would be; what they emit goes nowhere and the ports' packet and drop
        counters do not move (no packet crossed them)."""
        if now is None:
            now = self.clock()
        state = self.state
        saved = [(p, p.packets_in, p.uft_hits, _drop_counters(p))
                 for p in (*state.ports.values(), state.uplink)]  # fmt: skip
        scratch: list[Emit] = []
        capped = [(p, p.qos_in) for p in state.ports.values() if p.qos_in is not None]
        for p, _ in capped:
            p.qos_in = None  # a replayed frame is no traffic: it spends no bandwidth
        opening, self._opening = self._opening, max(self._opening, _OPEN_BY_REPLAY)
        try:
            for port, frame in frames:
                try:
                    if port == UPLINK:
                        self._replay_uplink(frame, now, scratch)
                    elif port in state.ports:
                        self._replay_vm(state.ports[port], frame, now, scratch)
                except PacketError:
                    continue  # not a frame the engine keys: nothing to decide
        finally:
            self._opening = opening
            for p, bucket in capped:
                p.qos_in = bucket
        for p, packets_in, hits, drops in saved:
            p.packets_in, p.uft_hits = packets_in, hits
            for name in [k for k in p.counters if k.startswith(_PACKET_COUNTERS)]:
                if drops.get(name, 0) != p.counters[name]:
                    p.counters[name] = drops.get(name, 0)

    # -- live migration (vfp.migration) --------------------------------------------------

    def connection_states(self, port: str) -> list[ConnectionState]:
        """The connections VM ``port`` tracks: the origin flow of each (what a live
        migration carries to the destination's ``adopt_connections``)."""
        p = self.state.port(port)
        return [
            ConnectionState(f.table.direction, f.key, f.closing)
            for f in list(p.connections.values())
            if f.table.flows.get(f.key) is f and not f.unopened
        ]

    def adopt_connections(
        self, port: str, states: Iterable[ConnectionState], now: float | None = None
    ) -> int:
        """Decide the origin flow of each connection of ``states`` at VM ``port`` from its
        key, in the direction it was opened, through this port's policy (vfp.migration);
        returns how many connections the port now tracks from them. Nothing is emitted
        and no packet counter moves (as ``replay_all``)."""
        if now is None:
            now = self.clock()
        state = self.state
        p = state.port(port)
        saved = [(q, q.packets_in, q.packets_out, q.uft_hits, _drop_counters(q))
                 for q in (*state.ports.values(), state.uplink)]  # fmt: skip
        scratch: list[Emit] = []
        adopted = 0
        opening, self._opening = self._opening, _OPEN_ALL  # the source opened them
        try:
            for s in states:
                frame = frame_of_key(s.key)
                if frame is None:
                    continue  # not a key the engine makes frames of: its next packet decides
                try:
                    fk = parse_flow_key(frame)
                except PacketError:
                    continue
                table = p.table(s.direction)
                other = p.connections.get(fk.connection())  # the peer's mid-stream packet
                if other is not None and other.unopened and other.table is not table:
                    self.retire(p, other)  # came first: this connection is the VM's
                self._slow(p, s.direction, frame, now, scratch, table.flows.get(fk.key), None, fk)
                flow = table.flows.get(fk.key)
                if flow is not None and _adopted(p, flow):
                    adopted += 1
                    flow.closing = s.closing
        finally:
            self._opening = opening
        for q, packets_in, packets_out, hits, drops in saved:
            q.packets_in, q.packets_out, q.uft_hits = packets_in, packets_out, hits
            for name in [k for k in q.counters if k.startswith(_PACKET_COUNTERS)]:
                if drops.get(name, 0) != q.counters[name]:
                    q.counters[name] = drops.get(name, 0)
        p.counters["connections_adopted"] += adopted
        return adopted

    def _replay_vm(self, p: Port, frame: bytes, now: float, scratch: list[Emit]) -> None:
        key = flow_key(frame)
        f = p.outbound.flows.get(key)
        if f is None or f.generation != p.generation:
            if p.enabled:
                self._slow(p, OUT, frame, now, scratch, f, key)
            return
        t = f.template
        if t.__class__ is LocalDelivery and t.port != p.name:
            self._after(p, t.emit(p.name, frame, f.arg), now, scratch)

    def _replay_uplink(self, frame: bytes, now: float, scratch: list[Emit]) -> None:
        up = self.state.uplink
        okey, inner = outer_key(frame)
        if inner < 0:
            return
        ikey = flow_key(frame, inner)
        key = okey + ikey
        f = up.inbound.flows.get(key)
        if f is None or f.generation != up.generation:
            self._slow_uplink(frame, key, now, scratch, f, okey, ikey)
            return
        t = f.template
        if isinstance(t, Decap) and t.port in self.state.ports:
            self._to_vm(self.state.ports[t.port], frame[t.offset :], now, scratch, ikey)


_PACKET_COUNTERS = ("drop:", "punt:")


def _drop_counters(p: Port) -> dict[str, int]:
    return {k: v for k, v in p.counters.items() if k.startswith(_PACKET_COUNTERS)}


def _opened(p: Port, connection: bytes, flow: Flow | None = None) -> bool:
    """Whether port ``p`` tracks ``connection`` as opened (by ``flow``, when given)."""
    origin = p.connections.get(connection)
    return origin is not None and not origin.unopened and (flow is None or origin is flow)


def _unopened(f: Flow) -> bool:
    """Whether ``f`` is a flow of a connection no SYN opened (its origin or its reply)."""
    return f.unopened or (f.pair is not None and f.pair.unopened)


def _adopted(p: Port, flow: Flow) -> bool:
    """Whether ``flow`` is the opened origin of a connection ``p`` tracks (allowed: not
    a cached drop)."""
    return flow.connection is not None and _opened(p, flow.connection, flow)
