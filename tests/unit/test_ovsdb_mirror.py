"""The client's plain-data mirror: events only for real differences, keys kept current."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import ovs.db.data
import ovs.db.schema

from openhnv.ovsdb.keys import TABLE_KEYS
from openhnv.ovsdb.mirror import DatabaseMirror
from openhnv.ovsdb.rows import Ref
from openhnv.ovsdb.schema import load_schema

SCHEMA = ovs.db.schema.DbSchema.from_json(load_schema("ms_vtep"))
MONITORING = 6
LS1, LS2, PL1, PLS1, MC1, UC1 = (uuid.UUID(int=i) for i in range(1, 7))


@dataclass
class FakeRow:
    """What the mirror reads of an IDL row: its table and its column data."""

    _table: Any
    _data: dict[str, Any]


@dataclass
class FakeTable:
    rows: dict[uuid.UUID, FakeRow] = field(default_factory=dict)


@dataclass
class FakeSession:
    connected: bool = True
    seqno: int = 1

    def is_connected(self) -> bool:
        return self.connected

    def get_seqno(self) -> int:
        return self.seqno


class FakeIdl:
    IDL_S_MONITORING = MONITORING

    def __init__(self) -> None:
        self._session = FakeSession()
        self.state = MONITORING
        self.tables = {name: FakeTable() for name in SCHEMA.tables}
        self.dirty: set[tuple[str, uuid.UUID]] = set()

    def put(self, table: str, row_uuid: uuid.UUID, **columns: Any) -> None:
        schema = SCHEMA.tables[table]
        data = {
            name: ovs.db.data.Datum.from_python(schema.columns[name].type, value, lambda v: v)
            for name, value in columns.items()
        }
        self.tables[table].rows[row_uuid] = FakeRow(schema, data)
        self.dirty.add((table, row_uuid))

    def remove(self, table: str, row_uuid: uuid.UUID) -> None:
        del self.tables[table].rows[row_uuid]
        self.dirty.add((table, row_uuid))


def populated() -> tuple[FakeIdl, DatabaseMirror]:
    idl = FakeIdl()
    idl.put("Logical_Switch", LS1, name="5001", tunnel_key=5001)
    idl.put("Physical_Locator", PL1, dst_ip="192.168.1.10", encapsulation_type="vxlan_over_ipv4")
    idl.put("Physical_Locator_Set", PLS1, locators=[PL1])
    idl.put("Mcast_Macs_Remote", MC1, MAC="unknown-dst", logical_switch=LS1, locator_set=PLS1)
    idl.put(
        "Ucast_Macs_Remote",
        UC1,
        MAC="00:1d:d8:07:00:01",
        ipaddr="10.1.1.11",
        logical_switch=LS1,
        locator=PL1,
        mapping_type="remote",
    )
    return idl, DatabaseMirror("ms_vtep", SCHEMA.tables, TABLE_KEYS)


def test_first_sync_reports_every_row_with_its_key() -> None:
    idl, mirror = populated()
    events = mirror.sync(idl)
    assert {(e.table, e.key) for e in events if e.old is None} == {
        ("Logical_Switch", "5001"),
        ("Physical_Locator", "vxlan_over_ipv4:192.168.1.10"),
        ("Physical_Locator_Set", "ls:5001"),
        ("Mcast_Macs_Remote", "5001/unknown-dst"),
        ("Ucast_Macs_Remote", "5001/00:1d:d8:07:00:01/10.1.1.11"),
    }
    row = mirror.keyed_table("Ucast_Macs_Remote")["5001/00:1d:d8:07:00:01/10.1.1.11"]
    assert row["locator"] == Ref("Physical_Locator", "vxlan_over_ipv4:192.168.1.10")
    assert mirror.rows["Logical_Switch"][str(LS1)]["other_config"] == {}


def test_a_reconnect_with_the_same_rows_reports_nothing() -> None:
    idl, mirror = populated()
    mirror.sync(idl)
    idl._session.seqno += 1  # a new connection: full comparison
    assert mirror.sync(idl) == []


def test_a_row_gone_while_away_is_reported_with_its_old_key() -> None:
    idl, mirror = populated()
    mirror.sync(idl)
    del idl.tables["Ucast_Macs_Remote"].rows[UC1]  # no notice: a fresh dump lacks it
    idl.dirty.clear()
    idl._session.seqno += 1
    (event,) = mirror.sync(idl)
    assert (event.table, event.key, event.new) == (
        "Ucast_Macs_Remote",
        "5001/00:1d:d8:07:00:01/10.1.1.11",
        None,
    )
    assert mirror.by_key["Ucast_Macs_Remote"] == {}


def test_renaming_a_switch_renames_the_rows_keyed_by_it() -> None:
    idl, mirror = populated()
    mirror.sync(idl)
    idl.put("Logical_Switch", LS1, name="5002", tunnel_key=5002)
    (event,) = mirror.sync(idl)
    assert event.key == "5002"
    assert set(mirror.by_key["Ucast_Macs_Remote"]) == {"5002/00:1d:d8:07:00:01/10.1.1.11"}
    assert set(mirror.by_key["Physical_Locator_Set"]) == {"ls:5002"}


def test_a_locator_set_without_referrer_has_no_key() -> None:
    idl, mirror = populated()
    mirror.sync(idl)
    idl.remove("Mcast_Macs_Remote", MC1)
    mirror.sync(idl)
    assert mirror.keys["Physical_Locator_Set"] == {}
    assert str(PLS1) in mirror.rows["Physical_Locator_Set"]


def test_nothing_is_mirrored_before_the_dump_arrives() -> None:
    idl, mirror = populated()
    idl.state = MONITORING - 1
    assert mirror.sync(idl) == []
    assert mirror.synced_seqno is None


def test_a_malformed_row_has_no_key_and_blocks_nothing() -> None:
    idl, mirror = populated()
    idl.put("Logical_Switch", LS2, name="", tunnel_key=1)
    events = mirror.sync(idl)
    assert len(events) == 6
    assert str(LS2) not in mirror.keys["Logical_Switch"]
    assert set(mirror.by_key["Logical_Switch"]) == {"5001"}


def test_server_errors_name_rows_by_key() -> None:
    idl, mirror = populated()
    mirror.sync(idl)
    error = (
        '{"details":"cannot delete Logical_Switch row '
        + str(LS1)
        + ' because of 1 remaining reference(s)","error":"referential integrity violation"}'
    )
    assert mirror.explain(error) == (
        "referential integrity violation: cannot delete Logical_Switch row "
        f"Logical_Switch '5001' ({LS1}) because of 1 remaining reference(s)"
    )


def test_a_row_replaced_by_another_with_the_same_key_keeps_the_key() -> None:
    """Delete + insert of the same keys in one reconnect: the new rows own the keys.

    Many pairs, so that any order of processing the old and new row is exercised.
    """
    idl = FakeIdl()
    mirror = DatabaseMirror("ms_vtep", SCHEMA.tables, TABLE_KEYS)
    olds = [uuid.UUID(int=100 + i) for i in range(24)]
    news = [uuid.UUID(int=200 + i) for i in range(24)]
    for i, row_uuid in enumerate(olds):
        idl.put("Logical_Switch", row_uuid, name=str(7000 + i), tunnel_key=7000 + i)
    mirror.sync(idl)
    for i, (old_uuid, new_uuid) in enumerate(zip(olds, news, strict=True)):
        idl.remove("Logical_Switch", old_uuid)
        idl.put("Logical_Switch", new_uuid, name=str(7000 + i), tunnel_key=7000 + i)
    idl.dirty.clear()
    idl._session.seqno += 1  # a reconnect: the fresh dump holds only the new rows
    events = mirror.sync(idl)
    assert len(events) == 48
    assert mirror.by_key["Logical_Switch"] == {
        str(7000 + i): str(new_uuid) for i, new_uuid in enumerate(news)
    }
    assert mirror.keys["Logical_Switch"] == {
        str(new_uuid): str(7000 + i) for i, new_uuid in enumerate(news)
    }
    inserted = {e.key for e in events if e.old is None}
    assert inserted == {str(7000 + i) for i in range(24)}
