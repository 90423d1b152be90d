"""The state of a compartment's IPsec connections as its charon sees them, and why one
is down (pure parsing of ``swanctl --list-sas`` and of charon's log, no I/O).

A connection is ``Connected`` when its IKE SA is ``ESTABLISHED`` and its child SA
``INSTALLED``, ``Connecting`` while either is on its way, ``Disconnected`` otherwise.
When it is not connected, ``reason`` is the most telling line charon logged for it (its
log names each line's connection: ``ike_name``): a refused certificate or authority, an
authentication or proposal the peer refused, a peer that does not answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

CONNECTED, CONNECTING, DISCONNECTED = "Connected", "Connecting", "Disconnected"
ESTABLISHED, INSTALLED = "ESTABLISHED", "INSTALLED"  # charon's IKE and child SA states
IKE_LINE = re.compile(r"^(?P<name>\S+): #\d+, (?P<state>[A-Z_]+), IKEv")
CHILD_LINE = re.compile(r"^\s+(?P<name>\S+): #\d+, reqid \d+, (?P<state>[A-Z_]+),")
LOG_LINE = re.compile(r"<(?P<name>[^|>]+)\|\d+>\s*(?P<text>.*)$")
# Lines that say why, most telling first; anything "failed" is the fallback.
REASONS = (
    "not authenticated by CA",
    "no issuer certificate",
    "no trusted",
    "constraint check failed",
    "AUTHENTICATION_FAILED",
    "NO_PROPOSAL_CHOSEN",
    "TS_UNACCEPTABLE",
    "giving up",
    "retransmit",
    "failed",
)
NO_REASON = "no security association yet"


@dataclass(frozen=True, slots=True)
class TunnelState:
    state: str  # Connected | Connecting | Disconnected
    reason: str = ""  # empty when connected


def parse_sas(listing: str) -> dict[str, tuple[str, list[str]]]:
    """(IKE SA state, child SA states) by connection name from ``swanctl --list-sas``."""
    found: dict[str, tuple[str, list[str]]] = {}
    for line in listing.splitlines():
        ike = IKE_LINE.match(line)
        if ike is not None:
            before, children = found.get(ike["name"], ("", []))
            # several IKE SAs of one connection (a rekey, a retry): an established one wins
            state = before if before == ESTABLISHED else ike["state"]
            found[ike["name"]] = (state, children)
            continue
        child = CHILD_LINE.match(line)
        if child is not None:
            state, children = found.get(child["name"], ("", []))
            found[child["name"]] = (state, [*children, child["state"]])
    return found


def reason_of(log_lines: Iterable[str], name: str) -> str:
    """The most telling line charon logged for connection ``name`` ("" for none)."""
    mine = []
    for line in log_lines:
        match = LOG_LINE.search(line)
        if match is not None and match["name"] == name:
            mine.append(str(match["text"]).strip())
    for marker in REASONS:
        for text in reversed(mine):
            if marker in text:
                return text
    return ""


def tunnel_states(
    names: Iterable[str], listing: str, log_lines: Iterable[str]
) -> Mapping[str, TunnelState]:
    """Each connection's state; for one not connected, why."""
    sas = parse_sas(listing)
    lines = list(log_lines)
    out: dict[str, TunnelState] = {}
    for name in names:
        ike, children = sas.get(name, ("", []))
        if ike == ESTABLISHED and INSTALLED in children:
            out[name] = TunnelState(CONNECTED)
            continue
        state = CONNECTING if ike in ("CREATED", "CONNECTING", ESTABLISHED) else DISCONNECTED
        out[name] = TunnelState(state, reason_of(lines, name) or NO_REASON)
    return out
