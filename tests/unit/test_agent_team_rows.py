"""The team members' Physical_Port rows: the switch's team status in, the writes out."""

from __future__ import annotations

from typing import Any

from openhnv.agent.team_rows import is_team_row, team_row_changes, team_row_status

PA0, PA1 = "192.168.1.10", "192.168.1.11"
HOME = {
    "members": {"up0": "up", "up1": "up"},
    "provider_addresses": {PA0: {"member": "up0", "home": "up0", "moved": False},
                           PA1: {"member": "up1", "home": "up1", "moved": False}},
}  # fmt: skip
MOVED: dict[str, Any] = {
    "members": {"up0": "down", "up1": "up"},
    "provider_addresses": {PA0: {"member": "up1", "home": "up0", "moved": True},
                           PA1: {"member": "up1", "home": "up1", "moved": False}},
}  # fmt: skip


def test_each_member_gets_a_row_with_its_carrier_and_pas() -> None:
    writes = team_row_changes(HOME, {})
    assert [(w.op, w.key, team_row_status(w.key, HOME)) for w in writes] == [
        ("insert", "up0", writes[0].columns["status"]),
        ("insert", "up1", writes[1].columns["status"]),
    ]
    assert team_row_status("up0", HOME)["provider_addresses"] == PA0
    assert all(is_team_row(w.columns) for w in writes)


def test_a_moved_pa_is_listed_on_its_new_member() -> None:
    assert team_row_status("up1", MOVED) == {
        "team_member": "true", "carrier": "up",
        "provider_addresses": f"{PA0},{PA1}", "moved_provider_addresses": PA0,
    }  # fmt: skip
    assert team_row_status("up0", MOVED)["carrier"] == "down"


def test_rows_that_say_it_already_are_left_alone_and_gone_members_deleted() -> None:
    rows = {m: {"name": m, "status": team_row_status(m, HOME)} for m in ("up0", "up1")}
    rows["up7"] = {"name": "up7", "status": {"team_member": "true", "carrier": "up"}}
    rows["nic-guid"] = {"name": "nic-guid", "status": {"attached": "true"}}  # a VM port's
    writes = team_row_changes(HOME, rows)
    assert [(w.op, w.key) for w in writes] == [("delete", "up7")]
