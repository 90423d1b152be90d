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

When. A head goes down once the slow path has decided both directions of its
connection: the head (VM port) or the tail (decapsulation, local delivery) is one
flow of a pair (``Flow.pair``, set when the reverse direction was decided as its
reply, stateful ACLs included), or, for a TCP encapsulating head, when its answer
was decided ahead as that reply (``offer_early``, below); so do composed heads.
Drops, punts, broadcast replication and flows without a pair stay in Python, and so
does every first packet (it is what decides). So does every flow of an access port
(a NIC on a VLAN network): the kernel's programs encapsulate, decapsulate and
deliver, they do not push or pop an 802.1Q tag, so neither its bridged frames nor its
deliveries to or from another access port are offered (the kernel misses them and
hands them to the switch, which alone decides them). Nor is any flow whose (inner)
frame is not IPv4: the kernel's programs parse IPv4 only (``miss_not_ipv4``), so an
IPv6 entry could never hit. A flow leaves (``Withdraw``) when it retires, when its
decision (or its tail's) becomes something the kernel must not do, or when its port
goes.

Every change to a flow that the engine commits (``note``: the slow path, a pairing,
a retirement) is remembered and evaluated in ``operations()``, which the edge calls
after each batch, after programming and after expiry: the per-packet path pays
nothing. An encapsulating head decided on its connection's first packet, and not
paired yet, is a *prospect*: its entry as it will be once the answer pairs it, which
the edge may prepare ahead so that the pairing costs only the write.

Answers decided ahead. A TCP prospect whose answer the slow path has decided already
(``VfpEngine.answer_of``: a frame of the answer, made from the head's key and
encapsulation, decided at the uplink and then at the head's port as the reply of
this head; nothing committed) may go down before the answer comes, with the answer's
decapsulation (``offer_early``; the edge does it in a quiet moment, ``EARLY_MAX`` at
once). Both entries do what the slow path does with those frames; the kernel leaves
SYN, FIN and RST to the slow path, so the answer (a SYN-ACK) still meets the engine,
which decides and pairs it there: its own decapsulation has the kernel key of the one
decided ahead (the kernel's key holds no UDP source port) and writes nothing new. The
decapsulation decided ahead leaves with its head, or at any re-evaluation (a policy
or mapping change: it is not decided again, the answer decides). ``before_delivery``
names what must precede a delivery to a VM: the pairs the delivered frames complete
toward that VM, unless their entries went down early.

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
    ETHERTYPE_VLAN_BYTES,
    VLAN_TAG_LEN,
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
_TAG_LEN = len(ETHERTYPE_VLAN_BYTES)
_OUTER_PAS_AT = len(ETHERTYPE_IPV4_BYTES) + 2  # after the version/IHL and protocol bytes
_IPV4_LEN = 4
_IPV6 = 6
PENDING_MAX = 1024
"""Notes kept before ``due`` says evaluate them anyway (flows that never pair)."""
EARLY_MAX = 256
"""Heads offered before their answer (``offer_early``) at most at once."""

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


class Answer(NamedTuple):
    """The slow path's decision of a head's answer, made ahead (``VfpEngine.answer_of``):
    ``head`` a flow of its decapsulation (in no table: nothing was committed), ``edit``
    the inner edit the receiving port's inbound layers make."""

    head: Flow
    edit: InnerEdit | None


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


def _outer_pas(key: bytes) -> bytes:
    """The PAs (remote, local) of a tunnel frame's key: with the VSID, which the
    receiving port fixes, and the inner addresses and ports, the kernel's key of its
    decapsulation (not the UDP source port, which each sender picks)."""
    at = _OUTER_PAS_AT + (VLAN_TAG_LEN if key[:_TAG_LEN] == ETHERTYPE_VLAN_BYTES else 0)
    return key[at : at + 2 * _IPV4_LEN]


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
        self.prospects: list[tuple[Flow, OffloadEntry]] = []
        """Encapsulating heads ``operations()`` found decided but not paired yet, with the
        entry they will have once paired: the edge may prepare it (not write it) while
        the answer that pairs them is on its way (``take_prospects``)."""
        self.early: dict[Flow, None] = {}
        """Offered heads whose answer was decided ahead and has not come yet
        (``offer_early``); a head leaves it once paired or withdrawn."""
        self.answers: dict[Flow, Flow] = {}
        """Heads offered early -> the decapsulation of their answer decided ahead, offered
        with them; it leaves with its head, or at any re-evaluation (a policy change)."""
        self._answered: dict[Flow, Flow] = {}  # the other way
        self._heads_of: dict[TailKey, list[Flow]] = {}  # composed heads by their tail
        self._tail_of: dict[Flow, TailKey] = {}

    def enable(self) -> None:
        self.enabled = True

    def note(self, flow: Flow) -> None:
        """``flow`` was committed, paired, re-evaluated or retired."""
        self.pending.append(flow)

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
        paired or offered, a noted tail has an offered head, a noted head's tail is paired
        already; or the notes reached ``PENDING_MAX``. A connection's first packet notes
        none of these: its notes can wait for the answer's, off the first packet's path."""
        pending = self.pending
        if len(pending) >= PENDING_MAX:
            return True
        offered = self.offered
        for flow in pending:
            if flow.pair is not None or flow in offered:
                return True
            table = flow.table
            if table.direction == IN and table.port != UPLINK:  # a tail: its heads
                if any(h in offered for h in self._heads_of.get((table.port, flow.key), ())):
                    return True
                continue
            tail_key = _tail_key_of(flow)
            if tail_key is not None and self._paired_tail(tail_key):
                return True
        return False

    def before_delivery(self) -> list[OffloadOp]:
        """The operations a delivery to a local VM must not precede: those of the VM
        ports' heads among the notes (and of the VM heads delivering into a noted tail)
        that are paired or offered, and of the noted decapsulating heads. The VM
        receiving the frame that paired them may answer at once with GSO frames, which
        only the kernel takes, and its peer may answer these as fast (the round trip in
        the kernel). A decapsulation into the reply of a head offered early with its
        answer (``offer_early``) waits for ``operations()``: the kernel has the answer's
        entry. The notes stay: ``operations()`` evaluates them all (what was evaluated
        here again, unchanged: no operation)."""
        ops: list[OffloadOp] = []
        seen: set[Flow] = set()
        offered = self.offered
        for flow in self.pending:
            table = flow.table
            heads: Iterable[Flow] = (flow,)
            if table.direction == IN and table.port != UPLINK:  # a tail: its heads
                heads = self._heads_of.get((table.port, flow.key), ())
            for head in heads:
                if head in seen or head in self._answered:
                    continue
                seen.add(head)
                if head.table.port == UPLINK:
                    if self._answer_covers(head):
                        continue
                    self._evaluate(head, ops)
                elif head.pair is not None or head in offered:
                    self._evaluate(head, ops)
        return ops

    def _answer_covers(self, head: Flow) -> bool:
        """Whether the decapsulating ``head`` delivers into the reply of a head offered
        with its answer decided ahead (the kernel has that answer's entry: ``head``
        can wait for ``operations()``)."""
        tail_key = _tail_key_of(head)
        if tail_key is None:
            return False
        q = self.state.ports.get(tail_key[0])
        tail = None if q is None else q.inbound.flows.get(tail_key[1])
        answer = None if tail is None or tail.pair is None else self.answers.get(tail.pair)
        return answer is not None and _outer_pas(answer.key) == _outer_pas(head.key)

    def offer_early(self, answered: Iterable[tuple[Flow, Answer]]) -> list[OffloadOp]:
        """Offer TCP heads before their answer comes, with the decapsulation of that
        answer: encapsulating VM heads whose answer the slow path has decided already,
        as the reply that will pair them (``VfpEngine.answer_of``; the caller asks).
        Both entries do exactly what the slow path does (the head's its own decision,
        the answer's the decision made ahead; the kernel leaves SYN, FIN and RST to the
        slow path, so the answer still meets the engine and pairs the connection
        there), and the pairing writes nothing before the answer reaches the VM. At
        most ``EARLY_MAX`` at once; withdrawn as any offered head (retired, idle
        without an answer, decided otherwise)."""
        ops: list[OffloadOp] = []
        early = self.early
        for head, answer in answered:
            if len(early) >= EARLY_MAX:
                break
            if head.pair is not None or head in self.offered or not head.flags_at:
                continue
            t, d = head.template, answer.head.template
            if not isinstance(t, Encap) or not isinstance(d, Decap):
                continue
            ok, edit = _compose(None, answer.edit)
            if not ok:
                continue
            early[head] = None
            self._evaluate(head, ops)
            if head not in self.offered:
                del early[head]
                continue
            entry = OffloadEntry(DECAP, UPLINK, answer.head.key, d.port, None, 0, edit,
                                 (UPLINK, d.port))  # fmt: skip
            self.offered[answer.head] = (entry, None)
            self.answers[head] = answer.head
            self._answered[answer.head] = head
            ops.append(Offload(answer.head, None, entry))
        return ops

    def _drop_answer(self, answer: Flow, ops: list[OffloadOp]) -> None:
        """Withdraw the decapsulation of an answer decided ahead."""
        head = self._answered.pop(answer)
        del self.answers[head]
        offered = self.offered.pop(answer, None)
        if offered is not None:
            ops.append(Withdraw(answer, offered[0]))

    def _paired_tail(self, tail_key: TailKey) -> bool:
        q = self.state.ports.get(tail_key[0])
        tail = None if q is None else q.inbound.flows.get(tail_key[1])
        return tail is not None and tail.pair is not None

    def take_prospects(self) -> list[tuple[Flow, OffloadEntry]]:
        """The prospects found since the last call (see ``prospects``)."""
        found, self.prospects = self.prospects, []
        return found

    # -- evaluation ------------------------------------------------------------------

    def operations(self) -> list[OffloadOp]:
        """What the edge must change, for every flow noted since the last call."""
        # each flow where it was noted last: a first packet's notes, left waiting for the
        # answer's (``due``), then come in the order the answer's pairing noted them, the
        # order of the offers (and so of a later revalidation) when they went at once
        pending = list(dict.fromkeys(reversed(self.pending)))
        pending.reverse()
        self.pending = []
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
        return ops

    def _evaluate(self, head: Flow, ops: list[OffloadOp]) -> None:
        if head in self._answered:  # decided ahead: what changed may change it, it goes
            self._drop_answer(head, ops)
            return
        entry, tail, tail_key = self._entry_of(head)
        if head in self.early and (entry is None or head.pair is not None):
            del self.early[head]  # withdrawn, or paired: an offered head like any
        if entry is None and head in self.answers:
            self._drop_answer(self.answers[head], ops)
        known = self._tail_of.get(head)
        if known != tail_key:
            if known is not None:
                self._unregister(head, known)
            if tail_key is not None:
                self._tail_of[head] = tail_key
                self._heads_of.setdefault(tail_key, []).append(head)
        offered = self.offered.get(head)
        if entry is None:
            if offered is not None:
                del self.offered[head]
                ops.append(Withdraw(head, offered[0]))
            return
        if offered != (entry, tail):
            self.offered[head] = (entry, tail)
            ops.append(Offload(head, tail, entry))

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

    def _unpaired(self, head: Flow, p: Port) -> OffloadEntry | None:
        """The entry of the unpaired ``head`` when it went down early (its answer decided
        ahead), else None and a prospect: the entry it will have once paired."""
        t = head.template
        if not isinstance(t, Encap):
            return None
        entry = _encap_entry(head, p, t)
        if head in self.early:
            return entry
        if entry is not None:
            self.prospects.append((head, entry))
        return None

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
            return self._unpaired(head, p), None, None
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
        self.prospects.clear()
        self.early.clear()
        self.answers.clear()
        self._answered.clear()
        return ops
