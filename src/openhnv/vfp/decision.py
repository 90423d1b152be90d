"""What the slow path decides for one packet: the ``Decision`` and its trace steps.

Every stage of the slow path (``pipeline.decide`` for a VM port, ``uplink.decide_uplink``
for the PA network) fills one ``Decision``: the compiled template the flow will run, the
rules that matched, the counters to bump, a punt or the copies of a replicated packet,
and, when tracing, the steps considered and the readable header transposition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openhnv.vfp.flowtable import Flow
from openhnv.vfp.policy import Rule
from openhnv.vfp.state import EngineState
from openhnv.vfp.transposition import Discard, HeaderOp, Template


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One thing the slow path considered: a layer, a group's chosen rule, a default."""

    layer: str
    group: str
    rule_id: str
    priority: int | None
    action: str
    note: str = ""


@dataclass(slots=True)
class Copy:
    """One copy of a replicated (broadcast/multicast) packet."""

    template: Template
    arg: int
    frame: bytes
    next_port: str | None


@dataclass(slots=True)
class Decision:
    """What the slow path decided for one packet (and, when ``cacheable``, its flow)."""

    record: bool = False  # trace: keep the steps and the readable transposition
    steps: list[TraceStep] = field(default_factory=list)
    hits: list[tuple[str, str, str]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    ops: list[HeaderOp] = field(default_factory=list)
    counters: list[str] = field(default_factory=list)
    template: Template | None = None
    arg: int = 0
    next_port: str | None = None
    punt: str | None = None
    copies: list[Copy] | None = None
    stateful: bool = False
    reply_of: Flow | None = None
    cacheable: bool = True

    def drop(self, reason: str, state: EngineState, note: str = "") -> Decision:
        self.template = state.discard(reason)
        if self.record:
            self.steps.append(TraceStep("-", "-", "-", None, f"drop({reason})", note))
        return self

    @property
    def reason(self) -> str | None:
        t = self.template
        return t.reason if isinstance(t, Discard) else None
