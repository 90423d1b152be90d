"""The unified flow table (UFT): exact flow key -> the flow's compiled transposition.

An entry (``Flow``) is small and slotted: the port generation it was computed at, the
compiled template (shared by many flows), the per-flow argument (VXLAN source port or
NVGRE FlowID in the low 16 bits; above them the inner length its cached outer ``header``
was built for), the time it was last hit, where its TCP flags sit (0 for non-TCP), the
reverse entry of a stateful pair, the rules that decided it (a shared tuple), and
whether its connection is closing.

Life cycle of a TCP pair: set up by the first packet each way (``flow_setups``); a FIN or
RST either way marks both flows ``closing`` but keeps them, so what follows the close (the
peer's data and FIN after a half-close, the last ACK, retransmissions, the RSTs a closed
socket answers in-flight data with) still hits the pair and still passes stateful ACLs;
the pair is retired (``flows_retired``, per flow) once idle for the close timeout, or for
the idle timeout when it never closed. A SYN without ACK on a closing flow is a new
connection on the same ports: the old pair is retired and the SYN decided afresh.

A cached ACL drop remembers the connection of the packet it dropped (``connection``): once
the port holds a connection those packets are replies of (the VM connected out on the
same ports later), its next packet re-evaluates it instead of being dropped.

A stale entry (older generation) is re-evaluated in place on its next hit, never
flushed. The table is bounded; an insert into a full table fails so the caller can drop
and count ``flow_table_full``.
"""

from __future__ import annotations

from collections.abc import Iterator

from openhnv.packet.tcp import TCP_FIN, TCP_RST, TCP_SYN
from openhnv.vfp.policy import Direction, Rule
from openhnv.vfp.transposition import Template

TCP_CLOSE_FLAGS = TCP_FIN | TCP_RST
TCP_WATCH_FLAGS = TCP_FIN | TCP_SYN | TCP_RST  # the flags the fast path looks at


class Flow:
    """One UFT entry; mutated in place when re-evaluated."""

    __slots__ = (
        "arg",
        "closing",
        "connection",
        "flags_at",
        "generation",
        "header",
        "key",
        "last_seen",
        "pair",
        "reply",
        "rules",
        "table",
        "template",
        "unopened",
    )

    def __init__(
        self,
        key: bytes,
        table: UnifiedFlowTable,
        generation: int,
        template: Template,
        arg: int,
        now: float,
        flags_at: int,
        rules: tuple[Rule, ...],
    ) -> None:
        self.key = key
        self.table = table
        self.generation = generation
        self.template = template
        self.arg = arg
        self.last_seen = now
        self.flags_at = flags_at
        self.rules = rules
        self.pair: Flow | None = None
        # an allowed first flow of a stateful connection: the connection its replies
        # carry (the port's ``connections`` key); a cached ACL drop: the connection of
        # the packets it drops; else None
        self.connection: bytes | None = None
        # decided once as the reply of a connection: it never becomes one's origin while
        # it lives (decided again, after its origin was denied, it must not open the
        # connection the other way and let its origin's packets pass as replies)
        self.reply = False
        # an allowed first flow of a stateful connection whose first packet here was a
        # mid-stream TCP segment, not a SYN: tracked (its reverse pairs with it) but open
        # to nothing: its reverse meets its own rules (docs/vfp.md "Connection origins")
        self.unopened = False
        self.header = b""  # encapsulating flows: the outer headers of the last length
        self.closing = False  # a FIN or RST crossed this flow or its reverse

    def idle_since(self) -> float:
        """The last time this flow or its reverse saw a packet."""
        pair = self.pair
        if pair is not None and pair.last_seen > self.last_seen:
            return pair.last_seen
        return self.last_seen


class UnifiedFlowTable:
    """The flows of one port in one direction, bounded by ``capacity``."""

    __slots__ = ("capacity", "direction", "flows", "port")

    def __init__(self, port: str, direction: Direction, capacity: int) -> None:
        self.port = port
        self.direction = direction
        self.capacity = capacity
        self.flows: dict[bytes, Flow] = {}

    def __len__(self) -> int:
        return len(self.flows)

    def __iter__(self) -> Iterator[Flow]:
        return iter(list(self.flows.values()))

    def insert(self, flow: Flow) -> bool:
        """Add ``flow``; False (and nothing added) when the table is full."""
        flows = self.flows
        if len(flows) >= self.capacity and flow.key not in flows:
            return False
        flows[flow.key] = flow
        return True

    def discard(self, flow: Flow) -> bool:
        """Remove ``flow`` if it is still the entry of its key; whether it was."""
        if self.flows.get(flow.key) is flow:
            del self.flows[flow.key]
            return True
        return False
