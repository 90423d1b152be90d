"""The chaos suite's own checks: they must catch a lost write, a wrong row, a silence."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from openhnv.ovsdb.rows import Row
from openhnv.testing.chaos.converge import compare_rows, northbound_problems
from openhnv.testing.chaos.traffic import longest_gap
from openhnv.testing.chaos.writes import Write, WriteStream, tagged
from openhnv.testing.polling import eventually


class Store:
    """A controller that stores PUTs by path; it can lose one, or answer without storing."""

    def __init__(self) -> None:
        self.documents: dict[str, Any] = {}
        self.forget: set[str] = set()  # acknowledged, then lost (the bug the check catches)
        self.unanswered: set[str] = set()  # stored, but answered 503

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/networking/v1")
        version = json.loads(request.content)["tags"]["chaos"] if request.content else None
        if request.method == "DELETE":
            self.documents.pop(path, None)
        elif version not in self.forget:
            self.documents[path] = json.loads(request.content)
        if version in self.unanswered:
            return httpx.Response(503)
        return httpx.Response(200, json={})

    def get(self, path: str) -> Any:
        return self.documents.get(path)


def stream_of(store: Store, writes: list[Write]) -> WriteStream:
    def plan(n: int) -> Write:
        return writes[n] if n < len(writes) else writes[-1]

    stream = WriteStream(["http://nc"], plan, transport=httpx.MockTransport(store.handle))
    stream.resume()
    eventually(lambda: stream.counts.acknowledged + stream.counts.uncertain >= len(writes), "sent")
    stream.close()
    return stream


def test_acknowledged_writes_found_in_the_store_are_not_lost() -> None:
    store = Store()
    writes = [Write("/acl/a", tagged({}, n)) for n in range(3)] + [Write("/nic/x", tagged({}, 9))]
    writes += [Write("/nic/x")]
    assert stream_of(store, writes).lost(store.get) == []


def test_an_acknowledged_write_the_store_lost_is_named() -> None:
    store = Store()
    store.forget = {"2"}
    writes = [Write("/acl/a", tagged({}, n)) for n in range(3)]
    losses = stream_of(store, writes).lost(store.get)
    assert [(loss.path, loss.found, loss.allowed) for loss in losses] == [("/acl/a", "1", ("2",))]


def test_a_write_without_an_answer_may_have_landed_or_not() -> None:
    landed = Store()
    landed.unanswered = {"1"}
    writes = [Write("/acl/a", tagged({}, 0)), Write("/acl/a", tagged({}, 1))]
    assert stream_of(landed, writes).lost(landed.get) == []
    dropped = Store()
    dropped.unanswered, dropped.forget = {"1"}, {"1"}
    stream = stream_of(dropped, writes)
    assert stream.counts.uncertain >= 1
    assert stream.lost(dropped.get) == []


def test_compare_rows_names_missing_extra_and_wrong_rows_but_not_agent_columns() -> None:
    desired = {"Logical_Switch": {"5001": {"name": "5001"}, "6001": {"name": "6001"}}}
    actual: dict[str, dict[str, Row]] = {
        "Logical_Switch": {"5001": {"name": "5001", "status": "agent's"}, "7001": {"name": "7"}},
        "Physical_Port": {"up0": {"name": "up0", "status": {"team_member": "true"}}},
    }  # a team member's row is the agent's own
    assert compare_rows(desired, actual) == [
        "Logical_Switch 6001: missing",
        "Logical_Switch 7001: not desired",
    ]
    actual["Logical_Switch"]["6001"] = {"name": "6002"}
    actual["Logical_Switch"].pop("7001")
    assert compare_rows(desired, actual) == ["Logical_Switch 6001: wrong name"]


def test_northbound_problems_name_nics_and_servers_not_done() -> None:
    ok = {"configurationState": {"status": "Success"}}
    state = {
        "networkInterfaces": [
            {"resourceId": "a", "properties": {"provisioningState": "Succeeded", **ok}},
            {"resourceId": "b", "properties": {"provisioningState": "Updating", **ok}},
        ],
        "servers": [{"resourceId": "h1", "properties": {}}],
    }
    assert northbound_problems(state) == ["NIC b: Updating/Success", "server h1: no state"]


def test_longest_gap_counts_the_edges_of_the_window() -> None:
    now = time.monotonic()
    arrivals = [now + 0.1, now + 0.2, now + 1.7, now + 1.8]
    assert round(longest_gap(arrivals, now, now + 2.0), 3) == 1.5
    assert round(longest_gap([], now, now + 2.0), 3) == 2.0
    assert round(longest_gap(arrivals, now, now + 3.0), 3) == 1.5
