"""StoreFollower: a controller's state follows the store's commits, whole and in order.

Two handles on one SQLite file stand for two controllers: one writes, the other's
follower catches up by replaying the change log (what etcd's watch does in a cluster).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openhnv.controller.northbound import store as store_module
from openhnv.controller.northbound.follower import StoreFollower
from openhnv.controller.northbound.store import SqliteStore

NIC = "/resources/networkinterfaces/web"


def nic(name: str, state: str = "Updating", etag: str = 'W/"1"') -> dict[str, Any]:
    return {
        "resourceId": name,
        "instanceId": "i",
        "etag": etag,
        "properties": {"provisioningState": state, "ipConfigurations": []},
    }


@pytest.fixture
def stores(tmp_path: Path) -> tuple[SqliteStore, SqliteStore]:
    return SqliteStore(tmp_path / "s.db"), SqliteStore(tmp_path / "s.db")


def test_every_change_of_a_commit_is_applied(stores: tuple[SqliteStore, SqliteStore]) -> None:
    writer, mine = stores
    heard: list[list[str]] = []
    follower = StoreFollower(mine, heard.append)  # an empty store: nothing to announce
    one = writer.commit({NIC: nic("web"), "/resources/networkinterfaces/db": nic("db")})
    two = writer.commit(
        {NIC: nic("web", "Succeeded"), "/resources/networkinterfaces/db": nic("db", "Succeeded")}
    )
    follower.catch_up(two)
    assert follower.applied == two
    assert {k: d["properties"]["provisioningState"] for k, d in follower.state.docs.items()} == {
        "/networkinterfaces/web": "Succeeded",
        "/networkinterfaces/db": "Succeeded",
    }
    assert follower.mod_revision(NIC) == follower.mod_revision(NIC.replace("web", "db")) == two
    # the first commit was news; the second only moved provisioningState: not announced
    assert heard == [["/networkInterfaces/web", "/networkInterfaces/db"]]
    assert one < two


def test_own_compared_commit_is_applied_once_whoever_gets_there_first(
    stores: tuple[SqliteStore, SqliteStore],
) -> None:
    writer, mine = stores
    follower = StoreFollower(mine, lambda refs: None)
    base = follower.applied
    own = mine.commit({NIC: nic("web")}, if_revision=base)
    follower.apply_own({NIC: nic("web")}, (), own, base)  # nothing between: applied as is
    assert follower.applied == own
    assert follower.mod_revision(NIC) == own
    base = follower.applied
    again = mine.commit({NIC: nic("web", etag='W/"2"')}, if_revision=base)
    other = writer.put("/resources/networkinterfaces/db", nic("db"))
    follower.catch_up(other)  # the follower thread got there first, own commit included
    follower.apply_own({NIC: nic("web", etag='W/"2"')}, (), again, base)
    assert follower.applied == other
    assert follower.mod_revision(NIC) == again
    assert follower.state.docs["/networkinterfaces/web"]["etag"] == 'W/"2"'
    assert set(follower.state.docs) == {"/networkinterfaces/web", "/networkinterfaces/db"}


def test_deletes_statuses_and_allocators_follow(stores: tuple[SqliteStore, SqliteStore]) -> None:
    writer, mine = stores
    writer.put(NIC, nic("web"))
    follower = StoreFollower(mine, lambda refs: None)
    status = {"status": "Success"}
    revision = writer.commit(
        {"/status/networkinterfaces/web": status, "/allocators/vsid": {"next": 7}}
    )
    follower.catch_up(revision)
    assert follower.state.configuration == {"/networkinterfaces/web": status}
    assert follower.state.allocators == {"/allocators/vsid": {"next": 7}}
    follower.catch_up(writer.commit({}, [NIC, "/status/networkinterfaces/web"]))
    assert follower.state.docs == {}
    assert follower.state.configuration == {}
    assert follower.mod_revision(NIC) == 0


def test_lost_history_reloads_and_announces_the_differences(
    stores: tuple[SqliteStore, SqliteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, mine = stores
    writer.put(NIC, nic("web"))
    heard: list[list[str]] = []
    follower = StoreFollower(mine, heard.append)
    monkeypatch.setattr(store_module, "CHANGES_KEPT", 1)
    monkeypatch.setattr(store_module, "TRIM_EVERY", 1)
    writer.put("/resources/networkinterfaces/db", nic("db"))
    last = writer.delete(NIC)
    follower.catch_up(last)
    assert set(follower.state.docs) == {"/networkinterfaces/db"}
    assert heard == [
        ["/networkInterfaces/web"],  # the first load
        ["/networkInterfaces/db", "/networkInterfaces/web"],  # what the reload found changed
    ]
