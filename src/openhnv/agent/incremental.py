"""Re-planning a batch of mapping rows in time proportional to the batch (docs/host.md).

Most batches a host's OVSDB sends only insert, update or delete ``Ucast_Macs_Remote``
rows (a NIC came or went somewhere in its virtual networks), now and then with the
``Physical_Locator`` of a new host or a ``Mcast_Macs_Remote`` locator set. For those,
``touched_rows(events)`` names the rows concerned, and ``MappingState`` (the catalog
and plan of the last full plan, plus indexes) re-reads only them and patches the
mapping part of the plan: the result is exactly ``plan(read_catalog(rows))`` of the
new rows, and the units exactly the mapping part of ``changes``.

Whatever this cannot patch exactly asks for a full plan instead (``update`` returns
None): a row of another table, a row renamed or without a key, a bad row or a row
already reported as a problem, two rows mapping one customer address, a local mapping
of a bound port (it changes the port's addresses), a locator that goes while rows
still use it. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from openhnv.agent.planner import Plan, Unit, mac_mapping, mapping_unit
from openhnv.agent.rows import READERS, TABLES, Catalog, MacView, RowError
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import Row
from openhnv.vfp import commands as c
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.spaces import Mapping as CaMapping

UCAST, LOCATOR, MCAST = "Ucast_Macs_Remote", "Physical_Locator", "Mcast_Macs_Remote"
KEY_COLUMNS = {
    UCAST: ("logical_switch", "MAC", "ipaddr"),
    LOCATOR: ("encapsulation_type", "dst_ip"),
    MCAST: ("logical_switch", "MAC"),
}
"""The tables patched in place, and the columns their keys are made of."""
READ = dict(READERS)
MappingKey = tuple[str, str]  # (rdid, customer address), as in Plan.mappings
TableKey = tuple[str, str]  # (table, key) of one row


def touched_rows(events: Iterable[RowEvent]) -> set[TableKey] | None:
    """The rows a batch touches, or None when it needs a full plan.

    Tables the agent does not read (``Physical_Locator_Set``, ``Manager``, ...) are
    ignored. An update that changes a key column renames the row: the mirror reports
    its new key only, so the old one could not be removed here.
    """
    touched: set[TableKey] = set()
    for event in events:
        if event.table not in TABLES:
            continue
        columns = KEY_COLUMNS.get(event.table)
        if columns is None or event.key is None:
            return None
        old, new = event.old, event.new
        if old is not None and new is not None and any(old.get(k) != new.get(k) for k in columns):
            return None
        touched.add((event.table, event.key))
    return touched


@dataclass(frozen=True, slots=True)
class Patch:
    """A batch re-planned: the new plan and the units from the old one."""

    plan: Plan
    units: list[Unit]


class MappingState:
    """The catalog and plan of a full plan, patched batch by batch.

    ``update`` mutates the catalog it was given; once it returned None the state is
    spoiled and must be rebuilt from a full plan.
    """

    def __init__(self, catalog: Catalog, plan: Plan) -> None:
        self.catalog = catalog
        self.plan = plan
        self._problem_keys: dict[str, set[str]] = {UCAST: set(), LOCATOR: set(), MCAST: set()}
        for problem in plan.problems:  # the catalog's and the planner's
            if problem.table in self._problem_keys:
                self._problem_keys[problem.table].add(problem.key)
        self._ucast_row_problems = any(p.table == UCAST for p in catalog.problems)
        self._bound = {
            (v.switch, v.mac) for v in catalog.ports.values() if v.switch is not None and v.mac
        }
        self._by_at: dict[MappingKey, set[str]] = {}
        self._at_of: dict[str, MappingKey] = {}
        self._uses: Counter[str] = Counter()  # locator key -> Ucast rows using it
        for key, mac in catalog.macs.items():
            self._index(key, mac)

    def counts(self) -> dict[str, int]:
        return self.catalog.counts()

    def update(self, rows: Mapping[TableKey, Row | None]) -> Patch | None:
        """Re-read ``rows`` (their current value, None = gone) and patch the plan.

        None when the batch needs a full plan (the state is then spoiled).
        """
        if any(key in self._problem_keys[table] for table, key in rows):
            return None
        cat = self.catalog
        gone_locators: list[str] = []
        for (table, key), row in rows.items():  # locators before the rows that use them
            if table == LOCATOR:
                before = cat.locators.pop(key, None)
                if row is None:
                    gone_locators.append(key)
                    continue
                if before is None and self._ucast_row_problems:
                    return None  # a bad row may refer to it, and become good
                if not _read(table, key, row, cat):  # its key is its columns: the same
                    return None  # key read again is the same view
            elif table == MCAST:
                cat.mcasts.pop(key, None)
                if row is not None and not _read(table, key, row, cat):
                    return None
        affected: set[MappingKey] = set()
        for (table, key), row in rows.items():
            if table != UCAST:
                continue
            old = cat.macs.pop(key, None)
            if old is not None:
                affected.add(self._unindex(key, old))
                if old.local and (old.switch, old.mac) in self._bound:
                    return None
            if row is None:
                continue
            if not _read(table, key, row, cat):
                return None
            new = cat.macs[key]
            if new.local and (new.switch, new.mac) in self._bound:
                return None
            affected.add(self._index(key, new))
        if gone_locators and (
            self._ucast_row_problems or any(self._uses[k] for k in gone_locators)
        ):
            return None  # a row still uses it: that row becomes a problem
        found = self._mappings(affected)
        if found is None:
            return None
        return self._patch(found)

    # -- helpers ----------------------------------------------------------------------
    def _at(self, mac: MacView) -> MappingKey:
        return (self.catalog.switches[mac.switch].rdid, mac.customer_address)

    def _index(self, key: str, mac: MacView) -> MappingKey:
        at = self._at(mac)
        self._by_at.setdefault(at, set()).add(key)
        self._at_of[key] = at
        self._uses[mac.locator] += 1
        return at

    def _unindex(self, key: str, mac: MacView) -> MappingKey:
        at = self._at_of.pop(key)
        owners = self._by_at[at]
        owners.discard(key)
        if not owners:
            del self._by_at[at]
        self._uses[mac.locator] -= 1
        return at

    def _mappings(self, affected: set[MappingKey]) -> dict[MappingKey, CaMapping | None] | None:
        """The new mapping (None = none) of each affected customer address."""
        found: dict[MappingKey, CaMapping | None] = {}
        for at in affected:
            owners = self._by_at.get(at, set())
            if len(owners) > 1:
                return None  # a conflict: which row wins, and the problem of the others
            if not owners:
                found[at] = None
                continue
            (key,) = owners
            if key in self._problem_keys[UCAST]:
                return None  # its problem (a conflict lost, a bad mapping) goes
            try:
                found[at] = mac_mapping(self.catalog, self.catalog.macs[key])
            except PolicyError:
                return None
        return found

    def _patch(self, found: Mapping[MappingKey, CaMapping | None]) -> Patch:
        old = self.plan
        changed = {at: m for at, m in found.items() if old.mappings.get(at) != m}
        if not changed:
            return Patch(old, [])
        mappings = dict(old.mappings)
        customer_macs = dict(old.arp.customer_macs)
        removals: list[Unit] = []
        additions: list[Unit] = []
        for at, m in changed.items():
            before = mappings.pop(at, None)
            if before is not None:
                del customer_macs[(before.vsid, before.customer_address)]
                if m is None:
                    remove = c.RemoveMapping(before.rdid, before.customer_address, True)
                    removals.append(mapping_unit(before, (remove,)))
            if m is not None:
                mappings[at] = m
                customer_macs[(m.vsid, m.customer_address)] = m.customer_mac
                additions.append(mapping_unit(m, (c.AddMapping(m),)))
        arp = replace(old.arp, customer_macs=customer_macs)
        self.plan = replace(old, mappings=mappings, arp=arp)
        return Patch(self.plan, removals + additions)


def _read(table: str, key: str, row: Row, cat: Catalog) -> bool:
    """Read one row into ``cat``; False when it is bad (a full plan reports it)."""
    try:
        READ[table](key, row, cat)
    except RowError:
        return False
    return True
