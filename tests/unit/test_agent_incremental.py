"""Patching the plan batch by batch gives exactly the full plan: random sequences of
Ucast_Macs_Remote, Physical_Locator, Mcast_Macs_Remote, Physical_Port and FW_Rules
inserts, updates and deletes (good rows, bad rows, conflicts, shared MACs, local rows
of bound ports, clashing rule names) are applied both ways and the plans, row counts,
units and the engine they program are compared after each batch."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openhnv.agent.incremental import (
    FW_RULES,
    LOCATOR,
    MCAST,
    PORT,
    UCAST,
    PlanState,
    TableKey,
    touched_rows,
)
from openhnv.agent.planner import EMPTY_PLAN, Plan, Unit, changes, plan, plan_of_engine
from openhnv.agent.rows import read_catalog
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import Atom, Ref, Row, Value
from openhnv.ovsdb.values import PlainRow
from openhnv.testing import snapshots as nb
from openhnv.testing.southbound import HostRows, host_rows
from openhnv.vfp import commands as c
from openhnv.vfp.engine import VfpEngine
from openhnv.vfp.errors import PolicyError

VSIDS = ("5001", "6001", "7777")  # 7777: no such Logical_Switch
MACS = (
    "00:1d:d8:07:00:11",  # Contoso SQL's port (a local row of it changes the port)
    "00:1d:d8:07:00:12",
    "00:1d:d8:07:00:13",
    "00:1d:d8:07:00:14",
    "00:1D:D8:07:00:12",  # the same MAC written otherwise: another key, the same mapping
    "00:1d:d8:07:00:31",
    "01:00:5e:00:00:01",  # multicast: a bad row
)
IPS = ("10.1.1.11", "10.1.1.12", "10.1.1.13", "10.1.1.14", "10.1.1.15", "10.9.9.9")  # last: outside
PAS = ("192.168.1.10", "192.168.2.20", "192.168.3.30")
ENCAPSULATIONS = ("vxlan_over_ipv4", "nvgre_over_ipv4", "gre")  # gre: a bad locator
LOCATORS = tuple(f"{e}:{pa}" for e in ENCAPSULATIONS for pa in PAS)
TYPES = ("remote",) * 5 + ("local", "local", "elsewhere")
SQL_PORT = "6ec6d917-26cb-5a86-9223-8b6933e53cb2"  # figure 8's Contoso SQL, 00:..:11
FABRIKAM_PORT = "da16ea2d-18a0-569d-87a3-5206129365d4"  # Fabrikam SQL, 00:..:21
PORTS = (SQL_PORT, "vm-a", "vm-b")
RULE_NAMES = ("allow-web", "deny-ssh", "allow-web")  # rule ids 0 and 2 clash on one NIC
PREFIXES = ("10.1.1.0/24", "0.0.0.0/0", "10.1.1.300/24")  # the last: a bad row
Op = tuple[Any, ...]
ucast_put = st.tuples(
    st.just("ucast"),
    st.sampled_from(VSIDS[:2] * 3 + VSIDS[2:]),  # mostly good ones, as below
    st.sampled_from(MACS),
    st.sampled_from(IPS),
    st.sampled_from(LOCATORS[:6] * 3 + LOCATORS[6:]),  # mostly good ones
    st.sampled_from(TYPES),
)
locator_put = st.tuples(st.just("locator"), st.sampled_from(ENCAPSULATIONS), st.sampled_from(PAS))
mcast_put = st.tuples(st.just("mcast"), st.sampled_from(VSIDS))
port_put = st.tuples(
    st.just("port"),
    st.sampled_from(PORTS),
    st.sampled_from(VSIDS[:2] * 3 + VSIDS[2:]),
    st.sampled_from(MACS[:-1] * 3 + MACS[-1:]),
    st.sampled_from(IPS[:-1]),
    st.sampled_from(("bound", "bound", "unbound", "attached")),
)
rule_put = st.tuples(
    st.just("rule"),
    st.integers(0, len(RULE_NAMES) - 1),
    st.sampled_from(PORTS),
    st.sampled_from(("nic", "subnet")),
    st.sampled_from(("in", "out")),
    st.sampled_from(PREFIXES[:2] * 3 + PREFIXES[2:]),
)
delete = st.tuples(
    st.sampled_from((UCAST, UCAST, LOCATOR, MCAST, PORT, FW_RULES)), st.integers(0, 99)
)
any_op = st.one_of(
    ucast_put, ucast_put, ucast_put, locator_put, mcast_put, port_put, rule_put, delete
)


def ucast_row(vsid: str, mac: str, ip: str, locator: str, kind: str) -> tuple[str, Row]:
    row: Row = {
        "MAC": mac,
        "ipaddr": ip,
        "logical_switch": Ref("Logical_Switch", vsid),
        "locator": Ref("Physical_Locator", locator),
        "mapping_type": kind,
    }
    return f"{vsid}/{mac}/{ip}", row


def apply_op(rows: HostRows, op: Op) -> TableKey:
    """Change ``rows`` as ``op`` says; the row it touched."""
    kind = op[0]
    if kind == "ucast":
        key, row = ucast_row(*op[1:])
        rows[UCAST][key] = dict(row)
        return UCAST, key
    if kind == "locator":
        _, encapsulation, pa = op
        key = f"{encapsulation}:{pa}"
        rows[LOCATOR][key] = {"encapsulation_type": encapsulation, "dst_ip": pa}
        return LOCATOR, key
    if kind == "mcast":
        key = f"{op[1]}/unknown-dst"
        rows[MCAST][key] = {
            "MAC": "unknown-dst",
            "logical_switch": Ref("Logical_Switch", op[1]),
            "locator_set": Ref("Physical_Locator_Set", f"ls:{op[1]}"),
            "ipaddr": "",
        }
        return MCAST, key
    if kind == "port":
        _, name, vsid, mac, ip, state = op
        port_row: dict[str, Value] = {
            "name": name,
            "vlan_bindings": {},
            "other_config": {},
            "status": {},
        }
        if state != "unbound":
            binding: dict[Atom, Atom] = {
                "mac_address": mac,
                "ip_addresses": ip,
                "mac_spoofing": "false",
            }
            port_row["vlan_bindings"] = {0: Ref("Logical_Switch", vsid)}
            port_row["other_config"] = binding
        if state == "attached":  # what the agent itself writes back
            port_row["status"] = {"attached": "true", "reported_mac": mac}
        rows[PORT][name] = port_row
        return PORT, name
    if kind == "rule":
        _, index, vnic, layer, direction, prefix = op
        key = f"rule-{index}-{vnic}"
        rows[FW_RULES][key] = {
            "rule_id": key,
            "vnic_id": vnic,
            "acl_layer": layer,
            "rule_name": RULE_NAMES[index],
            "direction": direction,
            "action": "allow",
            "protocols": frozenset({"6"}),
            "src_ip_addresses": frozenset({prefix}),
            "dst_ip_addresses": frozenset(),
            "src_ip_excluded": frozenset(),
            "dst_ip_excluded": frozenset(),
            "src_port": "0-65535",
            "dst_port": "80-80",
            "priority": 100 + index,
            "rule_type": "user",
            "rule_state": "enabled",
            "logging_state": "disabled",
        }
        return FW_RULES, key
    if kind == "drop":
        rows[op[1]].pop(op[2], None)
        return op[1], op[2]
    keys = sorted(rows[kind])
    key = keys[op[1] % len(keys)] if keys else "absent"
    rows[kind].pop(key, None)
    return kind, key


def engine_with(p: Plan) -> VfpEngine:
    engine = VfpEngine()
    for unit in changes(EMPTY_PLAN, p):
        engine.programming.apply_all(unit.commands)
    return engine


def program(engine: VfpEngine, units: list[Unit]) -> list[TableKey]:
    """Apply ``units`` in order as the agent does: a refused unit is skipped (a refused
    port removed); the rows of the refused ones."""
    refused: list[TableKey] = []
    for unit in units:
        try:
            engine.programming.apply_all(unit.commands)
        except PolicyError:
            refused.append((unit.table, unit.key))
            if unit.table == PORT:
                engine.programming.apply_all([c.RemovePort(unit.key, missing_ok=True)])
    return refused


def run_batches(rows: HostRows, batches: list[list[Op]]) -> int:
    """Apply ``batches`` both ways, comparing after each; how many needed a full plan."""
    current = plan(read_catalog(rows))
    state: PlanState | None = PlanState(read_catalog(rows), current)
    engine = engine_with(current)
    full_plans = 0
    for batch in batches:
        touched = {apply_op(rows, op) for op in batch}
        catalog = read_catalog(rows)
        expected = plan(catalog)
        full_units = changes(current, expected)
        patch = state.update({(t, k): rows[t].get(k) for t, k in touched}) if state else None
        if patch is None:  # what the agent does: a full plan, and a new state from it
            full_plans += 1
            units = full_units
            state = PlanState(read_catalog(rows), expected)
        else:
            assert patch.plan == expected  # mappings, ARP, ports, PAs, problems (in order)
            assert state is not None
            assert state.counts() == catalog.counts()
            units = patch.units
            assert sorted(map(repr, units)) == sorted(map(repr, full_units))
            assert [u for u in units if u.table == PORT] == [
                u
                for u in full_units
                if u.table == PORT  # in the same order (MACs move)
            ]
        reference = engine_with(current)  # the full plan's units, from the same start
        refused = program(reference, full_units)
        assert program(engine, units) == refused
        assert plan_of_engine(engine) == plan_of_engine(reference)
        if refused:  # the agent plans in full later and converges: start afresh
            state, engine = None, engine_with(expected)
        current = expected
    return full_plans


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(any_op, min_size=1, max_size=4), min_size=1, max_size=8))
def test_any_sequence_of_mapping_batches_gives_the_full_plan(batches: list[list[Op]]) -> None:
    run_batches(host_rows(nb.figure8()), batches)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(any_op, min_size=1, max_size=4), min_size=1, max_size=6))
def test_starting_from_rows_with_problems_gives_the_full_plan(batches: list[list[Op]]) -> None:
    rows = host_rows(nb.figure8())
    for op in [
        ("ucast", "5001", "00:1d:d8:07:00:31", "10.9.9.9", LOCATORS[0], "remote"),  # outside
        ("ucast", "6001", "00:1d:d8:07:00:31", "10.1.1.12", LOCATORS[1], "remote"),  # conflict
        ("locator", "gre", "192.168.3.30"),
        ("port", "vm-a", "5001", "00:1d:d8:07:00:11", "10.1.1.13", "bound"),  # SQL's MAC
        ("rule", 0, "vm-b", "nic", "in", "10.1.1.0/24"),
        ("rule", 2, "vm-b", "nic", "in", "10.1.1.0/24"),  # the same rule name: a clash
        ("port", "vm-b", "6001", "00:1d:d8:07:00:14", "10.1.1.14", "bound"),
    ]:
        apply_op(rows, op)
    run_batches(rows, batches)


remote_op = st.tuples(
    st.booleans(),  # insert (or move) / delete
    st.sampled_from(VSIDS[:2]),
    st.integers(13, 40),  # the NIC: its address and its MAC
    st.sampled_from(LOCATORS[:6]),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(remote_op, max_size=30))
def test_remote_mappings_coming_moving_and_going_never_need_a_full_plan(
    ops: list[tuple[bool, str, int, str]],
) -> None:
    batches: list[list[Op]] = []
    for put, vsid, nic, locator in ops:
        encapsulation, pa = locator.split(":")
        mac, ip = f"00:1d:d8:07:01:{nic:02x}", f"10.1.1.{nic}"
        if put:  # its host's locator comes along (already there: the same row)
            ucast = ("ucast", vsid, mac, ip, locator, "remote")
            batches.append([("locator", encapsulation, pa), ucast])
        else:
            batches.append([("drop", UCAST, f"{vsid}/{mac}/{ip}")])
    assert run_batches(host_rows(nb.figure8()), batches) == 0


NEW_MAC, NEW_IP = "00:1d:d8:07:00:31", "10.1.1.13"
SCENARIOS: list[tuple[str, list[list[Op]], int]] = [
    # (what, batches, how many need a full plan)
    (
        "a remote NIC comes and goes",
        [
            [("ucast", "5001", NEW_MAC, NEW_IP, LOCATORS[1], "remote")],
            [("drop", UCAST, f"5001/{NEW_MAC}/{NEW_IP}")],
        ],
        0,
    ),
    (
        "a NIC moves to a new host",
        [
            [
                ("locator", "vxlan_over_ipv4", PAS[2]),
                ("ucast", "6001", "00:1d:d8:07:00:22", "10.1.1.12", LOCATORS[2], "remote"),
            ]
        ],
        0,
    ),
    (
        "a local address of the SQL port comes and goes",
        [
            [("ucast", "5001", MACS[0], NEW_IP, LOCATORS[0], "local")],
            [("drop", UCAST, f"5001/{MACS[0]}/{NEW_IP}")],
        ],
        0,
    ),
    (
        "a VM's NIC arrives: port, rules, local mapping",
        [
            [
                ("port", "vm-a", "5001", NEW_MAC, NEW_IP, "bound"),
                ("ucast", "5001", NEW_MAC, NEW_IP, LOCATORS[0], "local"),
                ("rule", 0, "vm-a", "nic", "in", PREFIXES[0]),
            ],
            [("port", "vm-a", "5001", NEW_MAC, NEW_IP, "attached")],
            [("rule", 1, "vm-a", "subnet", "out", PREFIXES[1])],
            [("drop", FW_RULES, "rule-0-vm-a")],
            [("drop", PORT, "vm-a")],
        ],
        0,
    ),
    (
        "a MAC passes from one port to another (in the order a full plan sends)",
        [
            [
                ("port", SQL_PORT, "5001", NEW_MAC, "10.1.1.11", "bound"),
                ("port", "vm-a", "5001", MACS[0], NEW_IP, "bound"),
            ]
        ],
        0,
    ),
    (
        "two ports swap MACs: refused once, as by a full plan",
        [
            [
                ("port", SQL_PORT, "5001", "00:1d:d8:07:00:21", "10.1.1.11", "bound"),
                ("port", FABRIKAM_PORT, "6001", MACS[0], "10.1.1.11", "bound"),
            ],
            [("ucast", "5001", NEW_MAC, NEW_IP, LOCATORS[1], "remote")],
        ],
        1,
    ),
    (
        "two ports with one MAC",
        [[("port", "vm-a", "6001", MACS[0], NEW_IP, "bound")]],
        1,
    ),
    (
        "a mapping clashes, then goes",
        [
            [("ucast", "5001", NEW_MAC, "10.1.1.12", LOCATORS[1], "remote")],
            [("drop", UCAST, f"5001/{NEW_MAC}/10.1.1.12")],
        ],
        2,
    ),
    (
        "a bad rule, then a good one",
        [
            [("rule", 0, SQL_PORT, "nic", "in", PREFIXES[2])],
            [("rule", 0, SQL_PORT, "nic", "in", PREFIXES[0])],
        ],
        2,
    ),
    ("a locator that rows use goes", [[("drop", LOCATOR, LOCATORS[1])]], 1),
]


@pytest.mark.parametrize(
    ("batches", "full_plans"), [s[1:] for s in SCENARIOS], ids=[s[0] for s in SCENARIOS]
)
def test_scenarios_are_patched_or_planned_in_full(batches: list[list[Op]], full_plans: int) -> None:
    assert run_batches(host_rows(nb.figure8()), batches) == full_plans


def test_a_batch_of_only_unread_tables_touches_nothing() -> None:
    event = RowEvent("ms_vtep", "Physical_Locator_Set", "u1", "ls:5001", None, {"x": 1})
    assert touched_rows([event]) == set()


def test_a_batch_with_a_switch_or_a_renamed_or_keyless_row_needs_a_full_plan() -> None:
    row: PlainRow = {"MAC": "00:1d:d8:07:00:31", "ipaddr": "10.1.1.13", "logical_switch": "ls-uuid"}
    insert = RowEvent("ms_vtep", UCAST, "u1", "5001/00:1d:d8:07:00:31/10.1.1.13", None, row)
    assert touched_rows([insert]) == {(UCAST, insert.key)}
    moved: PlainRow = {**row, "locator": "other-locator"}  # the same key: an update in place
    assert touched_rows([RowEvent("ms_vtep", UCAST, "u1", insert.key, row, moved)]) == {
        (UCAST, insert.key)
    }
    renamed: PlainRow = {**row, "ipaddr": "10.1.1.14"}
    assert touched_rows([RowEvent("ms_vtep", UCAST, "u1", "k", row, renamed)]) is None
    assert touched_rows([RowEvent("ms_vtep", UCAST, "u1", None, None, row)]) is None
    port = RowEvent("ms_vtep", PORT, "u2", "vm1", None, {"name": "vm1"})
    assert touched_rows([insert, port]) == {(UCAST, insert.key), (PORT, "vm1")}
    switch = RowEvent("ms_vtep", "Logical_Switch", "u3", "5001", None, {"name": "5001"})
    assert touched_rows([insert, switch]) is None
