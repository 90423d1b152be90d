"""Patching the plan batch by batch gives exactly the full plan: random sequences of
Ucast_Macs_Remote, Physical_Locator and Mcast_Macs_Remote inserts, updates and deletes
(good rows, bad rows, conflicts, local rows of bound ports) are applied both ways and
the plans, row counts, units and the engine they program are compared after each."""

from __future__ import annotations

from typing import Any

import nb_snapshots as nb
from agent_rows import Snapshot, host_rows
from hypothesis import given, settings
from hypothesis import strategies as st

from openhnv.agent.incremental import LOCATOR, MCAST, UCAST, MappingState, TableKey, touched_rows
from openhnv.agent.planner import EMPTY_PLAN, Plan, changes, plan, plan_of_engine
from openhnv.agent.rows import read_catalog
from openhnv.ovsdb.mirror import RowEvent
from openhnv.ovsdb.rows import Ref, Row
from openhnv.vfp.switch import VSwitch

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
delete = st.tuples(st.sampled_from((UCAST, UCAST, LOCATOR, MCAST)), st.integers(0, 99))
any_op = st.one_of(ucast_put, ucast_put, ucast_put, locator_put, mcast_put, delete)


def ucast_row(vsid: str, mac: str, ip: str, locator: str, kind: str) -> tuple[str, Row]:
    row: Row = {
        "MAC": mac,
        "ipaddr": ip,
        "logical_switch": Ref("Logical_Switch", vsid),
        "locator": Ref("Physical_Locator", locator),
        "mapping_type": kind,
    }
    return f"{vsid}/{mac}/{ip}", row


def apply_op(rows: Snapshot, op: Op) -> TableKey:
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
    if kind == "drop":
        rows[op[1]].pop(op[2], None)
        return op[1], op[2]
    keys = sorted(rows[kind])
    key = keys[op[1] % len(keys)] if keys else "absent"
    rows[kind].pop(key, None)
    return kind, key


def engine_with(p: Plan) -> VSwitch:
    engine = VSwitch()
    for unit in changes(EMPTY_PLAN, p):
        engine.apply_all(unit.commands)
    return engine


def run_batches(rows: Snapshot, batches: list[list[Op]]) -> int:
    """Apply ``batches`` both ways, comparing after each; how many needed a full plan."""
    current = plan(read_catalog(rows))
    state: MappingState | None = MappingState(read_catalog(rows), current)
    engine = engine_with(current)
    full_plans = 0
    for batch in batches:
        touched = {apply_op(rows, op) for op in batch}
        catalog = read_catalog(rows)
        expected = plan(catalog)
        patch = state.update({(t, k): rows[t].get(k) for t, k in touched}) if state else None
        if patch is None:  # what the agent does: a full plan, and a new state from it
            full_plans += 1
            units = changes(current, expected)
            state = MappingState(read_catalog(rows), expected)
        else:
            assert patch.plan == expected  # mappings, ARP, ports, PAs, problems (in order)
            assert state is not None and state.counts() == catalog.counts()
            units = patch.units
            assert sorted(map(repr, units)) == sorted(map(repr, changes(current, expected)))
        for unit in units:
            engine.apply_all(unit.commands)
        held = plan_of_engine(engine)
        assert held.mappings == expected.mappings
        assert held.ports == plan_of_engine(engine_with(expected)).ports
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


def test_a_batch_of_only_unread_tables_touches_nothing() -> None:
    event = RowEvent("ms_vtep", "Physical_Locator_Set", "u1", "ls:5001", None, {"x": 1})
    assert touched_rows([event]) == set()


def test_a_batch_with_another_table_or_a_renamed_or_keyless_row_needs_a_full_plan() -> None:
    row = {"MAC": "00:1d:d8:07:00:31", "ipaddr": "10.1.1.13", "logical_switch": "ls-uuid"}
    insert = RowEvent("ms_vtep", UCAST, "u1", "5001/00:1d:d8:07:00:31/10.1.1.13", None, row)
    assert touched_rows([insert]) == {(UCAST, insert.key)}
    moved = {**row, "locator": "other-locator"}  # the same key: an update in place
    assert touched_rows([RowEvent("ms_vtep", UCAST, "u1", insert.key, row, moved)]) == {
        (UCAST, insert.key)
    }
    renamed = {**row, "ipaddr": "10.1.1.14"}
    assert touched_rows([RowEvent("ms_vtep", UCAST, "u1", "k", row, renamed)]) is None
    assert touched_rows([RowEvent("ms_vtep", UCAST, "u1", None, None, row)]) is None
    port = RowEvent("ms_vtep", "Physical_Port", "u2", "vm1", None, {"name": "vm1"})
    assert touched_rows([insert, port]) is None
