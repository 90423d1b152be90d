"""Which unified flows a kernel fast path may execute: the engine's offload decisions.

The engine stays the only place that decides; a fast path below it (an eBPF executor,
as GFT is for VFP) is a cache of its decisions with exact invalidation. This part
(``engine.offload``, pure, no I/O) says which flows that cache should hold and when
one must leave it, as operations the I/O edge applies (``Offload``, ``Withdraw``).

What a kernel entry is. A frame takes one entry from where it enters the host to
where it leaves, so an entry is the composition of what the engine does to it:

- a VM port's outbound flow (the *head*): encapsulation toward a remote PA
  (``encap``), or local delivery (``deliver``) composed with the destination port's
  inbound flow (the *tail*: its inner edit after the head's, its policy too);
- an uplink flow (the head): decapsulation composed with the destination port's
  inbound flow (the tail) (``decap``).

When. A head goes down once the slow path has decided both directions of its connection
and has carried it past its handshake: the head (VM port) or the tail (decapsulation,
local delivery) is one flow of a pair (``Flow.pair``, set when the reverse direction was
decided as its reply, stateful ACLs included), and frames of the pair reached the slow
path after the pairing in ``FRAMES_PAST_PAIRING`` polling rounds (``due``; for TCP the
handshake's last ACK, then the first data or the close). The pairing marks both flows'
idle clocks (``SEEN_MARK`` back) and a frame of either moves them past the mark. So the
frame that pairs a connection (a TCP SYN-ACK, a UDP answer) is forwarded with nothing
written on its path, and no write shares the CPU with the moment the connecting VM
returns from ``connect``; a connection that ends with its handshake costs no write. Nor
does one that is closing (a FIN or RST crossed it) before its rounds are counted: it
goes down only if it carries frames in ``CLOSING_FRAMES_PAST_PAIRING`` rounds without a
quiet one between (a half-closed stream), else it ends on the slow path that decided it
(``_ends_in_python``); an offered connection that closes keeps its entries, which carry
what follows its FIN. Frames that come before the entries are in the kernel take the
slow path, which decided the connection already (GSO frames too: the switch segments
them, docs/fastpath.md). Composed heads follow their tails. Drops, punts, broadcast
replication and flows without a pair stay in Python, and so does every first packet (it
is what decides). So does every flow of an access port (a NIC on a VLAN network): the
kernel's programs encapsulate, decapsulate and deliver, they do not push or pop an
802.1Q tag, so neither its bridged frames nor its deliveries to or from another access
port are offered (the kernel misses them and hands them to the switch, which alone
decides them). Nor is any flow whose (inner) frame is not IPv4: the kernel's programs
parse IPv4 only (``miss_not_ipv4``), so an IPv6 entry could never hit. A flow leaves
(``Withdraw``) when it retires, when its decision (or its tail's) becomes something the
kernel must not do, or when its port goes.

Every change to a flow that the engine commits (``note``: the slow path, a pairing,
a retirement) is remembered and evaluated in ``operations()``, which the edge calls
when the notes are due (end of a polling round), after programming and after
expiry: the per-packet path pays nothing.

``revalidation_set`` names the offered heads a change of policy or of the spaces may
affect (``VfpEngine.revalidate`` decides them again); ``used`` gives kernel hits
back to the flows' idle clocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple, TypeAlias

from openhnv.packet.addresses import MAC_LEN
from openhnv.packet.ethernet import (
    ETHERTYPE_AT,
    ETHERTYPE_IPV4_BYTES,
)
from openhnv.packet.flowkey import FAST_KEY_LEN, FAST_KEY_TTL_AT
from openhnv.vfp.emits import UPLINK
from openhnv.vfp.flowtable import Flow
from openhnv.vfp.model import Port
from openhnv.vfp.policy import IN, OUT
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import ENTROPY_MASK, Decap, Encap, InnerEdit, LocalDelivery

Action: TypeAlias = Literal["encap", "deliver", "decap"]
ENCAP: Action = "encap"
DELIVER: Action = "deliver"
DECAP: Action = "decap"
_MACS_LEN = 2 * MAC_LEN
_IPV6 = 6
PENDING_MAX = 1024
"""Notes kept before ``due`` says evaluate them anyway (flows that never pair)."""
FRAMES_PAST_PAIRING = 2
"""Rounds with frames of a paired connection on the slow path before it goes down: the
handshake's last ACK, then its first data (or its close); its handshake and the
moment its peer returns from ``connect`` share no CPU with the writes."""
CLOSING_FRAMES_PAST_PAIRING = 8
"""Rounds a connection already closing (a FIN or RST crossed it) must carry frames in,
one after another, before it goes down: one that closes after its handshake or a short
exchange ends on the slow path with no kernel write; a half-closed stream still goes."""
SEEN_MARK = 1e-9
"""How far back (seconds) a pairing sets its flows' idle clocks: any later frame, even
in the same batch or at the same clock reading, moves them past the mark (``due``)."""

TailKey = tuple[str, bytes]
"""(port, key) of the inbound flow a composed head hands its frames to."""


@dataclass(frozen=True, slots=True)
class FlowEdit:
    """What an entry does to the inner frame: the new destination and source MACs
    (12 bytes) and whether the IPv4 TTL drops by one."""

    macs: bytes
    decrement_ttl: bool


@dataclass(frozen=True, slots=True)
class OffloadEntry:
    """What the kernel must do with frames of one head flow (plain data; the edge makes
    its kernel key from ``key`` and its entry from the rest)."""

    action: Action
    port: str  # the head's port: a VM port, or UPLINK
    key: bytes  # the head's unified-flow key
    target: str | None  # deliver / decap: the VM port the frames go to
    encap: Encap | None  # encap: the destination's compiled outer headers
    entropy: int  # encap: VXLAN source port or NVGRE FlowID
    edit: FlowEdit | None
    ports: tuple[str, ...]  # whose policy the decision used: the head's port, the target


class Offload(NamedTuple):
    """Install (or replace) the kernel entry of ``head`` (``tail``: its composed inbound
    flow, None for encapsulation)."""

    head: Flow
    tail: Flow | None
    entry: OffloadEntry


class Withdraw(NamedTuple):
    """Remove the kernel entry of ``head`` (its last offered ``entry``)."""

    head: Flow
    entry: OffloadEntry


OffloadOp: TypeAlias = Offload | Withdraw


def edited_key(key: bytes, edit: InnerEdit | None) -> bytes:
    """The key of a frame of flow ``key`` after ``edit`` (new MACs, TTL - 1 in a fast
    key; other keys hold no TTL)."""
    if edit is None:
        return key
    key = edit.macs + key[_MACS_LEN:]
    if edit.decrement_ttl and len(key) == FAST_KEY_LEN and key[FAST_KEY_TTL_AT]:
        ttl = key[FAST_KEY_TTL_AT] - 1
        key = key[:FAST_KEY_TTL_AT] + bytes((ttl,)) + key[FAST_KEY_TTL_AT + 1 :]
    return key


def _ipv4_key(key: bytes, offset: int = 0) -> bool:
    """Whether the flow key (of the frame at ``offset``) is an untagged IPv4 frame's."""
    at = offset + ETHERTYPE_AT
    return key[at : at + len(ETHERTYPE_IPV4_BYTES)] == ETHERTYPE_IPV4_BYTES


def _compose(first: InnerEdit | None, then: InnerEdit | None) -> tuple[bool, FlowEdit | None]:
    """(expressible, the edit of ``first`` then ``then``): one MAC rewrite (the last
    one wins) and at most one IPv4 TTL decrement."""
    edits = [e for e in (first, then) if e is not None]
    if not edits:
        return True, None
    if any(e.family == _IPV6 for e in edits) or sum(e.decrement_ttl for e in edits) > 1:
        return False, None
    return True, FlowEdit(edits[-1].macs, any(e.decrement_ttl for e in edits))


def _tail_key_of(head: Flow) -> TailKey | None:
    """The tail a decapsulating or locally delivering ``head`` hands its frames to."""
    t = head.template
    port = head.table.port
    if isinstance(t, Decap) and port == UPLINK:
        return (t.port, head.key[t.outer_len :])
    if isinstance(t, LocalDelivery) and t.port != port:
        return (t.port, edited_key(head.key, t.edit))
    return None


def _encap_entry(head: Flow, p: Port, t: Encap) -> OffloadEntry | None:
    ok, edit = _compose(t.edit, None)
    if not ok:
        return None
    entropy = head.arg & ENTROPY_MASK
    return OffloadEntry(ENCAP, p.name, head.key, None, t, entropy, edit, (p.name,))


class Offloader:
    """The offload decisions of one engine (module docstring); ``enabled`` by the switch
    that has a fast path, else every hook is skipped."""

    def __init__(self, state: EngineState) -> None:
        self.state = state
        self.enabled = False
        self.pending: list[Flow] = []
        """Flows changed since the last ``operations()`` (the engine appends)."""
        self.offered: dict[Flow, tuple[OffloadEntry, Flow | None]] = {}
        """Heads whose entry the edge was told to install, with that entry and tail."""
        self.marks: dict[Flow, tuple[float, int]] = {}
        """Noted flows paired and not offered -> (the mark set last on the pair's idle
        clocks, the frames past the pairing seen so far): ``note``, ``due``."""
        self._ready: set[Flow] = set()
        """Flows of connections that carried their rounds since the last ``operations()``
        (``_waits``): a closing connection goes down only from here."""
        self._looked = 0  # the notes ``due`` looked at
        self._due_now = False  # one of them makes the notes due
        self._heads_of: dict[TailKey, list[Flow]] = {}  # composed heads by their tail
        self._tail_of: dict[Flow, TailKey] = {}

    def enable(self) -> None:
        self.enabled = True

    def note(self, flow: Flow) -> None:
        """``flow`` was committed, paired, re-evaluated or retired. A paired flow not
        offered yet: both idle clocks go ``SEEN_MARK`` back from the later one, and the
        mark is kept, so that ``due`` sees whether a frame of the pair came since."""
        self.pending.append(flow)
        if flow.pair is not None and flow not in self.offered:
            self._mark(flow, 0)

    def _mark(self, flow: Flow, frames: int) -> None:
        """Set the pair's idle clocks ``SEEN_MARK`` back from the later one and keep the
        mark, with the count of ``frames`` past the pairing seen before it."""
        pair = flow.pair
        assert pair is not None
        mark = max(flow.last_seen, pair.last_seen) - SEEN_MARK
        flow.last_seen = min(flow.last_seen, mark)
        pair.last_seen = min(pair.last_seen, mark)
        self.marks[flow] = (mark, frames)

    def touch(self, heads: Iterable[Flow]) -> None:
        """Evaluate ``heads`` again at the next ``operations()``."""
        self.pending.extend(heads)

    def port_attached(self, port: str) -> None:
        """The interface of VM ``port`` appeared (a port created before its VM arrived, as
        on a live migration's destination): what was offered for it before could not
        reach the kernel, so its flows and the heads delivering to it are offered again
        at the next ``operations()``."""
        p = self.state.ports.get(port)
        if p is None:
            return
        heads = list(p.outbound)
        for tail in p.inbound:
            heads += self._heads_of.get((port, tail.key), ())
        for head in heads:
            self.offered.pop(head, None)
        self.pending.extend(heads)

    def due(self) -> bool:
        """Whether ``operations()`` may change what the kernel holds now: a noted flow is
        offered, a noted tail has an offered head, a noted head's tail is paired (and not
        waiting, below); a paired connection carried frames past its handshake
        (``marks``, ``_waits``); or the notes reached ``PENDING_MAX``. Neither a
        connection's first packet nor the frame that pairs it makes the notes due: what
        they change waits, off their path. Each note is looked at once (the edge asks
        after every polling round): what it says cannot change before ``operations()``
        without another note."""
        pending = self.pending
        if len(pending) >= PENDING_MAX:
            return True
        if not self._due_now:
            for at in range(self._looked, len(pending)):
                if self._due_on_note(pending[at]):
                    self._due_now = True
                    break
            self._looked = len(pending)
        if self._due_now:
            return True
        return any(not self._waits(flow) for flow in list(self.marks))

    def may_be_due(self) -> bool:
        """Whether ``due`` could answer yes: a note it has not looked at, a paired
        connection waiting for its rounds, or a note already found due. Read without the
        engine's lock after each polling round: a note that races it is seen next round
        (or by the next ``operations()``); the notes of connections that ended on the
        slow path, waiting for ``PENDING_MAX``, then cost a round nothing."""
        return self._due_now or len(self.pending) != self._looked or bool(self.marks)

    def _due_on_note(self, flow: Flow) -> bool:
        """Whether the note of ``flow`` alone makes the notes due (``due``; a paired flow
        waits in ``marks``)."""
        offered = self.offered
        if flow in offered:
            return True
        if flow.pair is not None:  # waits in ``marks`` when its pairing noted it
            return flow not in self.marks
        table = flow.table
        if table.direction == IN and table.port != UPLINK:  # a tail: its heads
            return any(h in offered for h in self._heads_of.get((table.port, flow.key), ()))
        tail_key = _tail_key_of(flow)
        tail = None if tail_key is None else self._paired_tail(tail_key)
        return tail is not None and tail not in self.marks

    def _waits(self, flow: Flow) -> bool:
        """Whether the paired ``flow``'s connection has not carried ``FRAMES_PAST_PAIRING``
        frames through the slow path since its pairing (``CLOSING_FRAMES_PAST_PAIRING``
        once it is closing): a frame moved an idle clock past the mark (``note``) since
        the last look, which counts it and marks again (frames of one polling round count
        once). A closing connection that had a round without frames stops waiting: it
        ends on the slow path (``_entry_of``)."""
        pair = flow.pair
        marked = self.marks.get(flow)
        if marked is None or pair is None:
            return False
        mark, frames = marked
        closing = flow.closing or pair.closing
        if flow.last_seen <= mark and pair.last_seen <= mark:
            if closing:
                del self.marks[flow]
            return True
        if frames + 1 >= (CLOSING_FRAMES_PAST_PAIRING if closing else FRAMES_PAST_PAIRING):
            self._ready.add(flow)
            self._ready.add(pair)
            return False
        self._mark(flow, frames + 1)
        return True

    def _paired_tail(self, tail_key: TailKey) -> Flow | None:
        q = self.state.ports.get(tail_key[0])
        tail = None if q is None else q.inbound.flows.get(tail_key[1])
        return tail if tail is not None and tail.pair is not None else None

    # -- evaluation ------------------------------------------------------------------

    def operations(self) -> list[OffloadOp]:
        """What the edge must change, for every flow noted since the last call."""
        # each flow where it was noted last: a first packet's notes, left waiting for the
        # answer's (``due``), then come in the order the answer's pairing noted them, the
        # order of the offers (and so of a later revalidation) when they went at once
        pending = list(dict.fromkeys(reversed(self.pending)))
        pending.reverse()
        self.pending = []
        self.marks.clear()
        self._looked, self._due_now = 0, False
        ops: list[OffloadOp] = []
        seen: set[Flow] = set()
        for flow in pending:
            if flow in seen:
                continue
            seen.add(flow)
            table = flow.table
            if table.direction == IN and table.port != UPLINK:  # a tail: its heads
                for head in list(self._heads_of.get((table.port, flow.key), ())):
                    if head not in seen:
                        seen.add(head)
                        self._evaluate(head, ops)
            else:
                self._evaluate(flow, ops)
        self._ready.clear()
        return ops

    def _evaluate(self, head: Flow, ops: list[OffloadOp]) -> None:
        entry, tail, tail_key = self._entry_of(head)
        known = self._tail_of.get(head)
        if known != tail_key:
            if known is not None:
                self._unregister(head, known)
            if tail_key is not None:
                self._tail_of[head] = tail_key
                self._heads_of.setdefault(tail_key, []).append(head)
        offered = self.offered.get(head)
        if offered is None and entry is not None and self._ends_in_python(head, tail):
            entry = None
        if entry is None:
            if offered is not None:
                del self.offered[head]
                ops.append(Withdraw(head, offered[0]))
            return
        if offered != (entry, tail):
            self.offered[head] = (entry, tail)
            ops.append(Offload(head, tail, entry))

    def _ends_in_python(self, head: Flow, tail: Flow | None) -> bool:
        """Whether the connection of a head not offered yet is closing and did not carry
        its rounds (``CLOSING_FRAMES_PAST_PAIRING``): it ends on the slow path, which
        decided it, and the kernel is spared an entry no frame would use."""
        flows = (head, head.pair, tail, None if tail is None else tail.pair)
        if not any(f is not None and f.closing for f in flows):
            return False
        return not any(f in self._ready for f in flows if f is not None)

    def _unregister(self, head: Flow, tail_key: TailKey) -> None:
        del self._tail_of[head]
        heads = self._heads_of.get(tail_key)
        if heads is not None:
            if head in heads:
                heads.remove(head)
            if not heads:
                del self._heads_of[tail_key]

    def _owner(self, flow: Flow) -> Port | None:
        """The port whose table holds ``flow`` now (None: retired, or its port went)."""
        table = flow.table
        port = self.state.uplink if table.port == UPLINK else self.state.ports.get(table.port)
        if port is None or port.table(table.direction) is not table:
            return None
        return port if table.flows.get(flow.key) is flow else None

    def _tail(self, tail_key: TailKey) -> tuple[Port | None, Flow | None]:
        """The port and its inbound flow a composed head delivers to, when that flow may
        go down with it: delivered as is (plus an edit), both directions decided."""
        q = self.state.ports.get(tail_key[0])
        if q is None or not q.enabled or q.access_vlan is not None:
            return None, None
        tail = q.inbound.flows.get(tail_key[1])
        if tail is None or tail.pair is None:
            return q, None
        t = tail.template
        if t.__class__ is not LocalDelivery or t.port != q.name:
            return q, None
        return q, tail

    def _entry_of(self, head: Flow) -> tuple[OffloadEntry | None, Flow | None, TailKey | None]:
        """(the entry, its tail, the tail key it waits on) of ``head`` now."""
        p = self._owner(head)
        if p is None or head.table.direction != (IN if p is self.state.uplink else OUT):
            return None, None, None
        t = head.template
        if p is self.state.uplink:
            if not isinstance(t, Decap) or not _ipv4_key(head.key, t.outer_len):
                return None, None, None
            tail_key = (t.port, head.key[t.outer_len :])
            q, tail = self._tail(tail_key)
            if q is None or tail is None:
                return None, None, tail_key
            ok, edit = _compose(None, tail.template.edit)  # type: ignore[union-attr]
            if not ok:
                return None, None, tail_key
            entry = OffloadEntry(DECAP, UPLINK, head.key, q.name, None, 0, edit, (UPLINK, q.name))
            return entry, tail, tail_key
        if not p.enabled or p.access_vlan is not None or not _ipv4_key(head.key):
            return None, None, None  # access ports and IPv6 stay in Python (docstring)
        if head.pair is None:
            return None, None, None
        if isinstance(t, Encap):
            return _encap_entry(head, p, t), None, None
        if not isinstance(t, LocalDelivery) or t.port == p.name:
            return None, None, None
        tail_key = (t.port, edited_key(head.key, t.edit))
        q, tail = self._tail(tail_key)
        if q is None or tail is None:
            return None, None, tail_key
        ok, edit = _compose(t.edit, tail.template.edit)  # type: ignore[union-attr]
        if not ok:
            return None, None, tail_key
        entry = OffloadEntry(DELIVER, p.name, head.key, q.name, None, 0, edit, (p.name, q.name))
        return entry, tail, tail_key

    # -- for the edge ----------------------------------------------------------------

    def revalidation_set(
        self, ports: Iterable[str] = (), addresses: Iterable[bytes] = (), everything: bool = False
    ) -> list[Flow]:
        """The offered heads a change may affect: every one (``everything``), those whose
        decision used one of ``ports`` (head or target), and those whose frames carry one
        of ``addresses`` (MACs of 6 bytes, IPv4 addresses of 4) as source or destination
        (inner frame for uplink heads)."""
        if everything:
            return list(self.offered)
        wanted = set(ports)
        macs = {a for a in addresses if len(a) == MAC_LEN}
        ips = {a for a in addresses if len(a) != MAC_LEN}
        found = []
        for head, (entry, _) in self.offered.items():
            if wanted.intersection(entry.ports):
                found.append(head)
                continue
            if macs or ips:
                key = entry.key
                if entry.action == DECAP and isinstance(head.template, Decap):
                    key = key[head.template.outer_len :]
                if key[:MAC_LEN] in macs or key[MAC_LEN:_MACS_LEN] in macs:
                    found.append(head)
                elif ips and any(ip in key[ETHERTYPE_AT:] for ip in ips):
                    found.append(head)  # may be a false positive: decided again, unchanged
        return found

    def used(self, head: Flow, when: float) -> None:
        """The kernel executed ``head``'s entry at ``when`` (the engine's clock): the head
        and its tail are not idle."""
        if when > head.last_seen:
            head.last_seen = when
        offered = self.offered.get(head)
        tail = None if offered is None else offered[1]
        if tail is not None and when > tail.last_seen:
            tail.last_seen = when

    def forget(self) -> list[OffloadOp]:
        """Withdraw everything offered (the fast path went away)."""
        ops: list[OffloadOp] = [Withdraw(h, e) for h, (e, _) in self.offered.items()]
        self.offered.clear()
        self._heads_of.clear()
        self._tail_of.clear()
        self.pending.clear()
        self.marks.clear()
        self._ready.clear()
        self._looked, self._due_now = 0, False
        return ops
