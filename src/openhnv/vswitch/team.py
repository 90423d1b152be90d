"""Team failover: which team member (uplink) carries each provider address.

A host's PAs belong to its team members, one each (the PA's *home*). When a member
loses carrier its PAs move to a surviving member, as a SET team moves a host vNIC:
the PA keeps its address and its MAC, only the member that sends and receives its
frames changes, so the outer headers of established flows stay the same. When the
home member has carrier again, its PAs go back.

``place`` is the pure decision: members, their carrier and the current placement in,
the new placement out. Rules, in order:

- a PA whose home member has carrier lives there;
- a PA already moved to a member that still has carrier stays there (no churn when a
  third member changes);
- otherwise it goes to the member with carrier that carries the fewest PAs (ties: the
  lower member, ``up0`` before ``up1`` before ``up10``);
- with no member left with carrier, a PA stays at home (nothing could carry it).

A member whose carrier was never reported counts as having carrier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_NUMBER = re.compile(r"([0-9]+)")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one PA lives: its ``home`` member and the ``member`` carrying it now."""

    address: str
    home: str
    member: str

    @property
    def moved(self) -> bool:
        return self.member != self.home


def member_order(member: str) -> tuple[object, ...]:
    """Sort key of a member name: ``up2`` before ``up10``."""
    return tuple(int(p) if p.isdigit() else p for p in _NUMBER.split(member))


def place(
    homes: Mapping[str, str],
    carrier: Mapping[str, bool],
    current: Mapping[str, str] | None = None,
    members: Iterable[str] = (),
) -> dict[str, Placement]:
    """The placement of every PA in ``homes`` (PA -> home member), given each member's
    ``carrier`` and the ``current`` placement (PA -> member); ``members`` adds members
    that are home to no PA (they can still carry moved ones)."""
    current = current or {}
    known = sorted({*homes.values(), *carrier, *members}, key=member_order)
    alive = [m for m in known if carrier.get(m, True)]
    placed: dict[str, Placement] = {}
    load = dict.fromkeys(alive, 0)
    homeless: list[str] = []
    for address in sorted(homes):
        home = homes[address]
        now = current.get(address, home)
        if home in load:
            member = home
        elif now != home and now in load:
            member = now
        else:
            homeless.append(address)
            continue
        placed[address] = Placement(address, home, member)
        load[member] += 1
    for address in homeless:
        home = homes[address]
        if not alive:
            placed[address] = Placement(address, home, home)
            continue
        member = min(alive, key=lambda m: (load[m], member_order(m)))
        placed[address] = Placement(address, home, member)
        load[member] += 1
    return placed


def moves(before: Mapping[str, Placement], after: Mapping[str, Placement]) -> list[str]:
    """The PAs whose member differs between two placements (new PAs included)."""
    return sorted(a for a, p in after.items() if a not in before or before[a].member != p.member)
