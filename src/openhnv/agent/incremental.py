"""Re-planning a batch of row changes in time proportional to the batch (docs/host.md).

Most batches a host's OVSDB sends insert, update or delete ``Ucast_Macs_Remote`` rows
(a NIC came or went somewhere in its virtual networks), now and then with the
``Physical_Locator`` of a new host or a ``Mcast_Macs_Remote`` locator set; a NIC of the
host itself brings its ``Physical_Port`` and ``FW_Rules`` rows. For those,
``touched_rows(events)`` names the rows concerned, and ``PlanState`` (the catalog and
plan of the last full plan, plus indexes) re-reads only them and patches the plan: the
mappings and ARP entries they change and the ports they concern. The result is exactly
``plan(read_catalog(rows))`` of the new rows, and the units exactly those of ``changes``.

Whatever this cannot patch exactly asks for a full plan instead (``update`` returns
None): a row of another table (switches, routers, Global, PAs), a row renamed or
without a key, a bad row or one already reported as a problem, two rows mapping one
customer address, two bound ports with one MAC, a locator that goes while rows still
use it. Pure: no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from openhnv.agent.planner import (
    Plan,
    PortPlan,
    Unit,
    bound_port_plan,
    mac_mapping,
    mapping_unit,
    port_commands,
    routing,
)
from openhnv.agent.rows import READERS, TABLES, Catalog, MacView, PortView, Problem, RowError
from openhnv.agent.team_rows import is_team_row
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import Row
from openhnv.vfp import commands as c
from openhnv.vfp.errors import PolicyError
from openhnv.vfp.spaces import Mapping as CaMapping

UCAST, LOCATOR, MCAST = "Ucast_Macs_Remote", "Physical_Locator", "Mcast_Macs_Remote"
PORT, FW_RULES = "Physical_Port", "FW_Rules"
KEY_COLUMNS = {
    UCAST: ("logical_switch", "MAC", "ipaddr"),
    LOCATOR: ("encapsulation_type", "dst_ip"),
    MCAST: ("logical_switch", "MAC"),
    PORT: ("name",),
    FW_RULES: ("rule_id",),
}
"""The tables patched in place, and the columns their keys are made of."""
READ = dict(READERS)
MappingKey = tuple[str, str]  # (rdid, customer address), as in Plan.mappings
TableKey = tuple[str, str]  # (table, key) of one row
Binding = tuple[str, str]  # (logical switch, MAC) of a bound port or a local mapping


def touched_rows(events: Iterable[RowEvent]) -> set[TableKey] | None:
    """The rows a batch touches, or None when it needs a full plan.

    Tables the agent does not read (``Physical_Locator_Set``, ``Manager``, ...) are
    ignored. An update that changes a key column renames the row: the mirror reports
    its new key only, so the old one could not be removed here.
    """
    touched: set[TableKey] = set()
    for event in events:
        if event.table not in TABLES or _team_event(event):
            continue
        columns = KEY_COLUMNS.get(event.table)
        if columns is None or event.key is None:
            return None
        old, new = event.old, event.new
        if old is not None and new is not None and any(old.get(k) != new.get(k) for k in columns):
            return None
        touched.add((event.table, event.key))
    return touched


def _team_event(event: RowEvent) -> bool:
    """A team member's row changed (the agent's own report, agent.team_rows)."""
    rows = [r for r in (event.old, event.new) if r is not None]
    return event.table == PORT and bool(rows) and all(is_team_row(r) for r in rows)


@dataclass(frozen=True, slots=True)
class Patch:
    """A batch re-planned: the new plan and the units from the old one."""

    plan: Plan
    units: list[Unit]


class PlanState:
    """The catalog and plan of a full plan, patched batch by batch.

    ``update`` mutates the catalog it was given; once it returned None the state is
    spoiled and must be rebuilt from a full plan.
    """

    def __init__(self, catalog: Catalog, plan: Plan) -> None:
        self.catalog = catalog
        self.plan = plan
        self._problem_keys: dict[str, set[str]] = {t: set() for t in KEY_COLUMNS}
        for problem in plan.problems:  # the catalog's and the planner's
            if problem.table in self._problem_keys:
                self._problem_keys[problem.table].add(problem.key)
        self._ucast_row_problems = any(p.table == UCAST for p in catalog.problems)
        self._router_mac, self._routed = routing(catalog)
        self._by_at: dict[MappingKey, set[str]] = {}
        self._at_of: dict[str, MappingKey] = {}
        self._uses: Counter[str] = Counter()  # locator key -> Ucast rows using it
        self._local: dict[Binding, Counter[str]] = {}  # -> CAs of its local mappings
        for key, mac in catalog.macs.items():
            self._index_mac(key, mac)
        self._ports_of: dict[Binding, set[str]] = {}  # bound ports by (switch, MAC)
        self._macs: Counter[str] = Counter()  # bound ports per MAC
        for view in catalog.ports.values():
            self._index_port(view, 1)
        self._rules_of: dict[str, set[str]] = {}  # vnic -> FW_Rules keys
        for key, rule in catalog.fw_rules.items():
            self._rules_of.setdefault(rule.vnic, set()).add(key)

    def counts(self) -> dict[str, int]:
        return self.catalog.counts()

    def update(self, rows: Mapping[TableKey, Row | None]) -> Patch | None:
        """Re-read ``rows`` (their current value, None = gone) and patch the plan.

        None when the batch needs a full plan (the state is then spoiled).
        """
        if any(key in self._problem_keys[table] for table, key in rows):
            return None
        by_table: dict[str, dict[str, Row | None]] = {t: {} for t in KEY_COLUMNS}
        for (table, key), row in rows.items():
            by_table[table][key] = row
        if not self._locators_and_mcasts(by_table[LOCATOR], by_table[MCAST]):
            return None
        ports = self._ports_and_rules(by_table[PORT], by_table[FW_RULES])
        if ports is None:
            return None
        affected = self._ucasts(by_table[UCAST], ports)
        if affected is None or not self._locators_unused(by_table[LOCATOR]):
            return None
        found = self._mappings(affected)
        port_plans = self._port_plans(ports)
        if found is None or port_plans is None:
            return None
        return self._patch(found, port_plans)

    # -- re-reading rows --------------------------------------------------------------
    def _locators_and_mcasts(
        self, locators: Mapping[str, Row | None], mcasts: Mapping[str, Row | None]
    ) -> bool:
        cat = self.catalog
        for key, row in locators.items():  # before the mapping rows that use them
            before = cat.locators.pop(key, None)
            if row is None:
                continue
            if before is None and self._ucast_row_problems:
                return False  # a bad row may refer to it, and become good
            if not _read(LOCATOR, key, row, cat):  # its key is its columns: the same
                return False  # key read again is the same view
        for key, row in mcasts.items():
            cat.mcasts.pop(key, None)
            if row is not None and not _read(MCAST, key, row, cat):
                return False
        return True

    def _ports_and_rules(
        self, ports: Mapping[str, Row | None], rules: Mapping[str, Row | None]
    ) -> set[str] | None:
        """Re-read the ports and FW_Rules; the ports to re-plan (None: a full plan)."""
        cat = self.catalog
        affected = set(ports)
        for key, row in rules.items():
            old = cat.fw_rules.pop(key, None)
            if old is not None:
                self._rules_of[old.vnic].discard(key)
                affected.add(old.vnic)
            if row is not None:
                if not _read(FW_RULES, key, row, cat):
                    return None
                vnic = cat.fw_rules[key].vnic
                self._rules_of.setdefault(vnic, set()).add(key)
                affected.add(vnic)
        for key in ports:
            old_view = cat.ports.get(key)
            if old_view is not None and old_view.mac and self._macs[old_view.mac] > 1:
                return None  # it shared its MAC: which port wins, and the other's problem
        for key, row in ports.items():
            old_view = cat.ports.pop(key, None)
            if old_view is not None:
                self._index_port(old_view, -1)
            if row is not None:
                if not _read(PORT, key, row, cat):
                    return None
                self._index_port(cat.ports[key], 1)
        if any(v.mac and self._macs[v.mac] > 1 for k in ports if (v := cat.ports.get(k))):
            return None
        return affected

    def _ucasts(self, ucasts: Mapping[str, Row | None], ports: set[str]) -> set[MappingKey] | None:
        """Re-read the mapping rows; the customer addresses they concern. Adds to
        ``ports`` the bound ports whose local mappings change."""
        cat = self.catalog
        affected: set[MappingKey] = set()
        for key, row in ucasts.items():
            old = cat.macs.pop(key, None)
            if old is not None:
                affected.add(self._unindex_mac(key, old))
                ports |= self._ports_of.get((old.switch, old.mac), set()) if old.local else set()
            if row is None:
                continue
            if not _read(UCAST, key, row, cat):
                return None
            new = cat.macs[key]
            affected.add(self._index_mac(key, new))
            ports |= self._ports_of.get((new.switch, new.mac), set()) if new.local else set()
        return affected

    def _locators_unused(self, locators: Mapping[str, Row | None]) -> bool:
        """No row uses a locator that went (else that row becomes a problem)."""
        gone = [key for key, row in locators.items() if row is None]
        return not gone or not (self._ucast_row_problems or any(self._uses[k] for k in gone))

    # -- planning -----------------------------------------------------------------------
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

    def _port_plans(self, ports: set[str]) -> dict[str, PortPlan | None] | None:
        """The new plan (None = none) of each affected port."""
        cat = self.catalog
        found: dict[str, PortPlan | None] = {}
        for name in ports:
            rules = self._rules_of.get(name, set())
            if name in self._problem_keys[PORT] or rules & self._problem_keys[FW_RULES]:
                return None  # its problems (or its rules') may go
            view = cat.ports.get(name)
            if view is None or view.mac is None or not view.bound:
                found[name] = None
                continue
            problems: list[Problem] = []
            router_mac = self._router_mac if view.switch in self._routed else None
            local = Counter[str]()
            if view.switch is not None:
                local = self._local.get((view.switch, view.mac), local)
            try:
                found[name] = bound_port_plan(
                    cat, view, [cat.fw_rules[k] for k in rules], router_mac, local, problems
                )
            except PolicyError:
                return None
            if problems:
                return None
        return found

    def _patch(
        self,
        found: Mapping[MappingKey, CaMapping | None],
        port_plans: Mapping[str, PortPlan | None],
    ) -> Patch:
        """The plan with ``found`` and ``port_plans``, and the units in ``changes`` order:
        mapping removals, port removals, port additions and updates, mapping additions."""
        old = self.plan
        mapping_changes = {at: m for at, m in found.items() if old.mappings.get(at) != m}
        port_changes = {n: p for n, p in port_plans.items() if old.ports.get(n) != p}
        if not mapping_changes and not port_changes:
            return Patch(old, [])
        unmap: list[Unit] = []
        unplug: list[Unit] = []
        plug: list[Unit] = []
        remap: list[Unit] = []
        ports = dict(old.ports) if port_changes else {}  # copied only when changed
        for name, port_plan in sorted(port_changes.items()):  # as a full plan orders them
            before = ports.pop(name, None)
            if port_plan is None:
                unplug.append(Unit(PORT, name, (c.RemovePort(name, missing_ok=True),)))
                continue
            ports[name] = port_plan
            cmds = port_commands(before, port_plan)
            if cmds:
                plug.append(Unit(PORT, name, tuple(cmds)))
        mappings = dict(old.mappings) if mapping_changes else {}
        customer_macs = dict(old.arp.customer_macs) if mapping_changes else {}
        for at, m in mapping_changes.items():
            gone = mappings.pop(at, None)
            if gone is not None:
                del customer_macs[(gone.vsid, gone.customer_address)]
                if m is None:
                    remove = c.RemoveMapping(gone.rdid, gone.customer_address, True)
                    unmap.append(mapping_unit(gone, (remove,)))
            if m is not None:
                mappings[at] = m
                customer_macs[(m.vsid, m.customer_address)] = m.customer_mac
                remap.append(mapping_unit(m, (c.AddMapping(m),)))
        self.plan = replace(
            old,
            ports=ports if port_changes else old.ports,
            mappings=mappings if mapping_changes else old.mappings,
            arp=replace(old.arp, customer_macs=customer_macs) if mapping_changes else old.arp,
        )
        return Patch(self.plan, unmap + unplug + plug + remap)

    # -- indexes ------------------------------------------------------------------------
    def _index_mac(self, key: str, mac: MacView) -> MappingKey:
        at = (self.catalog.switches[mac.switch].rdid, mac.customer_address)
        self._by_at.setdefault(at, set()).add(key)
        self._at_of[key] = at
        self._uses[mac.locator] += 1
        if mac.local:
            self._local.setdefault((mac.switch, mac.mac), Counter())[mac.customer_address] += 1
        return at

    def _unindex_mac(self, key: str, mac: MacView) -> MappingKey:
        at = self._at_of.pop(key)
        owners = self._by_at[at]
        owners.discard(key)
        if not owners:
            del self._by_at[at]
        self._uses[mac.locator] -= 1
        if mac.local:
            local = self._local[(mac.switch, mac.mac)]
            local[mac.customer_address] -= 1
            if local[mac.customer_address] <= 0:
                del local[mac.customer_address]
        return at

    def _index_port(self, view: PortView, step: int) -> None:
        if view.mac is None or not view.bound:
            return
        self._macs[view.mac] += step
        if view.switch is None:  # an access port: no local mappings
            return
        names = self._ports_of.setdefault((view.switch, view.mac), set())
        if step > 0:
            names.add(view.key)
        else:
            names.discard(view.key)


def _read(table: str, key: str, row: Row, cat: Catalog) -> bool:
    """Read one row into ``cat``; False when it is bad (a full plan reports it)."""
    try:
        READ[table](key, row, cat)
    except RowError:
        return False
    return True
