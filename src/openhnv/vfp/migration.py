"""What live migration carries of a VM port from host to host: its connection table.

A stateful layer (the ACL) lets a packet through without a rule of its own when it is a
reply of a connection the port allowed (``Port.connections``). A port created afresh on
the destination host knows none of them, so the first packet of an established
connection that reaches it decides alone: a VM-initiated connection whose next packet
comes *from* the peer (an ACK, the peer's data on an idle connection) meets the port's
inbound rules, and an ACL that allows outbound and denies inbound drops it. Rebuilding
state from a mid-stream packet cannot tell who opened the connection, so the source
host's connections move, as Hyper-V moves a port's VFP flow state with the VM:

- ``ConnectionState``: the origin flow of one connection (its direction, its exact flow
  key, whether it was closing), exported by ``VfpEngine.connection_states``;
- ``VfpEngine.adopt_connections`` on the destination decides each origin flow again from
  its key (``packet.keyframe``: a frame with ACK only, which opens nothing new), in the
  direction it was opened, through the destination port's own policy: an ACL that
  still allows the connection's first direction re-creates the state; one that no
  longer does (the destination's policy differs) drops it, as a new packet would be.
  Nothing is copied blindly: the state is the destination's decision.

``to_wire`` / ``from_wire``: the JSON form the hosts' control sockets carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from openhnv.vfp.errors import PolicyError
from openhnv.vfp.policy import IN, OUT, Direction

MAX_CONNECTIONS = 1_000_000  # one port's whole flow table at most
_DIRECTIONS: dict[str, Direction] = {IN: IN, OUT: OUT}


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """One connection of a port: the direction and exact key of the flow that opened it."""

    direction: Direction
    key: bytes
    closing: bool = False


def to_wire(states: Iterable[ConnectionState]) -> list[dict[str, Any]]:
    """``states`` as JSON-ready dicts (the key in hex)."""
    return [{"direction": s.direction, "key": s.key.hex(), "closing": s.closing} for s in states]


def from_wire(items: object) -> list[ConnectionState]:
    """The states of ``to_wire``'s form; ``PolicyError`` naming the first bad item."""
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise PolicyError("connections", items, "expected a list")
    if len(items) > MAX_CONNECTIONS:
        raise PolicyError("connections", len(items), f"more than {MAX_CONNECTIONS}")
    states = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PolicyError(f"connections[{i}]", item, "expected an object")
        direction = _DIRECTIONS.get(str(item.get("direction")))
        if direction is None:
            raise PolicyError(f"connections[{i}].direction", item.get("direction"), "not in/out")
        try:
            key = bytes.fromhex(str(item.get("key", "")))
        except ValueError:
            raise PolicyError(f"connections[{i}].key", item.get("key"), "not hex") from None
        if not key:
            raise PolicyError(f"connections[{i}].key", item.get("key"), "empty")
        closing = item.get("closing", False)
        if not isinstance(closing, bool):
            raise PolicyError(f"connections[{i}].closing", closing, "not true/false")
        states.append(ConnectionState(direction, key, closing))
    return states
