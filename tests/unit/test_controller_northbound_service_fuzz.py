"""Mutated figure 8 bodies: every PUT either succeeds or is an ApiError that changes nothing.

Each example gets a service of its own (figure 8 PUT into a fresh in-memory store), so
whatever one example leaves behind cannot pass or fail the next.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openhnv.controller.errors import ApiError
from openhnv.controller.northbound.service import ControllerService
from openhnv.controller.northbound.store import SqliteStore

FIGURE8 = Path(__file__).resolve().parents[2] / "examples" / "figure8"
REQUESTS = [
    (f"/{f.stem.split('-', 2)[1]}/{f.stem.split('-', 2)[2]}", json.loads(f.read_text()))
    for f in sorted(FIGURE8.glob("*.json"))
]
SERVER = "/servers/host1"


def figure8() -> ControllerService:
    """A service holding figure 8, on a store of its own."""
    service = ControllerService(SqliteStore(":memory:"))
    for path, body in REQUESTS:
        service.put(path, body)
    return service


def body_of(path: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(json.dumps(dict(REQUESTS)[path]))
    return found


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 70000)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "10.1.1.11",
            "10.1.1.0/24",
            "*",
            "Internet",
            "5001",
            "True",
            "/servers/host1",
            "001DD8071011",
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def leaves(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [at]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += leaves(value, (*at, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += leaves(value, (*at, i))
    return found


def mutate(doc: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    copy = json.loads(json.dumps(doc))
    holder = copy
    for step in at[:-1]:
        holder = holder[step]
    holder[at[-1]] = value
    return copy


def refusal(call: Callable[[], object]) -> ApiError | None:
    """The ApiError ``call`` raised, or None when it succeeded."""
    try:
        call()
    except ApiError as err:
        return err
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_bodies_succeed_or_are_refused_cleanly(data: st.DataObject) -> None:
    path, body = data.draw(st.sampled_from(REQUESTS))
    at = data.draw(st.sampled_from(leaves(body)))
    mutated = mutate(body, at, data.draw(values))
    service = figure8()
    before = service.snapshot()
    refused = refusal(lambda: service.put(path, mutated))
    after = service.snapshot()  # renders every document: none may be left broken
    if refused is not None:
        assert 400 <= refused.status < 500
        assert refused.message
        assert after == before


@pytest.mark.parametrize(
    "resource_id", ["L6\x04/\u00b9v", "a/b", "tab\there", "del\x7f", "", "x" * 257]
)
def test_a_child_resource_id_that_is_not_a_name_is_refused_and_changes_nothing(
    resource_id: str,
) -> None:
    """A pNIC resourceId with '/' or a control character: 400 naming the field and the
    value, nothing stored (it once committed, answered 404, and broke every later GET)."""
    service = figure8()
    before = service.snapshot()
    body = body_of(SERVER)
    body["properties"]["networkInterfaces"][0]["resourceId"] = resource_id
    refused = refusal(lambda: service.put(SERVER, body))
    assert refused is not None
    assert refused.status == HTTPStatus.BAD_REQUEST
    assert "properties.networkInterfaces[0].resourceId" in refused.message
    assert repr(resource_id) in refused.message
    assert service.snapshot() == before
    (stored,) = [doc for doc in before["servers"] if doc["resourceId"] == "host1"]
    assert service.get(SERVER) == stored


def every_path(service: ControllerService) -> list[str]:
    found = []
    for documents in service.snapshot().values():
        for doc in documents:
            stack = [doc]
            while stack:
                item = stack.pop()
                found.append(str(item["resourceRef"]))
                for value in item["properties"].values():
                    if isinstance(value, list):
                        stack += [v for v in value if isinstance(v, dict) and "etag" in v]
    return sorted(found)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_deletes_in_any_order_keep_references_whole(data: st.DataObject) -> None:
    service = ControllerService(SqliteStore(":memory:"))
    for path, body in REQUESTS:
        service.put(path, body)
    for _ in range(6):
        path = data.draw(st.sampled_from(every_path(service)))
        before = service.snapshot()
        refused = refusal(partial(service.delete, path))
        if refused is not None:
            assert refused.status in (404, 409)
            assert service.snapshot() == before
    for documents in service.snapshot().values():  # no reference dangles
        for doc in documents:
            for text in json.dumps(doc).split('"resourceRef": "')[1:]:
                ref = text.split('"', 1)[0]
                service.get(ref)
