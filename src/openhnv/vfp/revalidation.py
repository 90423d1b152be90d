"""Deciding flows again without a packet: revalidation, replays, a migration's import.

After a change of policy or of the spaces, or for the entries a restarted kernel fast
path kept, ``revalidate`` decides flows again from their keys: a frame made from each key
(``packet.keyframe``) is replayed (``replay_all``) through the same slow path a packet
takes, and its decision committed. A live migration's destination decides the
connections the source tracked (``connection_states``) the same way, from their keys, in
the direction each was opened (``adopt_connections``, ``vfp.migration``). Nothing is
emitted, and the ports' packet, hit, drop and punt counters do not move: no packet
crossed them.
"""

from __future__ import annotations

from collections.abc import Iterable

from openhnv.packet.errors import PacketError
from openhnv.packet.flowkey import flow_key, outer_key, parse_flow_key
from openhnv.packet.keyframe import frame_of_key, tunnel_frame_of_key
from openhnv.vfp.emits import UPLINK, Emit
from openhnv.vfp.flowtable import Flow
from openhnv.vfp.lifecycle import OPEN_ALL, OPEN_BY_REPLAY, adopted
from openhnv.vfp.migration import ConnectionState
from openhnv.vfp.model import Port
from openhnv.vfp.policy import OUT
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import Decap, LocalDelivery
from openhnv.vfp.uplinkpath import UplinkPath

_PACKET_COUNTERS = ("drop:", "punt:")
# A port's packet counters, to put back after deciding without packets: the port, its
# packets in and out, its UFT hits, its drop and punt counters
_PacketCounts = tuple[Port, int, int, int, dict[str, int]]


class Revalidation(UplinkPath):
    """The packet path, deciding again from keys."""

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
        saved = _packet_counts(state)
        scratch: list[Emit] = []
        capped = [(p, p.qos_in) for p in state.ports.values() if p.qos_in is not None]
        for p, _ in capped:
            p.qos_in = None  # a replayed frame is no traffic: it spends no bandwidth
        opening, self._opening = self._opening, max(self._opening, OPEN_BY_REPLAY)
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
        _restore(saved)

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
        saved = _packet_counts(state)
        scratch: list[Emit] = []
        count = 0
        opening, self._opening = self._opening, OPEN_ALL  # the source opened them
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
                if flow is not None and adopted(p, flow):
                    count += 1
                    flow.closing = s.closing
        finally:
            self._opening = opening
        _restore(saved)
        p.counters["connections_adopted"] += count
        return count

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


def _drop_counters(p: Port) -> dict[str, int]:
    return {k: v for k, v in p.counters.items() if k.startswith(_PACKET_COUNTERS)}


def _packet_counts(state: EngineState) -> list[_PacketCounts]:
    """Every port's packet counters (the uplink's too), as they are now."""
    return [(p, p.packets_in, p.packets_out, p.uft_hits, _drop_counters(p))
            for p in (*state.ports.values(), state.uplink)]  # fmt: skip


def _restore(saved: list[_PacketCounts]) -> None:
    """Put the packet counters back as ``_packet_counts`` saw them."""
    for p, packets_in, packets_out, hits, drops in saved:
        p.packets_in, p.packets_out, p.uft_hits = packets_in, packets_out, hits
        for name in [k for k in p.counters if k.startswith(_PACKET_COUNTERS)]:
            if drops.get(name, 0) != p.counters[name]:
                p.counters[name] = drops.get(name, 0)
